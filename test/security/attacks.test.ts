/**
 * The attacker suite (issue #12, docs/security.md "Threat model"): what an attacker holding tokens of their own tries
 * against the running stack (`npm start`'s local runtime), over HTTP and WebSocket. Part of it keeps refused what was
 * already refused (forged tokens, SQL through entity inputs, forged cursors, another tenant's ids); the rest covers
 * holes found and closed: HTTP publishes outside the rate limits, a row filter bypassed through a reused id, claims
 * flattened by API Gateway read as other claims, a NUL in a text field, forged change-feed messages.
 * The whole-token and whole-tenant suites stay where they are: test/integration/auth.test.ts, isolation.test.ts.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from '@jest/globals';
import { messageGroupIdOf } from '../../lambdas/core/delivery.ts';
import { createSigningKey, signJwt } from '../../local/identity.ts';
import { defaultRoleRules } from '../../local/seed.ts';
import {
  eventually,
  type HttpAnswer,
  httpApi,
  jsonOf,
  messages,
  openClient,
  sleep,
  tokenFor,
  useQuietRuntime,
} from '../support/local-stack.ts';
import { handshakeStatus, type TestClient } from '../support/ws-client.ts';

const runtime = useQuietRuntime({
  sqsRetryDelaySeconds: 0,
  schedules: false,
  functionLogLevel: 'WARN',
  functionEnv: { TENANT_CACHE_TTL_SECONDS: '0' },
});

const token = (tenantId: string, userId: string, roles: readonly string[]) =>
  tokenFor(runtime(), tenantId, userId, roles);
const api = (bearer: string | undefined, method: string, path: string, body?: unknown) =>
  httpApi(runtime(), bearer, method, path, body);
const client = (bearer: string): Promise<TestClient> => openClient(runtime(), bearer);
const errorOf = (answer: HttpAnswer) => jsonOf<{ error?: { code: string; message: string } }>(answer).error;

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claimsOf = (sub: string) => ({
  iss: runtime().identity.issuer,
  aud: runtime().identity.audience,
  sub,
  tenant_id: 'acme',
  roles: ['admin'],
  exp: now() + 600,
});

/** An attacker's key server: counts every request, answers its JWKS. */
async function attackerKeyServer(jwks: unknown): Promise<{ url: string; requests: () => number; close: () => void }> {
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/jwks.json`, requests: () => requests, close: () => server.close() };
}

describe('a forged token', () => {
  it('is refused on the WebSocket (401) and the HTTP API (401), and no key it points to is ever fetched', async () => {
    const attacker = createSigningKey('attacker');
    const keys = await attackerKeyServer({ keys: [attacker.publicJwk] });
    const issuerKid = runtime().identity.kid;
    const publicJwk = runtime().identity.jwks.keys[0];
    const rsa = (header: Record<string, unknown>) =>
      signJwt({ alg: 'RS256', typ: 'JWT', ...header }, claimsOf('mallory'), attacker.privateKey);
    const hmac = (secret: string) => {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: issuerKid })}.${b64(claimsOf('mallory'))}`;
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    };
    const forged: [string, string][] = [
      ["alg 'none'", `${b64({ alg: 'none', typ: 'JWT', kid: issuerKid })}.${b64(claimsOf('mallory'))}.`],
      ['HS256 keyed with the public JWK (HS/RS confusion)', hmac(JSON.stringify(publicJwk))],
      ['HS256 keyed with the public modulus', hmac(String((publicJwk as { n?: string }).n))],
      ['a jku header to the attacker JWKS', rsa({ kid: 'attacker', jku: keys.url })],
      ["a jku header and the issuer's kid", rsa({ kid: issuerKid, jku: keys.url })],
      ['an x5u header to the attacker', rsa({ kid: 'attacker', x5u: keys.url })],
      ['an embedded jwk header', rsa({ kid: 'attacker', jwk: attacker.publicJwk })],
      ["an embedded jwk header and the issuer's kid", rsa({ kid: issuerKid, jwk: attacker.publicJwk })],
      ['a foreign kid', rsa({ kid: 'attacker' })],
      ["another key under the issuer's kid", rsa({ kid: issuerKid })],
    ];
    try {
      for (const [what, jwt] of forged) {
        expect([what, await handshakeStatus(runtime().wsUrl, jwt)]).toEqual([what, 401]);
        expect([what, (await api(jwt, 'GET', '/v1/schema')).status]).toEqual([what, 401]);
        expect([what, (await api(jwt, 'POST', '/v1/publish', { group: 'chat:x', data: 1 })).status]).toEqual([
          what,
          401,
        ]);
        expect([what, (await api(jwt, 'GET', '/v1/usage')).status]).toEqual([what, 401]);
      }
      expect(keys.requests()).toBe(0);
    } finally {
      keys.close();
    }
  });
});

