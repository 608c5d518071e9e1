/**
 * Copy drills for pretraining: "Copy: meadow, 4821, shelf\nCopied: meadow, 4821, shelf." with
 * random words (the sort task's list) and numbers. Every task's worked solution starts by
 * restating what the question gave (the words to sort, the digits of each number), which needs
 * attention that finds a token by its content and copies it (induction heads). A 2M-parameter
 * model pretrained on the task corpus alone never learned that in 11M tokens: it guessed plausible
 * words instead of copying them (0% on sorting). Drills in which copying is the only way to lower
 * the loss make that circuit form early; the task data then uses it.
 */
import { TaskRng } from './tasks/rng.js';
import { WORDS } from './tasks/words.js';

function item(rng: TaskRng, kind: number): string {
  if (kind === 0 || (kind === 2 && rng.float() < 0.5)) return rng.pick(WORDS);
  return rng.digits(rng.int(1, 4));
}

/** `count` drills (3-8 items each: words, numbers, or both), the same for the same seed. */
export function copyDrills(count: number, seed: number): string[] {
  const rng = new TaskRng(seed, 'copy-drills');
  const drills: string[] = [];
  for (let i = 0; i < count; i++) {
    const kind = rng.int(0, 2);
    const items = Array.from({ length: rng.int(3, 8) }, () => item(rng, kind)).join(', ');
    drills.push(`Copy: ${items}\nCopied: ${items}.`);
  }
  return drills;
}
