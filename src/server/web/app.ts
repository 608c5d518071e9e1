/**
 * The chat page: sign-in when the server requires it, the conversation list (kept on the server
 * per user), the current conversation, the composer with a stop button, model picker and settings.
 * The URL hash (#/c/<id>) names the open conversation, so a reload comes back to it.
 */
import { Api, ApiError, type Conversation, type UiConfig, type User } from './api.js';
import { clear, h } from './dom.js';
import { AssistantView, userMessageView } from './message-view.js';
import { loadSettings, numberField, saveSettings, type Settings } from './settings.js';

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`page is missing #${id}`);
  return node as T;
}

const api = new Api();
let config: UiConfig = { models: [], auth_required: false, registration: 'closed' };
let conversations: Conversation[] = [];
let currentId: string | undefined;
let streaming: AbortController | undefined;
let settings: Settings = loadSettings();
let registering = false;

const ui = {
  loading: byId('loading'),
  auth: byId('auth'),
  authForm: byId<HTMLFormElement>('auth-form'),
  authUsername: byId<HTMLInputElement>('auth-username'),
  authPassword: byId<HTMLInputElement>('auth-password'),
  authInviteRow: byId('auth-invite-row'),
  authInvite: byId<HTMLInputElement>('auth-invite'),
  authError: byId('auth-error'),
  authSubmit: byId<HTMLButtonElement>('auth-submit'),
  authSwitchRow: byId('auth-switch-row'),
  authSwitchText: byId('auth-switch-text'),
  authSwitch: byId<HTMLButtonElement>('auth-switch'),
  app: byId('app'),
  sidebar: byId('sidebar'),
  newChat: byId<HTMLButtonElement>('new-chat'),
  list: byId('conversation-list'),
  account: byId('account'),
  accountName: byId('account-name'),
  logout: byId<HTMLButtonElement>('logout'),
  toggleSidebar: byId<HTMLButtonElement>('toggle-sidebar'),
  title: byId('chat-title'),
  model: byId<HTMLSelectElement>('model'),
  temperature: byId<HTMLInputElement>('temperature'),
  reasoningBudget: byId<HTMLInputElement>('reasoning-budget'),
  maxTokens: byId<HTMLInputElement>('max-tokens'),
  banner: byId('banner'),
  messages: byId('messages'),
  composer: byId<HTMLFormElement>('composer'),
  prompt: byId<HTMLTextAreaElement>('prompt'),
  send: byId<HTMLButtonElement>('send'),
  stop: byId<HTMLButtonElement>('stop'),
};

function showError(error: unknown): void {
  if (error instanceof ApiError && error.status === 401 && config.auth_required) {
    showAuth();
    return;
  }
  ui.banner.textContent = error instanceof Error ? error.message : String(error);
  ui.banner.hidden = false;
}

function clearError(): void {
  ui.banner.hidden = true;
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function renderAuthMode(): void {
  ui.authSubmit.textContent = registering ? 'Create account' : 'Sign in';
  ui.authSwitchText.textContent = registering ? 'Have an account?' : 'No account?';
  ui.authSwitch.textContent = registering ? 'Sign in' : 'Create one';
  ui.authSwitchRow.hidden = config.registration === 'closed';
  ui.authInviteRow.hidden = !(registering && config.registration === 'invite');
  ui.authPassword.autocomplete = registering ? 'new-password' : 'current-password';
  ui.authError.hidden = true;
}

function showAuth(): void {
  abortStream();
  ui.loading.hidden = true;
  ui.app.hidden = true;
  ui.auth.hidden = false;
  renderAuthMode();
  ui.authUsername.focus();
}

ui.authSwitch.addEventListener('click', () => {
  registering = !registering;
  renderAuthMode();
});

ui.authForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const username = ui.authUsername.value.trim();
  const password = ui.authPassword.value;
  ui.authSubmit.disabled = true;
  const attempt = registering ? api.register(username, password, ui.authInvite.value.trim() || undefined) : api.login(username, password);
  attempt.then(
    (user) => {
      ui.authPassword.value = '';
      ui.auth.hidden = true;
      void showChat(user);
    },
    (error: unknown) => {
      ui.authError.textContent = error instanceof Error ? error.message : String(error);
      ui.authError.hidden = false;
    },
  ).finally(() => (ui.authSubmit.disabled = false));
});

