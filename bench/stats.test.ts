import { describe, expect, it } from '@jest/globals';
import { medianBy, percentile, summarize } from './stats.ts';

describe('medianBy', () => {
  it('picks the item whose key is the median, whatever the order', () => {
    const runs = [
      { id: 'a', rate: 70 },
      { id: 'b', rate: 40 },
      { id: 'c', rate: 55 },
    ];
    expect(medianBy(runs, (r) => r.rate).id).toBe('c');
  });

  it('picks the lower middle item of an even count, and the only one of one', () => {
    expect(medianBy([4, 1, 3, 2], (n) => n)).toBe(2);
    expect(medianBy([9], (n) => n)).toBe(9);
  });

  it('refuses an empty list', () => {
    expect(() => medianBy([], (n: number) => n)).toThrow('at least one');
  });
});

describe('percentile and summarize', () => {
  it('use the nearest rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 99)).toBe(99);
    expect(summarize([3, 1, 2])).toMatchObject({ count: 3, p50: 2, max: 3, mean: 2 });
  });
});
