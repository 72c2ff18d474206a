/**
 * Token lifetime, refresh, revocation and logs without tokens, end to end against the local runtime over real
 * WebSockets (docs/security.md). Schedules are off: the test runs the reaper with `runScheduled`.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { openClient, sleep, useQuietRuntime } from '../support/local-stack.ts';
import type { TestClient } from '../support/ws-client.ts';

const logs: string[] = [];

const runtime = useQuietRuntime({
  sqsRetryDelaySeconds: 0,
  schedules: false,
  functionLogLevel: 'DEBUG',
  onFunctionLog: (_name, line) => logs.push(line),
  log: (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
});

function sign(tenantId: string, userId: string, roles: string[], ttlSeconds = 3600) {
  return runtime().identity.signToken({ tenantId, userId, roles, ttlSeconds });
}

async function client(token: string, how: 'subprotocol' | 'query' = 'subprotocol'): Promise<TestClient> {
  return openClient(runtime(), token, how);
}

/** Sleeps until the epoch second `exp` has passed. */
async function until(exp: number): Promise<void> {
  const wait = exp * 1000 + 50 - Date.now();
  if (wait > 0) await sleep(wait);
}

async function connectionItem(connectionId: string) {
  const out = await runtime().dynamo.client.send(
    new GetItemCommand({ TableName: runtime().tableName, Key: { pk: { S: `C#${connectionId}` }, sk: { S: 'META' } } }),
  );
  return out.Item;
}

async function connectionIdOf(c: TestClient, userId: string): Promise<string> {
  // Identify the connection by a ping round trip, then by its user in the gateway's table of open connections.
  await c.request({ action: 'ping' });
  const ids = [...runtime().gateway.connections.values()]
    .filter((info) => info.authorizer?.userId === userId)
    .map((info) => info.connectionId);
  if (ids.length !== 1) throw new Error(`expected one connection of ${userId}, found ${ids.length}`);
  return ids[0] as string;
}

describe('a connection whose token expires', () => {
  it('gets a token expired error and is closed by the next reaper sweep, its items removed', async () => {
    const short = sign('acme', 'shorty', ['member'], 2);
    const c = await client(short.token);
    const id = await connectionIdOf(c, 'shorty');
    expect((await connectionItem(id))?.gsi2pk?.S).toBe(`EXP#${Math.floor(short.expiresAt / 60)}`);

    await until(short.expiresAt);
    const result = (await runtime().runScheduled('reaper')) as { expired: number };
    expect(result.expired).toBeGreaterThanOrEqual(1);
    expect(await c.waitFor((f) => f.type === 'error')).toEqual({
      type: 'error',
      code: 'UNAUTHORIZED',
      message: 'token expired',
    });
    expect((await c.closed).code).toBe(1000);
    expect(await connectionItem(id)).toBeUndefined();
  });

  it('is left open by a sweep before its token expires', async () => {
    const c = await client(sign('acme', 'patient', ['member'], 600).token);
    await runtime().runScheduled('reaper');
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });
});

describe('refresh', () => {
  it('with a new token of the same user extends the connection past the old expiry', async () => {
    const short = sign('acme', 'renewer', ['member'], 2);
    const c = await client(short.token);
    const id = await connectionIdOf(c, 'renewer');
    const fresh = sign('acme', 'renewer', ['member'], 600);
    expect(await c.request({ action: 'refresh', token: fresh.token })).toMatchObject({ type: 'ack' });
    expect((await connectionItem(id))?.exp?.N).toBe(String(fresh.expiresAt));

    await until(short.expiresAt);
    await runtime().runScheduled('reaper');
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    expect(c.frames.some((f) => f.type === 'error')).toBe(false);
  });

  it.each([
    ['another user', () => sign('acme', 'mallory', ['admin']).token, 'FORBIDDEN'],
    ['another tenant', () => sign('globex', 'refusee', ['admin']).token, 'FORBIDDEN'],
    ['more roles', () => sign('acme', 'refusee', ['member', 'admin']).token, 'FORBIDDEN'],
    [
      'other claims (a team the identity provider added or removed)',
      () =>
        runtime().identity.signToken({
          tenantId: 'acme',
          userId: 'refusee',
          roles: ['member'],
          extraClaims: { teams: ['t2'] },
        }).token,
      'FORBIDDEN',
    ],
    [
      'an expired token',
      () => runtime().identity.signToken({ tenantId: 'acme', userId: 'refusee', roles: [], now: 1_000_000 }).token,
      'UNAUTHORIZED',
    ],
    [
      'a token that never expires (no exp)',
      () =>
        runtime().identity.signToken({
          tenantId: 'acme',
          userId: 'refusee',
          roles: ['member'],
          extraClaims: { exp: undefined },
        }).token,
      'UNAUTHORIZED',
    ],
    ['a malformed token', () => 'not.a.jwt', 'UNAUTHORIZED'],
    [
      'a token of another issuer',
      () =>
        runtime().identity.signToken({
          tenantId: 'acme',
          userId: 'refusee',
          roles: [],
          extraClaims: { iss: 'https://evil.example' },
        }).token,
      'UNAUTHORIZED',
    ],
  ])('with %s is refused and changes nothing', async (_what, token, code) => {
    const own = sign('acme', 'refusee', ['member'], 600);
    const c = await client(own.token);
    const id = await connectionIdOf(c, 'refusee');
    expect(await c.request({ action: 'refresh', token: token() })).toMatchObject({ type: 'error', code });
    expect((await connectionItem(id))?.exp?.N).toBe(String(own.expiresAt));
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await c.close();
    await runtime().gateway.whenIdle();
  });

  it('refuses a refresh without a token as BAD_REQUEST', async () => {
    const c = await client(sign('acme', 'tokenless', ['member']).token);
    expect(await c.request({ action: 'refresh' })).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
  });
});

