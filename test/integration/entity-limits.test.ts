/**
 * The entity API and its change feed at AWS's limits, found by attacking passes (2026-12-03, 2026-12-04): the Data
 * API's 1 MiB result and 64 KB per row, the cursors the API hands out, numbers JSON cannot carry exactly, and nesting that would run out of stack;
 * and tables of ordinary but awkward shapes (reviewing passes): a table named like the SQL's own names, columns named
 * `t` or `x`, numerics a double cannot hold beside floating point, and a change-log entry of a very wide row.
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
/** The tenant of awkward table and column shapes (below), with an owner row filter. */
const SHAPES = 'shapes';
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
                    CREATE TABLE gone (id text PRIMARY KEY);
                    CREATE TABLE tiny_key (id numeric PRIMARY KEY, title text);`,
        limits: { httpRequestsPerSecond: 1000, httpBurst: 1000, publishesPerSecond: 1000, publishBurst: 1000 },
      });
      const rule = { readRoles: ['member', 'admin'], writeRoles: ['member', 'admin'], bypassRoles: ['admin'] };
      const config = await rt.tenants.get(TENANT);
      await rt.tenants.put({
        ...config,
        entityRules: { doc: rule, item: rule, gone: rule, tiny_key: rule } as EntityRules,
      });
      await onboarding.createTenant({
        tenantId: SHAPES,
        schemaSql: `CREATE TABLE page (id text PRIMARY KEY, owner text, title text);
          CREATE TABLE amt (id text PRIMARY KEY, owner text, x numeric);
          CREATE TABLE tee (id text PRIMARY KEY, owner text, t text);
          CREATE TABLE tiny (id text PRIMARY KEY, owner text, amount numeric, b bigint);
          CREATE TABLE fl (id text PRIMARY KEY, owner text, d double precision);
          CREATE TABLE wide (id text PRIMARY KEY, owner text, c0 text, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text, c9 text, c10 text, c11 text, c12 text, c13 text, c14 text, c15 text, c16 text, c17 text, c18 text, c19 text, c20 text, c21 text, c22 text, c23 text, c24 text, c25 text, c26 text, c27 text, c28 text, c29 text, c30 text, c31 text, c32 text, c33 text, c34 text, c35 text, c36 text, c37 text, c38 text, c39 text, c40 text, c41 text, c42 text, c43 text, c44 text, c45 text, c46 text, c47 text, c48 text, c49 text, c50 text, c51 text, c52 text, c53 text, c54 text, c55 text, c56 text, c57 text, c58 text, c59 text, c60 text, c61 text, c62 text, c63 text, c64 text, c65 text, c66 text, c67 text, c68 text, c69 text, c70 text, c71 text, c72 text, c73 text, c74 text, c75 text, c76 text, c77 text, c78 text, c79 text, c80 text, c81 text, c82 text, c83 text, c84 text, c85 text, c86 text, c87 text, c88 text, c89 text, c90 text, c91 text, c92 text, c93 text, c94 text, c95 text, c96 text, c97 text, c98 text, c99 text, c100 text, c101 text, c102 text, c103 text, c104 text, c105 text, c106 text, c107 text, c108 text, c109 text, c110 text, c111 text, c112 text, c113 text, c114 text, c115 text, c116 text, c117 text, c118 text, c119 text, c120 text, c121 text, c122 text, c123 text, c124 text, c125 text, c126 text, c127 text, c128 text, c129 text, c130 text, c131 text, c132 text, c133 text, c134 text, c135 text, c136 text, c137 text, c138 text, c139 text, c140 text, c141 text, c142 text, c143 text, c144 text, c145 text, c146 text, c147 text, c148 text, c149 text, c150 text, c151 text, c152 text, c153 text, c154 text, c155 text, c156 text, c157 text, c158 text, c159 text, c160 text, c161 text, c162 text, c163 text, c164 text, c165 text, c166 text, c167 text, c168 text, c169 text, c170 text, c171 text, c172 text, c173 text, c174 text, c175 text, c176 text, c177 text, c178 text, c179 text, c180 text, c181 text, c182 text, c183 text, c184 text, c185 text, c186 text, c187 text, c188 text, c189 text, c190 text, c191 text, c192 text, c193 text, c194 text, c195 text, c196 text, c197 text, c198 text, c199 text, c200 text, c201 text, c202 text, c203 text, c204 text, c205 text, c206 text, c207 text, c208 text, c209 text, c210 text, c211 text, c212 text, c213 text, c214 text, c215 text, c216 text, c217 text, c218 text, c219 text);`,
        limits: { httpRequestsPerSecond: 1000, httpBurst: 1000, publishesPerSecond: 1000, publishBurst: 1000 },
      });
      const ownerRule = {
        readRoles: ['member', 'admin'],
        writeRoles: ['member', 'admin'],
        rowFilter: { column: 'owner', equalsClaim: 'sub' },
        bypassRoles: ['admin'],
      };
      const shapes = await rt.tenants.get(SHAPES);
      const entityRules = Object.fromEntries(['page', 'amt', 'tee', 'tiny', 'fl', 'wide'].map((e) => [e, ownerRule]));
      await rt.tenants.put({ ...shapes, entityRules });
    },
  },
);

const tok = (user = 'writer') => tokenFor(runtime(), TENANT, user, ['member']);
const api = async (method: string, path: string, body?: unknown) => {
  const a = await httpApi(runtime(), tok(), method, path, body);
  return { status: a.status, body: jsonOf<Record<string, unknown>>(a), bytes: a.text.length };
};
/** `n` quote characters: 2n bytes in the request, as each `"` is `\"` in jsonb text (and `\\\"` in the Data API's JSON). */
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