ui.logout.addEventListener('click', () => {
  api.logout().then(() => {
    conversations = [];
    currentId = undefined;
    history.replaceState(null, '', location.pathname);
    showAuth();
  }, showError);
});

// ---------------------------------------------------------------------------------------------
// Conversations

function conversationTitle(c: Conversation): string {
  return c.title?.trim() || 'Untitled';
}

function renderList(): void {
  clear(ui.list);
  for (const c of conversations) {
    const id = String(c.id);
    const open = h('button', { class: 'open', attrs: { type: 'button', title: conversationTitle(c) } }, conversationTitle(c));
    open.addEventListener('click', () => {
      location.hash = `#/c/${encodeURIComponent(id)}`;
      document.body.classList.remove('sidebar-open');
    });
    const remove = h('button', { class: 'delete icon', attrs: { type: 'button', title: 'Delete conversation', 'aria-label': `Delete ${conversationTitle(c)}` } }, '×');
    remove.addEventListener('click', () => void deleteConversation(id));
    const item = h('li', { class: id === currentId ? 'current' : '' }, open, remove);
    item.dataset.id = id;
    ui.list.appendChild(item);
  }
}

async function refreshList(): Promise<void> {
  conversations = await api.conversations();
  renderList();
}

async function deleteConversation(id: string): Promise<void> {
  try {
    if (id === currentId) abortStream();
    await api.deleteConversation(id);
    conversations = conversations.filter((c) => String(c.id) !== id);
    if (id === currentId) location.hash = '';
    renderList();
  } catch (e) {
    showError(e);
  }
}

function scrollToEnd(): void {
  const m = ui.messages;
  if (m.scrollHeight - m.scrollTop - m.clientHeight < 120) m.scrollTop = m.scrollHeight;
}

/** The id in a #/c/<id> hash; a malformed escape (#/c/%E0) is taken as written, not thrown. */
function conversationIdOf(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/** Shows the conversation named by the URL hash (or an empty new chat). */
async function openFromHash(): Promise<void> {
  const match = /^#\/c\/(.+)$/.exec(location.hash);
  const id = match ? conversationIdOf(match[1]!) : undefined;
  if (id === currentId && id !== undefined) return;
  abortStream();
  clearError();
  currentId = id;
  renderList();
  clear(ui.messages);
  if (id === undefined) {
    ui.title.textContent = 'New chat';
    ui.prompt.focus();
    return;
  }
  try {
    const { conversation, messages } = await api.conversation(id);
    if (currentId !== id) return;
    ui.title.textContent = conversationTitle(conversation);
    if (!conversations.some((c) => String(c.id) === id)) refreshList().catch(showError); // made in another tab
    for (const message of messages) {
      ui.messages.appendChild(message.role === 'user' ? userMessageView(message.content) : AssistantView.stored(message).root);
    }
    ui.messages.scrollTop = ui.messages.scrollHeight;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      location.hash = '';
      showError(new Error('That conversation no longer exists.'));
    } else showError(e);
  }
}

window.addEventListener('hashchange', () => void openFromHash());

ui.newChat.addEventListener('click', () => {
  location.hash = '';
  document.body.classList.remove('sidebar-open');
  void openFromHash();
});

ui.toggleSidebar.addEventListener('click', (e) => {
  e.stopPropagation();
  document.body.classList.toggle('sidebar-open');
});
// On narrow screens the sidebar covers the page: a click outside it closes it.
document.addEventListener('click', (e) => {
  if (document.body.classList.contains('sidebar-open') && !ui.sidebar.contains(e.target as Node)) document.body.classList.remove('sidebar-open');
});

// ---------------------------------------------------------------------------------------------
// Model and settings

