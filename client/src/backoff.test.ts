import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { backoffCeiling, backoffDelay } from './backoff.ts';

describe('the backoff ceiling', () => {
  it('doubles from the base on every attempt until it reaches the maximum', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6].map((n) => backoffCeiling(n, { baseMs: 100, maxMs: 2000 }));
    expect(ceilings).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it('stays finite for absurd attempt numbers', () => {
    expect(backoffCeiling(10_000, { baseMs: 500, maxMs: 20_000 })).toBe(20_000);
  });
});

describe('a full-jitter delay', () => {
  it('is always at least zero and below the ceiling of its attempt', () => {
    fc.assert(
      fc.property(
        fc.nat(60),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        (attempt, r, baseMs, maxMs) => {
          const delay = backoffDelay(attempt, { baseMs, maxMs }, () => r);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThan(Math.max(backoffCeiling(attempt, { baseMs, maxMs }), 1));
        },
      ),
    );
  });

  it('spreads uniformly over the whole range, so clients that dropped together do not return together', () => {
    const samples = 10_000;
    const ceiling = backoffCeiling(3, { baseMs: 500, maxMs: 20_000 });
    // Evenly spaced random values stand for a uniform source: the delays must cover [0, ceiling) evenly too.
    const delays = Array.from({ length: samples }, (_, i) =>
      backoffDelay(3, { baseMs: 500, maxMs: 20_000 }, () => i / samples),
    );
    const mean = delays.reduce((a, b) => a + b, 0) / samples;
    expect(Math.min(...delays)).toBe(0);
    expect(Math.max(...delays)).toBeGreaterThan(ceiling * 0.99);
    expect(Math.abs(mean - ceiling / 2) / ceiling).toBeLessThan(0.01);
    const quarters = [0, 0, 0, 0];
    for (const d of delays)
      quarters[Math.floor((d / ceiling) * 4)] = (quarters[Math.floor((d / ceiling) * 4)] ?? 0) + 1;
    for (const count of quarters) expect(Math.abs(count - samples / 4)).toBeLessThan(samples * 0.01);
  });
});
