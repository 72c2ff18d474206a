import { describe, expect, it } from '@jest/globals';
import { NotReading } from './not-reading.ts';

describe('connections remembered as not reading', () => {
  it('are remembered for ttlMs after their last refusal, and forgotten when told or past it', () => {
    let clock = 0;
    const notReading = new NotReading({ ttlMs: 1000, now: () => clock });
    notReading.add('a');
    notReading.add('b');
    clock = 999;
    expect([notReading.has('a'), notReading.has('b'), notReading.has('c')]).toEqual([true, true, false]);
    notReading.delete('a');
    notReading.add('b');
    clock = 1500;
    expect([notReading.has('a'), notReading.has('b')]).toEqual([false, true]);
    clock = 2000;
    expect(notReading.has('b')).toBe(false);
  });

  it('forget them all rather than grow past maxEntries', () => {
    const notReading = new NotReading({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) notReading.add(id);
    expect(['a', 'b', 'c'].map((id) => notReading.has(id))).toEqual([false, false, true]);
  });
});
