/**
 * `frugal admin`: manage a server's database (the same SQLite file `frugal serve --db` uses; a
 * running server sees the changes at once): users, API keys, registration policy, invites, pause.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { checkPassword, checkUsername, hashPassword, newApiKey, randomToken, sha256 } from '../server/auth.js';
import { Store } from '../server/store.js';
import { withDatabaseFlag } from './file-checks.js';

export const summary = "manage the server's users, API keys, registration and pause state";

const usage = `usage: frugal admin [--db PATH] <action> [arguments]

  create-user NAME [--admin]   password from $FRUGAL_PASSWORD or the first line of stdin
  list-users
  delete-user NAME             deletes the user, their login sessions, API keys and conversations
                               (a running server refuses their session and keys at once)
  create-key [--user NAME] [--name LABEL]
                               prints the new key once (only its hash is stored)
  list-keys                    id, prefix, owner, state
  revoke-key ID|PREFIX
  registration open|invite|closed
  create-invite                prints a one-time invite code
  pause [MESSAGE]              the API answers 503 with the message until resume
  resume
  status

  --db PATH                    database file (default ./frugal.db)`;

async function readPassword(): Promise<string> {
  if (process.env.FRUGAL_PASSWORD !== undefined) return process.env.FRUGAL_PASSWORD;
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  throw new Error('no password given (set FRUGAL_PASSWORD or write it on stdin)');
}

/** The database at `path`; its errors name the --db flag (withDatabaseFlag). */
function openStore(path: string): Store {
  try {
    return new Store(path);
  } catch (error) {
    throw withDatabaseFlag(error, path);
  }
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      db: { type: 'string', default: 'frugal.db' },
      admin: { type: 'boolean' },
      user: { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  const [action, ...rest] = positionals;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!action) {
    console.error(`frugal admin: no action given\n${usage}`);
    return 2;
  }
  // arguments an action does not take are an error, not ignored (`create-key alice` made a key without owner)
  const takes: Record<string, number> = {
    'create-user': 1, 'list-users': 0, 'delete-user': 1, 'create-key': 0, 'list-keys': 0, 'revoke-key': 1, registration: 1, 'create-invite': 0, resume: 0, status: 0,
  };
  const most = takes[action];
  if (most !== undefined && rest.length > most) {
    const hint = action === 'create-key' ? ' (give the owner as --user NAME)' : '';
    throw new Error(`${action} takes ${most === 0 ? 'no argument' : `${most} argument`}, got '${rest.join(' ')}'${hint}`);
  }
  const store = openStore(values.db!);
  try {
    switch (action) {
      case 'create-user': {
        const name = rest[0];
        const problem = checkUsername(name);
        if (problem) throw new Error(problem);
        if (store.userByName(name!)) throw new Error(`user '${name}' exists`);
        const password = await readPassword();
        const weak = checkPassword(password);
        if (weak) throw new Error(weak);
        const user = store.createUser(name!, await hashPassword(password), values.admin ?? false);
        console.log(`created user ${user.username} (id ${user.id})`);
        return 0;
      }
      case 'list-users':
        for (const u of store.users()) console.log(`${u.id}\t${u.username}${u.is_admin ? '\tadmin' : ''}`);
        return 0;
      case 'delete-user': {
        const user = rest[0] === undefined ? undefined : store.userByName(rest[0]);
        if (!user) throw new Error(rest[0] === undefined ? 'delete-user needs a user name' : `no user '${rest[0]}'`);
        store.deleteUser(user.id);
        console.log(`deleted user ${user.username} (id ${user.id}) with their sessions, API keys and conversations`);
        return 0;
      }
      case 'create-key': {
        let userId: number | null = null;
        if (values.user !== undefined) {
          const user = store.userByName(values.user);
          if (!user) throw new Error(`no user '${values.user}'`);
          userId = user.id;
        }
        const key = newApiKey();
        const row = store.createApiKey(userId, values.name ?? '', key.prefix, key.hash);
        console.log(key.key);
        console.error(`created key ${row.id} (${row.prefix}...); it is shown only this once`);
        return 0;
      }
      case 'list-keys':
        for (const k of store.apiKeys()) {
          const owner = k.user_id === null ? '-' : store.userById(k.user_id)?.username ?? k.user_id;
          console.log(`${k.id}\t${k.prefix}...\t${owner}\t${k.name}\t${k.revoked_at === null ? 'active' : 'revoked'}`);
        }
        return 0;
      case 'revoke-key': {
        if (!rest[0]) throw new Error('revoke-key needs a key id or prefix');
        const n = store.revokeApiKey(rest[0]);
        if (n === 0) throw new Error(`no active key with id or prefix '${rest[0]}'`);
        console.log(`revoked ${n} key${n === 1 ? '' : 's'}`);
        return 0;
      }
      case 'registration': {
        const policy = rest[0];
        if (policy !== 'open' && policy !== 'invite' && policy !== 'closed') throw new Error('registration takes open, invite or closed');
        store.setSetting('registration', policy);
        console.log(`registration: ${policy}`);
        return 0;
      }
      case 'create-invite': {
        const code = randomToken(12);
        store.createInvite(sha256(code));
        console.log(code);
        return 0;
      }
      case 'pause':
        store.setSetting('paused', rest.join(' ') || '1');
        console.log('paused: the API answers 503 until "frugal admin resume"');
        return 0;
      case 'resume':
        store.setSetting('paused', '');
        console.log('resumed');
        return 0;
      case 'status':
        console.log(`database ${values.db}: ${store.users().length} users, ${store.apiKeys().filter((k) => k.revoked_at === null).length} active keys, registration ${store.registrationPolicy()}, ${store.pausedMessage() === undefined ? 'running' : `paused (${store.pausedMessage()})`}`);
        return 0;
      default:
        throw new Error(`unknown action '${action}'\n${usage}`);
    }
  } finally {
    store.close();
  }
}
