export { Tokenizer, type TokenizerSpec, type EncodeOptions, type DecodeOptions, type StreamDecoder, type Normalization } from './tokenizer.js';
export { tokenizerGgufMetadata, type GgufTokenizerOptions, TokenType } from './gguf-metadata.js';
export { type AddedToken, looksSpecial } from './added-tokens.js';
export { KNOWN_PATTERNS, GPT2_PATTERN } from './pre-tokenizer.js';
export type { TokenizerConfigJson } from './load-json.js';
export { renderChat, renderR1Chat, R1_BOS, R1_EOS, type ChatMessage, type ToolCall, type RenderChatOptions } from './chat-template.js';