describe("entity rows at the Data API's limits (64 KB per row, 1 MiB per result)", () => {
  it('refuses a create or an update whose row would pass 64 KB with 413, and changes nothing', async () => {
    const id = `big-${randomUUID()}`;
    // 40,000 quotes: 80 KB of jsonb text (each `"` is `\"`), a row AWS's Data API cannot return.
    const refused = await api('POST', '/v1/entities/doc', { id, body: quotes(40_000) });
    expect(refused.status).toBe(413);
    expect(refused.body).toMatchObject({ error: { code: 'TOO_LARGE' } });
    expect(String((refused.body.error as { message: string }).message)).toMatch(/bytes of JSON, over the 64512/);
    expect((await api('GET', `/v1/entities/doc/${id}`)).status).toBe(404);
    expect((await api('POST', '/v1/entities/doc', { id, note: 'small' })).status).toBe(201);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(40_000) })).status).toBe(413);
    const row = await api('GET', `/v1/entities/doc/${id}`);
    expect(row.body).toMatchObject({ id, note: 'small', body: null, _version: 1 });
    const log = await api('GET', `/v1/entities/doc/${id}/changes`);
    expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([1]);
  }, 60_000);

  it('answers a row over 64 KB written by other means 413 on GET, and a list names it and pages past it', async () => {
    const db = (await runtime().tenants.get(TENANT)).database;
    if (db === undefined) throw new Error('no database');
    const own = localDataPorts(runtime().dataApi.endpoint, 'us-east-1').dataApi;
    await own.execute(db, "INSERT INTO doc (id, body) VALUES ('zy-big', to_jsonb(repeat('x', 70000)))", {});
    expect((await api('POST', '/v1/entities/doc', { id: 'zy-small', note: 'after' })).status).toBe(201);
    const got = await api('GET', '/v1/entities/doc/zy-big');
    expect(got.status).toBe(413);
    expect(String((got.body.error as { message: string }).message)).toMatch(/^doc 'zy-big' is \d+ bytes of JSON/);
    expect((await api('PATCH', '/v1/entities/doc/zy-big', { note: 'x' })).status).toBe(413);
    const items: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page = await api('GET', `/v1/entities/doc?limit=1${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      items.push(...(page.body.items as Record<string, unknown>[]));
      cursor = page.body.nextCursor as string | null;
      if (cursor === null) break;
    }
    const big = items.find((i) => i.id === 'zy-big');
    expect(big).toEqual({ id: 'zy-big', _version: 0, _rowOmitted: true });
    expect(items.find((i) => i.id === 'zy-small')).toMatchObject({ note: 'after' });
  }, 60_000);

  it('GET …/changes of a row with big updates answers in pages, each entry whole or naming what it omits', async () => {
    const id = `chg-${randomUUID()}`;
    // 14,000 quotes: 28 KB of jsonb text; an update's diff holds the old and the new, 56 KB, over what one entry gives
    // whole (32 KB).
    expect((await api('POST', '/v1/entities/doc', { id, body: quotes(14_000, 'a') })).status).toBe(201);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(14_000, 'b') })).status).toBe(200);
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
    // The update whose diff holds two 28 KB values names the field it leaves out; the small ones come whole.
    expect(omitted).toEqual([null, ['body'], null]);
  }, 60_000);

  it("GET …/changes answers within Lambda's 6 MB, however many big versions a page could hold", async () => {
    const id = `big-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id, note: null })).status).toBe(201);
    // 240 more versions of ~30 KB diffs (7 MB), written to the log as 240 updates would have been.
    const db = (await runtime().tenants.get(TENANT)).database;
    if (db === undefined) throw new Error('no database');
    await localDataPorts(runtime().dataApi.endpoint, 'us-east-1').dataApi.execute(
      db,
      `INSERT INTO tenantcast_change_log (entity, key, version, op, changed_by, diff, published)
       SELECT 'doc', :id, v, 'update', 'writer', jsonb_build_object('note', jsonb_build_array(
         CASE WHEN v % 2 = 1 THEN repeat('a', 30000) END, CASE WHEN v % 2 = 0 THEN repeat('a', 30000) END)), true
       FROM generate_series(2, 241) AS v`,
      { id },
    );
    const versions: number[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 5; pages++) {
      const query = `?limit=500${cursor === null ? '' : `&cursor=${cursor}`}`;
      const page = await api('GET', `/v1/entities/doc/${id}/changes${query}`);
      expect(page.status).toBe(200);
      // Until 2026-12-04 the first page was all 241 entries, 7.2 MB: a 500 in AWS.
      expect(page.bytes).toBeLessThan(5 * 1024 * 1024);
      versions.push(...(page.body.items as { version: number }[]).map((i) => i.version));
      cursor = page.body.nextCursor as string | null;
      if (cursor === null) break;
    }
    expect(versions).toEqual(Array.from({ length: 241 }, (_, i) => i + 1));
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

  it('GET /entities/doc (default limit 50) with rows near 64 KB answers shorter pages, not 413, and pages through them all', async () => {
    // 28,000 quotes: 56 KB of jsonb text, 112 KB in the Data API's JSON: 50 of them pass its 1 MiB result.
    for (let i = 0; i < 12; i++) {
      expect((await api('POST', '/v1/entities/doc', { id: `zz-list-${i}`, body: quotes(28_000) })).status).toBe(201);
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
    expect(seen.filter((id) => id.startsWith('zz-list-'))).toEqual(
      Array.from({ length: 12 }, (_, i) => `zz-list-${i}`).sort(),
    );
  }, 60_000);

  it('a change whose row is over what the feed reads reaches subscribers (rowOmitted), and the feed goes on', async () => {
    const ws = await openClient(runtime(), tok('watcher'));
    expect(await ws.request({ action: 'subscribe', group: 'entity:doc' })).toMatchObject({ type: 'ack' });
    const id = `feed-${randomUUID()}`;
    // 20,000 quotes: 40 KB of jsonb text, over the 32 KB of row the feed reads (and its diff, 80 KB, over what one
    // Data API row holds: the feed reads only its key's and row filter's values).
    expect((await api('POST', '/v1/entities/doc', { id, body: quotes(20_000, 'a') })).status).toBe(201);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(20_000, 'b') })).status).toBe(200);
    const marker = `marker-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id: marker, note: 'after' })).status).toBe(201);
    const keyVersions = () =>
      messages(ws, 'entity:doc').map(
        (m) => `${(m.data as { key: string }).key}@${(m.data as { version: number }).version}`,
      );
    await eventually(() => keyVersions().includes(`${marker}@1`), 20_000, 'the marker');
    // The changes queue is a standard queue: the big change may come after the marker, but it comes.
    await eventually(() => keyVersions().includes(`${id}@2`), 20_000, 'the big change');
    const big = messages(ws, 'entity:doc').find((m) => (m.data as { key: string }).key === id);
    expect(big?.data).toMatchObject({ row: null, rowOmitted: true });
  }, 60_000);

  it("that change fails alone: another tenant's change in the same changes batch is not failed with it", async () => {
    const id = `feed2-${randomUUID()}`;
    expect((await api('POST', '/v1/entities/doc', { id, body: quotes(20_000, 'a') })).status).toBe(201);
    expect((await api('PATCH', `/v1/entities/doc/${id}`, { body: quotes(20_000, 'b') })).status).toBe(200);
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

describe('keys SQS cannot take as an id', () => {
  it('a change of a row whose text key has a space, an accent, a control character or U+FFFF reaches the live feed', async () => {
    const ws = await openClient(runtime(), tok('watcher'));
    expect(await ws.request({ action: 'subscribe', group: 'entity:item' })).toMatchObject({ type: 'ack' });
    const ids = ['new york', 'Zürich', 'ctl\u0001x', 'nonchar\uFFFF'];
    for (const id of ids) expect((await api('POST', '/v1/entities/item', { id, title: 'x' })).status).toBe(201);
    // Until 2026-12-04 each was refused by SQS (its id, the deduplication id or the messageId attribute, had a
    // character SQS does not take) on every attempt, and its unit's other changes with it (found by an attacking
    // pass and a reviewing helper).
    const keys = () => messages(ws, 'entity:item').map((m) => (m.data as { key?: unknown }).key);
    await eventually(() => ids.every((id) => keys().includes(id)), 20_000, 'every change');
  });
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

describe('a numeric key JavaScript writes with an exponent', () => {
  it('is read, updated and logged by the key the API gave back (0.0000001 is 1e-7 in JSON), and reaches the feed', async () => {
    const ws = await openClient(runtime(), tok('watcher'));
    expect(await ws.request({ action: 'subscribe', group: 'entity:tiny_key' })).toMatchObject({ type: 'ack' });
    const made = await api('POST', '/v1/entities/tiny_key', { id: 0.0000001, title: 'a' });
    expect(made.status).toBe(201);
    const key = String(made.body.id);
    expect(key).toBe('1e-7');
    // Until 2026-12-04 every one of these answered 400: the URL's key had to be a plain decimal.
    expect((await api('GET', `/v1/entities/tiny_key/${key}`)).body).toMatchObject({ title: 'a', _version: 1 });
    expect((await api('PATCH', `/v1/entities/tiny_key/${key}`, { title: 'b' })).body).toMatchObject({ _version: 2 });
    const log = await api('GET', `/v1/entities/tiny_key/${key}/changes`);
    expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([1, 2]);
    await eventually(() => messages(ws, 'entity:tiny_key').length >= 2, 15_000, 'both changes');
    expect(messages(ws, 'entity:tiny_key').map((m) => (m.data as { key: unknown }).key)).toEqual([1e-7, 1e-7]);
    expect((await api('DELETE', `/v1/entities/tiny_key/${key}`)).status).toBe(204);
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

// ---- awkward shapes (a second reviewing pass, 2026-12-03): names like the SQL's own, numbers at a double's edges ----

const bob = () => tokenFor(runtime(), SHAPES, 'bob', ['member']);
const admin = () => tokenFor(runtime(), SHAPES, 'root', ['admin']);
const shapesApi = async (token: string, method: string, path: string, body?: unknown) => {
  const answer = await httpApi(runtime(), token, method, path, body);
  return { status: answer.status, text: answer.text, body: jsonOf<Record<string, unknown>>(answer) };
};
const outside = async (sql: string) => {
  const db = (await runtime().tenants.get(SHAPES)).database;
  if (db === undefined) throw new Error('no database');
  await localDataPorts(runtime().dataApi.endpoint, 'us-east-1').dataApi.execute(db, sql, {});
};

describe('tables and columns named like the SQL’s own names', () => {
  it('reads the change log of an entity named `page` under a row filter', async () => {
    const id = randomUUID();
    expect((await shapesApi(bob(), 'POST', '/v1/entities/page', { id, title: 'b' })).status).toBe(201);
    const log = await shapesApi(bob(), 'GET', `/v1/entities/page/${id}/changes`);
    expect(log.status).toBe(200);
    expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([1]);
  }, 30_000);

  it('answers a row with a numeric column named `x`, set or null, as an object', async () => {
    const id = randomUUID();
    expect((await shapesApi(bob(), 'POST', '/v1/entities/amt', { id, x: 5 })).body).toMatchObject({
      id,
      x: 5,
      owner: 'bob',
    });
    const bare = randomUUID();
    expect((await shapesApi(bob(), 'POST', '/v1/entities/amt', { id: bare })).body).toMatchObject({
      id: bare,
      x: null,
      owner: 'bob',
    });
    const log = await shapesApi(bob(), 'GET', `/v1/entities/amt/${id}/changes`);
    expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([1]);
  }, 30_000);

  it('answers a row with a column named `t` as an object', async () => {
    const id = randomUUID();
    expect((await shapesApi(bob(), 'POST', '/v1/entities/tee', { id, t: 'tt' })).body).toMatchObject({
      id,
      t: 'tt',
      owner: 'bob',
    });
    expect((await shapesApi(bob(), 'GET', `/v1/entities/tee/${id}`)).body).toMatchObject({ id, t: 'tt' });
  }, 30_000);
});

describe('numbers at a double’s edges', () => {
  it('writes and reads a numeric below a double’s range, as a string', async () => {
    const id = randomUUID();
    const made = await shapesApi(bob(), 'POST', '/v1/entities/tiny', { id, amount: `0.${'0'.repeat(399)}1` });
    expect(made.status).toBe(201);
    expect(String(made.body.amount)).toMatch(/^0\.0{399}1$/);
    await outside("INSERT INTO tiny VALUES ('outside', 'bob', 1e-400), ('huge', 'bob', 1e400), ('zero', 'bob', 0)");
    expect((await shapesApi(bob(), 'GET', '/v1/entities/tiny')).status).toBe(200);
    expect(String((await shapesApi(bob(), 'GET', '/v1/entities/tiny/huge')).body.amount)).toMatch(/^10{400}$/);
    expect((await shapesApi(bob(), 'GET', '/v1/entities/tiny/zero')).body.amount).toBe(0);
  }, 30_000);

  it('takes a small fraction JavaScript writes with an exponent (0.0000001 is 1e-7 to it)', async () => {
    const id = randomUUID();
    const made = await shapesApi(bob(), 'POST', '/v1/entities/tiny', { id, amount: 0.0000001 });
    expect(made.status).toBe(201);
    expect(made.body.amount).toBe(0.0000001);
  }, 30_000);

  it('takes and gives back a bigint past 32 bits, as a number while exact and as a string past 2^53, the smallest too', async () => {
    const id = randomUUID();
    expect((await shapesApi(bob(), 'POST', '/v1/entities/tiny', { id, b: 3_000_000_000 })).body.b).toBe(3_000_000_000);
    const most = await shapesApi(bob(), 'PATCH', `/v1/entities/tiny/${id}`, { b: '9223372036854775807' });
    expect(most.body.b).toBe('9223372036854775807');
    expect((await shapesApi(bob(), 'PATCH', `/v1/entities/tiny/${id}`, { b: '9223372036854775808' })).status).toBe(400);
    await outside("INSERT INTO tiny (id, owner, b) VALUES ('least', 'bob', -9223372036854775808)");
    expect((await shapesApi(bob(), 'GET', '/v1/entities/tiny/least')).body.b).toBe('-9223372036854775808');
    expect((await shapesApi(bob(), 'GET', '/v1/entities/tiny')).status).toBe(200);
  }, 30_000);

  it('answers a double precision value as the number it is, however large', async () => {
    const id = randomUUID();
    const made = await shapesApi(bob(), 'POST', '/v1/entities/fl', { id, d: 1e300 });
    expect(made.status).toBe(201);
    expect(made.body.d).toBe(1e300);
  }, 30_000);
});

describe('a change-log entry of a very wide row', () => {
  it('is read, shaped to fit, naming what it leaves out (not 413 for good)', async () => {
    const id = 'w1';
    expect((await shapesApi(admin(), 'POST', '/v1/entities/wide', { id, owner: 'bob' })).status).toBe(201);
    // 220 columns of 250 bytes of jsonb text: a 58 KB row (under the Data API's 64 KB); the last update's diff, 110 KB,
    // is over what one change-log entry gives whole.
    const quotes = '"'.repeat(125);
    for (let part = 0; part < 4; part++) {
      const body = Object.fromEntries(Array.from({ length: 55 }, (_, i) => [`c${part * 55 + i}`, quotes]));
      expect((await shapesApi(admin(), 'PATCH', `/v1/entities/wide/${id}`, body)).status).toBe(200);
    }
    const all = Object.fromEntries(Array.from({ length: 220 }, (_, i) => [`c${i}`, 'y'.repeat(250)]));
    expect((await shapesApi(admin(), 'PATCH', `/v1/entities/wide/${id}`, all)).status).toBe(200);
    for (const token of [admin(), bob()]) {
      const log = await shapesApi(token, 'GET', `/v1/entities/wide/${id}/changes?limit=500`);
      expect(log.status).toBe(200);
      const items = log.body.items as { version: number; diff: Record<string, unknown>; omitted?: string[] }[];
      expect(items.map((i) => i.version)).toEqual([1, 2, 3, 4, 5, 6]);
      const last = items.at(-1);
      expect((last?.omitted?.length ?? 0) + Object.keys(last?.diff ?? {}).length).toBe(220);
      expect(last?.omitted?.length).toBeGreaterThan(0);
    }
  }, 60_000);
});

describe('a row filter of long values', () => {
  it("reads the change log of a row whose filter value changed many times without passing the Data API's 64 KB per row", async () => {
    const id = `long-${randomUUID()}`;
    // Each version's owner is ~2 KB, the most a claim could hold: 30 later changes of it are ~120 KB, which the
    // page's judging (`later`) may not read whole beside the rest of its row (LATER_BYTES).
    const owner = (i: number) => `${'o'.repeat(1990)}${String(i).padStart(3, '0')}`;
    expect((await shapesApi(admin(), 'POST', '/v1/entities/page', { id, owner: owner(0) })).status).toBe(201);
    // A page of the log reads at least 100 versions; the owner's changes after them are what judges them.
    for (let i = 1; i < 100; i++) {
      expect((await shapesApi(admin(), 'PATCH', `/v1/entities/page/${id}`, { title: `t${i}` })).status).toBe(200);
    }
    for (let i = 1; i <= 30; i++) {
      expect((await shapesApi(admin(), 'PATCH', `/v1/entities/page/${id}`, { owner: owner(i) })).status).toBe(200);
    }
    const all = await shapesApi(admin(), 'GET', `/v1/entities/page/${id}/changes?limit=500`);
    expect((all.body.items as unknown[]).length).toBe(130);
    // bob may see none of its versions: judged, not refused (until 2026-12-04 the judging read was one result row of
    // ~120 KB, which AWS's Data API refuses).
    expect((await shapesApi(bob(), 'GET', `/v1/entities/page/${id}/changes`)).status).toBe(404);
  }, 60_000);
});