describe('SQL through entity inputs', () => {
  const injections = ["' OR '1'='1", "x'; DROP TABLE task; --", '1; DELETE FROM task', '"; SELECT pg_sleep(5); --'];

  it('is data or a BAD_REQUEST in bodies, filters, ids, entity names and field names, and the tables stay intact', async () => {
    const admin = token('acme', 'sqlmallory', ['admin']);
    const before = jsonOf<{ items: unknown[] }>(await api(admin, 'GET', '/v1/entities/task?limit=500')).items.length;
    for (const text of injections) {
      const created = await api(admin, 'POST', '/v1/entities/task', { id: randomUUID(), title: text, status: 'open' });
      expect(created.status).toBe(201);
      expect(jsonOf(created).title).toBe(text);
      const filtered = await api(admin, 'GET', `/v1/entities/task?title=${encodeURIComponent(text)}`);
      expect(jsonOf<{ items: { title: string }[] }>(filtered).items.map((i) => i.title)).toEqual([text]);
      for (const path of [
        `/v1/entities/task/${encodeURIComponent(text)}`,
        `/v1/entities/task?estimate_hours=${encodeURIComponent(text)}`,
        `/v1/entities/task?limit=${encodeURIComponent(text)}`,
      ]) {
        expect((await api(admin, 'GET', path)).status).toBe(400);
      }
      expect((await api(admin, 'GET', `/v1/entities/${encodeURIComponent(`task${text}`)}`)).status).toBe(404);
      expect(errorOf(await api(admin, 'POST', '/v1/entities/task', { [`title${text}`]: 'x' }))?.code).toBe(
        'BAD_REQUEST',
      );
    }
    const after = jsonOf<{ items: unknown[] }>(await api(admin, 'GET', '/v1/entities/task?limit=500')).items.length;
    expect(after).toBe(before + injections.length);
  });

  it('answers a NUL character in a text field with 400 BAD_REQUEST naming the field, never a 500', async () => {
    const admin = token('acme', 'nulmallory', ['admin']);
    const created = await api(admin, 'POST', '/v1/entities/task', {
      id: randomUUID(),
      title: 'a\u0000b',
      status: 'open',
    });
    expect(created.status).toBe(400);
    expect(errorOf(created)).toEqual({ code: 'BAD_REQUEST', message: expect.stringContaining("field 'title'") });
    const id = jsonOf(
      await api(admin, 'POST', '/v1/entities/task', { id: randomUUID(), title: 'clean', status: 'open' }),
    ).id;
    const patched = await api(admin, 'PATCH', `/v1/entities/task/${id}`, { status: 'x\u0000' });
    expect([patched.status, errorOf(patched)?.message]).toEqual([400, expect.stringContaining("field 'status'")]);
    const filtered = await api(admin, 'GET', '/v1/entities/task?title=a%00b');
    expect([filtered.status, errorOf(filtered)?.message]).toEqual([400, expect.stringContaining("field 'title'")]);
  });
});

