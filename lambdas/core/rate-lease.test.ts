import { describe, expect, it } from '@jest/globals';
import {
  type KeyMemory,
  LEASE_MS,
  leaseReserve,
  maxLease,
  nextLeaseSize,
  recordLease,
  spendHeld,
  tokensAvailable,
} from './rate-lease.ts';
import { defaultLimits } from './rate-limit.ts';

const hot = { perSecond: 10_000, burst: 20_000 };

/** A key whose last lease of `leased` tokens was taken `ago` ms before `now` and is spent. */
const spentLease = (leased: number, ago: number, now = 10_000): KeyMemory => ({
  tat: 0,
  held: 0,
  until: now - ago + LEASE_MS,
  leased,
  leasedAt: now - ago,
});

describe('the largest lease of a bucket', () => {
  it('is a tenth of the burst, so the service defaults lease at most 20 publishes and 4 HTTP requests', () => {
    expect(maxLease({ perSecond: 10, burst: 30 })).toBe(3);
    expect(maxLease(defaultLimits.publish)).toBe(20);
    expect(maxLease(defaultLimits.http)).toBe(4);
  });

  it("is one token for a burst of 20 or less, so small buckets (a connection's frames, presence) are exact GCRA", () => {
    expect(maxLease(defaultLimits.presence)).toBe(1);
    expect(maxLease(defaultLimits.message)).toBe(1);
    expect(maxLease({ perSecond: 1, burst: 2 })).toBe(1);
    expect(maxLease({ perSecond: 0.2, burst: 3 })).toBe(1);
  });

  it('never exceeds what the bucket refills in one lease lifetime', () => {
    expect(maxLease({ perSecond: 5, burst: 1000 })).toBe(5);
  });
});

describe('the size of the next lease', () => {
  it('is one token for a key this sandbox has not seen or has not seen for two lease lifetimes', () => {
    expect(nextLeaseSize(undefined, 10_000, hot)).toBe(1);
    expect(nextLeaseSize(spentLease(100, 2 * LEASE_MS + 1), 10_000, hot)).toBe(1);
  });

  it('grows at most sixteenfold per lease', () => {
    expect(nextLeaseSize(spentLease(1, 1), 10_000, hot)).toBe(16);
    expect(nextLeaseSize(spentLease(16, 1), 10_000, hot)).toBe(256);
  });

  it('aims to last a lease lifetime at the rate this sandbox saw', () => {
    // 100 tokens spent in 500 ms: 200/s, so 200 tokens for the next second.
    expect(nextLeaseSize(spentLease(100, 500), 10_000, hot)).toBe(200);
    // A slower key shrinks its leases: 30 tokens in 1,500 ms.
    expect(nextLeaseSize(spentLease(30, 1500), 10_000, hot)).toBe(20);
  });

  it('counts tokens that expired unspent as not spent', () => {
    const memory: KeyMemory = { tat: 0, held: 30, until: 9_900, leased: 40, leasedAt: 8_900 };
    // 10 of 40 spent in 1,100 ms.
    expect(nextLeaseSize(memory, 10_000, hot)).toBe(10);
  });

  it('never exceeds the largest lease of the bucket', () => {
    expect(nextLeaseSize(spentLease(20, 1), 10_000, defaultLimits.publish)).toBe(20);
    expect(nextLeaseSize(spentLease(3, 1), 10_000, { perSecond: 10, burst: 30 })).toBe(3);
    expect(nextLeaseSize(spentLease(2, 1), 10_000, defaultLimits.message)).toBe(1);
  });

  it('is one token when the bucket, as far as this sandbox knows, would keep less than half its burst', () => {
    const spec = defaultLimits.publish;
    const now = 10_000;
    // 105 of 200 tokens left: a lease of more than 5 would go below the reserve of 100.
    const memory = { ...spentLease(20, 1, now), tat: now + 95 * 10 };
    expect(leaseReserve(spec)).toBe(100);
    expect(tokensAvailable(memory.tat, now, spec)).toBe(105);
    expect(nextLeaseSize(memory, now, spec)).toBe(5);
    expect(nextLeaseSize({ ...memory, tat: now + 100 * 10 }, now, spec)).toBe(1);
  });
});

describe('leased tokens', () => {
  it('are spent one by one until none is left', () => {
    const memory = recordLease(undefined, 3, 2_000, 1_000, 19);
    expect(memory.held).toBe(2);
    expect([spendHeld(memory, 1_001), spendHeld(memory, 1_002), spendHeld(memory, 1_003)]).toEqual([true, true, false]);
  });

  it('are never spent after their lease expired', () => {
    const memory = recordLease(undefined, 5, 2_000, 1_000, 19);
    expect(spendHeld(memory, 1_000 + LEASE_MS - 1)).toBe(true);
    expect(spendHeld(memory, 1_000 + LEASE_MS)).toBe(false);
  });

  it('of two leases expire with the earlier one', () => {
    const first = recordLease(undefined, 3, 2_000, 1_000, 19);
    const both = recordLease(first, 4, 2_100, 1_500, 19);
    expect(both).toMatchObject({ held: 5, until: 1_000 + LEASE_MS, leased: 4, leasedAt: 1_500, tat: 2_100 });
  });

  it('of two leases taken at once are no more than one lease holds', () => {
    const first = recordLease(undefined, 20, 2_000, 1_000, 19);
    expect(recordLease(first, 20, 2_200, 1_001, 19).held).toBe(19);
  });
});
