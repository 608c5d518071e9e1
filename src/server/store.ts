/**
 * The server's SQLite database (better-sqlite3): users, login sessions, API keys, invite codes,
 * settings (registration policy, pause), conversations and messages.
 *
 * WAL journal with synchronous=FULL: a write is on disk when its call returns, so a killed server
 * loses nothing it acknowledged. Schema changes are versioned migrations recorded in the
 * `migrations` table, each applied in its own transaction. Every write runs in a transaction.
 */
import Database, { type Statement } from 'better-sqlite3';

export type RegistrationPolicy = 'open' | 'invite' | 'closed';

export interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  is_admin: number;
  created_at: number;
}

export interface ApiKeyRow {
  id: number;
  user_id: number | null;
  name: string;
  prefix: string;
  hash: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface SessionRow {
  id_hash: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

/** What a registration did: the new user, or why it was refused. */
export type RegistrationResult = { user: UserRow; refused?: undefined } | { user?: undefined; refused: 'invite_invalid' | 'username_taken' };

/** Thrown inside the registration transaction to roll the new user back. */
class InviteRaceLost extends Error {}

export interface ConversationRow {
  id: string;
  user_id: number;
  title: string;
  model: string;
  created_at: number;
  updated_at: number;
}

export interface MessageRow {
  id: string;
  conversation_id: string;
  role: 'user' | 'assistant';
  content: string;
  reasoning_content: string;
  reasoning_ms: number | null;
  finish_reason: string | null;
  created_at: number;
}

/** Versioned schema migrations: index + 1 = version. Never edit a released one; append. */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     username TEXT NOT NULL UNIQUE,
     password_hash TEXT NOT NULL,
     is_admin INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL);
   CREATE TABLE sessions (
     id_hash TEXT PRIMARY KEY,
     user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     csrf_token TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL);
   CREATE TABLE api_keys (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER,
     last_used_at INTEGER);
   CREATE TABLE invites (
     code_hash TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     used_by INTEGER REFERENCES users(id),
     used_at INTEGER);
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  `CREATE TABLE conversations (
     id TEXT PRIMARY KEY,
     user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     title TEXT NOT NULL,
     model TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL);
   CREATE INDEX conversations_by_user ON conversations(user_id, updated_at);
   CREATE TABLE messages (
     id TEXT PRIMARY KEY,
     conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
     content TEXT NOT NULL,
     reasoning_content TEXT NOT NULL DEFAULT '',
     reasoning_ms INTEGER,
     finish_reason TEXT,
     created_at INTEGER NOT NULL);
   CREATE INDEX messages_by_conversation ON messages(conversation_id, seq);`,
];

export class Store {
  readonly db: Database;
  /** Prepared statements by SQL text: preparing compiles the SQL, tens of µs each time (every request reads the pause setting). */
  private readonly statements = new Map<string, Statement<unknown>>();

