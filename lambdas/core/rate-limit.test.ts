import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { FakeTable } from '../../test/support/fake-table.ts';
import { useLocalTable } from '../../test/support/local-table.ts';
import { LEASE_MS, maxLease } from './rate-lease.ts';
import { DynamoRateLimiter, defaultLimits, effectiveLimits, gcra, type RateSpec, rateKeys } from './rate-limit.ts';

const tenPerSecond = { perSecond: 10, burst: 20 };

describe('gcra', () => {
  it('admits a full burst from an idle bucket, then refuses until one interval has passed', () => {
    let tat: number | undefined;
    for (let i = 0; i < 20; i++) {
      const decision = gcra(tat, 1000, tenPerSecond);
      if (!decision.allowed) throw new Error(`request ${i} of the burst was refused`);
      tat = decision.next;
    }
    expect(gcra(tat, 1000, tenPerSecond)).toEqual({ allowed: false, retryAfterMs: 100 });
    expect(gcra(tat, 1100, tenPerSecond)).toMatchObject({ allowed: true });
  });

  it('sustains the rate: one request per interval is always admitted', () => {
    let tat: number | undefined;
    for (let now = 0; now < 10_000; now += 100) {
      const decision = gcra(tat, now, tenPerSecond);
      expect(decision.allowed).toBe(true);
      if (decision.allowed) tat = decision.next;
    }
  });

  it('refills completely after a quiet period as long as the burst', () => {
    const drained = 1000 + 20 * 100;
    expect(gcra(drained, 1000 + 2000, tenPerSecond)).toMatchObject({ allowed: true });
    expect(gcra(drained, 1000, tenPerSecond)).toMatchObject({ allowed: false, retryAfterMs: 100 });
  });
});

describe('effective limits', () => {
  it('take the tenant overrides over the defaults, key by key', () => {
    const limits = effectiveLimits({ messageBurst: 5, maxConnections: 7 });
    expect(limits.message).toEqual({ perSecond: defaultLimits.message.perSecond, burst: 5 });
    expect(limits.maxConnections).toBe(7);
    expect(limits.publish).toEqual(defaultLimits.publish);
  });
});

describe('the DynamoDB rate limiter', () => {
  let client: DynamoDBDocumentClient;
  const tableName = 'rate-limit-test';

  useLocalTable(tableName, (table) => {
    client = table.client;
  });

  it('shares one bucket between instances: two containers together get one burst, not two', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const a = new DynamoRateLimiter({ client, tableName, now: clock });
    const b = new DynamoRateLimiter({ client, tableName, now: clock });
    const key = rateKeys.connection('shared');
    const decisions = [];
    for (let i = 0; i < 30; i++) decisions.push(await (i % 2 === 0 ? a : b).take(key, tenPerSecond));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    expect(decisions.at(-1)).toEqual({ allowed: false, retryAfterMs: 100 });

    now += 100;
    expect(await b.take(key, tenPerSecond)).toEqual({ allowed: true });
    expect(await a.take(key, tenPerSecond)).toMatchObject({ allowed: false });
  });

  it('is not refused by other sandboxes winning the races when the bucket has room', async () => {
    const table = new FakeTable();
    const now = 7_000_000;
    let races = 5;
    // Each lost race answers as AWS does: the condition failed, and the bucket (idle, full of tokens) comes back.
    const racing = {
      send: async (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'UpdateCommand' && races-- > 0) {
          throw Object.assign(new Error('The conditional request failed'), {
            name: 'ConditionalCheckFailedException',
            Item: { tat: { N: String(now - 60_000) } },
          });
        }
        return (table.client as unknown as { send: (c: unknown) => Promise<unknown> }).send(command);
      },
    } as unknown as DynamoDBDocumentClient;
    const limiter = new DynamoRateLimiter({ client: racing, tableName: 'test', now: () => now });
    expect(await limiter.take('T#race#PUB', defaultLimits.publish)).toEqual({ allowed: true });
    expect(races).toBeLessThan(0);
  });

  it('keeps keys apart and counts concurrent takes exactly', async () => {
    const now = () => 5_000_000;
    const limiters = Array.from({ length: 4 }, () => new DynamoRateLimiter({ client, tableName, now }));
    const decisions = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (limiters[i % 4] as DynamoRateLimiter).take('T#x#PUB', { perSecond: 1, burst: 5 }),
      ),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
    expect(await limiters[0]?.take('T#y#PUB', { perSecond: 1, burst: 5 })).toEqual({ allowed: true });
  });
});