describe('a forged cursor', () => {
  it('is a BAD_REQUEST when it is not ours, and pages only rows the row filter lets through when it is', async () => {
    const alice = token('globex', 'alice', ['member']);
    for (const cursor of [
      'not-a-cursor!',
      b64({ e: 'task', k: '0 OR 1=1' }),
      b64({ e: 'other', k: 0 }),
      b64({ e: 'task', k: { $gt: 0 } }),
      'A'.repeat(2000),
    ]) {
      const answer = await api(alice, 'GET', `/v1/entities/task?cursor=${encodeURIComponent(cursor)}`);
      expect([cursor.slice(0, 30), answer.status]).toEqual([cursor.slice(0, 30), 400]);
    }
    const page = await api(alice, 'GET', `/v1/entities/task?cursor=${b64({ e: 'task', k: 0 })}`);
    const owners = jsonOf<{ items: { owner: string }[] }>(page).items.map((i) => i.owner);
    expect(owners.length).toBeGreaterThan(0);
    expect(new Set(owners)).toEqual(new Set(['alice']));
  });
});

describe("another tenant's ids", () => {
  it("read, change and delete nothing: acme's admin gets 404 for every globex task", async () => {
    const globexIds = jsonOf<{ items: { id: number }[] }>(
      await api(token('globex', 'gadmin', ['admin']), 'GET', '/v1/entities/task'),
    ).items.map((i) => i.id);
    expect(globexIds.length).toBeGreaterThan(0);
    const acme = token('acme', 'tenanthopper', ['admin']);
    for (const id of globexIds) {
      // acme's task ids are UUIDs: a globex id is no acme id (400), and never globex's row.
      for (const method of ['GET', 'PATCH', 'DELETE']) {
        const answer = await api(
          acme,
          method,
          `/v1/entities/task/${id}`,
          method === 'PATCH' ? { title: 'x' } : undefined,
        );
        expect([400, 404]).toContain(answer.status);
        expect(answer.text).not.toContain('owner');
      }
    }
    expect((await api(token('globex', 'gadmin', ['admin']), 'GET', `/v1/entities/task/${globexIds[0]}`)).status).toBe(
      200,
    );
  });
});

describe('HTTP publishes', () => {
  it("take the tenant's publish bucket, shared with WebSocket publishes, and answer 429 with Retry-After", async () => {
    await runtime().tenants.put({
      tenantId: 'pubflood',
      roleRules: defaultRoleRules,
      limits: { publishesPerSecond: 0.2, publishBurst: 3, httpRequestsPerSecond: 1000, httpBurst: 1000 },
    });
    const answers: HttpAnswer[] = [];
    for (let i = 0; i < 6; i++) {
      const who = token('pubflood', `flooder${i}`, ['member']);
      answers.push(await api(who, 'POST', '/v1/publish', { group: 'chat:flood', data: i }));
    }
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 429, 429, 429]);
    const refused = answers[3] as HttpAnswer;
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(errorOf(refused)).toMatchObject({ code: 'RATE_LIMITED' });
    expect(jsonOf<{ error: { retryAfterMs: number } }>(refused).error.retryAfterMs).toBeGreaterThan(0);
    // The WebSocket publishes of the same tenant find the bucket the HTTP publishes emptied.
    const ws = await client(token('pubflood', 'wsmember', ['member']));
    expect(await ws.request({ action: 'publish', group: 'chat:flood', data: 'ws' })).toMatchObject({
      type: 'error',
      code: 'RATE_LIMITED',
    });
  });

  it("take the user's HTTP bucket, shared with the entity API: one user's flood does not stop another user", async () => {
    await runtime().tenants.put({
      tenantId: 'userflood',
      roleRules: defaultRoleRules,
      limits: { publishesPerSecond: 1000, publishBurst: 1000, httpRequestsPerSecond: 0.2, httpBurst: 3 },
    });
    const flooder = token('userflood', 'flooder', ['member']);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await api(flooder, 'POST', '/v1/publish', { group: 'chat:f', data: i })).status);
    expect(statuses).toEqual([202, 202, 202, 429, 429]);
    expect((await api(flooder, 'GET', '/v1/schema')).status).toBe(429);
    const other = token('userflood', 'bystander', ['member']);
    expect((await api(other, 'POST', '/v1/publish', { group: 'chat:f', data: 'ok' })).status).toBe(202);
  });
});

