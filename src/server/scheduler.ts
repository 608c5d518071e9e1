/**
 * Continuous batching. Admitted requests run together: each round, every active sequence gets one
 * unit of work (a prefill chunk, or one decode step), then the loop yields to the event loop so
 * new requests, cancellations and writes go on. A request that arrives while others decode joins
 * at the next round; one that finishes leaves at once and frees its place for the queue.
 *
 * The round's work of the same model (prompt chunks of the sequences still prefilling and the
 * one-token decode steps of the others) runs as one batched forward when the model provides
 * `forwardBatch(items: {tokens, cache}[]): Float32Array[]`; otherwise the sequences are stepped one
 * after another within the round (same scheduling, no shared matmul).
 *
 * Speculative decoding (`speculative` option, speculation.ts): while a sequence is the only active
 * one, each of its decode steps drafts tokens and verifies them in one forward (several tokens per
 * round); when another request becomes active the sequence goes back to batched one-token steps at
 * the next round. A speculative step leaves no drafted token in the cache: only the accepted ones,
 * and the next chosen token pending as the feed of the next round (batched or not).
 *
 * Admission: at most `maxActive` sequences run; up to `maxQueue` more wait in FIFO order; beyond
 * that a request is refused with 429 (Retry-After), and one that waited longer than
 * `queueTimeoutMs` gets 503. A route admits before it answers (reserve(): the place is held until
 * the generation runs), so that the n choices of one request are admitted all or none.
 */
import type { CausalLM, KvCache } from '../models/model.js';
import type { DoneEvent, GenerationEvent } from '../generate/events.js';
import { doneEvent } from '../generate/engine.js';
import { tokenLogprobs, type TokenLogprob } from '../generate/sampling.js';
import { HIDDEN_PREFILL_CHUNK } from '../generate/speculative.js';
import { Sequence, type SequenceOptions } from '../generate/sequence.js';
import type { SpeculativeDecoder } from '../generate/speculative-step.js';
import { ApiError } from './errors.js';
import { type JsonConstraint, JsonValidator, maskJsonLogits } from './json-constraint.js';
import { type JsonSchema, SchemaValidator } from './json-schema.js';
import type { ServedModel } from './models.js';
import { Speculation, type ServerSpeculativeOptions } from './speculation.js';

export interface JobSpec {
  model: ServedModel;
  prompt: Int32Array;
  options: SequenceOptions;
  signal?: AbortSignal;
  /** Constrain the content (after the thought, if any) to one JSON object (true), or to one that fits a schema. */
  json?: boolean | Exclude<JsonSchema, boolean>;
  /** Token and text events as they happen (the done event is the promise's result). */
  onEvent?: (event: GenerationEvent) => void;
  /** Called when the request leaves the queue and starts running. */
  onStart?: () => void;
  /**
   * Score the prompt (OpenAI's `echo` with `logprobs`): every prompt token's log-probability given
   * the tokens before it, with this many most likely alternatives, handed to onPromptLogprobs when
   * the prompt has been read. The prompt is computed afresh (no cached prefix: its logits are needed).
   */
  promptLogprobs?: number;
  onPromptLogprobs?: (tokens: PromptTokenLogprob[]) => void;
  /** End once the prompt is read, generating nothing (max_tokens 0 with echo). */
  scoreOnly?: boolean;
}

/** A prompt token's log-probability given the tokens before it (null for the first token), and the likeliest tokens there. */
export interface PromptTokenLogprob {
  id: number;
  logprob: number | null;
  top: TokenLogprob[];
}

export interface JobResult {
  done: DoneEvent;
  /** Milliseconds spent waiting in the queue. */
  queueMs: number;
  /** Milliseconds from admission to the first generated token (undefined when none). */
  firstTokenMs: number | undefined;
  /** Drafted and accepted tokens of its speculative steps (absent when it had none). */
  speculative?: { drafted: number; accepted: number; forwards: number };
}

export interface SchedulerOptions {
  maxActive?: number;
  maxQueue?: number;
  queueTimeoutMs?: number;
  /** Prompt tokens per prefill unit (a long prompt does not stall the others for long). */
  prefillChunk?: number;
  /** Total time one generation may run (ends it with finish 'length'). */
  generationTimeoutMs?: number;
  /** Speculative decoding of a sequence that runs alone (default off). */
  speculative?: ServerSpeculativeOptions;
}

