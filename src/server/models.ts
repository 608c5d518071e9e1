/**
 * The models a server offers: configured files, loaded on first use and unloaded least recently
 * used first when the loaded weights would exceed the memory budget. DeepSeek's model names
 * (deepseek-reasoner, deepseek-chat, deepseek-v4-flash, deepseek-v4-pro) are aliases of the first
 * configured model; deepseek-chat answers without thinking.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { loadModel } from '../models/load.js';
import type { CausalLM } from '../models/model.js';
import type { GenerationTokenizer } from '../generate/events.js';
import { defaultStopTokenIds } from '../generate/sequence.js';
import { CacheBudget, CachePool } from './cache-pool.js';
import { ApiError } from './errors.js';
import { maskVocabulary, type MaskVocabulary } from './json-constraint.js';

export interface LoadedForServing {
  model: CausalLM;
  tokenizer: GenerationTokenizer;
  chatTemplate?: string | undefined;
}

/** The default loader: a GGUF file or HF directory through loadModel; it must carry a tokenizer. */
export function loadForServing(path: string): LoadedForServing {
  const loaded = loadModel(path);
  if (!loaded.tokenizer) throw new Error(`${path}: the model file has no tokenizer, so it cannot generate text`);
  return { model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate };
}

export interface ModelConfig {
  /** Name clients use (default: the file name without .gguf). */
  id?: string;
  path: string;
  /** A model built in memory (tests): used instead of reading `path`. */
  loaded?: LoadedForServing;
}

export interface RegistryOptions {
  /** Most bytes of weights loaded at once (default: unlimited). */
  memoryBudgetBytes?: number;
  /** Context per request (default: the model's, at most 8192). */
  contextSize?: number;
  /** Idle prefix caches kept per model. */
  cacheSlots?: number;
  /** Most bytes the idle prefix caches of all models hold together (default 1 GiB; least recently used dropped first). */
  cacheMemoryBytes?: number;
  /** Loader (default: loadForServing). */
  load?: (path: string) => LoadedForServing;
}

export class ServedModel {
  readonly pool: CachePool;
  readonly contextLength: number;
  readonly stopIds: number[];
  active = 0;
  usedAt = 0;
  private mask: MaskVocabulary | undefined;

  constructor(
    readonly id: string, readonly loaded: LoadedForServing, readonly bytes: number, contextSize: number | undefined, cacheSlots: number, cacheBudget?: CacheBudget,
  ) {
    const info = loaded.model.info;
    this.contextLength = Math.min(info.contextLength, contextSize ?? 8192);
    this.pool = new CachePool(loaded.model, this.contextLength, cacheSlots, cacheBudget);
    this.stopIds = defaultStopTokenIds(loaded.tokenizer);
  }

  get model(): CausalLM {
    return this.loaded.model;
  }

  get tokenizer(): GenerationTokenizer {
    return this.loaded.tokenizer;
  }

  /** Token texts for JSON-constrained decoding (built on first use). */
  maskVocabulary(): MaskVocabulary {
    this.mask ??= maskVocabulary(this.tokenizer as never, this.model.info.vocabSize, this.stopIds);
    return this.mask;
  }
}

/** Default byte budget of the idle prefix caches (all models together). */
export const DEFAULT_CACHE_MEMORY_BYTES = 1 << 30;

export interface ResolvedModel {
  /** The configured model id. */
  id: string;
  /** Whether the name asks for thinking by default. */
  thinking: boolean;
}

const DEEPSEEK_ALIASES: Record<string, boolean> = {
  'deepseek-reasoner': true,
  'deepseek-chat': false,
  'deepseek-v4-flash': true,
  'deepseek-v4-pro': true,
};

export class ModelRegistry {
  private readonly configs = new Map<string, ModelConfig>();
  private readonly loaded = new Map<string, ServedModel>();
  private clock = 0;
  readonly defaultId: string;
  /** The byte budget of every model's idle prefix caches. */
  readonly cacheBudget: CacheBudget;

