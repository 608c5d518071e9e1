import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyDrills } from '../../src/train/copy-drills.js';
import { WORDS } from '../../src/train/tasks/words.js';

test('copy drills: the copy repeats the items exactly; 3-8 words or numbers; the same for the same seed', () => {
  const drills = copyDrills(500, 3);
  assert.equal(drills.length, 500);
  assert.deepEqual(copyDrills(500, 3), drills, 'same seed, same drills');
  assert.notDeepEqual(copyDrills(500, 4), drills, 'another seed, other drills');
  const words = new Set(WORDS);
  let numbers = 0;
  let wordItems = 0;
  for (const drill of drills) {
    const m = /^Copy: (.+)\nCopied: (.+)\.$/.exec(drill);
    assert.ok(m, drill);
    assert.equal(m[2], m[1], 'the copy equals the original');
    const items = m[1]!.split(', ');
    assert.ok(items.length >= 3 && items.length <= 8, drill);
    for (const item of items) {
      if (/^[1-9][0-9]{0,3}$|^[0-9]$/.test(item)) numbers++;
      else {
        assert.ok(words.has(item), `${item} is a word of the sort task's list`);
        wordItems++;
      }
    }
  }
  assert.ok(numbers > 500 && wordItems > 500, `both kinds of items (${numbers} numbers, ${wordItems} words)`);
  assert.equal(new Set(drills).size, drills.length, 'no drill repeats');
});
