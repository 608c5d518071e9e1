/** Text generation: sampling, stops, the `<think>` parser, the per-sequence state and the engine loop. */
export { generate, collect, preparePrompt, checkPromptFits, type GenerationRequest, type PromptSource, type CacheSlot, type GenerationResult } from './engine.js';
export { Sequence, defaultStopTokenIds, type SequenceOptions, type ThinkingMode } from './sequence.js';
export type { GenerationEvent, TokenEvent, TextEvent, DoneEvent, FinishReason, Usage, Timings, GenerationTokenizer, Channel, TokenLogprob } from './events.js';
export { Sampler, resolveSamplingOptions, tokenLogprobs, logSumExp, selectTopInto, type SamplingOptions, type ResolvedSamplingOptions, type CandidateDistribution } from './sampling.js';
export { StopStringMatcher, type StopPush } from './stops.js';
export { ReasoningParser, promptOpensThought, type ChannelText, type ReasoningParserOptions } from './reasoning.js';
export { chatPromptTokens, type ChatMessage, type ChatPromptOptions } from './chat-prompt.js';
export { Rng, randomSeed } from './rng.js';
export { generateSpeculative, formatSpeculativeStats, type SpeculativeOptions, type SpeculativeDoneEvent } from './speculative.js';
