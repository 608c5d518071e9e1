/**
 * `frugal serve`: the HTTP service (OpenAI/DeepSeek and Ollama APIs, web UI, accounts).
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL } from './chat.js';
import { parseSpeculativeFlags, speculativeFlags } from '../generate/cli-options.js';
import { wholeNumber } from './flag-values.js';
import { withDatabaseFlag } from './file-checks.js';

export const summary = 'serve models over HTTP (OpenAI/DeepSeek and Ollama APIs, web UI)';

const usage = `usage: frugal serve [--model FILE]... [options]

  --model FILE            GGUF model (repeatable; the first one answers deepseek-reasoner/-chat);
                          default: models/frugal-r1-tiny.gguf. Models load on first use.
  --host ADDRESS          listen address (default 127.0.0.1)
  --port N                port (default 8080)
  --db PATH               SQLite database: users, keys, conversations (default ./frugal.db)
  --auth                  require an API key or a login for every API and UI request
  --insecure-no-auth-on-public-address
                          allow serving a non-loopback address without --auth (not recommended)
  --secure-cookies        mark login cookies Secure (behind a reverse proxy that serves HTTPS;
                          a request that itself comes over TLS gets them anyway)
  --ctx-size N            context per request (default: the model's, at most 8192)
  --memory-budget MB      most megabytes of weights loaded at once (least recently used unload)
  --cache-memory MB       most megabytes the idle prefix caches of all models keep for later
                          requests (default 1024; least recently used dropped first; 0: none kept)
  --max-active N          generations decoded together (default 8)
  --max-queue N           requests waiting beyond those (default 64; more get 429)
  --max-tokens N          largest max_tokens a request may ask for (default 32768)
  --rpm N, --tpm N        per-client requests / tokens per minute (default: unlimited)
  --concurrency N         concurrent generations per client (default: unlimited)
  --body-limit BYTES      largest request body (default 1048576)
  --max-connections N     open connections in all (default 1024); beyond it a new one gets 503
  --max-connections-per-ip N
                          open connections from one address (default 64); beyond it 503
                          (behind a reverse proxy all connections come from its address: raise it)
  --reasoning-budget N    default thinking budget in tokens (default: unlimited)
  --speculative M         mtp (the model's MTP module), ngram (prompt lookup) or off (default):
                          a generation running alone drafts tokens and verifies them in one pass
                          (same output distribution); with others running it decodes batched.
                          A model without MTP weights decodes normally under mtp (one warning).
                          Requests with logprobs or JSON output never speculate.
  --draft-tokens K        tokens drafted per step (default 1 for mtp, 4 for ngram)

Authentication: on a loopback address API keys are optional unless --auth is given (an unknown
key is then ignored, a revoked one refused). Any other address requires --auth semantics: the
server turns authentication on by itself, and refuses to start with --no-auth unless
--insecure-no-auth-on-public-address is given. A loopback server without auth answers only
requests whose Host is a loopback name (DNS-rebinding protection). A request from a web page
(Origin header) must send application/json, which needs a CORS preflight that is never granted;
other clients may send JSON under any content type (curl -d, as in Ollama's docs).
Create users and keys with 'frugal admin'.

Timeouts: request headers 30 s, whole request body 60 s, idle connection 10 min, one
generation 10 min (then it ends with finish_reason "length"); a client that disconnects
cancels its generation at once.`;

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function int(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = wholeNumber(value);
  if (!(n >= min)) throw new Error(`--${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

/** Each --model path exists and its header reads as a model (GGUF or HF directory); the weights still load on first use. */
async function checkModelPaths(paths: readonly string[], given: boolean): Promise<void> {
  const { openModelSource } = await import('../models/load.js');
  for (const path of paths) {
    if (!existsSync(path)) {
      throw new Error(given ? `model not found: ${path}` : `no --model given and the default model ${path} does not exist yet; pass --model FILE (a GGUF file)`);
    }
    try {
      openModelSource(path).close();
    } catch (error) {
      const message = (error as Error).message;
      throw new Error(message.includes(path) ? `--model: ${message}` : `--model ${path}: ${message}`);
    }
  }
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm', multiple: true },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      db: { type: 'string', default: 'frugal.db' },
      auth: { type: 'boolean' },
      'no-auth': { type: 'boolean' },
      'insecure-no-auth-on-public-address': { type: 'boolean' },
      'secure-cookies': { type: 'boolean' },
      'ctx-size': { type: 'string' },
      'memory-budget': { type: 'string' },
      'cache-memory': { type: 'string' },
      'max-active': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-tokens': { type: 'string' },
      rpm: { type: 'string' },
      tpm: { type: 'string' },
      concurrency: { type: 'string' },
      'body-limit': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-ip': { type: 'string' },
      'reasoning-budget': { type: 'string' },
      ...speculativeFlags,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const host = values.host!;
  const port = int(values.port, 'port', 0)!;
  if (port > 65535) throw new Error(`--port must be at most 65535, got ${port}`);
  const loopback = isLoopback(host);
  if (values.auth && values['no-auth']) throw new Error('choose one of --auth and --no-auth');
  let authRequired = values.auth ?? false;
  if (!loopback) {
    if (values['no-auth'] && !values['insecure-no-auth-on-public-address']) {
      throw new Error(`refusing to serve ${host} (not a loopback address) without authentication; drop --no-auth, or pass --insecure-no-auth-on-public-address`);
    }
    authRequired = !(values['no-auth'] && values['insecure-no-auth-on-public-address']);
  }
  const speculative = parseSpeculativeFlags(values);
  const paths = values.model ?? [DEFAULT_MODEL];
  await checkModelPaths(paths, values.model !== undefined);
  const { createServer } = await import('../server/app.js');
  const budget = int(values['memory-budget'], 'memory-budget', 1);
  const cacheMemory = int(values['cache-memory'], 'cache-memory', 0);
  const server = await createServer({
    models: paths.map((path) => ({ path })),
    dbPath: values.db!,
    registry: {
      ...(budget !== undefined ? { memoryBudgetBytes: budget * 1024 * 1024 } : {}),
      ...(cacheMemory !== undefined ? { cacheMemoryBytes: cacheMemory * 1024 * 1024 } : {}),
      ...(values['ctx-size'] !== undefined ? { contextSize: int(values['ctx-size'], 'ctx-size', 2)! } : {}),
    },
    scheduler: {
      maxActive: int(values['max-active'], 'max-active', 1) ?? 8,
      maxQueue: int(values['max-queue'], 'max-queue', 0) ?? 64,
      speculative,
    },
    limits: {
      ...(values.rpm !== undefined ? { requestsPerMinute: int(values.rpm, 'rpm', 1)! } : {}),
      ...(values.tpm !== undefined ? { tokensPerMinute: int(values.tpm, 'tpm', 1)! } : {}),
      ...(values.concurrency !== undefined ? { concurrentPerClient: int(values.concurrency, 'concurrency', 1)! } : {}),
    },
    settings: {
      authRequired,
      loopbackHostsOnly: loopback && !authRequired,
      secureCookies: values['secure-cookies'] === true,
      ...(values['max-tokens'] !== undefined ? { maxTokensCap: int(values['max-tokens'], 'max-tokens', 1)! } : {}),
      ...(values['reasoning-budget'] !== undefined ? { defaultReasoningBudget: int(values['reasoning-budget'], 'reasoning-budget', 0)! } : {}),
    },
    bodyLimit: int(values['body-limit'], 'body-limit', 1024) ?? 1024 * 1024,
    connections: {
      ...(values['max-connections'] !== undefined ? { total: int(values['max-connections'], 'max-connections', 1)! } : {}),
      ...(values['max-connections-per-ip'] !== undefined ? { perAddress: int(values['max-connections-per-ip'], 'max-connections-per-ip', 1)! } : {}),
    },
    connectionTimeoutMs: 10 * 60_000,
    headersTimeoutMs: 30_000,
    requestTimeoutMs: 60_000,
    processMetrics: true,
  }).catch((error: unknown) => {
    throw withDatabaseFlag(error, values.db!);
  });
  const address = await server.listen({ host, port });
  const ctx = server.ctx;
  process.stderr.write(
    `frugal serve: listening on ${address} (models: ${ctx.registry.ids().join(', ')}; ${speculative.method === 'off' ? '' : `speculative ${speculative.method}; `}auth ${authRequired ? 'required' : 'optional (loopback)'}; database ${values.db})\n`,
  );
  if (authRequired && ctx.store.apiKeys().length === 0 && ctx.store.users().length === 0) {
    process.stderr.write(`frugal serve: no users or API keys yet: create one with 'frugal admin --db ${values.db} create-key'\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.stderr.write('frugal serve: shutting down\n');
      void server.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