/** A seeded pseudo-random source (mulberry32): the same arrivals on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Several sandboxes (limiter instances) on one table and one clock; each request goes to one of them. */
function sandboxes(count: number) {
  const table = new FakeTable();
  let now = 1_000_000;
  const limiters = Array.from(
    { length: count },
    () => new DynamoRateLimiter({ client: table.client, tableName: 't', now: () => now }),
  );
  const writes = () => table.calls.filter((c) => c.name === 'UpdateCommand').length;
  const reads = () => table.calls.filter((c) => c.name === 'GetCommand').length;
  return {
    limiters,
    writes,
    reads,
    at: (t: number) => {
      now = t;
    },
    get now() {
      return now;
    },
  };
}

/** Runs `arrivals` (epoch ms, ascending) through random sandboxes; the times of the admitted ones. */
async function admitted(
  sim: ReturnType<typeof sandboxes>,
  arrivals: readonly number[],
  spec: RateSpec,
  random: () => number,
): Promise<number[]> {
  const times: number[] = [];
  for (const t of arrivals) {
    sim.at(t);
    const limiter = sim.limiters[Math.floor(random() * sim.limiters.length)] as DynamoRateLimiter;
    if ((await limiter.take('T#x#PUB', spec)).allowed) times.push(t);
  }
  return times;
}

/** The largest number of admissions in any interval, above `burst + perSecond * length`. */
function worstExcess(times: readonly number[], spec: RateSpec): number {
  let worst = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      const length = ((times[j] as number) - (times[i] as number)) / 1000;
      worst = Math.max(worst, j - i + 1 - (spec.burst + spec.perSecond * length));
    }
  }
  return worst;
}

/** Poisson arrivals at `perSecond` from `from` for `seconds`. */
function arrivalsAt(perSecond: number, from: number, seconds: number, random: () => number): number[] {
  const times: number[] = [];
  for (let t = from - Math.log(1 - random()) * (1000 / perSecond); t < from + seconds * 1000; ) {
    times.push(Math.round(t * 1000) / 1000);
    t += -Math.log(1 - random()) * (1000 / perSecond);
  }
  return times;
}

describe('sandboxes leasing from one bucket', () => {
  const publish = defaultLimits.publish;

  it('never admit more than the burst plus the rate over any interval, plus the stated bound, under a flood', async () => {
    const random = seeded(7);
    const sim = sandboxes(4);
    const arrivals = arrivalsAt(3 * publish.perSecond, sim.now, 10, random);
    const times = await admitted(sim, arrivals, publish, random);
    // The bound (docs/security.md): at most min(rate × lease lifetime, sandboxes × (largest lease - 1)).
    const bound = Math.min((publish.perSecond * LEASE_MS) / 1000, 4 * (maxLease(publish) - 1));
    expect(worstExcess(times, publish)).toBeLessThanOrEqual(bound);
    // From a full bucket (no token held yet), never more than the bucket itself allows.
    const start = arrivals[0] as number;
    const aboveStrict = times.map((t, i) => i + 1 - (publish.burst + (publish.perSecond * (t - start)) / 1000));
    expect(Math.max(...aboveStrict)).toBeLessThanOrEqual(0);
    // And the flood still gets what the bucket gives: its burst and the rate, less the tokens left unspent.
    expect(times.length).toBeGreaterThanOrEqual(publish.burst + publish.perSecond * 10 * 0.9);
  });

  it('admit at most the strict bucket from a full bucket, and all of it, when a flood arrives at once', async () => {
    const sim = sandboxes(8);
    const spec = defaultLimits.message;
    const decisions = [];
    for (let i = 0; i < 40; i++) decisions.push(await (sim.limiters[i % 8] as DynamoRateLimiter).take('C#c', spec));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(spec.burst);
    for (const refused of decisions.filter((d) => !d.allowed)) {
      expect(refused).toEqual({ allowed: false, retryAfterMs: 1000 / spec.perSecond });
    }
  });

  it('stay within the bound with bursts and quiet spells below and above the rate', async () => {
    const random = seeded(11);
    const sim = sandboxes(6);
    const start = sim.now;
    const arrivals = [
      ...arrivalsAt(0.5 * publish.perSecond, start, 3, random),
      ...arrivalsAt(5 * publish.perSecond, start + 3000, 1, random),
      ...arrivalsAt(0.9 * publish.perSecond, start + 6000, 3, random),
      ...arrivalsAt(2 * publish.perSecond, start + 9000, 2, random),
    ];
    const times = await admitted(sim, arrivals, publish, random);
    const bound = Math.min((publish.perSecond * LEASE_MS) / 1000, 6 * (maxLease(publish) - 1));
    expect(worstExcess(times, publish)).toBeLessThanOrEqual(bound);
  });
});

