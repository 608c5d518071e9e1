/**
 * Speculative decoding in the server (`frugal serve --speculative mtp|ngram`): which requests may
 * use it, and their decoders (SpeculativeDecoder, shared with `frugal run --speculative`).
 *
 * The scheduler runs a sequence's steps speculatively only while it is the one active sequence:
 * with several, batching already shares each weight pass among them. A request asking for
 * logprobs or JSON output never speculates (its logits are reported or masked per token).
 *
 * 'mtp' needs a deepseek2 model with its MTP weights. Models load on first use, so a model
 * without them cannot be refused at start: it decodes normally, and the first request to it
 * writes one warning line (once per load). Other models of the same server keep drafting.
 */
import type { CacheSlot } from '../generate/engine.js';
import { defaultDraftTokens, makeDrafter } from '../generate/speculative.js';
import { SpeculativeDecoder } from '../generate/speculative-step.js';
import type { NgramOptions } from '../generate/draft-ngram.js';
import { hasMtp } from '../generate/draft-mtp.js';
import type { Sequence } from '../generate/sequence.js';
import type { ServedModel } from './models.js';

export interface ServerSpeculativeOptions {
  /** 'mtp': the model's MTP module; 'ngram': prompt lookup; 'off' (default). */
  method: 'mtp' | 'ngram' | 'off';
  /** Most tokens drafted per step (default 1 for mtp, 4 for ngram). */
  draftTokens?: number;
  ngram?: NgramOptions;
  /** Where the warning about a model without MTP weights goes (default: stderr). */
  warn?: (line: string) => void;
}

/** What a request asks that bears on speculation. */
export interface SpeculationRequest {
  model: ServedModel;
  json?: boolean | object | undefined;
  options: { logprobs?: boolean | undefined; maxTokens?: number | undefined };
}

export class Speculation {
  readonly method: 'mtp' | 'ngram' | 'off';
  readonly draftTokens: number;
  private readonly ngram: NgramOptions | undefined;
  private readonly warn: (line: string) => void;
  private readonly decided = new WeakMap<ServedModel, boolean>();

  constructor(options: ServerSpeculativeOptions) {
    this.method = options.method;
    if (!['mtp', 'ngram', 'off'].includes(this.method)) throw new Error(`speculative method must be mtp, ngram or off, got '${String(this.method)}'`);
    this.draftTokens = options.draftTokens ?? defaultDraftTokens(this.method);
    if (!Number.isInteger(this.draftTokens) || this.draftTokens < 1) throw new Error(`draftTokens must be an integer >= 1, got ${String(options.draftTokens)}`);
    this.ngram = options.ngram;
    this.warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
  }

  /** Whether the drafter takes the main model's hidden states (prefill then computes every row's logits). */
  get needsHidden(): boolean {
    return this.method === 'mtp';
  }

  /** Whether this model can draft with the method (warns once per loaded model that cannot). */
  supports(served: ServedModel): boolean {
    let ok = this.decided.get(served);
    if (ok === undefined) {
      ok = this.method === 'ngram' || (this.method === 'mtp' && hasMtp(served.model));
      if (this.method === 'mtp' && !ok) {
        this.warn(`frugal serve: model '${served.id}' has no MTP weights (a deepseek2 model with its nextn layers): --speculative mtp is off for it, it decodes normally (--speculative ngram drafts for any model)`);
      }
      this.decided.set(served, ok);
    }
    return ok;
  }

  /** The request's decoder, or undefined when it does not speculate. */
  decoderFor(request: SpeculationRequest, seq: Sequence, slot: CacheSlot): SpeculativeDecoder | undefined {
    if (this.method === 'off' || request.json || request.options.logprobs || !this.supports(request.model)) return undefined;
    const model = request.model.model;
    const k = this.draftTokens;
    const method = this.method;
    const ngram = this.ngram;
    return new SpeculativeDecoder({
      model, seq, cache: slot.cache, slot, draftTokens: k, maxTokens: request.options.maxTokens,
      // an MTP drafter (re)started at the current position needs room for the rest of the context and a chain of drafts
      newDrafter: () => makeDrafter(model, ngram ? { method, ngram } : { method }, slot.cache.capacity - slot.cache.length + k),
    });
  }
}
