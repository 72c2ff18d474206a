/**
 * The entity API and its change feed at AWS's limits, found by an attacking pass (2026-12-03): the Data API's 1 MiB
 * result, the cursors the API hands out, numbers JSON cannot carry exactly, and nesting that would run out of stack.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { EntityRules } from '../../lambdas/core/entities/model.ts';
import { Onboarding } from '../../lambdas/core/onboarding.ts';
import { localDataPorts } from '../../local/tenant-data.ts';
import {
  eventually,
  httpApi,
  jsonOf,
  messages,
  openClient,
  tokenFor,
  useQuietRuntime,
} from '../../test/support/local-stack.ts';

const TENANT = 'lim16';
const logs: string[] = [];
const runtime = useQuietRuntime(
  {
    sqsRetryDelaySeconds: 0,
    schedules: false,
    functionLogLevel: 'WARN',
    functionEnv: { TENANT_CACHE_TTL_SECONDS: '0', OUTBOX_GRACE_SECONDS: '0' },
    onFunctionLog: (_n, line) => logs.push(line),
  },
  {
    prepare: async (rt) => {
      const ports = localDataPorts(rt.dataApi.endpoint, 'us-east-1');
      const onboarding = new Onboarding({ ...ports, tenants: rt.tenants, clusters: rt.dataApi.clusters() });
      await onboarding.createTenant({
        tenantId: TENANT,
        schemaSql: `CREATE TABLE doc (id text PRIMARY KEY, body jsonb, note text);
                    CREATE TABLE item (id text PRIMARY KEY, amount numeric, title text);
                    CREATE TABLE gone (id text PRIMARY KEY);`,
        limits: { httpRequestsPerSecond: 1000, httpBurst: 1000, publishesPerSecond: 1000, publishBurst: 1000 },
      });
      const rule = { readRoles: ['member', 'admin'], writeRoles: ['member', 'admin'], bypassRoles: ['admin'] };
      const config = await rt.tenants.get(TENANT);
      await rt.tenants.put({ ...config, entityRules: { doc: rule, item: rule, gone: rule } as EntityRules });
    },
  },
);

const tok = (user = 'writer') => tokenFor(runtime(), TENANT, user, ['member']);
const api = async (method: string, path: string, body?: unknown) => {
  const a = await httpApi(runtime(), tok(), method, path, body);
  return { status: a.status, body: jsonOf<Record<string, unknown>>(a), bytes: a.text.length };
};
/** 100,000 quote characters: 200 KB in the request, but each `"` is `\"` in jsonb text and `\\\"` in the Data API's JSON. */
const quotes = (n = 100_000, tail = '') => '"'.repeat(n) + tail;

/** A changes-queue record, for invoking the change feed with a batch of our own. */
const record = (n: number, body: unknown) => ({
  messageId: `m${n}-${randomUUID()}`,
  receiptHandle: `r${n}`,
  body: JSON.stringify(body),
  attributes: {
    ApproximateReceiveCount: '1',
    SentTimestamp: String(Date.now()),
    SenderId: 'x',
    ApproximateFirstReceiveTimestamp: String(Date.now()),
  },
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: runtime().queues.changes.arn,
  awsRegion: 'us-east-1',
});