  constructor(configs: readonly ModelConfig[], private readonly options: RegistryOptions = {}) {
    if (configs.length === 0) throw new Error('no model configured');
    for (const c of configs) {
      const id = c.id ?? basename(c.path).replace(/\.gguf$/i, '');
      if (this.configs.has(id)) throw new Error(`two models are named '${id}' (give them distinct ids)`);
      this.configs.set(id, c);
    }
    this.defaultId = this.configs.keys().next().value!;
    this.cacheBudget = new CacheBudget(options.cacheMemoryBytes ?? DEFAULT_CACHE_MEMORY_BYTES);
  }

  ids(): string[] {
    return [...this.configs.keys()];
  }

  aliases(): string[] {
    return Object.keys(DEEPSEEK_ALIASES);
  }

  /** A requested model name -> configured id; 404 naming the available models otherwise. */
  resolve(name: unknown): ResolvedModel {
    if (typeof name !== 'string' || name === '') throw new ApiError(400, 'model must be a non-empty string', 'model');
    const plain = name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
    if (this.configs.has(plain)) return { id: plain, thinking: true };
    // own keys only: "constructor" or "__proto__" are not model names
    const alias = Object.hasOwn(DEEPSEEK_ALIASES, plain) ? DEEPSEEK_ALIASES[plain] : undefined;
    if (alias !== undefined) return { id: this.defaultId, thinking: alias };
    throw new ApiError(404, `The model '${name}' does not exist (available: ${[...this.ids(), ...this.aliases()].join(', ')})`, 'model', 'model_not_found');
  }

  isLoaded(id: string): boolean {
    return this.loaded.has(id);
  }

  /** The loaded model (loading it now if needed, unloading idle ones over the budget). */
  get(id: string): ServedModel {
    let served = this.loaded.get(id);
    if (!served) {
      const config = this.configs.get(id);
      if (!config) throw new ApiError(404, `The model '${id}' does not exist`, 'model', 'model_not_found');
      const bytes = config.loaded ? 0 : fileBytes(config.path);
      this.makeRoom(bytes);
      const loaded = config.loaded ?? this.load(config.path);
      served = new ServedModel(id, loaded, bytes, this.options.contextSize, this.options.cacheSlots ?? 4, this.cacheBudget);
      this.loaded.set(id, served);
    }
    served.usedAt = ++this.clock;
    return served;
  }

  private load(path: string): LoadedForServing {
    return (this.options.load ?? loadForServing)(path);
  }

  private makeRoom(bytes: number): void {
    const budget = this.options.memoryBudgetBytes ?? Infinity;
    const used = (): number => [...this.loaded.values()].reduce((s, m) => s + m.bytes, 0);
    while (used() + bytes > budget) {
      const idle = [...this.loaded.values()].filter((m) => m.active === 0).sort((a, b) => a.usedAt - b.usedAt)[0];
      if (!idle) throw new ApiError(503, 'not enough memory to load the model while the loaded ones are busy; retry shortly', 'model', 'overloaded', 5);
      idle.pool.clear();
      this.loaded.delete(idle.id);
    }
  }

  /** Unloads a model (Ollama's keep_alive 0): false when it was not loaded; 503 while it generates. */
  unload(id: string): boolean {
    const served = this.loaded.get(id);
    if (!served) return false;
    if (served.active > 0) throw new ApiError(503, `the model '${id}' is generating; unload it when its requests have ended`, 'keep_alive', 'service_unavailable', 1);
    served.pool.clear();
    this.loaded.delete(id);
    return true;
  }

  loadedModels(): ServedModel[] {
    return [...this.loaded.values()];
  }

  config(id: string): ModelConfig | undefined {
    return this.configs.get(id);
  }
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    throw new Error(`model not found: ${path}`);
  }
}
