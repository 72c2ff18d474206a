/**
 * Limits end to end against the local runtime (docs/security.md): the per-connection message rate with its burst,
 * the tenant publish rate, connection caps per user and per tenant (handshake 429), the per-user HTTP rate
 * (429 with Retry-After), frame and publish sizes. Tenants here are created by the test: `plain` with the service
 * defaults, `tiny` with small overrides in the tenant catalog.
 */
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { defaultLimits } from '../../lambdas/core/rate-limit.ts';
import { Registry } from '../../lambdas/core/registry.ts';
import { limits } from '../../lambdas/manifest.ts';
import { defaultRoleRules } from '../../local/seed.ts';
import { openClient, sleep, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import { type Frame, handshakeStatus, type TestClient } from '../support/ws-client.ts';

const runtime = useQuietRuntime(
  {
    sqsRetryDelaySeconds: 0,
    schedules: false,
    functionEnv: { TENANT_CACHE_TTL_SECONDS: '0' },
  },
  {
    prepare: async () => {
      await runtime().tenants.put({ tenantId: 'plain', roleRules: defaultRoleRules });
      await runtime().tenants.put({
        tenantId: 'tiny',
        roleRules: defaultRoleRules,
        limits: {
          maxConnections: 3,
          maxConnectionsPerUser: 2,
          publishesPerSecond: 1,
          publishBurst: 2,
          httpBurst: 2,
          httpRequestsPerSecond: 1,
        },
      });
    },
  },
);

const token = (tenantId: string, userId: string, roles: string[] = ['member']) =>
  tokenFor(runtime(), tenantId, userId, roles);

async function client(tenantId: string, userId: string, roles?: string[]): Promise<TestClient> {
  return openClient(runtime(), token(tenantId, userId, roles));
}

/** Sends `count` pings at once and waits for every answer. */
async function burst(c: TestClient, count: number): Promise<Frame[]> {
  return Promise.all(Array.from({ length: count }, () => c.request({ action: 'ping' }, 10_000)));
}

describe('the message rate of a connection (defaults: 10/s, burst 20)', () => {
  it('admits the burst, refuses the rest with RATE_LIMITED and retryAfterMs, and recovers after that wait', async () => {
    const c = await client('plain', 'chatty');
    const answers = await burst(c, 40);
    const pongs = answers.filter((f) => f.type === 'pong').length;
    const limited = answers.filter((f) => f.type === 'error');
    // The burst, plus whatever refilled (10/s) while 40 frames were being answered.
    expect(pongs).toBeGreaterThanOrEqual(defaultLimits.message.burst);
    expect(pongs).toBeLessThan(40);
    for (const error of limited) {
      expect(error).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });
      expect(error.retryAfterMs as number).toBeGreaterThan(0);
      expect(error.retryAfterMs as number).toBeLessThanOrEqual(1000 / defaultLimits.message.perSecond + 1);
    }
    const waitMs = Math.max(...limited.map((f) => f.retryAfterMs as number));
    await sleep(waitMs + 20);
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('is per connection: a second connection of the same user is not slowed by the first', async () => {
    const first = await client('plain', 'twice');
    const second = await client('plain', 'twice');
    await burst(first, 30);
    expect(await second.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });
});

describe('the publish rate of a tenant', () => {
  it('is shared by all its connections and answered with RATE_LIMITED past the tenant burst', async () => {
    const a = await client('tiny', 'pub-a', ['admin']);
    const b = await client('tiny', 'pub-b', ['admin']);
    const answers = [
      await a.request({ action: 'publish', group: 'chat:x', data: 1 }),
      await b.request({ action: 'publish', group: 'chat:x', data: 2 }),
      await a.request({ action: 'publish', group: 'chat:x', data: 3 }),
    ];
    expect(answers.map((f) => f.type)).toEqual(['ack', 'ack', 'error']);
    expect(answers[2]).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });
    await a.close();
    await b.close();
    await runtime().gateway.whenIdle();
  });
});

describe('connection caps', () => {
  it('refuse a user past maxConnectionsPerUser with 429 and admit again once one closes', async () => {
    const one = await client('tiny', 'capped');
    await client('tiny', 'capped');
    expect(await handshakeStatus(runtime().wsUrl, token('tiny', 'capped'))).toBe(429);
    await one.close();
    await runtime().gateway.whenIdle();
    expect(await handshakeStatus(runtime().wsUrl, token('tiny', 'capped'))).toBe(101);
  });

  it('refuse anyone of a tenant at maxConnections with 429, and never count another tenant', async () => {
    await runtime().gateway.whenIdle();
    // 'capped' still holds one; two more fill the tenant's 3.
    await client('tiny', 'other1');
    await client('tiny', 'other2');
    expect(await handshakeStatus(runtime().wsUrl, token('tiny', 'other3'))).toBe(429);
    expect(await handshakeStatus(runtime().wsUrl, token('plain', 'other3'))).toBe(101);
  });
});

