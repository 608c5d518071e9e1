/**
 * Prometheus metrics (GET /metrics) in a registry of their own (several servers in one process,
 * as in tests, do not collide): requests by route and status, queue depth and running
 * generations, time to first token, decode speed, tokens in and out, prefix-cache hits and bytes, aborts,
 * and speculative decoding's drafted / accepted tokens (counted when a generation ends).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheBudget } from './cache-pool.js';
import type { ConnectionCounter } from './connections.js';
import type { Scheduler } from './scheduler.js';

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'status'>;
  readonly timeToFirstToken: Histogram<'model'>;
  readonly tokensPerSecond: Histogram<'model'>;
  readonly promptTokens: Counter<'model'>;
  readonly completionTokens: Counter<'model'>;
  readonly cacheHitTokens: Counter<'model'>;
  readonly generations: Counter<'model' | 'finish_reason'>;
  readonly draftedTokens: Counter<'model'>;
  readonly acceptedTokens: Counter<'model'>;
  readonly speculativeForwards: Counter<'model'>;

  constructor(scheduler: Scheduler, options: { processMetrics?: boolean; cacheBudget?: CacheBudget; connections?: ConnectionCounter } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'frugal_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers });
    new Gauge({ name: 'frugal_queue_depth', help: 'Requests waiting for a generation slot', registers, collect() { this.set(scheduler.queueDepth); } });
    new Gauge({ name: 'frugal_active_generations', help: 'Generations running now', registers, collect() { this.set(scheduler.activeCount); } });
    const connections = options.connections;
    if (connections) {
      new Gauge({ name: 'frugal_open_connections', help: 'Open TCP connections', registers, collect() { this.set(connections.open()); } });
      new Counter({
        name: 'frugal_refused_connections_total', help: 'Connections refused for the connection limits (--max-connections, --max-connections-per-ip)', registers,
        collect() { this.reset(); this.inc(connections.refused); },
      });
    }
    const budget = options.cacheBudget;
    if (budget) {
      new Gauge({ name: 'frugal_prompt_cache_idle_bytes', help: 'Bytes held by idle prefix caches (all models)', registers, collect() { this.set(budget.idleBytes); } });
      new Gauge({ name: 'frugal_prompt_cache_budget_bytes', help: 'Most bytes idle prefix caches may hold (--cache-memory)', registers, collect() { this.set(budget.maxBytes); } });
    }
    this.timeToFirstToken = new Histogram({
      name: 'frugal_time_to_first_token_seconds', help: 'From admission to the first generated token', labelNames: ['model'], registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.tokensPerSecond = new Histogram({
      name: 'frugal_decode_tokens_per_second', help: 'Decode speed of finished generations', labelNames: ['model'], registers,
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
    });
    this.promptTokens = new Counter({ name: 'frugal_prompt_tokens_total', help: 'Prompt tokens received', labelNames: ['model'], registers });
    this.completionTokens = new Counter({ name: 'frugal_completion_tokens_total', help: 'Tokens generated', labelNames: ['model'], registers });
    this.cacheHitTokens = new Counter({ name: 'frugal_prompt_cache_hit_tokens_total', help: 'Prompt tokens served from the prefix cache', labelNames: ['model'], registers });
    this.generations = new Counter({ name: 'frugal_generations_total', help: 'Finished generations by finish reason', labelNames: ['model', 'finish_reason'], registers });
    this.draftedTokens = new Counter({ name: 'frugal_speculative_drafted_tokens_total', help: 'Drafted tokens checked by the model (speculative decoding)', labelNames: ['model'], registers });
    this.acceptedTokens = new Counter({ name: 'frugal_speculative_accepted_tokens_total', help: 'Drafted tokens accepted (speculative decoding)', labelNames: ['model'], registers });
    this.speculativeForwards = new Counter({ name: 'frugal_speculative_forwards_total', help: 'Main-model forwards of speculative steps (each verifies the drafts of one step)', labelNames: ['model'], registers });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'frugal_' });
    scheduler.onFinish = (result, spec) => {
      const model = spec.model.id;
      const { usage, timings, finishReason } = result.done;
      this.promptTokens.inc({ model }, usage.promptTokens);
      this.completionTokens.inc({ model }, usage.completionTokens);
      this.cacheHitTokens.inc({ model }, usage.cachedTokens);
      this.generations.inc({ model, finish_reason: finishReason });
      if (result.firstTokenMs !== undefined) this.timeToFirstToken.observe({ model }, result.firstTokenMs / 1000);
      if (timings.tokensPerSecond > 0) this.tokensPerSecond.observe({ model }, timings.tokensPerSecond);
      if (result.speculative) {
        this.draftedTokens.inc({ model }, result.speculative.drafted);
        this.acceptedTokens.inc({ model }, result.speculative.accepted);
        this.speculativeForwards.inc({ model }, result.speculative.forwards);
      }
    };
  }
}