describe('entity rows near the Data API 1 MiB result limit', () => {
  it('GET …/changes of a row with big updates answers in pages, each entry whole or naming what it omits', async () => {
    const id = `chg-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id, body: quotes(100_000, 'a') })).status).toBe(201);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(100_000, 'b') })).status).toBe(200);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { note: 'small' })).status).toBe(200);
    const versions: number[] = [];
    let omitted: unknown[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page = await api('GET', `/v1/entities/doc/${id}/changes${cursor === null ? '' : `?cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      const items = page.body.items as { version: number; diff: Record<string, unknown>; omitted?: string[] }[];
      versions.push(...items.map((i) => i.version));
      omitted = [...omitted, ...items.map((i) => i.omitted ?? null)];
      cursor = page.body.nextCursor as string | null;
      if (cursor === null) break;
    }
    expect(versions).toEqual([1, 2, 3]);
    // The update whose diff holds two 200 KB values names the field it leaves out; the small ones come whole.
    expect(omitted).toEqual([null, ['body'], null]);
  }, 60_000);

  it('GET …/changes pages with limit and cursor, and refuses a cursor of another key', async () => {
    const id = `pages-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id, note: 'v1' })).status).toBe(201);
    for (let v = 2; v <= 5; v++) {
      expect((await api('PATCH', `/v1/entities/doc/${id}`, { note: `v${v}` })).status).toBe(200);
    }
    const first = await api('GET', `/v1/entities/doc/${id}/changes?limit=2`);
    expect((first.body.items as { version: number }[]).map((i) => i.version)).toEqual([1, 2]);
    const second = await api('GET', `/v1/entities/doc/${id}/changes?limit=2&cursor=${first.body.nextCursor}`);
    expect((second.body.items as { version: number }[]).map((i) => i.version)).toEqual([3, 4]);
    const third = await api('GET', `/v1/entities/doc/${id}/changes?limit=2&cursor=${second.body.nextCursor}`);
    expect((third.body.items as { version: number }[]).map((i) => i.version)).toEqual([5]);
    expect(third.body.nextCursor).toBeNull();
    const other = `other-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id: other, note: 'x' })).status).toBe(201);
    expect((await api('GET', `/v1/entities/doc/${other}/changes?cursor=${first.body.nextCursor}`)).status).toBe(400);
    expect((await api('GET', `/v1/entities/doc/${id}/changes?since=1`)).status).toBe(400);
  }, 60_000);

  it('GET /entities/doc (default limit 50) with three big rows answers shorter pages, not 413, and pages through them all', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await api('POST', '/v1/entities/doc', { id: `zz-list-${i}`, body: quotes(100_000) })).status).toBe(201);
    }
    // Every page fits the Data API's 1 MiB result (executePaged asks for fewer rows), and following the cursors
    // reaches every row.
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page = await api('GET', `/v1/entities/doc${cursor === null ? '' : `?cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      seen.push(...(page.body.items as { id: string }[]).map((row) => row.id));
      cursor = page.body.nextCursor as string | null;
      if (cursor === null) break;
    }
    expect(seen.filter((id) => id.startsWith('zz-list-'))).toEqual(['zz-list-0', 'zz-list-1', 'zz-list-2']);
  }, 60_000);

  it('a change whose row + diff pass 1 MiB in the feed query reaches subscribers (rowOmitted), and the feed goes on', async () => {
    const ws = await openClient(runtime(), tok('watcher'));
    expect(await ws.request({ action: 'subscribe', group: 'entity:doc' })).toMatchObject({ type: 'ack' });
    const id = `feed-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id, body: quotes(100_000, 'a') })).status).toBe(201);
    // The update's diff holds the old and new 200 KB values: 400 KB of jsonb text, ~800 KB in the Data API's JSON,
    // plus the row (~400 KB): one change the change feed's query can never read.
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(100_000, 'b') })).status).toBe(200);
    const marker = `marker-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id: marker, note: 'after' })).status).toBe(201);
    const keyVersions = () =>
      messages(ws, 'entity:doc').map(
        (m) => `${(m.data as { key: string }).key}@${(m.data as { version: number }).version}`,
      );
    await eventually(() => keyVersions().includes(`${marker}@1`), 20_000, 'the marker');
    // The changes queue is a standard queue: the big change may come after the marker, but it comes.
    await eventually(() => keyVersions().includes(`${id}@2`), 20_000, 'the big change');
  }, 60_000);

  it("that change fails alone: another tenant's change in the same changes batch is not failed with it", async () => {
    const id = `feed2-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id, body: quotes(100_000, 'a') })).status).toBe(201);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(100_000, 'b') })).status).toBe(200);
    const acme = tokenFor(runtime(), 'acme', 'alice', ['member']);
    const acmeId = randomUUID();
    const created = await httpApi(runtime(), acme, 'POST', '/v1/entities/task', { id: acmeId, title: 'innocent' });
    expect(created.status).toBe(201);
    const event = {
      Records: [
        record(0, { tenantId: TENANT, entity: 'doc', key: id, version: 2 }),
        record(1, { tenantId: 'acme', entity: 'task', key: acmeId, version: 1 }),
      ],
    };
    const changeFeed = runtime().functions.get('changeFeed');
    if (changeFeed === undefined) throw new Error('no changeFeed');
    const out = (await changeFeed.invoke(event)) as { batchItemFailures: { itemIdentifier: string }[] };
    const failed = out.batchItemFailures.map((f) => f.itemIdentifier);
    expect(failed).not.toContain(event.Records[1]?.messageId);
  }, 60_000);

  it("fails only its own records when a tenant's table is gone from under its schema, and the others' changes go on", async () => {
    expect((await api('POST', '/v1/entities/gone', { id: 'g1' })).status).toBe(201);
    const db = (await runtime().tenants.get(TENANT)).database;
    if (db === undefined) throw new Error('no database');
    await localDataPorts(runtime().dataApi.endpoint, 'us-east-1').dataApi.execute(db, 'DROP TABLE gone', {});
    const acmeId = randomUUID();
    const acme = tokenFor(runtime(), 'acme', 'alice', ['member']);
    expect(
      (await httpApi(runtime(), acme, 'POST', '/v1/entities/task', { id: acmeId, title: 'innocent' })).status,
    ).toBe(201);
    const event = {
      Records: [
        record(0, { tenantId: TENANT, entity: 'gone', key: 'g1', version: 1 }),
        record(1, { tenantId: 'acme', entity: 'task', key: acmeId, version: 1 }),
      ],
    };
    const changeFeed = runtime().functions.get('changeFeed');
    if (changeFeed === undefined) throw new Error('no changeFeed');
    const out = (await changeFeed.invoke(event)) as { batchItemFailures: { itemIdentifier: string }[] };
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([event.Records[0]?.messageId]);
  }, 60_000);
});