/** A place in the scheduler held for an admitted request (Scheduler.reserve). */
export interface Reservation {
  /** Gives the place back (once; later calls do nothing). */
  release(): void;
}

type ModelWithBatch = CausalLM & { forwardBatch?: (items: { tokens: Int32Array; cache: KvCache }[]) => Float32Array[] };

interface Job {
  /** The queue's abort listener (removed when the job starts). */
  onQueuedAbort?: () => void;
  spec: JobSpec;
  seq: Sequence;
  enqueuedAt: number;
  startedAt: number;
  prefillEnd: number;
  firstTokenAt: number | undefined;
  cached: number;
  slot?: { cache: KvCache; tokens: number[] } | undefined;
  pos: number;
  logits?: Float32Array | undefined;
  /** Tokens for this round's forward: the next prompt chunk (while prefilling) or the token just chosen. */
  feed?: Int32Array | undefined;
  /** The feed is a prompt chunk (its logits matter only after the prompt's last chunk). */
  prefilling?: boolean;
  json?: { state: JsonConstraint; active: boolean; raw: string } | undefined;
  /** Its speculative decoder, when the server speculates and the request allows it. */
  speculative?: SpeculativeDecoder | undefined;
  /** The prompt's scores so far (spec.promptLogprobs). */
  promptScores?: PromptTokenLogprob[] | undefined;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
  timer?: NodeJS.Timeout | undefined;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Scheduler {
  readonly maxActive: number;
  readonly maxQueue: number;
  private readonly queueTimeoutMs: number;
  private readonly prefillChunk: number;
  private readonly generationTimeoutMs: number;
  private readonly speculation: Speculation | undefined;
  private readonly queue: Job[] = [];
  private readonly active: Job[] = [];
  private running = false;
  /** Places held by admitted requests that have not run yet (reserve()). */
  private reservedPlaces = 0;
  /** Counters for tests and metrics. */
  readonly stats = { started: 0, finished: 0, aborted: 0, rejected: 0, batchedForwards: 0, steps: 0, speculativeSteps: 0, draftedTokens: 0, acceptedTokens: 0 };
  /** Called after each job ends (metrics). */
  onFinish?: (result: JobResult, spec: JobSpec) => void;

  constructor(options: SchedulerOptions = {}) {
    this.maxActive = options.maxActive ?? 8;
    this.maxQueue = options.maxQueue ?? 64;
    this.queueTimeoutMs = options.queueTimeoutMs ?? 60_000;
    this.prefillChunk = options.prefillChunk ?? 128;
    this.generationTimeoutMs = options.generationTimeoutMs ?? 10 * 60_000;
    const speculative = options.speculative;
    this.speculation = speculative && speculative.method !== 'off' ? new Speculation(speculative) : undefined;
  }

  get activeCount(): number {
    return this.active.length;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /**
   * Throws 429 (with Retry-After) when neither a place to run nor one in the queue is free. The
   * places held by admitted requests that have not called run() yet count as taken.
   */
  assertCanAdmit(): void {
    const taken = this.active.length + this.queue.length + this.reservedPlaces;
    if (taken >= this.maxActive + this.maxQueue) {
      this.stats.rejected++;
      throw new ApiError(429, `the server is at capacity (${this.maxActive} running, ${this.maxQueue} queued); retry shortly`, null, 'rate_limit_exceeded', 1);
    }
  }

  /**
   * Admits a request now and holds its place (running or queued) until it runs: run() with the
   * place does not check the capacity again, so that every generation of a request admitted
   * together (n choices, a batch of prompts) runs, never a 429 after the response began.
   * Throws 429 like assertCanAdmit; a place not run must be given back (release()).
   */
  reserve(): Reservation {
    this.assertCanAdmit();
    this.reservedPlaces++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.reservedPlaces--;
      },
    };
  }