describe('logs', () => {
  it('never contain a token, whether it came as a subprotocol, in the query string or in a refresh frame', async () => {
    const viaProtocol = sign('acme', 'logged', ['member']);
    const viaQuery = sign('acme', 'logged2', ['member']);
    const refreshed = sign('acme', 'logged', ['member']);
    const refused = sign('globex', 'logged', ['member']);
    const a = await client(viaProtocol.token);
    const b = await client(viaQuery.token, 'query');
    expect(await a.request({ action: 'refresh', token: refreshed.token })).toMatchObject({ type: 'ack' });
    expect(await a.request({ action: 'refresh', token: refused.token })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await b.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await a.close();
    await b.close();
    await runtime().gateway.whenIdle();
    await sleep(100);
    expect(logs.length).toBeGreaterThan(0);
    for (const { token } of [viaProtocol, viaQuery, refreshed, refused]) {
      // The signature alone is enough to find a leaked token, even a truncated one.
      const signature = token.split('.')[2] as string;
      expect(logs.filter((line) => line.includes(signature))).toEqual([]);
    }
  });
});

describe('revocation', () => {
  async function post(token: string, body: unknown) {
    const response = await fetch(`${runtime().url}/v1/admin/disconnect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('disconnects every connection of one user of the admin tenant, and nobody else', async () => {
    const victim1 = await client(sign('acme', 'revoked', ['member']).token);
    const victim2 = await client(sign('acme', 'revoked', ['member']).token);
    const bystander = await client(sign('acme', 'bystander', ['member']).token);
    const foreign = await client(sign('globex', 'revoked', ['member']).token);
    const answer = await post(sign('acme', 'boss', ['admin']).token, { userId: 'revoked' });
    expect(answer).toEqual({
      status: 200,
      body: { tenantId: 'acme', userId: 'revoked', disconnected: 2, failed: 0, remaining: 0 },
    });
    expect((await victim1.closed).code).toBe(1000);
    expect((await victim2.closed).code).toBe(1000);
    expect(await bystander.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    expect(await foreign.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('disconnects the whole tenant without a userId, never another tenant', async () => {
    await runtime().gateway.whenIdle();
    const members = [
      await client(sign('globex', 'g1', ['member']).token),
      await client(sign('globex', 'g2', ['viewer']).token),
    ];
    const other = await client(sign('acme', 'untouched', ['member']).token);
    const answer = await post(sign('globex', 'gboss', ['admin']).token, {});
    expect(answer.status).toBe(200);
    expect(answer.body.disconnected).toBeGreaterThanOrEqual(2);
    for (const m of members) expect((await m.closed).code).toBe(1000);
    expect(await other.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('is refused to a non-admin with 403 and a tenantId in the body with 400', async () => {
    const member = await post(sign('acme', 'notboss', ['member']).token, { userId: 'bystander' });
    expect(member).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    const smuggled = await post(sign('acme', 'boss', ['admin']).token, { tenantId: 'globex' });
    expect(smuggled).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } });
    expect(String((smuggled.body.error as { message: string }).message)).toContain('tenantId');
  });
});

describe('usage metering', () => {
  it('counts connections, connection-minutes, frames in, deliveries out and entity reads per tenant and day', async () => {
    await runtime().tenants.put({ tenantId: 'metered', roleRules: { admin: { subscribe: ['*'], publish: ['*'] } } });
    const a = await client(sign('metered', 'm1', ['admin']).token);
    const b = await client(sign('metered', 'm2', ['admin']).token);
    for (const c of [a, b])
      expect(await c.request({ action: 'subscribe', group: 'chat:m' })).toMatchObject({ type: 'ack' });
    const ack = await a.request({ action: 'publish', group: 'chat:m', data: 1 });
    for (const c of [a, b]) await c.waitFor((f) => f.type === 'message' && f.id === ack.id, 5000);
    await a.close();
    await b.close();
    await runtime().gateway.whenIdle();
    const read = await fetch(`${runtime().url}/v1/entities/task`, {
      headers: { authorization: `Bearer ${sign('acme', 'reader', ['admin']).token}` },
    });
    expect(read.status).toBe(200);

    const today = new Date().toISOString().slice(0, 10);
    const usageOf = async (tenantId: string) => {
      const response = await fetch(`${runtime().url}/v1/usage?from=${today}&to=${today}`, {
        headers: { authorization: `Bearer ${sign(tenantId, 'boss', ['admin']).token}` },
      });
      expect(response.status).toBe(200);
      return (await response.json()) as { tenantId: string; days: Record<string, number | string>[] };
    };
    const metered = await usageOf('metered');
    expect(metered).toEqual({
      tenantId: 'metered',
      from: today,
      to: today,
      days: [
        {
          day: today,
          connections: 2,
          connectionMinutes: 2,
          messagesIn: 3,
          deliveriesOut: 2,
          entityReads: 0,
          entityWrites: 0,
        },
      ],
    });
    expect((await usageOf('acme')).days[0]?.entityReads).toBeGreaterThanOrEqual(1);
  });

  it('is readable by tenant admins only', async () => {
    const response = await fetch(`${runtime().url}/v1/usage`, {
      headers: { authorization: `Bearer ${sign('metered', 'm1', ['member']).token}` },
    });
    expect(response.status).toBe(403);
  });
});
