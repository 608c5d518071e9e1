/**
 * The browser's client for the server's /auth and /ui endpoints (see the server contract). Every
 * state-changing request carries the CSRF token; errors become ApiError with the server's message.
 */
import { SseDecoder, parseChatEvent, type ChatStreamEvent } from './sse.js';

export interface User {
  id: string | number;
  username: string;
}

export interface ModelInfo {
  id: string;
  name: string;
  default: boolean;
}

export interface UiConfig {
  models: ModelInfo[];
  auth_required: boolean;
  registration: 'open' | 'invite' | 'closed';
}

export interface Conversation {
  id: string | number;
  title: string | null;
  model: string | null;
  created_at: string | number;
  updated_at: string | number;
}

export interface StoredMessage {
  id: string | number;
  role: 'user' | 'assistant';
  content: string;
  reasoning_content: string | null;
  reasoning_ms: number | null;
  finish_reason: string | null;
  created_at: string | number;
}

export interface SendOptions {
  content: string;
  model?: string;
  temperature?: number;
  reasoning_budget?: number;
  max_tokens?: number;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message);
}

export class Api {
  csrfToken: string | undefined;

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.csrfToken) headers['x-csrf-token'] = this.csrfToken;
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
    if (!response.ok) throw await errorFrom(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  config(): Promise<UiConfig> {
    return this.request('GET', '/ui/config');
  }

  /** The signed-in user, or undefined when there is no session (401). */
  async me(): Promise<User | undefined> {
    try {
      const result = await this.request<{ user: User; csrf_token: string }>('GET', '/auth/me');
      this.csrfToken = result.csrf_token;
      return result.user;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return undefined;
      throw e;
    }
  }

  async login(username: string, password: string): Promise<User> {
    const result = await this.request<{ user: User; csrf_token: string }>('POST', '/auth/login', { username, password });
    this.csrfToken = result.csrf_token;
    return result.user;
  }

  async register(username: string, password: string, inviteCode?: string): Promise<User> {
    const body = inviteCode ? { username, password, invite_code: inviteCode } : { username, password };
    const result = await this.request<{ user: User; csrf_token: string }>('POST', '/auth/register', body);
    this.csrfToken = result.csrf_token;
    return result.user;
  }

  async logout(): Promise<void> {
    await this.request('POST', '/auth/logout');
    this.csrfToken = undefined;
  }

  async conversations(): Promise<Conversation[]> {
    return (await this.request<{ conversations: Conversation[] }>('GET', '/ui/conversations')).conversations;
  }

  async createConversation(title: string, model: string | undefined): Promise<Conversation> {
    return (await this.request<{ conversation: Conversation }>('POST', '/ui/conversations', model ? { title, model } : { title })).conversation;
  }

  conversation(id: string | number): Promise<{ conversation: Conversation; messages: StoredMessage[] }> {
    return this.request('GET', `/ui/conversations/${encodeURIComponent(String(id))}`);
  }

  deleteConversation(id: string | number): Promise<void> {
    return this.request('DELETE', `/ui/conversations/${encodeURIComponent(String(id))}`);
  }

  /**
   * Sends a message and reads the SSE reply, calling onEvent for each event. Resolves when the
   * stream ends; rejects with an AbortError when `signal` aborts (the server then cancels).
   */
  async sendMessage(id: string | number, options: SendOptions, signal: AbortSignal, onEvent: (event: ChatStreamEvent) => void): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
    if (this.csrfToken) headers['x-csrf-token'] = this.csrfToken;
    const response = await fetch(`/ui/conversations/${encodeURIComponent(String(id))}/messages`, {
      method: 'POST', headers, body: JSON.stringify(options), signal, credentials: 'same-origin',
    });
    if (!response.ok) throw await errorFrom(response);
    if (!response.body) throw new Error('the server sent no response body');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const decoder = new SseDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const sse of decoder.push(value)) {
        const event = parseChatEvent(sse.data);
        if (event) onEvent(event);
      }
    }
  }
}
