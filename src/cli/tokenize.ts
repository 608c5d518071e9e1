/**
 * `frugal tokenize --tokenizer FILE --text TEXT` prints the token ids of TEXT as one JSON array.
 * `frugal tokenize --tokenizer FILE --jsonl` reads one JSON string per stdin line and writes one
 * JSON array of ids per line, in order. No BOS/EOS unless --add-special. External checks rely on
 * this exact contract. FILE is a tokenizer.json (a sibling tokenizer_config.json is read too) or a
 * .gguf model. Errors go to stderr with a non-zero exit code.
 */
import { createInterface } from 'node:readline';
import { Tokenizer } from '../tokenizer/index.js';

export const summary = 'print token ids of --text, or of each JSON string line on stdin (--jsonl)';

const USAGE = `usage: frugal tokenize --tokenizer FILE (--text TEXT | --jsonl) [--add-special] [--no-parse-special]
  --tokenizer FILE     tokenizer.json (with tokenizer_config.json beside it, if any) or a .gguf file
  --text TEXT          print the ids of TEXT as a JSON array
  --jsonl              read one JSON string per line on stdin, write one JSON array of ids per line
  --add-special        add BOS/EOS as the tokenizer is configured to
  --no-parse-special   treat control-token text (<｜User｜>, <|im_end|> ...) in the input as plain text`;

interface Options {
  tokenizer?: string;
  text?: string;
  jsonl: boolean;
  addSpecial: boolean;
  parseSpecial: boolean;
}

function parseArgs(args: string[]): Options | string {
  const options: Options = { jsonl: false, addSpecial: false, parseSpecial: true };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): string | undefined => (i + 1 < args.length ? args[++i] : undefined);
    switch (arg) {
      case '--tokenizer': {
        const v = value();
        if (v === undefined) return '--tokenizer needs a FILE';
        options.tokenizer = v;
        break;
      }
      case '--text': {
        const v = value();
        if (v === undefined) return '--text needs a TEXT';
        options.text = v;
        break;
      }
      case '--jsonl':
        options.jsonl = true;
        break;
      case '--add-special':
        options.addSpecial = true;
        break;
      case '--no-parse-special':
        options.parseSpecial = false;
        break;
      case '-h':
      case '--help':
        return '';
      default:
        return `unknown argument '${arg}'`;
    }
  }
  if (options.tokenizer === undefined) return 'missing --tokenizer FILE';
  if ((options.text === undefined) === !options.jsonl) return 'give exactly one of --text TEXT or --jsonl';
  return options;
}

function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === 'string') {
    if (parsed === '') {
      console.log(USAGE);
      return 0;
    }
    console.error(`frugal tokenize: ${parsed}\n${USAGE}`);
    return 2;
  }
  const tokenizer = Tokenizer.fromFile(parsed.tokenizer!);
  const encodeOptions = { addSpecialTokens: parsed.addSpecial, parseSpecial: parsed.parseSpecial };
  if (parsed.text !== undefined) {
    await write(`${JSON.stringify(tokenizer.encode(parsed.text, encodeOptions))}\n`);
    return 0;
  }
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNumber = 0;
  let batch = '';
  for await (const line of lines) {
    lineNumber++;
    let text: unknown;
    try {
      text = JSON.parse(line);
    } catch (error) {
      await write(batch);
      console.error(`frugal tokenize: stdin line ${lineNumber}: invalid JSON (${(error as Error).message})`);
      return 1;
    }
    if (typeof text !== 'string') {
      await write(batch);
      console.error(`frugal tokenize: stdin line ${lineNumber}: expected a JSON string, got ${text === null ? 'null' : typeof text}`);
      return 1;
    }
    batch += `${JSON.stringify(tokenizer.encode(text, encodeOptions))}\n`;
    if (batch.length > 1 << 16) {
      await write(batch);
      batch = '';
    }
  }
  await write(batch);
  return 0;
}
