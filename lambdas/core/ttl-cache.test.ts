import { describe, expect, it } from '@jest/globals';
import { TtlCache } from './ttl-cache.ts';

describe('the TTL cache', () => {
  it('loads once within the TTL and again after it', async () => {
    let now = 0;
    let loads = 0;
    const cache = new TtlCache(async (key) => `${key}${++loads}`, { ttlMs: 1000, now: () => now });
    expect(await cache.get('a')).toBe('a1');
    now = 999;
    expect(await cache.get('a')).toBe('a1');
    now = 1000;
    expect(await cache.get('a')).toBe('a2');
  });

  it('shares one load between concurrent misses and does not keep failures', async () => {
    let loads = 0;
    let fail = true;
    const cache = new TtlCache(
      async () => {
        loads++;
        if (fail) throw new Error('boom');
        return 'ok';
      },
      { ttlMs: 60_000 },
    );
    await expect(Promise.all([cache.get('k'), cache.get('k')])).rejects.toThrow('boom');
    expect(loads).toBe(1);
    fail = false;
    expect(await cache.get('k')).toBe('ok');
    expect(loads).toBe(2);
  });
});