describe('the HTTP API rate of a user', () => {
  it('answers past the burst with 429, RATE_LIMITED and Retry-After', async () => {
    const auth = { authorization: `Bearer ${token('tiny', 'http-user', ['admin'])}` };
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${runtime().url}/v1/usage`, { headers: auth });
      statuses.push(response.status);
      if (response.status === 429) limited = response;
      else await response.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited?.json()).toMatchObject({ error: { code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) } });
    // Another user of the same tenant has a bucket of their own.
    const other = await fetch(`${runtime().url}/v1/usage`, {
      headers: { authorization: `Bearer ${token('tiny', 'http-other', ['admin'])}` },
    });
    expect(other.status).toBe(200);
  });
});

describe('the subscriptions of a connection', () => {
  it(`are at most ${limits.subscriptionsPerConnection}: one more is RATE_LIMITED in its first minute at the cap (FORBIDDEN after), one held already or after an unsubscribe is taken`, async () => {
    const before = new Set(runtime().gateway.connections.keys());
    const c = await openClient(runtime(), token('plain', 'collector'));
    const id = [...runtime().gateway.connections.keys()].find((key) => !before.has(key)) as string;
    // All but one of the subscriptions written straight to the registry (a client would take ten seconds at its rate).
    const registry = new Registry({
      client: DynamoDBDocumentClient.from(runtime().dynamo.client),
      tableName: runtime().tableName,
    });
    const caller = { tenantId: 'plain', userId: 'collector', roles: ['member'], claims: {} };
    const max = limits.subscriptionsPerConnection;
    await Promise.all(
      Array.from({ length: max - 1 }, (_, i) => registry.subscribe(caller, id, `chat:g${i}`, Date.now())),
    );
    expect(await c.request({ action: 'subscribe', group: 'chat:last' })).toMatchObject({ type: 'ack' });
    expect(await c.request({ action: 'subscribe', group: 'chat:one-more' })).toMatchObject({
      type: 'error',
      code: 'RATE_LIMITED',
      message: expect.stringContaining(`has ${max} subscriptions`),
      retryAfterMs: 1000,
    });
    expect(await c.request({ action: 'subscribe', group: 'chat:g7' })).toMatchObject({ type: 'ack' });
    expect(await c.request({ action: 'unsubscribe', group: 'chat:g7' })).toMatchObject({ type: 'ack' });
    expect(await c.request({ action: 'subscribe', group: 'chat:one-more' })).toMatchObject({ type: 'ack' });
    expect((await registry.groupsOf(id)).length).toBe(max);
    // Full again after an unsubscribe: a new stretch at the cap, worth another try again.
    expect(await c.request({ action: 'subscribe', group: 'chat:two-more' })).toMatchObject({
      type: 'error',
      code: 'RATE_LIMITED',
      retryAfterMs: 1000,
    });
  }, 30_000);
});

describe('a subscribe raced by an unsubscribe of the same group', () => {
  it('never leaves a membership the connection does not hold, so the cap counts every one', async () => {
    const registry = new Registry({
      client: DynamoDBDocumentClient.from(runtime().dynamo.client),
      tableName: runtime().tableName,
    });
    const caller = { tenantId: 'plain', userId: 'racer', roles: ['member'], claims: {} };
    const groups = Array.from({ length: 200 }, (_, i) => `chat:race-${i}`);
    // The unsubscribe received a moment after the subscribe, both running at once, as API Gateway runs a
    // connection's frames (the registry's calls directly: a client would wait on its message rate).
    await Promise.all(
      groups.map(async (group, i) => {
        const at = 1_000 * i;
        const subscribed = registry.subscribe(caller, 'racer=', group, Date.now(), { at });
        await sleep(i % 4);
        await Promise.all([subscribed, registry.unsubscribe('plain', 'racer=', group, at + 1)]);
      }),
    );
    const held = new Set(await registry.groupsOf('racer='));
    const members: string[] = [];
    for (const group of groups) {
      for await (const page of registry.members('plain', group)) {
        if (page.some((m) => m.connectionId === 'racer=')) members.push(group);
      }
    }
    // Until 2026-12-03 some of these races left a member item without the connection's own: delivered to after the
    // unsubscribe, never counted by the cap, never removed with the connection.
    expect(members.filter((group) => !held.has(group))).toEqual([]);
  }, 60_000);
});

describe('sizes', () => {
  it('answer publish data over 16 KB with TOO_LARGE and keep the connection', async () => {
    const c = await client('plain', 'big', ['admin']);
    expect(await c.request({ action: 'publish', group: 'chat:big', data: 'x'.repeat(16 * 1024 + 1) })).toMatchObject({
      type: 'error',
      code: 'TOO_LARGE',
    });
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('close the connection with 1009 on a 32 KB frame', async () => {
    const c = await client('plain', 'huge');
    c.send({ action: 'ping', ref: 'x'.repeat(32 * 1024) });
    expect((await c.closed).code).toBe(1009);
  });
});