  /** Runs one generation; rejects with ApiError 429/503 when it cannot be admitted (unless it holds a reserved place). */
  run(spec: JobSpec, place?: Reservation): Promise<JobResult> {
    try {
      if (place) place.release();
      else this.assertCanAdmit();
    } catch (error) {
      return Promise.reject(error);
    }
    // Sequence validates the options (throws a clear Error before anything is queued)
    const seq = new Sequence(spec.model.tokenizer, spec.prompt, spec.options, spec.model.model.info.vocabSize);
    return new Promise<JobResult>((resolve, reject) => {
      const job: Job = { spec, seq, enqueuedAt: performance.now(), startedAt: 0, prefillEnd: 0, firstTokenAt: undefined, cached: 0, pos: 0, resolve, reject };
      if (spec.json) job.json = { state: spec.json === true ? new JsonValidator() : new SchemaValidator(spec.json), active: spec.options.thinking === 'off', raw: '' };
      spec.model.active++;
      if (this.active.length < this.maxActive) this.start(job);
      else {
        this.queue.push(job);
        job.timer = setTimeout(() => this.expire(job), this.queueTimeoutMs);
        // a client gone while queued leaves the queue at once (also one already gone when it arrived)
        job.onQueuedAbort = () => this.dequeueAborted(job);
        spec.signal?.addEventListener('abort', job.onQueuedAbort, { once: true });
        if (spec.signal?.aborted) job.onQueuedAbort();
      }
      this.kick();
    });
  }

  /** Ends everything (server shutdown): queued requests are refused with 503, running ones end as aborted. */
  shutdown(): void {
    for (const job of this.queue.splice(0)) {
      clearTimeout(job.timer);
      job.spec.model.active--;
      job.reject(new ApiError(503, 'the server is shutting down', null, 'service_unavailable'));
    }
    for (const job of [...this.active]) this.end(job, 'abort');
  }

