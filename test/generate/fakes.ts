/**
 * Small stand-ins for the tokenizer and the model, for generation tests that must not depend on
 * real weights: a piece-vocabulary tokenizer and a causal LM whose logits are a deterministic
 * function of the whole context.
 */
import { type BatchItem, type CausalLM, type KvCache, type ModelInfo, forwardEach } from '../../src/models/model.js';
import type { ChatMessage } from '../../src/generate/engine.js';
import type { GenerationTokenizer } from '../../src/generate/events.js';

/** Tokenizer over a fixed list of pieces; encoding is greedy longest match. Id 0 is EOS. */
export class FakeTokenizer implements GenerationTokenizer {
  readonly pieces: string[];
  readonly eosId = 0;
  private readonly byPiece = new Map<string, number>();

  constructor(pieces: string[]) {
    this.pieces = ['<eos>', '<bos>', '<think>', '</think>', ...pieces.filter((p) => !['<eos>', '<bos>', '<think>', '</think>'].includes(p))];
    this.pieces.forEach((p, i) => this.byPiece.set(p, i));
  }

  get bosId(): number {
    return 1;
  }

  tokenId(text: string): number | undefined {
    return this.byPiece.get(text);
  }

  encode(text: string, options: { addSpecialTokens?: boolean; parseSpecial?: boolean } = {}): number[] {
    const ids: number[] = options.addSpecialTokens ? [1] : [];
    let i = 0;
    while (i < text.length) {
      let best = -1;
      let bestLen = 0;
      for (const [piece, id] of this.byPiece) {
        if (id <= 3 && !options.parseSpecial) continue;
        if (piece.length > bestLen && text.startsWith(piece, i)) {
          best = id;
          bestLen = piece.length;
        }
      }
      if (best < 0) throw new Error(`fake tokenizer cannot encode '${text.slice(i, i + 10)}'`);
      ids.push(best);
      i += bestLen;
    }
    return ids;
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) s += this.pieces[ids[i]!] ?? '';
    return s;
  }

  streamDecoder(): { push(id: number): string; flush(): string } {
    return { push: (id) => this.pieces[id] ?? '', flush: () => '' };
  }

  renderChat(messages: readonly ChatMessage[], options: { addGenerationPrompt: boolean }): string {
    let s = '<bos>';
    for (const m of messages) s += `${m.role === 'user' ? 'U:' : 'A:'}${String(m.content ?? '').split('</think>').pop()}`;
    return options.addGenerationPrompt ? `${s}A:<think>\n` : s;
  }
}

export class FakeCache implements KvCache {
  readonly tokens: number[] = [];
  constructor(readonly capacity: number) {}
  get length(): number {
    return this.tokens.length;
  }
  get bytes(): number {
    return this.tokens.length * 4;
  }
  truncate(length: number): void {
    this.tokens.length = Math.min(length, this.tokens.length);
  }
}

/** A model whose next-token logits are `next(context)`; it records every forward call. */
export class FakeModel implements CausalLM {
  readonly info: ModelInfo;
  readonly calls: number[][] = [];
  constructor(
    vocabSize: number,
    private readonly next: (context: readonly number[]) => Float32Array,
    contextLength = 4096,
  ) {
    this.info = { architecture: 'fake', vocabSize, contextLength, parameterCount: 0, cacheValuesPerToken: 1 };
  }
  newCache(capacity = this.info.contextLength): FakeCache {
    return new FakeCache(capacity);
  }
  forward(tokens: Int32Array, cache: KvCache): Float32Array {
    const c = cache as FakeCache;
    if (c.length + tokens.length > c.capacity) throw new Error('fake cache overflow');
    this.calls.push([...tokens]);
    for (const t of tokens) c.tokens.push(t);
    return this.next(c.tokens);
  }
  forwardBatch(items: readonly BatchItem[]): Float32Array[] {
    return forwardEach(this, items);
  }
  get forwardedTokens(): number {
    return this.calls.reduce((n, c) => n + c.length, 0);
  }
}

/** Logits that make `id` the clear favourite (10 above every other token). */
export function oneHot(vocabSize: number, id: number): Float32Array {
  const logits = new Float32Array(vocabSize);
  logits[id] = 10;
  return logits;
}

/**
 * A model that, after the prompt, emits `script` (token ids) greedily, then `after` forever.
 * The output position is context length minus the prompt length.
 */
export function scriptedModel(tokenizer: FakeTokenizer, promptLength: number, script: number[], after: number): FakeModel {
  const V = tokenizer.pieces.length;
  return new FakeModel(V, (context) => {
    const k = context.length - promptLength;
    return oneHot(V, k < script.length ? script[k]! : after);
  });
}