describe('the write cost of a bucket', () => {
  const hot = { perSecond: 10_000, burst: 20_000 };

  it('is a few writes per second for a key at 100/s in one sandbox, not one per request', async () => {
    const sim = sandboxes(1);
    const arrivals = Array.from({ length: 200 }, (_, i) => sim.now + i * 10);
    const times = await admitted(sim, arrivals, hot, seeded(1));
    expect(times).toHaveLength(200);
    expect(sim.writes()).toBeLessThanOrEqual(8);
  });

  it('stays near one write per lease when 4 sandboxes share the key', async () => {
    const sim = sandboxes(4);
    const arrivals = Array.from({ length: 200 }, (_, i) => sim.now + i * 10);
    await admitted(sim, arrivals, hot, seeded(2));
    expect(sim.writes() / 200).toBeLessThanOrEqual(0.15);
  });

  it('is one write per admitted request for a small bucket (no leases), as plain GCRA', async () => {
    const sim = sandboxes(1);
    const limiter = sim.limiters[0] as DynamoRateLimiter;
    const spec = { perSecond: 1, burst: 2 };
    expect([await limiter.take('T#t#PUB', spec), await limiter.take('T#t#PUB', spec)]).toEqual([
      { allowed: true },
      { allowed: true },
    ]);
    expect(sim.writes()).toBe(2);
  });

  it('is nothing for a refusal the sandbox can prove from memory, and one failed write (no read) for the first', async () => {
    const sim = sandboxes(2);
    const [a, b] = sim.limiters as [DynamoRateLimiter, DynamoRateLimiter];
    const spec = { perSecond: 1, burst: 2 };
    await a.take('T#t#PUB', spec);
    await a.take('T#t#PUB', spec);
    const drained = sim.writes();
    // b has never seen the key: one conditional write fails and returns the bucket, which proves the refusal.
    expect(await b.take('T#t#PUB', spec)).toEqual({ allowed: false, retryAfterMs: 1000 });
    expect(sim.writes()).toBe(drained + 1);
    expect(sim.reads()).toBe(0);
    // From then on both refuse from memory until the next token can exist.
    for (let i = 0; i < 20; i++) {
      sim.at(sim.now + 40);
      expect((await (i % 2 === 0 ? a : b).take('T#t#PUB', spec)).allowed).toBe(false);
    }
    expect(sim.writes()).toBe(drained + 1);
    sim.at(sim.now + 200);
    expect(await b.take('T#t#PUB', spec)).toEqual({ allowed: true });
  });

  it('spends no leased token after its lease expired: the next request writes', async () => {
    const sim = sandboxes(1);
    const limiter = sim.limiters[0] as DynamoRateLimiter;
    for (let i = 0; i < 3; i++) {
      sim.at(sim.now + 1);
      await limiter.take('K', hot);
    }
    const before = sim.writes();
    sim.at(sim.now + LEASE_MS);
    await limiter.take('K', hot);
    expect(sim.writes()).toBe(before + 1);
  });
});