  constructor(readonly path: string) {
    try {
      this.db = new Database(path);
    } catch (error) {
      throw new Error(`cannot open the database ${path}: ${(error as Error).message}`);
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (error) {
      // a file that is not a SQLite database opens fine and fails only here ("file is not a database")
      this.db.close();
      throw Object.assign(new Error(`${path}: ${(error as Error).message}`), { code: (error as { code?: unknown }).code });
    }
  }

  /** Applies the migrations the file does not have yet; returns the schema version. */
  migrate(): number {
    this.db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const current = (this.statement<{ v: number | null }>('SELECT MAX(version) AS v FROM migrations').get()?.v ?? 0) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(`${this.path}: the database has schema version ${current}, newer than this program's ${MIGRATIONS.length}`);
    }
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v - 1]!);
        this.statement('INSERT INTO migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now());
      })();
    }
    return MIGRATIONS.length;
  }

  /** The prepared statement of `sql`, compiled on first use. */
  private statement<Row = unknown>(sql: string): Statement<Row> {
    let prepared = this.statements.get(sql);
    if (!prepared) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared as Statement<Row>;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // settings --------------------------------------------------------------------------------

  setting(key: string): string | undefined {
    return this.statement<{ value: string }>('SELECT value FROM settings WHERE key = ?').get(key)?.value;
  }

  setSetting(key: string, value: string): void {
    this.tx(() => this.statement('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value));
  }

  registrationPolicy(): RegistrationPolicy {
    const value = this.setting('registration');
    return value === 'open' || value === 'invite' ? value : 'closed';
  }

  /** The pause message, or undefined when the service runs. */
  pausedMessage(): string | undefined {
    return this.setting('paused') || undefined;
  }

  // users -----------------------------------------------------------------------------------

  createUser(username: string, passwordHash: string, isAdmin = false): UserRow {
    return this.tx(() => {
      const info = this.statement('INSERT INTO users (username, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?)').run(username, passwordHash, isAdmin ? 1 : 0, Date.now());
      return this.userById(Number(info.lastInsertRowid))!;
    });
  }

  /**
   * The user named `username`, ignoring ASCII case: 'Ann' and 'ann' are one account, so nobody can
   * register a look-alike of an existing name. An exact match wins (databases from before this
   * rule may hold names that differ only in case).
   */
  userByName(username: string): UserRow | undefined {
    return this.statement<UserRow>('SELECT * FROM users WHERE username = ? COLLATE NOCASE ORDER BY username = ? DESC, id LIMIT 1').get(username, username);
  }

  userById(id: number): UserRow | undefined {
    return this.statement<UserRow>('SELECT * FROM users WHERE id = ?').get(id);
  }

  users(): UserRow[] {
    return this.statement<UserRow>('SELECT * FROM users ORDER BY id').all();
  }

  // invites ---------------------------------------------------------------------------------

  createInvite(codeHash: string): void {
    this.tx(() => this.statement('INSERT INTO invites (code_hash, created_at) VALUES (?, ?)').run(codeHash, Date.now()));
  }

  /**
   * Registers a user, consuming the invite when one is needed. The invite is checked before the
   * name, so that without a valid code nobody learns which names exist. One synchronous
   * transaction, and the invite is consumed only if still unused: two registrations racing with
   * one code (even from two processes on the file) create one user.
   */
  createUserWithInvite(username: string, passwordHash: string, inviteHash: string | undefined): RegistrationResult {
    try {
      return this.tx((): RegistrationResult => {
        if (inviteHash !== undefined && !this.inviteUnused(inviteHash)) return { refused: 'invite_invalid' };
        if (this.userByName(username)) return { refused: 'username_taken' };
        const user = this.createUser(username, passwordHash);
        if (inviteHash !== undefined && !this.consumeInvite(inviteHash, user.id)) throw new InviteRaceLost();
        return { user };
      });
    } catch (error) {
      if (error instanceof InviteRaceLost) return { refused: 'invite_invalid' };
      // another process (frugal admin) inserted the same name between the check and the insert
      if (/UNIQUE constraint failed: users\.username/.test((error as Error).message)) return { refused: 'username_taken' };
      throw error;
    }
  }

  /** An invite is spent once used_at is set (used_by is cleared when its user is deleted). */
  private inviteUnused(inviteHash: string): boolean {
    const invite = this.statement<{ used_at: number | null }>('SELECT used_at FROM invites WHERE code_hash = ?').get(inviteHash);
    return invite !== undefined && invite.used_at === null;
  }

  private consumeInvite(inviteHash: string, userId: number): boolean {
    return this.statement('UPDATE invites SET used_by = ?, used_at = ? WHERE code_hash = ? AND used_at IS NULL').run(userId, Date.now(), inviteHash).changes === 1;
  }

  /**
   * Deletes a user and everything that lets them in (sessions, API keys) or is theirs
   * (conversations and messages), explicitly rather than through ON DELETE CASCADE, which SQLite
   * applies only where foreign_keys is on. Their invite stays spent. Returns whether the user existed.
   */
  deleteUser(userId: number): boolean {
    return this.tx(() => {
      this.statement('UPDATE invites SET used_by = NULL WHERE used_by = ?').run(userId);
      this.statement('DELETE FROM sessions WHERE user_id = ?').run(userId);
      this.statement('DELETE FROM api_keys WHERE user_id = ?').run(userId);
      this.statement('DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id = ?)').run(userId);
      this.statement('DELETE FROM conversations WHERE user_id = ?').run(userId);
      return this.statement('DELETE FROM users WHERE id = ?').run(userId).changes > 0;
    });
  }

  // sessions --------------------------------------------------------------------------------

  createSession(idHash: string, userId: number, csrf: string, ttlMs: number): void {
    const now = Date.now();
    this.tx(() => this.statement('INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(idHash, userId, csrf, now, now + ttlMs));
  }

  session(idHash: string): SessionRow | undefined {
    // joined with users: a session whose user was deleted (by hand, with foreign keys off) ends too
    const row = this.statement<SessionRow>('SELECT s.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?').get(idHash);
    return row && row.expires_at > Date.now() ? row : undefined;
  }

  deleteSession(idHash: string): void {
    this.tx(() => this.statement('DELETE FROM sessions WHERE id_hash = ? OR expires_at < ?').run(idHash, Date.now()));
  }

  // API keys --------------------------------------------------------------------------------

  createApiKey(userId: number | null, name: string, prefix: string, hash: string): ApiKeyRow {
    return this.tx(() => {
      const info = this.statement('INSERT INTO api_keys (user_id, name, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?)').run(userId, name, prefix, hash, Date.now());
      return this.statement<ApiKeyRow>('SELECT * FROM api_keys WHERE id = ?').get(Number(info.lastInsertRowid))!;
    });
  }

  apiKeyByHash(hash: string): ApiKeyRow | undefined {
    return this.statement<ApiKeyRow>('SELECT * FROM api_keys WHERE hash = ?').get(hash);
  }

  apiKeys(): ApiKeyRow[] {
    return this.statement<ApiKeyRow>('SELECT * FROM api_keys ORDER BY id').all();
  }

  /** Revokes by id or prefix; returns how many keys were revoked. */
  revokeApiKey(idOrPrefix: string): number {
    return this.tx(() => {
      const asId = /^\d+$/.test(idOrPrefix) ? Number(idOrPrefix) : -1;
      return this.statement('UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR prefix = ?)').run(Date.now(), asId, idOrPrefix).changes;
    });
  }

  // conversations ---------------------------------------------------------------------------

  createConversation(id: string, userId: number, title: string, model: string): ConversationRow {
    const now = Date.now();
    this.tx(() => this.statement('INSERT INTO conversations (id, user_id, title, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, userId, title, model, now, now));
    return this.conversation(id, userId)!;
  }

  conversation(id: string, userId: number): ConversationRow | undefined {
    return this.statement<ConversationRow>('SELECT * FROM conversations WHERE id = ? AND user_id = ?').get(id, userId);
  }

  conversations(userId: number): ConversationRow[] {
    return this.statement<ConversationRow>('SELECT * FROM conversations WHERE user_id = ? ORDER BY updated_at DESC, created_at DESC').all(userId);
  }

  deleteConversation(id: string, userId: number): boolean {
    return this.tx(() => this.statement('DELETE FROM conversations WHERE id = ? AND user_id = ?').run(id, userId).changes > 0);
  }

  messages(conversationId: string): MessageRow[] {
    return this.statement<MessageRow>('SELECT id, conversation_id, role, content, reasoning_content, reasoning_ms, finish_reason, created_at FROM messages WHERE conversation_id = ? ORDER BY seq').all(conversationId);
  }

  /** Appends a message (and touches the conversation, titling it from the first user message). */
  addMessage(message: Omit<MessageRow, 'created_at'>): MessageRow {
    const now = Date.now();
    return this.tx(() => {
      const seq = (this.statement<{ n: number | null }>('SELECT MAX(seq) AS n FROM messages WHERE conversation_id = ?').get(message.conversation_id)?.n ?? 0) + 1;
      this.db
        .prepare('INSERT INTO messages (id, conversation_id, seq, role, content, reasoning_content, reasoning_ms, finish_reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(message.id, message.conversation_id, seq, message.role, message.content, message.reasoning_content, message.reasoning_ms, message.finish_reason, now);
      this.statement('UPDATE conversations SET updated_at = ? WHERE id = ?').run(now, message.conversation_id);
      if (seq === 1 && message.role === 'user') {
        this.statement("UPDATE conversations SET title = ? WHERE id = ? AND title = ''").run(message.content.slice(0, 60).trim(), message.conversation_id);
      }
      return { ...message, created_at: now };
    });
  }
}
