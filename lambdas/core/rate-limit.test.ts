import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ensureTable, type LocalDynamo, startDynamo } from '../../local/dynamo.ts';
import { DynamoRateLimiter, defaultLimits, effectiveLimits, gcra, rateKeys } from './rate-limit.ts';

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
  let dynamo: LocalDynamo;
  let client: DynamoDBDocumentClient;
  const tableName = 'rate-limit-test';

  beforeAll(async () => {
    dynamo = await startDynamo();
    await ensureTable(dynamo.client, tableName);
    client = DynamoDBDocumentClient.from(dynamo.client);
  });
  afterAll(async () => {
    await dynamo?.close();
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
