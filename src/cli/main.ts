/**
 * `frugal <command>`: each command lives in its own file and exports
 * `run(args: string[]): Promise<number>` (the exit code). Commands load lazily so that
 * `frugal tokenize` does not pay for the model code.
 */
type CommandModule = { run(args: string[]): Promise<number>; summary: string };

const commands: Record<string, () => Promise<CommandModule>> = {
  info: () => import('./info.js'),
  tokenize: () => import('./tokenize.js'),
  tokenizer: () => import('./tokenizer.js'),
  logits: () => import('./logits.js'),
  run: () => import('./run.js'),
  chat: () => import('./chat.js'),
  train: () => import('./train.js'),
  sft: () => import('./sft.js'),
  rl: () => import('./rl.js'),
  distill: () => import('./distill.js'),
  eval: () => import('./eval.js'),
  export: () => import('./export.js'),
  import: () => import('./import.js'),
  quantize: () => import('./quantize.js'),
  bench: () => import('./bench.js'),
  recipe: () => import('./recipe.js'),
  serve: () => import('./serve.js'),
  admin: () => import('./admin.js'),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log('usage: frugal <command> [options]\n\ncommands:');
    for (const [command, load] of Object.entries(commands)) {
      console.log(`  ${command.padEnd(10)} ${(await load()).summary}`);
    }
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`frugal: unknown command '${name}' (try 'frugal --help')`);
    return 2;
  }
  try {
    return await (await load()).run(rest);
  } catch (error) {
    console.error(`frugal ${name}: ${error instanceof Error ? error.message : String(error)}`);
    if (process.env.FRUGAL_DEBUG) console.error(error);
    return 1;
  }
}
