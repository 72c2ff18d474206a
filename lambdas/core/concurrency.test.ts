import { describe, expect, it } from '@jest/globals';
import { settleConcurrently } from './concurrency.ts';

describe('settleConcurrently', () => {
  it('never runs more than the limit at once and keeps results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await settleConcurrently([5, 1, 4, 2, 3, 0], 2, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight--;
      if (n === 4) throw new Error('four');
      return n * 10;
    });
    expect(peak).toBe(2);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'x'))).toEqual([50, 10, 'x', 20, 30, 0]);
  });

  it('refuses a limit that is not a positive integer', async () => {
    await expect(settleConcurrently([1], 0, async (n) => n)).rejects.toThrow(
      'limit must be a positive integer (got 0)',
    );
  });
});
