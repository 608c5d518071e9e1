/**
 * Accounts for the web UI (contract in /tmp/server-contract.md): register (policy open / invite /
 * closed, set with `frugal admin`), login, logout, me. Sessions are random tokens in an HttpOnly
 * SameSite=Strict cookie (stored hashed); each carries a CSRF token that cookie-authenticated state
 * changes must echo in `x-csrf-token`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkPassword, checkUsername, hashPassword, randomToken, sha256, verifyPassword } from '../auth.js';
import { SESSION_COOKIE, type ServerContext } from '../context.js';
import { ApiError } from '../errors.js';
import type { UserRow } from '../store.js';
import { bodyObject, optString } from '../validate.js';

/** A fixed hash to verify against for unknown users (same time as a wrong password). */
let dummyHash: Promise<string> | undefined;

function publicUser(user: UserRow): { id: number; username: string } {
  return { id: user.id, username: user.username };
}

/**
 * The session cookie's attributes. Secure when configured, or when this request itself came over
 * TLS: Fastify's request.protocol reads X-Forwarded-Proto only with trustProxy, so a client cannot
 * claim https by sending the header.
 */
function sessionCookie(ctx: ServerContext, request: FastifyRequest, value: string, maxAgeSeconds: number): string {
  const attributes = [`${SESSION_COOKIE}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (ctx.settings.secureCookies || request.protocol === 'https') attributes.push('Secure');
  return attributes.join('; ');
}

function startSession(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, user: UserRow): string {
  const token = randomToken();
  const csrf = randomToken(24);
  ctx.store.createSession(sha256(token), user.id, csrf, ctx.settings.sessionTtlMs);
  reply.header('set-cookie', sessionCookie(ctx, request, token, Math.floor(ctx.settings.sessionTtlMs / 1000)));
  return csrf;
}

async function register(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  ctx.authLimiter.admit(`ip:${request.ip}`, 0)();
  const b = bodyObject(request.body);
  const policy = ctx.store.registrationPolicy();
  if (policy === 'closed') throw new ApiError(403, 'registration is closed on this server (ask an administrator)', null, 'registration_closed');
  const usernameProblem = checkUsername(b.username);
  if (usernameProblem) throw new ApiError(422, usernameProblem, 'username');
  const passwordProblem = checkPassword(b.password);
  if (passwordProblem) throw new ApiError(422, passwordProblem, 'password');
  const invite = optString(b, 'invite_code');
  if (policy === 'invite' && !invite) throw new ApiError(403, 'registration needs an invite code', 'invite_code', 'invite_required');
  const username = b.username as string;
  // whether the name is taken is decided in the store's transaction, after the invite: checking it
  // here would tell anyone without a valid code which names exist
  const hash = await hashPassword(b.password as string);
  const result = ctx.store.createUserWithInvite(username, hash, policy === 'invite' ? sha256(invite!) : undefined);
  if (!result.user) {
    if (result.refused === 'invite_invalid') throw new ApiError(403, 'the invite code is invalid or already used', 'invite_code', 'invite_invalid');
    throw new ApiError(409, `the username '${username}' is taken`, 'username', 'username_taken');
  }
  const csrf = startSession(ctx, request, reply, result.user);
  return reply.status(201).send({ user: publicUser(result.user), csrf_token: csrf });
}

/**
 * Password guessing is limited per IP address and per account name: the per-name bucket stops a
 * guesser who spreads attempts over many addresses. Names are bucketed case-insensitively (they
 * name one account), and only well-formed ones: a 1 MB "name" must not become a limiter key.
 */
function admitLoginAttempt(ctx: ServerContext, request: FastifyRequest, username: string): void {
  ctx.authLimiter.admit(`ip:${request.ip}`, 0)();
  if (checkUsername(username) === undefined) ctx.authLimiter.admit(`user:${username.toLowerCase()}`, 0)();
}

async function login(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const b = bodyObject(request.body);
  const username = optString(b, 'username') ?? '';
  const password = optString(b, 'password') ?? '';
  admitLoginAttempt(ctx, request, username);
  // no password longer than registration allows can match: answer without hashing it
  const plausible = checkPassword(password) === undefined;
  const user = plausible ? ctx.store.userByName(username) : undefined;
  dummyHash ??= hashPassword('not a password of anyone');
  const ok = plausible && (await verifyPassword(password, user?.password_hash ?? (await dummyHash)));
  if (!user || !ok) throw new ApiError(401, 'wrong username or password', null, 'invalid_credentials');
  const csrf = startSession(ctx, request, reply, user);
  return reply.send({ user: publicUser(user), csrf_token: csrf });
}

export function registerAccountRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // hashed at start, so that the first login of an unknown name does not take two hashes' time
  dummyHash ??= hashPassword('not a password of anyone');
  app.post('/auth/register', (req, reply) => register(ctx, req, reply));
  app.post('/auth/login', (req, reply) => login(ctx, req, reply));
  app.post('/auth/logout', async (req, reply) => {
    const p = ctx.principal(req, { requireAuth: false });
    if (p.sessionHash) ctx.store.deleteSession(p.sessionHash);
    reply.header('set-cookie', sessionCookie(ctx, req, '', 0));
    return reply.status(204).send();
  });
  app.get('/auth/me', async (req, reply) => {
    const p = ctx.principal(req, { requireAuth: false });
    const user = p.kind === 'session' && p.userId !== undefined ? ctx.store.userById(p.userId) : undefined;
    if (!user) throw new ApiError(401, 'not logged in', null, 'not_logged_in');
    return reply.send({ user: publicUser(user), csrf_token: p.csrfToken });
  });
}