describe('the row filter (globex: owner = sub) and a reused id', () => {
  const id = 900_001;

  it("never shows bob's history of a deleted row to alice, who creates a row with the same id", async () => {
    const bob = token('globex', 'bob', ['member']);
    const alice = token('globex', 'alice', ['member']);
    expect((await api(bob, 'POST', '/v1/entities/task', { id, summary: 'BOB-SECRET v1' })).status).toBe(201);
    expect((await api(bob, 'PATCH', `/v1/entities/task/${id}`, { summary: 'BOB-SECRET v2' })).status).toBe(200);
    expect((await api(bob, 'DELETE', `/v1/entities/task/${id}`)).status).toBe(204);
    expect((await api(alice, 'GET', `/v1/entities/task/${id}/changes`)).status).toBe(404);

    const created = await api(alice, 'POST', '/v1/entities/task', { id, summary: 'alice v4' });
    expect([created.status, jsonOf(created).owner, jsonOf(created)._version]).toEqual([201, 'alice', 4]);
    const aliceSees = await api(alice, 'GET', `/v1/entities/task/${id}/changes`);
    expect(aliceSees.status).toBe(200);
    expect(aliceSees.text).not.toContain('BOB-SECRET');
    expect(jsonOf<{ items: { version: number }[] }>(aliceSees).items.map((i) => i.version)).toEqual([4]);

    // bob keeps his own history of the key, and sees nothing of alice's.
    const bobSees = await api(bob, 'GET', `/v1/entities/task/${id}/changes`);
    expect(jsonOf<{ items: { version: number }[] }>(bobSees).items.map((i) => i.version)).toEqual([1, 2, 3]);
    expect(bobSees.text).not.toContain('alice v4');
  });

  it("answers a create with another user's live id like any operation on a row alice cannot see: 404", async () => {
    const bob = token('globex', 'bob', ['member']);
    const alice = token('globex', 'alice', ['member']);
    const bobs = jsonOf(await api(bob, 'POST', '/v1/entities/task', { id: id + 1, summary: 'bob live' }));
    expect(bobs.owner).toBe('bob');
    const get = await api(alice, 'GET', `/v1/entities/task/${id + 1}`);
    const create = await api(alice, 'POST', '/v1/entities/task', { id: id + 1, summary: 'probe' });
    expect([create.status, errorOf(create)]).toEqual([get.status, errorOf(get)]);
    expect(get.status).toBe(404);
    // Her own taken id is still a plain CONFLICT.
    const again = await api(alice, 'POST', '/v1/entities/task', { id, summary: 'again' });
    expect(errorOf(again)?.code).toBe('CONFLICT');
  });
});

describe('claims API Gateway flattens', () => {
  it('a single role "viewer admin" or "guest,admin" grants no admin right over HTTP, as on the WebSocket', async () => {
    for (const role of ['viewer admin', 'guest,admin']) {
      const jwt = token('acme', 'rolesmuggler', [role]);
      expect([role, (await api(jwt, 'GET', '/v1/usage')).status]).toEqual([role, 403]);
      expect([role, (await api(jwt, 'POST', '/v1/publish', { group: 'chat:x', data: 1 })).status]).toEqual([role, 403]);
      expect([role, (await api(jwt, 'POST', '/v1/admin/disconnect', { userId: 'victim' })).status]).toEqual([
        role,
        403,
      ]);
      const ws = await client(jwt);
      expect(await ws.request({ action: 'publish', group: 'chat:x', data: 1 })).toMatchObject({
        type: 'error',
        code: 'FORBIDDEN',
      });
    }
    // The same roles as two array elements are two roles on both transports.
    const two = token('acme', 'tworoles', ['viewer', 'admin']);
    expect((await api(two, 'GET', '/v1/usage')).status).toBe(200);
  });

  it('a sub of "[bob]" is not bob: it lists, reads and patches none of his rows, over HTTP or on the live feed', async () => {
    const bob = token('globex', 'bob', ['member']);
    const fake = token('globex', '[bob]', ['member']);
    const bobsRow = jsonOf(await api(bob, 'POST', '/v1/entities/task', { summary: 'BOB-PRIVATE' }));
    const listed = await api(fake, 'GET', '/v1/entities/task?limit=500');
    expect(listed.status).toBe(200);
    expect(jsonOf<{ items: unknown[] }>(listed).items).toEqual([]);
    expect((await api(fake, 'GET', `/v1/entities/task/${bobsRow.id}`)).status).toBe(404);
    expect((await api(fake, 'PATCH', `/v1/entities/task/${bobsRow.id}`, { summary: 'mine' })).status).toBe(404);
    expect((await api(fake, 'GET', `/v1/entities/task/${bobsRow.id}/changes`)).status).toBe(404);

    const bobWs = await client(bob);
    const fakeWs = await client(fake);
    for (const c of [bobWs, fakeWs]) {
      expect(await c.request({ action: 'subscribe', group: 'entity:task' })).toMatchObject({ type: 'ack' });
    }
    expect((await api(bob, 'PATCH', `/v1/entities/task/${bobsRow.id}`, { summary: 'BOB-PRIVATE 2' })).status).toBe(200);
    await eventually(() => messages(bobWs, 'entity:task').length > 0, 8000, "bob's change event");
    await sleep(300);
    expect(messages(fakeWs, 'entity:task')).toEqual([]);
  });
});

