import { describe, expect, it } from '@jest/globals';
import { NotReading } from './not-reading.ts';

describe('connections remembered as not reading', () => {
  it('are remembered by tenant, group and connection, for ttlMs after their last refusal', () => {
    let clock = 0;
    const notReading = new NotReading({ ttlMs: 1000, now: () => clock });
    notReading.add('acme', 'user:alice', 'a');
    notReading.add('acme', 'user:alice', 'b');
    clock = 999;
    expect([
      notReading.has('acme', 'user:alice', 'a'),
      notReading.has('acme', 'user:alice', 'b'),
      // The same connection in another group, where it may be a member owed everything, is not.
      notReading.has('acme', 'chat', 'a'),
      notReading.has('globex', 'user:alice', 'a'),
    ]).toEqual([true, true, false, false]);
    notReading.delete('acme', 'user:alice', 'a');
    notReading.add('acme', 'user:alice', 'b');
    clock = 1500;
    expect([notReading.has('acme', 'user:alice', 'a'), notReading.has('acme', 'user:alice', 'b')]).toEqual([
      false,
      true,
    ]);
    clock = 2000;
    expect(notReading.has('acme', 'user:alice', 'b')).toBe(false);
  });

  it('forget them all rather than grow past maxEntries', () => {
    const notReading = new NotReading({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) notReading.add('acme', 'user:alice', id);
    expect(['a', 'b', 'c'].map((id) => notReading.has('acme', 'user:alice', id))).toEqual([false, false, true]);
  });
});
