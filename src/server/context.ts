/**
 * What every route shares: the models, the scheduler, the store, the limits, the metrics, and the
 * request guard (pause check, authentication, CSRF).
 *
 * Authentication (see `frugal serve --help`): with auth required (`--auth`, and always on a
 * non-loopback address) every API and UI request needs an API key (`Authorization: Bearer`) or a
 * login session cookie. Without it (the loopback default) keys are optional: an unknown key is
 * treated as no key, a revoked key is still refused, and the UI works as a built-in local user.
 */
import type { FastifyRequest } from 'fastify';
import type { SamplingOptions } from '../generate/sampling.js';
import { parseCookies, safeEqual, sha256 } from './auth.js';
import { ApiError } from './errors.js';
import { RateLimiter } from './limits.js';
import type { Metrics } from './metrics.js';
import type { ModelRegistry } from './models.js';
import type { Scheduler } from './scheduler.js';
import type { Store, UserRow } from './store.js';

export const SESSION_COOKIE = 'frugal_session';
export const LOCAL_USER = '@local';

export interface Principal {
  kind: 'key' | 'session' | 'anonymous';
  userId?: number;
  keyId?: number;
  csrfToken?: string;
  sessionHash?: string;
  /** The client the rate limits count against. */
  client: string;
}

export interface ServerSettings {
  authRequired: boolean;
  /** Most output tokens one request may ask for. */
  maxTokensCap: number;
  /** Output tokens when a request sets none (also bounded by the context). */
  defaultMaxTokens: number;
  /** Sampling used where a request sets nothing (e.g. temperature; clients like the AI SDK drop it for reasoners). */
  defaultSampling?: SamplingOptions | undefined;
  /** Reasoning budget applied when a request sets none (undefined: unlimited). */
  defaultReasoningBudget?: number | undefined;
  sessionTtlMs: number;
  /** Interval of SSE `: keep-alive` comments while a request waits. */
  keepAliveMs: number;
  /** Cookies get the Secure attribute (serving behind https). */
  secureCookies: boolean;
  /**
   * Answer only requests whose Host is a loopback name (localhost, 127.x, [::1]): protects a
   * loopback server without auth from DNS-rebinding pages. Set by `frugal serve` on loopback.
   */
  loopbackHostsOnly: boolean;
  /** Login and registration attempts per minute per IP address (password guessing). */
  loginAttemptsPerMinute: number;
}

export class ServerContext {
  /** Counts login/registration attempts per IP. */
  readonly authLimiter: RateLimiter;

  constructor(
    readonly settings: ServerSettings,
    readonly registry: ModelRegistry,
    readonly scheduler: Scheduler,
    readonly store: Store,
    readonly limiter: RateLimiter,
    readonly metrics: Metrics,
  ) {
    this.authLimiter = new RateLimiter({ requestsPerMinute: settings.loginAttemptsPerMinute });
  }

  /** 503 when an administrator paused the service. */
  checkPaused(): void {
    const paused = this.store.pausedMessage();
    if (paused !== undefined) {
      throw new ApiError(503, `the service is paused by its administrator${paused === '1' ? '' : `: ${paused}`}`, null, 'service_paused', 60);
    }
  }

  /**
   * Who is asking. Throws 401 for a missing/invalid credential when auth is required (and for a
   * revoked key always), 403 for a cookie-authenticated state change without the CSRF token.
   */
  principal(request: FastifyRequest, options: { requireAuth?: boolean } = {}): Principal {
    const required = options.requireAuth ?? this.settings.authRequired;
    const header = request.headers.authorization;
    if (typeof header === 'string' && header.trim() !== '') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const key = m ? this.store.apiKeyByHash(sha256(m[1]!)) : undefined;
      if (key && key.revoked_at !== null) throw new ApiError(401, 'this API key was revoked', null, 'invalid_api_key');
      // a key outlives its owner only if the user row was deleted by hand with foreign keys off:
      // refused like a revoked key, never taken as no key
      if (key && key.user_id !== null && !this.store.userById(key.user_id)) throw new ApiError(401, "this API key's user was deleted", null, 'invalid_api_key');
      if (key) {
        const p: Principal = { kind: 'key', keyId: key.id, client: `key:${key.id}` };
        if (key.user_id !== null) p.userId = key.user_id;
        return p;
      }
      if (required) throw new ApiError(401, 'Authentication Fails: the API key is invalid', null, 'invalid_api_key');
    }
    const token = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
    if (token) {
      const sessionHash = sha256(token);
      const session = this.store.session(sessionHash);
      if (session) {
        if (!['GET', 'HEAD', 'OPTIONS'].includes(request.method)) {
          const sent = request.headers['x-csrf-token'];
          if (typeof sent !== 'string' || !safeEqual(sent, session.csrf_token)) {
            throw new ApiError(403, 'missing or wrong x-csrf-token header (required with session cookies)', null, 'csrf_failed');
          }
        }
        return { kind: 'session', userId: session.user_id, csrfToken: session.csrf_token, sessionHash, client: `user:${session.user_id}` };
      }
    }
    if (required) throw new ApiError(401, 'Authentication Fails: send Authorization: Bearer <API key> (or log in)', null, 'invalid_api_key');
    return { kind: 'anonymous', client: `ip:${request.ip}` };
  }

  /** The user a UI request acts for (the local user when auth is off and nobody is logged in). */
  uiUser(principal: Principal): UserRow {
    if (principal.userId !== undefined) {
      const user = this.store.userById(principal.userId);
      if (user) return user;
    }
    if (this.settings.authRequired) throw new ApiError(401, 'log in first', null, 'invalid_api_key');
    return this.store.userByName(LOCAL_USER) ?? this.store.createUser(LOCAL_USER, '!');
  }
}