function renderModels(): void {
  clear(ui.model);
  for (const m of config.models) ui.model.appendChild(h('option', { attrs: { value: m.id } }, m.name || m.id));
  const preferred = config.models.find((m) => m.id === settings.model) ?? config.models.find((m) => m.default) ?? config.models[0];
  if (preferred) ui.model.value = preferred.id;
  ui.model.hidden = config.models.length === 0;
  ui.model.disabled = config.models.length < 2;
}

function renderSettings(): void {
  ui.temperature.value = settings.temperature?.toString() ?? '';
  ui.reasoningBudget.value = settings.reasoningBudget?.toString() ?? '';
  ui.maxTokens.value = settings.maxTokens?.toString() ?? '';
}

function readSettings(): void {
  settings = {
    model: ui.model.value || undefined,
    temperature: numberField(ui.temperature.value, 0, 2, false),
    reasoningBudget: numberField(ui.reasoningBudget.value, 0, 1e7, true),
    maxTokens: numberField(ui.maxTokens.value, 1, 1e7, true),
  };
  saveSettings(settings);
}

for (const input of [ui.model, ui.temperature, ui.reasoningBudget, ui.maxTokens]) input.addEventListener('change', readSettings);

// ---------------------------------------------------------------------------------------------
// Sending and streaming

function setStreaming(controller: AbortController | undefined): void {
  streaming = controller;
  ui.send.hidden = controller !== undefined;
  ui.stop.hidden = controller === undefined;
}

function abortStream(): void {
  streaming?.abort();
}

ui.stop.addEventListener('click', abortStream);

async function send(text: string): Promise<void> {
  readSettings();
  clearError();
  let id = currentId;
  if (id === undefined) {
    const conversation = await api.createConversation(text.replace(/\s+/g, ' ').slice(0, 60), settings.model);
    id = String(conversation.id);
    conversations.unshift(conversation);
    currentId = id;
    ui.title.textContent = conversationTitle(conversation);
    history.replaceState(null, '', `#/c/${encodeURIComponent(id)}`);
    renderList();
  }
  ui.messages.appendChild(userMessageView(text));
  const view = new AssistantView(scrollToEnd);
  ui.messages.appendChild(view.root);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  const controller = new AbortController();
  setStreaming(controller);
  view.startStreaming();
  try {
    await api.sendMessage(id, {
      content: text,
      model: settings.model,
      temperature: settings.temperature,
      reasoning_budget: settings.reasoningBudget,
      max_tokens: settings.maxTokens,
    }, controller.signal, (event) => view.handle(event));
    if (!view.finished) view.fail('the stream ended before the reply was complete');
  } catch (e) {
    if (controller.signal.aborted) view.finish('abort');
    else view.fail(e instanceof Error ? e.message : String(e));
    if (e instanceof ApiError && e.status === 401) showError(e);
  } finally {
    if (streaming === controller) setStreaming(undefined);
  }
  refreshList().catch(showError);
}

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.prompt.value.trim();
  if (text === '' || streaming) return;
  ui.prompt.value = '';
  send(text).catch((error: unknown) => {
    ui.prompt.value = text;
    showError(error);
  });
});

ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composer.requestSubmit();
  }
});

// ---------------------------------------------------------------------------------------------
// Start

async function showChat(user: User | undefined): Promise<void> {
  ui.loading.hidden = true;
  ui.auth.hidden = true;
  ui.app.hidden = false;
  ui.accountName.textContent = user ? user.username : '';
  ui.account.hidden = user === undefined;
  currentId = undefined;
  try {
    await refreshList();
  } catch (e) {
    showError(e);
  }
  await openFromHash();
}

async function start(): Promise<void> {
  config = await api.config();
  renderModels();
  renderSettings();
  const user = await api.me();
  if (user === undefined && config.auth_required) showAuth();
  else await showChat(user);
}

start().catch((e: unknown) => {
  ui.loading.textContent = `Could not reach the server: ${e instanceof Error ? e.message : String(e)}`;
});