  private expire(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i < 0) return;
    this.queue.splice(i, 1);
    job.spec.model.active--;
    this.stats.rejected++;
    job.reject(new ApiError(503, `the server is overloaded: the request waited ${Math.round(this.queueTimeoutMs / 1000)} s in the queue; retry later`, null, 'server_overloaded', 5));
  }

  private dequeueAborted(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i < 0) return;
    this.queue.splice(i, 1);
    clearTimeout(job.timer);
    this.stats.aborted++;
    job.spec.model.active--;
    job.seq.finish('abort');
    job.resolve({ done: this.doneEvent(job), queueMs: performance.now() - job.enqueuedAt, firstTokenMs: undefined });
  }

  private start(job: Job): void {
    clearTimeout(job.timer);
    // from here round() watches the signal; the queue's listener would hold the job for the request's life
    if (job.onQueuedAbort) job.spec.signal?.removeEventListener('abort', job.onQueuedAbort);
    job.startedAt = performance.now();
    const scoring = job.spec.promptLogprobs !== undefined;
    const lease = job.spec.model.pool.acquire(job.spec.prompt, { reusePrefix: !scoring });
    job.slot = lease.slot;
    job.cached = lease.cached;
    job.pos = lease.cached;
    if (scoring) job.promptScores = [{ id: job.spec.prompt[0]!, logprob: null, top: [] }];
    else job.speculative = this.speculation?.decoderFor(job.spec, job.seq, lease.slot);
    this.active.push(job);
    this.stats.started++;
    try {
      job.spec.onStart?.();
    } catch {
      /* a listener's failure does not stop the job */
    }
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      if (this.active.length > 0 || this.queue.length > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (this.active.length > 0) {
      this.round();
      while (this.active.length < this.maxActive && this.queue.length > 0) this.start(this.queue.shift()!);
      await tick();
    }
  }

  /** One unit of work for every active job. */
  private round(): void {
    const now = performance.now();
    for (const job of [...this.active]) {
      if (job.spec.signal?.aborted) this.end(job, 'abort');
      else if (now - job.startedAt > this.generationTimeoutMs) this.end(job, 'length');
    }
    // every job leaves a feed for the forward below: its next prompt chunk, or (sampling) its next token
    for (const job of [...this.active]) {
      if (job.feed !== undefined) continue; // a speculative step left its next token pending
      try {
        if (job.logits === undefined) this.prefill(job);
        else if (job.spec.scoreOnly) this.end(job, 'length');
        else this.sample(job);
      } catch (error) {
        this.fail(job, error);
      }
    }
    // a prompt being scored runs alone: every row's logits are needed
    for (const job of this.active.filter((j) => j.prefilling && j.promptScores)) {
      try {
        this.score(job);
      } catch (error) {
        this.fail(job, error);
      }
    }
    const feeding = this.active.filter((j) => j.feed !== undefined);
    const byModel = new Map<ServedModel, Job[]>();
    for (const job of feeding) {
      const list = byModel.get(job.spec.model) ?? [];
      list.push(job);
      byModel.set(job.spec.model, list);
    }
    for (const [served, jobs] of byModel) {
      const model = served.model as ModelWithBatch;
      const alone = jobs.length === 1 && this.active.length === 1 ? jobs[0]! : undefined;
      if (alone?.speculative && !alone.prefilling) {
        try {
          this.speculate(alone);
        } catch (error) {
          this.fail(alone, error);
        }
        continue;
      }
      if (typeof model.forwardBatch === 'function' && jobs.length > 1) {
        try {
          const out = model.forwardBatch(jobs.map((j) => ({ tokens: j.feed!, cache: j.slot!.cache })));
          this.stats.batchedForwards++;
          jobs.forEach((j, i) => this.fed(j, out[i]!));
        } catch (error) {
          for (const j of jobs) this.fail(j, error);
        }
        continue;
      }
      for (const job of jobs) {
        try {
          this.fed(job, model.forward(job.feed!, job.slot!.cache));
        } catch (error) {
          this.fail(job, error);
        }
      }
    }
  }

  /**
   * The job's next prompt chunk: left as its feed (it runs in the round's forward, batched with
   * the others), or, for a speculating request that runs alone, fed at once through its decoder
   * so that the drafter sees the prompt.
   */
  private prefill(job: Job): void {
    const prompt = job.spec.prompt;
    const decoder = this.active.length === 1 ? job.speculative : undefined;
    const size = decoder && this.speculation!.needsHidden ? Math.min(this.prefillChunk, HIDDEN_PREFILL_CHUNK) : this.prefillChunk;
    const end = Math.min(prompt.length, job.pos + size);
    const chunk = prompt.subarray(job.pos, end);
    if (!decoder) {
      job.feed = chunk;
      job.prefilling = true;
      return;
    }
    const logits = decoder.advance(chunk);
    job.pos = end;
    if (end === prompt.length) this.prefilled(job, logits);
  }

  private prefilled(job: Job, logits: Float32Array): void {
    job.logits = logits;
    job.prefillEnd = performance.now();
  }

  /** Runs a scored job's prompt chunk with all its rows' logits and scores the prompt tokens they predict. */
  private score(job: Job): void {
    const feed = job.feed!;
    const model = job.spec.model.model;
    const vocab = model.info.vocabSize;
    const logits = model.forward(feed, job.slot!.cache, { allLogits: true });
    const prompt = job.spec.prompt;
    const scores = job.promptScores!;
    for (let row = 0; row < feed.length; row++) {
      const next = job.pos + row + 1;
      if (next >= prompt.length) break;
      const { logprob, top } = tokenLogprobs(logits.subarray(row * vocab, (row + 1) * vocab), prompt[next]!, job.spec.promptLogprobs);
      scores.push({ id: prompt[next]!, logprob, top });
    }
    const last = logits.slice((feed.length - 1) * vocab, feed.length * vocab);
    this.fed(job, last);
    if (job.logits !== undefined) {
      try {
        job.spec.onPromptLogprobs?.(scores);
      } catch {
        /* a failing writer must not break the batch */
      }
    }
  }

  /** Records the round's forward of the job's feed (a prompt chunk or a chosen token). */
  private fed(job: Job, logits: Float32Array): void {
    const feed = job.feed!;
    const tokens = job.slot!.tokens;
    for (let i = 0; i < feed.length; i++) tokens.push(feed[i]!);
    job.feed = undefined;
    if (!job.prefilling) {
      job.logits = logits;
      return;
    }
    job.prefilling = false;
    job.pos += feed.length;
    if (job.pos === job.spec.prompt.length) this.prefilled(job, logits);
  }

  /**
   * One speculative step of a job decoding alone: drafts after the pending feed, verifies them
   * in one forward and leaves the next chosen token as the pending feed (no logits to sample).
   */
  private speculate(job: Job): void {
    const { seq } = job;
    const decoder = job.speculative!;
    const before = seq.outputTokens.length;
    const drafted = decoder.counts.proposed;
    const accepted = decoder.counts.accepted;
    const { events, feed } = decoder.step(job.feed!);
    job.feed = undefined;
    this.stats.steps++;
    this.stats.speculativeSteps++;
    this.stats.draftedTokens += decoder.counts.proposed - drafted;
    this.stats.acceptedTokens += decoder.counts.accepted - accepted;
    if (seq.outputTokens.length > before && job.firstTokenAt === undefined) job.firstTokenAt = performance.now();
    for (const event of events) this.emit(job, event);
    if (seq.finished) return this.end(job);
    const cache = job.slot!.cache;
    if (cache.length + feed.length > cache.capacity) return this.end(job, 'length');
    job.feed = feed;
  }

  private sample(job: Job): void {
    const { seq } = job;
    const logits = job.logits!;
    const json = job.json;
    if (json?.active) maskJsonLogits(logits, json.state, job.spec.model.maskVocabulary());
    const before = seq.outputTokens.length;
    const { events, feed } = seq.step(logits);
    this.stats.steps++;
    if (seq.outputTokens.length > before && job.firstTokenAt === undefined) job.firstTokenAt = performance.now();
    if (json) this.trackJson(job, seq.outputTokens.slice(before));
    for (const event of events) this.emit(job, event);
    if (seq.finished) return this.end(job);
    const cache = job.slot!.cache;
    if (cache.length + feed.length > cache.capacity) return this.end(job, 'length');
    job.feed = feed;
  }

  /** Follows the output for the JSON constraint: it applies after the thought closes. */
  private trackJson(job: Job, ids: number[]): void {
    const json = job.json!;
    const tokenizer = job.spec.model.tokenizer;
    for (const id of ids) {
      const text = tokenizer.decode([id]);
      if (json.active) {
        json.state.push(text);
        continue;
      }
      json.raw += text;
      const close = json.raw.indexOf('</think>');
      if (close >= 0) {
        json.active = true;
        json.state.push(json.raw.slice(close + '</think>'.length).trimStart());
      }
    }
  }

  private emit(job: Job, event: GenerationEvent): void {
    try {
      job.spec.onEvent?.(event);
    } catch {
      /* a failing writer (closed socket) must not break the batch */
    }
  }

  private fail(job: Job, error: unknown): void {
    this.remove(job);
    job.spec.model.pool.release(job.slot!, false);
    job.reject(error);
  }

  private remove(job: Job): void {
    const i = this.active.indexOf(job);
    if (i >= 0) this.active.splice(i, 1);
    job.spec.model.active--;
    job.feed = undefined;
    job.prefilling = false;
  }

  private end(job: Job, reason?: 'abort' | 'length'): void {
    if (reason) for (const event of job.seq.finish(reason)) this.emit(job, event);
    this.remove(job);
    if (job.seq.finishReason === 'abort') this.stats.aborted++;
    this.stats.finished++;
    job.spec.model.pool.release(job.slot!);
    const result: JobResult = {
      done: this.doneEvent(job),
      queueMs: job.startedAt - job.enqueuedAt,
      firstTokenMs: job.firstTokenAt === undefined ? undefined : job.firstTokenAt - job.startedAt,
    };
    const counts = job.speculative?.counts;
    if (counts && counts.forwards > 0) result.speculative = { drafted: counts.proposed, accepted: counts.accepted, forwards: counts.forwards };
    try {
      this.onFinish?.(result, job.spec);
    } catch {
      /* metrics must not break generation */
    }
    job.resolve(result);
  }

  private doneEvent(job: Job): DoneEvent {
    const end = performance.now();
    return doneEvent(job.seq, job.spec.prompt.length, job.cached, job.startedAt || end, job.prefillEnd || end);
  }
}
