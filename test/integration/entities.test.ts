/**
 * The entity HTTP API and its live change feed end to end, against the local runtime: real HTTP requests through
 * the HTTP API stand-in (JWT authorizer), real SQL in the tenants' PGlite databases through the Data API stand-in,
 * and real WebSockets for `entity:<name>` subscribers.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { httpApi, jsonOf, openClient, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import type { Frame, TestClient } from '../support/ws-client.ts';

const functionLogs: string[] = [];

const runtime = useQuietRuntime({
  sqsRetryDelaySeconds: 0,
  schedules: false,
  functionEnv: { TENANT_CACHE_TTL_SECONDS: '0', OUTBOX_GRACE_SECONDS: '0' },
  onFunctionLog: (_name, line) => functionLogs.push(line),
});

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
  headers: Headers;
}

async function api(
  as: { tenant: string; user: string; roles: string[] } | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const token = as && tokenFor(runtime(), as.tenant, as.user, as.roles);
  const answer = await httpApi(runtime(), token, method, path, body, headers);
  return { status: answer.status, body: jsonOf<Answer['body']>(answer), headers: answer.headers };
}

async function subscriber(
  tenantId: string,
  userId: string,
  roles: string[],
  group = 'entity:task',
): Promise<TestClient> {
  const c = await openClient(runtime(), tokenFor(runtime(), tenantId, userId, roles));
  expect(await c.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
  return c;
}

const acmeAlice = { tenant: 'acme', user: 'alice', roles: ['member'] };
const acmeViewer = { tenant: 'acme', user: 'vic', roles: ['viewer'] };
const globexBob = { tenant: 'globex', user: 'bob', roles: ['member'] };
const globexAlice = { tenant: 'globex', user: 'alice', roles: ['member'] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const changesOf = (c: TestClient) =>
  c.frames
    .filter((f) => f.type === 'message' && f.group === 'entity:task')
    .map((f) => f.data as Record<string, unknown>);

describe('the entity API', () => {
  it('describes the tenant schema without tenantcast columns', async () => {
    const answer = await api(acmeAlice, 'GET', '/v1/schema');
    expect(answer.status).toBe(200);
    const entities = answer.body.entities as Record<string, { primaryKey: string; fields: Record<string, unknown> }>;
    expect(entities.task?.primaryKey).toBe('id');
    expect(entities.task?.fields.title).toEqual({ type: 'text', nullable: false });
  });

  it('answers 401 like API Gateway without a valid token', async () => {
    expect(await api(undefined, 'GET', '/v1/schema')).toMatchObject({ status: 401, body: { message: 'Unauthorized' } });
    const bad = await api(undefined, 'GET', '/v1/schema', undefined, { authorization: 'Bearer not.a.jwt' });
    expect(bad.status).toBe(401);
  });

  it('creates, updates and deletes acme tasks, and an acme subscriber receives each change in order', async () => {
    const watcher = await subscriber('acme', 'walt', ['viewer']);
    const outsider = await subscriber('globex', 'gus', ['admin']);
    const id = randomUUID();

    // Each write waits for its change to arrive: changes still pending together are coalesced to the newest.
    const changeArrives = (version: number) =>
      watcher.waitFor(
        (f) =>
          f.type === 'message' &&
          (f.data as { key?: unknown }).key === id &&
          (f.data as { version?: unknown }).version === version,
        8000,
      );
    const created = await api(acmeAlice, 'POST', '/v1/entities/task', { id, title: 'Ship it', status: 'open' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id, title: 'Ship it', _version: 1 });
    await changeArrives(1);

    const updated = await api(acmeAlice, 'PATCH', `/v1/entities/task/${id}`, { status: 'done' }, { 'if-match': '1' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ status: 'done', _version: 2 });
    await changeArrives(2);

    expect((await api(acmeViewer, 'GET', `/v1/entities/task/${id}`)).body).toMatchObject({
      status: 'done',
      _version: 2,
    });
    expect((await api(acmeAlice, 'DELETE', `/v1/entities/task/${id}`)).status).toBe(204);
    expect((await api(acmeAlice, 'GET', `/v1/entities/task/${id}`)).status).toBe(404);
    await changeArrives(3);

    const changes = changesOf(watcher).filter((d) => d.key === id);
    expect(changes.map((d) => [d.op, d.version])).toEqual([
      ['insert', 1],
      ['update', 2],
      ['delete', 3],
    ]);
    expect(changes[0]).toMatchObject({ entity: 'task', changedBy: 'alice', row: { id, title: 'Ship it' } });
    expect(changes[2]?.row).toBeNull();
    await sleep(300);
    expect(outsider.frames.filter((f: Frame) => f.type === 'message')).toEqual([]);
  }, 20_000);

  it('lists every version of a row with its diff in the change log', async () => {
    const id = randomUUID();
    await api(acmeAlice, 'POST', '/v1/entities/task', { id, title: 'Log me', status: 'open' });
    await api(acmeAlice, 'PATCH', `/v1/entities/task/${id}`, { status: 'done' });
    const log = await api(acmeAlice, 'GET', `/v1/entities/task/${id}/changes`);
    expect(log.status).toBe(200);
    const items = log.body.items as Record<string, unknown>[];
    expect(items.map((i) => [i.version, i.op, i.changedBy])).toEqual([
      [1, 'insert', 'alice'],
      [2, 'update', 'alice'],
    ]);
    expect(items[1]?.diff).toEqual({ status: ['open', 'done'] });
    expect(items[0]?.changedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it('refuses a write based on a stale version with 409 CONFLICT', async () => {
    const id = randomUUID();
    await api(acmeAlice, 'POST', '/v1/entities/task', { id, title: 'Race' });
    await api(acmeAlice, 'PATCH', `/v1/entities/task/${id}`, { title: 'Race 2' });
    const stale = await api(acmeAlice, 'PATCH', `/v1/entities/task/${id}`, { title: 'Race 3' }, { 'if-match': '1' });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } });
    expect((await api(acmeAlice, 'GET', `/v1/entities/task/${id}`)).body).toMatchObject({ title: 'Race 2' });
  });

  it('pages with an opaque cursor and filters by typed equality', async () => {
    const first = await api(acmeAlice, 'GET', '/v1/entities/task?limit=2');
    expect(first.status).toBe(200);
    expect((first.body.items as unknown[]).length).toBe(2);
    expect(typeof first.body.nextCursor).toBe('string');
    const second = await api(acmeAlice, 'GET', `/v1/entities/task?limit=2&cursor=${first.body.nextCursor}`);
    const ids = [...(first.body.items as { id: string }[]), ...(second.body.items as { id: string }[])].map(
      (r) => r.id,
    );
    expect(new Set(ids).size).toBe(ids.length);
    const alices = await api(acmeAlice, 'GET', '/v1/entities/task?assignee_id=alice&limit=50');
    expect((alices.body.items as { assignee_id: string }[]).every((r) => r.assignee_id === 'alice')).toBe(true);
  });
});

describe('the globex row filter', () => {
  it('shows a member only their own rows over HTTP', async () => {
    const mine = await api(globexBob, 'GET', '/v1/entities/task?limit=100');
    expect(mine.status).toBe(200);
    const owners = (mine.body.items as { owner: string }[]).map((r) => r.owner);
    expect(owners.length).toBeGreaterThan(0);
    expect(owners.every((o) => o === 'bob')).toBe(true);
    const admin = await api({ tenant: 'globex', user: 'root', roles: ['admin'] }, 'GET', '/v1/entities/task?limit=100');
    expect((admin.body.items as { owner: string }[]).some((r) => r.owner === 'alice')).toBe(true);
  });

  it("hides another member's row as not found and refuses to write it", async () => {
    const created = await api(globexAlice, 'POST', '/v1/entities/task', { summary: 'Alice only' });
    expect(created).toMatchObject({ status: 201, body: { owner: 'alice' } });
    const id = String(created.body.id);
    expect((await api(globexBob, 'GET', `/v1/entities/task/${id}`)).status).toBe(404);
    expect((await api(globexBob, 'PATCH', `/v1/entities/task/${id}`, { summary: 'mine now' })).status).toBe(404);
    expect((await api(globexBob, 'POST', '/v1/entities/task', { summary: 'x', owner: 'alice' })).status).toBe(403);
  });

  it('shows a row handed to a member from the version it reached them, without what it held before', async () => {
    const root = { tenant: 'globex', user: 'root', roles: ['admin'] };
    const created = await api(root, 'POST', '/v1/entities/task', { summary: 'BOB-SECRET', owner: 'bob' });
    const id = String(created.body.id);
    expect(
      (await api(root, 'PATCH', `/v1/entities/task/${id}`, { summary: 'handed over', owner: 'alice' })).status,
    ).toBe(200);
    const alices = await api(globexAlice, 'GET', `/v1/entities/task/${id}/changes`);
    expect(alices.status).toBe(200);
    expect(alices.body.items).toEqual([
      expect.objectContaining({
        version: 2,
        op: 'update',
        beforeHidden: true,
        diff: { summary: [null, 'handed over'], owner: [null, 'alice'] },
      }),
    ]);
    expect(JSON.stringify(alices.body)).not.toContain('BOB-SECRET');
    const bobs = await api(globexBob, 'GET', `/v1/entities/task/${id}/changes`);
    expect((bobs.body.items as { version: number }[]).map((c) => c.version)).toEqual([1]);
    const roots = await api(root, 'GET', `/v1/entities/task/${id}/changes`);
    expect((roots.body.items as { diff: Record<string, unknown> }[])[1]?.diff).toMatchObject({
      summary: ['BOB-SECRET', 'handed over'],
    });
  });

  it('delivers a live change only to members the row filter lets see it', async () => {
    const bob = await subscriber('globex', 'bob', ['member']);
    const alice = await subscriber('globex', 'alice', ['member']);
    const created = await api(globexAlice, 'POST', '/v1/entities/task', { summary: 'Live for alice' });
    const id = created.body.id;
    await alice.waitFor((f) => f.type === 'message' && (f.data as { key?: unknown }).key === id, 8000);
    await sleep(500);
    expect(changesOf(bob).filter((d) => d.key === id)).toEqual([]);
  }, 15_000);
});

describe('bad input', () => {
  it.each([
    ['an unknown entity', 'POST', '/v1/entities/nope', { x: 1 }, 404, 'NOT_FOUND'],
    ['an unknown field', 'POST', '/v1/entities/task', { id: randomUUID(), title: 't', foo: 1 }, 400, 'BAD_REQUEST'],
    [
      'a wrong value type',
      'POST',
      '/v1/entities/task',
      { id: randomUUID(), title: 't', estimate_hours: 'many' },
      400,
      'BAD_REQUEST',
    ],
    [
      'an SQL fragment as a field name',
      'POST',
      '/v1/entities/task',
      { id: randomUUID(), 'title) VALUES (1); --': 't' },
      400,
      'BAD_REQUEST',
    ],
    [
      'an SQL fragment in a filter',
      'GET',
      '/v1/entities/task?estimate_hours=1%20OR%201%3D1',
      undefined,
      400,
      'BAD_REQUEST',
    ],
    [
      'an SQL fragment as a filter name',
      'GET',
      '/v1/entities/task?%22title%22%3D%27x%27%20--=1',
      undefined,
      400,
      'BAD_REQUEST',
    ],
    [
      'a body over 256 KB',
      'POST',
      '/v1/entities/task',
      { id: randomUUID(), title: 'x'.repeat(300 * 1024) },
      413,
      'TOO_LARGE',
    ],
    ["an id of another tenant's row", 'GET', '/v1/entities/task/1', undefined, 400, 'BAD_REQUEST'],
  ])('%s gets the typed error and writes nothing', async (_what, method, path, body, status, code) => {
    const before = await api(acmeAlice, 'GET', '/v1/entities/task?limit=500');
    const answer = await api(acmeAlice, method, path, body);
    expect(answer.status).toBe(status);
    expect(answer.body.error?.code).toBe(code);
    const after = await api(acmeAlice, 'GET', '/v1/entities/task?limit=500');
    expect((after.body.items as unknown[]).length).toBe((before.body.items as unknown[]).length);
  });

  it('refuses writes by a role without write rights', async () => {
    const answer = await api(acmeViewer, 'POST', '/v1/entities/task', { id: randomUUID(), title: 'nope' });
    expect(answer).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
  });
});
