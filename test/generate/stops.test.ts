import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopStringMatcher } from '../../src/generate/stops.js';

/** Every way to cut `text` into up to three pieces. */
function* splits(text: string): Generator<string[]> {
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) yield [text.slice(0, i), text.slice(i, j), text.slice(j)];
  }
}

function run(stops: string[], pieces: string[]): { out: string; stop?: string; emittedAfterStop: boolean } {
  const m = new StopStringMatcher(stops);
  let out = '';
  let stop: string | undefined;
  let emittedAfterStop = false;
  for (const p of pieces) {
    const r = m.push(p);
    if (stop !== undefined && r.text) emittedAfterStop = true;
    out += r.text;
    if (r.stop !== undefined) stop = r.stop;
  }
  if (stop === undefined) out += m.flush();
  return { out, stop, emittedAfterStop };
}

test('a stop string spanning pieces is found and never emitted, for every split', () => {
  const text = 'The answer is 42.\n\nUser: more';
  for (const pieces of splits(text)) {
    const r = run(['\n\nUser:'], pieces);
    assert.equal(r.out, 'The answer is 42.', JSON.stringify(pieces));
    assert.equal(r.stop, '\n\nUser:');
    assert.equal(r.emittedAfterStop, false);
  }
});

test('text that only starts like a stop string is released', () => {
  for (const pieces of splits('abcabd!')) {
    const r = run(['abd!x'], pieces);
    assert.equal(r.out, 'abcabd!', JSON.stringify(pieces));
    assert.equal(r.stop, undefined);
  }
  // and is held back (not yet emitted) while it still could match
  const m = new StopStringMatcher(['END']);
  assert.deepEqual(m.push('foo E'), { text: 'foo ' });
  assert.equal(m.held, 'E');
  assert.deepEqual(m.push('N'), { text: '' });
  assert.deepEqual(m.push('x'), { text: 'ENx' });
});

test('the earliest of several stop strings wins', () => {
  for (const pieces of splits('one two three')) {
    const r = run(['three', 'two', 'e t'], pieces);
    assert.equal(r.out, 'on', JSON.stringify(pieces));
    assert.equal(r.stop, 'e t');
  }
});

test('no stop strings passes text through; empty stop strings are rejected', () => {
  const m = new StopStringMatcher();
  assert.deepEqual(m.push('abc'), { text: 'abc' });
  assert.equal(m.flush(), '');
  assert.throws(() => new StopStringMatcher(['ok', '']), /stop string 1/);
});

test('a stop string at the very start gives empty output', () => {
  for (const pieces of splits('##rest')) assert.equal(run(['##'], pieces).out, '');
});
