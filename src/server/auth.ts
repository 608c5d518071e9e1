/**
 * Credentials: scrypt password hashes (per-user random salt, constant-time comparison), API keys
 * (random, shown once, stored as SHA-256 hashes with a short prefix kept for identification),
 * login session tokens (stored hashed; the cookie holds the token) and CSRF tokens.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, length, { N, r, p, maxmem: 256 * N * r }, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64 salt and hash). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keyLength);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Constant-time check of a password against a stored hash (false for malformed hashes). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (!(N > 1 && r > 0 && p > 0) || expected.length === 0) return false;
  const key = await scryptAsync(password, salt, N, r, p, expected.length);
  return timingSafeEqual(key, expected);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

export interface NewApiKey {
  /** The secret, shown to its owner once. */
  key: string;
  /** First characters, stored in clear to tell keys apart. */
  prefix: string;
  hash: string;
}

export function newApiKey(): NewApiKey {
  const key = `sk-frugal-${randomToken(24)}`;
  return { key, prefix: key.slice(0, 16), hash: sha256(key) };
}

/** Username rules: 1-64 letters, digits, `.`, `_`, `-`. */
export function checkUsername(name: unknown): string | undefined {
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) return 'username must be 1-64 letters, digits, ".", "_" or "-"';
  return undefined;
}

export function checkPassword(password: unknown): string | undefined {
  if (typeof password !== 'string' || password.length < 8 || password.length > 1024) return 'password must be a string of 8 to 1024 characters';
  return undefined;
}

/** Cookie header -> name/value map. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    try {
      out.set(name, decodeURIComponent(value));
    } catch {
      /* a malformed cookie is ignored */
    }
  }
  return out;
}

/** Constant-time string equality. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
