/**
 * Tokenizers and chat prompts (../shared/spec/formats-and-api.md §4).
 * - Tokenizer: byte-level BPE with HF `tokenizers` semantics; Tokenizer.fromFile(tokenizer.json |
 *   model dir | .gguf), Tokenizer.fromJson(json, config?), Tokenizer.fromGgufMetadata(get);
 *   encode(text, { addSpecialTokens = false, parseSpecial = true }), decode(ids, { skipSpecialTokens }),
 *   streamDecoder(), tokenId(text), tokenText(id), vocabSize, bosId, eosId, padId, chatTemplate.
 * - tokenizerGgufMetadata(tokenizer, { pre?, vocabSize? }): the `tokenizer.*` GGUF entries llama.cpp expects.
 * - renderChat(messages, { template?, addGenerationPrompt, bosToken?, eosToken?, tools? }): the
 *   DeepSeek-R1 template in TypeScript by default, any Jinja chat_template otherwise.
 */
export { Tokenizer, type TokenizerSpec, type EncodeOptions, type DecodeOptions, type StreamDecoder, type Normalization } from './tokenizer.js';
export { tokenizerGgufMetadata, type GgufTokenizerOptions, TokenType } from './gguf-metadata.js';
export { type AddedToken, looksSpecial } from './added-tokens.js';
export { KNOWN_PATTERNS, GPT2_PATTERN } from './pre-tokenizer.js';
export type { TokenizerConfigJson } from './load-json.js';
export { renderChat, renderR1Chat, R1_BOS, R1_EOS, type ChatMessage, type ToolCall, type RenderChatOptions } from './chat-template.js';
