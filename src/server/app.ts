/**
 * The HTTP service: Fastify with the OpenAI/DeepSeek routes, the Ollama routes, the account and
 * UI routes, /health and /metrics, over one SQLite store and one batching scheduler.
 *
 *   const server = await createServer({ models: [{ path: 'model.gguf' }], dbPath: 'frugal.db' });
 *   await server.listen({ host: '127.0.0.1', port: 8080 });
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ServerContext, type ServerSettings } from './context.js';
import { type ConnectionCounter, type ConnectionLimits, limitConnections } from './connections.js';
import { ApiError, type ErrorBody, errorBody, errorBodyFor } from './errors.js';
import { RateLimiter, type LimitOptions } from './limits.js';
import { Metrics } from './metrics.js';
import { ModelRegistry, type ModelConfig, type RegistryOptions } from './models.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { Store } from './store.js';
import { registerOpenAiRoutes } from './routes/openai.js';
import { registerOllamaRoutes } from './routes/ollama.js';
import { registerResponsesRoutes } from './routes/responses.js';
import { registerTokenizeRoutes } from './routes/tokenize.js';
import { registerEmbeddingRoutes } from './routes/embeddings.js';
import { registerAccountRoutes } from './routes/accounts.js';
import { registerUiRoutes } from './routes/ui.js';

export interface ServerOptions {
  models: ModelConfig[];
  /** SQLite file (default ':memory:'). */
  dbPath?: string;
  registry?: RegistryOptions;
  scheduler?: SchedulerOptions;
  limits?: LimitOptions;
  settings?: Partial<ServerSettings>;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Idle connection timeout, and the time allowed to receive a request's headers (ms). */
  connectionTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** Open TCP connections allowed per remote address and in all (connections.ts; defaults 64 and 1024). */
  connections?: ConnectionLimits;
  /** Whole non-streaming request time (ms; 0 = none). */
  requestTimeoutMs?: number;
  /** Folder of the built web UI (index.html, assets/); default dist/web next to this build. */
  webDir?: string;
  logger?: boolean;
  processMetrics?: boolean;
}

export interface FrugalServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Open and refused connections (the connection caps). */
  connections: ConnectionCounter;
  listen(options: { host: string; port: number }): Promise<string>;
  close(): Promise<void>;
}

const DEFAULT_SETTINGS: ServerSettings = {
  authRequired: false,
  maxTokensCap: 32768,
  defaultMaxTokens: 4096,
  sessionTtlMs: 30 * 24 * 3600_000,
  keepAliveMs: 5000,
  secureCookies: false,
  loopbackHostsOnly: false,
  loginAttemptsPerMinute: 30,
};

