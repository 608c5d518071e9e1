/**
 * DOM helpers: element creation without innerHTML, and the markdown tree -> DOM renderer (every
 * text node is created with createTextNode, attributes come only from the renderer's whitelist).
 */
import { MD_TAGS, type MdAttrs, type MdNode } from './markdown.js';

type Child = Node | string | null | undefined | false;

/** Creates an element with properties/attributes and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; attrs?: Record<string, string>; on?: Partial<Record<keyof HTMLElementEventMap, (e: Event) => void>> } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  for (const [name, handler] of Object.entries(props.on ?? {})) node.addEventListener(name, handler as EventListener);
  append(node, ...children);
  return node;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

const ALLOWED_ATTRS: readonly (keyof MdAttrs)[] = ['href', 'rel', 'target', 'class', 'start', 'align'];

function copyButton(code: string): HTMLButtonElement {
  const button = h('button', { class: 'copy', attrs: { type: 'button', title: 'Copy code' } }, 'Copy');
  button.addEventListener('click', () => {
    const done = (label: string): void => {
      button.textContent = label;
      setTimeout(() => (button.textContent = 'Copy'), 1500);
    };
    navigator.clipboard?.writeText(code).then(() => done('Copied'), () => done('Copy failed')) ?? done('Copy failed');
  });
  return button;
}

function mdNodeToDom(node: MdNode): Node {
  if (typeof node === 'string') return document.createTextNode(node);
  if (!MD_TAGS.has(node.tag)) throw new Error(`markdown renderer produced a tag outside the whitelist: ${node.tag}`);
  const element = document.createElement(node.tag);
  for (const name of ALLOWED_ATTRS) {
    const value = node.attrs?.[name];
    if (value !== undefined) element.setAttribute(name, value);
  }
  for (const child of node.children) element.appendChild(mdNodeToDom(child));
  if (node.tag === 'pre') {
    const wrapper = h('div', { class: 'code-block' });
    const code = element.textContent ?? '';
    const lang = /language-(\S+)/.exec(node.children.find((c): c is Exclude<MdNode, string> => typeof c !== 'string')?.attrs?.class ?? '')?.[1];
    append(wrapper, h('div', { class: 'code-head' }, h('span', { class: 'lang' }, lang ?? ''), copyButton(code)), element);
    return wrapper;
  }
  return element;
}

/** Replaces the children of `container` with the DOM of a markdown tree. */
export function renderMarkdownTree(container: HTMLElement, tree: readonly MdNode[]): void {
  const fragment = document.createDocumentFragment();
  for (const node of tree) fragment.appendChild(mdNodeToDom(node));
  clear(container);
  container.appendChild(fragment);
}
