import { describe, expect, it } from '@jest/globals';
import { fullJitterDelay, withBackoff } from './backoff.ts';

const retryable = Object.assign(new Error('throttled'), { retry: true });
const fatal = new Error('bad request');

describe('full-jitter backoff', () => {
  it('draws each delay between zero and the capped exponential', () => {
    expect(fullJitterDelay(1, 25, 1000, () => 0)).toBe(0);
    expect(fullJitterDelay(1, 25, 1000, () => 0.999)).toBe(49);
    expect(fullJitterDelay(3, 25, 1000, () => 0.5)).toBe(100);
    expect(fullJitterDelay(10, 25, 1000, () => 0.999)).toBe(999);
  });

  it('retries retryable failures, sleeping a jittered delay between attempts, until one succeeds', async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await withBackoff(
      async () => {
        if (++calls < 3) throw retryable;
        return 'ok';
      },
      { isRetryable: (e) => e === retryable, random: () => 0.5, sleep: async (ms) => void slept.push(ms) },
    );
    expect(result).toBe('ok');
    expect(slept).toEqual([25, 50]);
  });

  it('gives up after the last attempt with the last error', async () => {
    let calls = 0;
    const out = withBackoff(
      async () => {
        calls++;
        throw retryable;
      },
      { attempts: 3, isRetryable: () => true, sleep: async () => undefined },
    );
    await expect(out).rejects.toBe(retryable);
    expect(calls).toBe(3);
  });

  it('throws a non-retryable error at once', async () => {
    let calls = 0;
    const out = withBackoff(
      async () => {
        calls++;
        throw fatal;
      },
      { isRetryable: (e) => e === retryable, sleep: async () => undefined },
    );
    await expect(out).rejects.toBe(fatal);
    expect(calls).toBe(1);
  });
});