/** Host header (name[:port]) names a loopback address. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function createServer(options: ServerOptions): Promise<FrugalServer> {
  const settings: ServerSettings = { ...DEFAULT_SETTINGS, ...options.settings };
  const store = new Store(options.dbPath ?? ':memory:');
  const scheduler = new Scheduler(options.scheduler);
  // as many idle prefix caches as sequences run at once: each concurrent stream's next request
  // finds its conversation's cache (no more memory than the running sequences already use)
  const registry = new ModelRegistry(options.models, { cacheSlots: Math.max(4, scheduler.maxActive), ...options.registry });

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    connectionTimeout: options.connectionTimeoutMs ?? 0,
    keepAliveTimeout: 5000,
    requestTimeout: options.requestTimeoutMs ?? 0,
    return503OnClosing: true,
    // what Node's HTTP parser refuses (headers over 16 KiB, a malformed request line) answers in
    // the API's error shape too; the path is unknown here, so always the DeepSeek one
    clientErrorHandler: (error, socket) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify(errorBody(status, status === 431 ? 'the request headers are larger than the limit of 16 KiB' : `malformed HTTP request (${code ?? error.message})`));
      const reason = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
      socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    },
    // the router's own refusals (a URL that does not decode, a path parameter over 100 characters)
    // answer in the API's error shape, not Fastify's
    frameworkErrors: (error, request, reply) => {
      const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
      const path = request.url.split('?')[0]!;
      const message = status === 414 ? `a path segment of ${path.slice(0, 80)}... is longer than 100 characters` : `the URL path ${JSON.stringify(path.slice(0, 200))} does not decode`;
      return (reply as FastifyReply).status(status).send(errorBodyFor(request.url, errorBody(status, message)));
    },
  });
  app.server.headersTimeout = options.headersTimeoutMs ?? 30_000;
  const connections = limitConnections(app.server, options.connections);
  const metrics = new Metrics(scheduler, { processMetrics: options.processMetrics ?? false, cacheBudget: registry.cacheBudget, connections });
  const ctx = new ServerContext(settings, registry, scheduler, store, new RateLimiter(options.limits), metrics);

  // JSON bodies: invalid UTF-8 and malformed JSON are 400 with a clear message. A body sent with
  // another content type (or none) is read as JSON too when the request carries no Origin header:
  // that is curl -d, as Ollama's docs use it. A browser always sends Origin with a cross-site POST,
  // and such a "simple" request (text/plain, form) needs no CORS preflight, so from a page it is
  // refused: only application/json, which the page cannot send here without a preflight we never grant.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJsonBody);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if (request.headers.origin !== undefined) {
      return done(new ApiError(415, `send the body as application/json (a request with an Origin header and content type '${request.headers['content-type'] ?? 'none'}' is refused)`), undefined);
    }
    parseJsonBody(request, body, done);
  });
  function parseJsonBody(_request: unknown, body: string | Buffer, done: (error: Error | null, value?: unknown) => void): void {
    const buffer = body as Buffer;
    if (buffer.length === 0) return done(null, undefined);
    let text: string;
    try {
      text = utf8.decode(buffer);
    } catch {
      return done(new ApiError(400, 'the request body is not valid UTF-8'), undefined);
    }
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  }

  app.addHook('onRequest', async (request, reply) => {
    reply.raw.on('close', () => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.raw.writableFinished ? reply.raw.statusCode : 499;
      metrics.requests.inc({ route, status: String(status) });
    });
    if (settings.loopbackHostsOnly && !isLoopbackHost(request.headers.host)) {
      throw new ApiError(403, `this server answers only requests to a loopback host name (got Host: ${request.headers.host ?? 'none'}); start it with --auth to serve other names`, null, 'forbidden_host');
    }
  });

  app.setErrorHandler((error: unknown, request, reply) => {
    const send = (status: number, body: ErrorBody) => reply.status(status).send(errorBodyFor(request.url, body));
    if (error instanceof ApiError) {
      if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
      if (error.status >= 500 && error.status !== 503) reply.header('x-should-retry', 'false');
      return send(error.status, error.body());
    }
    const e = error as { statusCode?: number; code?: string; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(413, errorBody(413, `the request body is larger than the limit of ${options.bodyLimit ?? 1024 * 1024} bytes`));
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(415, errorBody(415, 'send the body as application/json'));
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return send(e.statusCode, errorBody(e.statusCode, e.message ?? 'bad request'));
    // an Error from the engine (bad option values reach it only through checks we missed): 422; anything else 500
    const message = e.message ?? String(error);
    if (/must be|must not|outside|not a token/.test(message)) return send(422, errorBody(422, message));
    reply.header('x-should-retry', 'false');
    return send(500, errorBody(500, `internal error: ${message}`));
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(errorBodyFor(request.url, errorBody(404, `no route ${request.method} ${request.url.split('?')[0]}`))));

  app.get('/health', async () => ({
    status: store.pausedMessage() === undefined ? 'ok' : 'paused',
    models: registry.ids(),
    loaded: registry.loadedModels().map((m) => m.id),
    active: scheduler.activeCount,
    queued: scheduler.queueDepth,
  }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  registerOpenAiRoutes(app, ctx);
  registerOllamaRoutes(app, ctx);
  registerResponsesRoutes(app, ctx);
  registerTokenizeRoutes(app, ctx);
  registerEmbeddingRoutes(app, ctx);
  registerAccountRoutes(app, ctx);
  registerUiRoutes(app, ctx);
  registerStatic(app, options.webDir ?? new URL('../../web', import.meta.url).pathname);

  return {
    app,
    ctx,
    connections,
    async listen({ host, port }) {
      return app.listen({ host, port });
    },
    async close() {
      scheduler.shutdown();
      await app.close();
      store.close();
    },
  };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/** GET / (index.html) and /assets/* from the UI build, when it exists. */
function registerStatic(app: FastifyInstance, dir: string): void {
  const file = (path: string): Buffer | undefined => {
    const full = normalize(join(dir, path));
    if (!full.startsWith(normalize(dir) + sep) || !existsSync(full) || !statSync(full).isFile()) return undefined;
    return readFileSync(full);
  };
  app.get('/', async (_req, reply) => {
    const index = file('index.html');
    if (!index) return reply.status(404).send(errorBody(404, 'the web UI is not built (npm run build:web)'));
    return reply.header('content-type', MIME['.html']).header('x-frame-options', 'DENY').send(index);
  });
  app.get('/assets/*', async (request: FastifyRequest<{ Params: { '*': string } }>, reply) => {
    const name = request.params['*'];
    const data = file(join('assets', name));
    if (!data) return reply.status(404).send(errorBody(404, `no asset ${name}`));
    return reply.header('content-type', MIME[extname(name)] ?? 'application/octet-stream').header('cache-control', 'public, max-age=3600').send(data);
  });
}