describe('the system group entity:*', () => {
  it('cannot be published to by a tenant admin, over WebSocket or HTTP, while the change feed still delivers to it', async () => {
    const admin = token('acme', 'forger', ['admin']);
    const subscriber = await client(token('acme', 'feedreader', ['member']));
    expect(await subscriber.request({ action: 'subscribe', group: 'entity:task' })).toMatchObject({ type: 'ack' });
    const forged = { op: 'delete', entity: 'task', key: 'x', version: 99, row: null, changedBy: 'ceo' };

    const ws = await client(admin);
    const refused = await ws.request({ action: 'publish', group: 'entity:task', data: forged });
    expect(refused).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
      message: expect.stringContaining('system group'),
    });
    const http = await api(admin, 'POST', '/v1/publish', { group: 'entity:task', data: forged });
    expect([http.status, errorOf(http)?.message]).toEqual([403, expect.stringContaining('system group')]);

    const created = jsonOf(
      await api(admin, 'POST', '/v1/entities/task', { id: randomUUID(), title: 'real change', status: 'open' }),
    );
    await eventually(() => messages(subscriber, 'entity:task').length > 0, 8000, 'the change event');
    const feed = messages(subscriber, 'entity:task');
    expect(feed.map((m) => (m.data as { key: string }).key)).toEqual([created.id]);
    expect(feed.some((m) => (m.data as { changedBy?: string }).changedBy === 'ceo')).toBe(false);
  });
});

describe('a forged replica on the delivery queue (a principal that may send to it)', () => {
  it("is set aside: it never rewrites the home region's history, live or on replay", async () => {
    const group = 'chat:replica-forgery';
    const alice = await client(token('acme', 'alice', ['member']));
    expect(await alice.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
    await alice.request({ action: 'publish', group, data: { text: 'original' } });
    await eventually(() => messages(alice, group).length === 1);
    // A body claiming to be seq 1 replicated from a region that is not in this (one-region) stage.
    const forged = {
      v: 1,
      kind: 'replica',
      origin: 'mars-1',
      seq: 1,
      message: {
        v: 1,
        id: 'forged-1',
        tenantId: 'acme',
        group,
        data: { text: 'forged' },
        from: 'alice',
        ts: Date.now(),
      },
    };
    await runtime().sqs.client.send(
      new SendMessageCommand({
        QueueUrl: runtime().queues.delivery.url,
        MessageBody: JSON.stringify(forged),
        MessageGroupId: messageGroupIdOf('acme', group),
        MessageDeduplicationId: 'forged-1@1',
      }),
    );
    await sleep(1500);
    const bob = await client(token('acme', 'bob', ['member']));
    await bob.request({ action: 'subscribe', group, since: 0 });
    await eventually(() => messages(bob, group).length >= 1);
    const view = (c: TestClient) => messages(c, group).map((m) => [m.seq, (m.data as { text: string }).text]);
    expect({ live: view(alice), replay: view(bob) }).toEqual({ live: [[1, 'original']], replay: [[1, 'original']] });
  });
});
