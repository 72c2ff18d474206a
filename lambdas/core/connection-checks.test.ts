import { describe, expect, it } from '@jest/globals';
import { ConnectionChecks } from './connection-checks.ts';

describe('ConnectionChecks', () => {
  it('answers a fresh outcome without calling again, and calls again once it is stale', async () => {
    let now = 1000;
    let calls = 0;
    const checks = new ConnectionChecks({ ttlMs: 100, now: () => now });
    const isConnected = async () => {
      calls++;
      return true;
    };
    expect(await checks.check('c1', isConnected)).toBe(true);
    expect(await checks.check('c1', isConnected)).toBe(true);
    expect(calls).toBe(1);
    expect(checks.isFresh('c1')).toBe(true);
    now += 100;
    expect(checks.isFresh('c1')).toBe(false);
    expect(checks.lastChecked('c1')).toBe(1000);
    await checks.check('c1', isConnected);
    expect(calls).toBe(2);
  });

  it('shares one call between concurrent checks of a connection', async () => {
    let calls = 0;
    const checks = new ConnectionChecks({ ttlMs: 100 });
    const isConnected = async () => {
      calls++;
      return false;
    };
    expect(await Promise.all([checks.check('c1', isConnected), checks.check('c1', isConnected)])).toEqual([
      false,
      false,
    ]);
    expect(calls).toBe(1);
  });

  it('forgets a failed check, so the next one calls again', async () => {
    const checks = new ConnectionChecks({ ttlMs: 100 });
    await expect(checks.check('c1', async () => Promise.reject(new Error('throttled')))).rejects.toThrow('throttled');
    expect(checks.lastChecked('c1')).toBeUndefined();
    expect(await checks.check('c1', async () => true)).toBe(true);
  });

  it('keeps at most maxEntries outcomes, dropping the oldest', async () => {
    const checks = new ConnectionChecks({ ttlMs: 100, maxEntries: 2 });
    for (const id of ['c1', 'c2', 'c3']) await checks.check(id, async () => true);
    expect(checks.lastChecked('c1')).toBeUndefined();
    expect(checks.isFresh('c2') && checks.isFresh('c3')).toBe(true);
  });
});
