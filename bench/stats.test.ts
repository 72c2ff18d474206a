import { describe, expect, it } from '@jest/globals';
import { medianBy, percentile, steadyDeliveriesPerSecond, summarize } from './stats.ts';

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

describe('steadyDeliveriesPerSecond', () => {
  it('reads a steady latency as the offered rate, however long the latency', () => {
    // 500 messages at 100/s to 1000 connections: the first delivered at 400 ms, the last 4.99 s later.
    expect(steadyDeliveriesPerSecond({ received: 500_000, firstAt: 400, lastAt: 5390 }, 100)).toBe(100_000);
  });

  it('reads a growing backlog as falling behind', () => {
    expect(steadyDeliveriesPerSecond({ received: 500_000, firstAt: 400, lastAt: 10_390 }, 100)).toBe(50_000);
  });

  it('has no figure for a burst or a single delivery time', () => {
    expect(
      steadyDeliveriesPerSecond({ received: 100, firstAt: 0, lastAt: 10 }, Number.POSITIVE_INFINITY),
    ).toBeUndefined();
    expect(steadyDeliveriesPerSecond({ received: 1, firstAt: 5, lastAt: 5 }, 100)).toBeUndefined();
  });
});