describe('list cursors', () => {
  it('the nextCursor the API hands out for a 256-character key is accepted on the next page', async () => {
    // 256 characters is the documented maximum text key (MAX_KEY_LENGTH); a key of '€' is 768 UTF-8 bytes.
    const prefix = 'cursor';
    const keys = ['€'.repeat(256), `${'€'.repeat(255)}z`];
    for (const id of keys) expect((await api('POST', '/v1/entities/item', { id, title: prefix })).status).toBe(201);
    const first = await api('GET', `/v1/entities/item?title=${prefix}&limit=1`);
    expect(first.status).toBe(200);
    const cursor = first.body.nextCursor as string;
    const next = await api('GET', `/v1/entities/item?title=${prefix}&limit=1&cursor=${cursor}`);
    expect(next.status).toBe(200);
  }, 30_000);
});

describe('numbers in entity bodies', () => {
  it('refuses a numeric beyond 2^53 sent as a JSON number (as publish does), instead of storing it rounded', async () => {
    const id = `num-${randomUUID()}`;
    const created = await httpApi(
      runtime(),
      tok(),
      'POST',
      '/v1/entities/item',
      `{"id":"${id}","amount":12345678901234567891,"title":"n"}`,
    );
    expect(created.status).toBe(400);
    expect(created.text).toContain('send it as a string');
    expect((await api('GET', `/v1/entities/item/${id}`)).status).toBe(404);
    // As a string it is stored and read back exactly (a string, since a JSON number cannot carry it); a number a
    // double holds stays a number.
    const exact = await api('POST', '/v1/entities/item', { id: `${id}-s`, amount: '12345678901234567891', title: 'n' });
    expect(exact.status).toBe(201);
    expect(exact.body.amount).toBe('12345678901234567891');
    expect((await api('GET', `/v1/entities/item/${id}-s`)).body.amount).toBe('12345678901234567891');
    const list = await api('GET', `/v1/entities/item?title=n`);
    expect((list.body.items as { amount: unknown }[]).map((row) => row.amount)).toContain('12345678901234567891');
    const small = await api('POST', '/v1/entities/item', { id: `${id}-n`, amount: 12.5, title: 'm' });
    expect(small.body.amount).toBe(12.5);
    expect((await api('PATCH', `/v1/entities/item/${id}-n`, { amount: '0.12345678901234567890' })).body.amount).toBe(
      '0.12345678901234567890',
    );
  }, 30_000);
});

describe('deep jsonb values', () => {
  it('stores a jsonb value nested 998 deep (the body 1,000 levels)', async () => {
    const id = `deep-${randomUUID()}`;
    const text = `{"id":"${id}","body":{"a":${'['.repeat(998)}1${']'.repeat(998)}}}`;
    expect((await httpApi(runtime(), tok(), 'POST', '/v1/entities/doc', text)).status).toBe(201);
    expect((await api('GET', `/v1/entities/doc/${id}`)).status).toBe(200);
  }, 30_000);

  it.each([1_000, 20_000, 100_000])(
    'refuses a body nested %i deep with a typed 400 (it was a 500, out of stack, at 20,000)',
    async (depth) => {
      const text = `{"id":"deep-${depth}","body":${'['.repeat(depth)}1${']'.repeat(depth)}}`;
      const answer = await httpApi(runtime(), tok(), 'POST', '/v1/entities/doc', text);
      expect(answer.status).toBe(400);
      expect(answer.text).toContain('nested more than 1000 levels');
      expect((await api('GET', '/v1/entities/doc?limit=1')).status).toBe(200);
    },
    30_000,
  );
});
