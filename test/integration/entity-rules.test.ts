/**
 * One token, one set of rights over an entity, whichever way a row reaches the caller (docs/entities.md): `GET`, the
 * change log, a write's answer and the live feed, end to end against the local runtime, on a tenant onboarded with
 * its own table. Each case was a leak or a mismatch found by an attacker's pass (2026-12-03).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { EntityRules } from '../../lambdas/core/entities/model.ts';
import { LATER_CHANGES_MAX } from '../../lambdas/core/entities/sql.ts';
import { Onboarding } from '../../lambdas/core/onboarding.ts';
import { localDataPorts } from '../../local/tenant-data.ts';
import {
  eventually,
  httpApi,
  jsonOf,
  messages,
  openClient,
  sleep,
  tokenFor,
  useQuietRuntime,
} from '../support/local-stack.ts';
import type { TestClient } from '../support/ws-client.ts';

const TENANT = 'rules';
const runtime = useQuietRuntime(
  {
    sqsRetryDelaySeconds: 0,
    schedules: false,
    functionLogLevel: 'WARN',
    functionEnv: { TENANT_CACHE_TTL_SECONDS: '0', OUTBOX_GRACE_SECONDS: '0' },
  },
  {
    prepare: async (rt) => {
      const ports = localDataPorts(rt.dataApi.endpoint, 'us-east-1');
      const onboarding = new Onboarding({ ...ports, tenants: rt.tenants, clusters: rt.dataApi.clusters() });
      await onboarding.createTenant({
        tenantId: TENANT,
        schemaSql: `CREATE TABLE doc (id text PRIMARY KEY, owner text, team text, title text, slug text UNIQUE,
                    score double precision, parent_id text REFERENCES doc (id));
                    CREATE TABLE note (id text PRIMARY KEY, owner text, doc_id text REFERENCES doc (id), body text);
                    CREATE TABLE pin (id text PRIMARY KEY, owner text, doc_id char(36) REFERENCES doc (id));
                    CREATE TABLE memo (id text PRIMARY KEY, owner varchar(5), title text);`,
        limits: { httpRequestsPerSecond: 1000, httpBurst: 1000, publishesPerSecond: 1000, publishBurst: 1000 },
      });
    },
    cleanup: async (rt) => {
      rt.sqs.restoreSends();
    },
  },
);

async function setRules(doc: EntityRules[string]): Promise<void> {
  const config = await runtime().tenants.get(TENANT);
  await runtime().tenants.put({ ...config, entityRules: { doc } });
}
const tok = (user: string, roles: string[], extraClaims?: Record<string, unknown>) =>
  tokenFor(runtime(), TENANT, user, roles, extraClaims ? { extraClaims } : {});
const api = async (token: string, method: string, path: string, body?: unknown) => {
  const a = await httpApi(runtime(), token, method, path, body);
  return { status: a.status, text: a.text, body: jsonOf<Record<string, unknown>>(a) };
};
async function sub(token: string): Promise<TestClient> {
  const c = await openClient(runtime(), token);
  expect(await c.request({ action: 'subscribe', group: 'entity:doc' })).toMatchObject({ type: 'ack' });
  return c;
}
const docMsgs = (c: TestClient, key: string) =>
  messages(c, 'entity:doc')
    .map((f) => f.data as Record<string, unknown>)
    .filter((d) => d.key === key);

const ownerRule = {
  readRoles: ['member', 'admin'],
  writeRoles: ['member', 'admin'],
  rowFilter: { column: 'owner', equalsClaim: 'sub' },
  bypassRoles: ['admin'],
};
const teamRule = {
  readRoles: ['member', 'admin'],
  writeRoles: ['member', 'admin'],
  rowFilter: { column: 'team', inClaim: 'teams' },
  bypassRoles: ['admin'],
};

/**
 * After a change `caller` must not get, one it must get, then what the feed gave it of `hiddenKey`: the delivery queue
 * keeps a group's messages in order, so once the later change is there the earlier one would have been too.
 */
async function feedAfter(ws: TestClient, hiddenKey: string, admin: string, visible: Record<string, unknown>) {
  const marker = randomUUID();
  expect((await api(admin, 'POST', '/v1/entities/doc', { id: marker, ...visible })).status).toBe(201);
  await eventually(() => docMsgs(ws, marker).length === 1, 8000, 'the visible change');
  return docMsgs(ws, hiddenKey);
}

describe('the change log', () => {
  it('hides what a row held before an update moved it into the caller’s filter (inClaim)', async () => {
    await setRules(teamRule);
    const carol = tok('carol', ['member'], { teams: ['t1', 't2'] });
    const dave = tok('dave', ['member'], { teams: ['t2'] });
    const id = randomUUID();
    expect((await api(carol, 'POST', '/v1/entities/doc', { id, team: 't1', title: 'T1-ONLY-SECRET' })).status).toBe(
      201,
    );
    expect((await api(dave, 'GET', `/v1/entities/doc/${id}`)).status).toBe(404);
    expect((await api(carol, 'PATCH', `/v1/entities/doc/${id}`, { team: 't2', title: 'public' })).status).toBe(200);
    const log = await api(dave, 'GET', `/v1/entities/doc/${id}/changes`);
    expect(log.status).toBe(200);
    expect(log.body.items).toEqual([
      expect.objectContaining({
        version: 2,
        beforeHidden: true,
        diff: { team: [null, 't2'], title: [null, 'public'] },
      }),
    ]);
    expect(log.text).not.toContain('T1-ONLY-SECRET');
  }, 20_000);
});

describe('the change log in pages', () => {
  it('skips the versions of another owner’s history to fill a page, and shows none of them on any page', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const id = `paged-${randomUUID()}`;
    // bob's history of the key (versions 1–4), then alice's (5–7).
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 'b1' })).status).toBe(201);
    for (const title of ['b2', 'b3'])
      expect((await api(bob, 'PATCH', `/v1/entities/doc/${id}`, { title })).status).toBe(200);
    expect((await api(bob, 'DELETE', `/v1/entities/doc/${id}`)).status).toBe(204);
    expect((await api(alice, 'POST', '/v1/entities/doc', { id, title: 'a5' })).status).toBe(201);
    for (const title of ['a6', 'a7'])
      expect((await api(alice, 'PATCH', `/v1/entities/doc/${id}`, { title })).status).toBe(200);
    const pages = async (token: string, limit: number) => {
      const out: number[][] = [];
      let cursor: string | null = null;
      for (let n = 0; n < 10; n++) {
        const page = await api(
          token,
          'GET',
          `/v1/entities/doc/${id}/changes?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(page.status).toBe(200);
        out.push((page.body.items as { version: number }[]).map((i) => i.version));
        cursor = page.body.nextCursor as string | null;
        if (cursor === null) break;
      }
      return out;
    };
    expect(await pages(alice, 2)).toEqual([[5, 6], [7]]);
    expect((await pages(bob, 3)).flat()).toEqual([1, 2, 3, 4]);
  }, 40_000);
});

describe('judging a version through values and histories too long to read', () => {
  it('takes a filter value over 2 KB in between as unknown: bob’s history does not go to alice', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const admin = tok('root', ['admin']);
    const aliceWs = await sub(alice);
    const id = `long-${randomUUID()}`;
    expect((await api(admin, 'POST', '/v1/entities/doc', { id, owner: 'bob', title: 'BOB-SECRET' })).status).toBe(201);
    // bob's edit reaches the feed late (its send fails; the outbox relay sends it).
    const restore = runtime().sqs.failSends(runtime().queues.changes.name);
    expect((await api(bob, 'PATCH', `/v1/entities/doc/${id}`, { title: 'BOB-SECRET-2' })).status).toBe(200);
    restore();
    expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner: 'x'.repeat(4200) })).status).toBe(200);
    expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner: 'alice', title: 'alice' })).status).toBe(200);
    await eventually(() => docMsgs(aliceWs, id).some((d) => d.version === 4), 10_000, 'alice’s version 4');
    await runtime().runScheduled('outboxRelay');
    await settle(aliceWs, 'alice');
    expect(docMsgs(aliceWs, id).map((d) => d.version)).toEqual([4]);
    const aliceLog = await api(alice, 'GET', `/v1/entities/doc/${id}/changes`);
    expect(aliceLog.text).not.toContain('BOB-SECRET');
    expect((aliceLog.body.items as { version: number }[]).map((i) => i.version)).toEqual([4]);
    const bobLog = await api(bob, 'GET', `/v1/entities/doc/${id}/changes`);
    expect((bobLog.body.items as { version: number }[]).map((i) => i.version)).toEqual([1, 2]);
  }, 40_000);

  it('answers 404 for a key whose versions are all hidden, however many, as for a key that never existed', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const id = `hidden-${randomUUID()}`;
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 't0' })).status).toBe(201);
    for (let i = 1; i <= 11; i++) {
      expect((await api(bob, 'PATCH', `/v1/entities/doc/${id}`, { title: `t${i}` })).status).toBe(200);
    }
    const hidden = await api(alice, 'GET', `/v1/entities/doc/${id}/changes?limit=1`);
    const none = await api(alice, 'GET', `/v1/entities/doc/nosuch-${randomUUID()}/changes?limit=1`);
    expect([hidden.status, hidden.text.replace(id, 'K')]).toEqual([404, none.text.replace(/nosuch-[-\w]+/, 'K')]);
  }, 40_000);

  it(`counts the ${LATER_CHANGES_MAX} later reassignments from the version, whatever the page's size`, async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const admin = tok('root', ['admin']);
    const id = `count-${randomUUID()}`;
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 'first' })).status).toBe(201);
    for (let i = 0; i <= LATER_CHANGES_MAX; i++) {
      const owner = i === LATER_CHANGES_MAX ? 'bob' : i % 2 === 0 ? 'carol' : 'dave';
      expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner })).status).toBe(200);
    }
    // Version 1 is followed by 51 reassignments: unknown, at any limit. The last, back to bob, is followed by none.
    for (const limit of [1, 500]) {
      const log = await api(bob, 'GET', `/v1/entities/doc/${id}/changes?limit=${limit}`);
      expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([LATER_CHANGES_MAX + 2]);
    }
  }, 60_000);

  it(`never answers 413 after many reassignments, and shows nobody a version judged past ${LATER_CHANGES_MAX} of them`, async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const admin = tok('root', ['admin']);
    const id = `many-${randomUUID()}`;
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 'first' })).status).toBe(201);
    const [a, b] = ['a'.repeat(2000), 'b'.repeat(2000)];
    for (let i = 0; i < 60; i++) {
      expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner: i % 2 === 0 ? a : b })).status).toBe(200);
    }
    expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner: 'alice' })).status).toBe(200);
    // bob's version 1 is followed by more reassignments than it is judged through: unknown, so not shown.
    // The same whatever the page's size: the count is of changes after the version, not after the page.
    for (const limit of [1, 500]) {
      expect((await api(bob, 'GET', `/v1/entities/doc/${id}/changes?limit=${limit}`)).status).toBe(404);
    }
    const aliceLog = await api(alice, 'GET', `/v1/entities/doc/${id}/changes`);
    expect(aliceLog.status).toBe(200);
    expect((aliceLog.body.items as { version: number }[]).map((i) => i.version)).toEqual([62]);
    const all = await api(admin, 'GET', `/v1/entities/doc/${id}/changes?limit=500`);
    expect((all.body.items as unknown[]).length).toBe(62);
  }, 120_000);
});

describe('the live feed gives the rights HTTP gives', () => {
  it('counts an array claim by its first value for equalsClaim, as GET does', async () => {
    await setRules({ ...ownerRule, rowFilter: { column: 'team', equalsClaim: 'teams' } });
    const eve = tok('eve', ['member'], { teams: ['t1', 't2'] });
    const admin = tok('root', ['admin']);
    const ws = await sub(eve);
    const id = randomUUID();
    expect((await api(admin, 'POST', '/v1/entities/doc', { id, team: 't2', title: 'T2-ROW' })).status).toBe(201);
    expect((await api(eve, 'GET', `/v1/entities/doc/${id}`)).status).toBe(404);
    expect(await feedAfter(ws, id, admin, { team: 't1' })).toEqual([]);
  }, 20_000);

  it('refuses the feed to a bypass role held without a read role, as GET does', async () => {
    await setRules({ ...ownerRule, readRoles: ['member'], bypassRoles: ['auditor'] });
    const aud = tok('aud', ['viewer', 'auditor', 'member']);
    const viewer = tok('vic', ['viewer', 'auditor']);
    const bob = tok('bob', ['member']);
    const auditor = await sub(aud);
    const bypassOnly = await openClient(runtime(), viewer);
    // Until 2026-12-04 the subscribe was taken (the role rules allow it) and its ack's seq counted the entity's
    // changes; now it is refused as GET is (found by an attacking pass).
    expect(await bypassOnly.request({ action: 'subscribe', group: 'entity:doc' })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    expect(await bypassOnly.request({ action: 'presence', group: 'entity:doc' })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    const id = randomUUID();
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 'BOB-ONLY' })).status).toBe(201);
    expect((await api(viewer, 'GET', `/v1/entities/doc/${id}`)).status).toBe(403);
    // The auditor with a read role does get bob's row (the bypass still lifts the row filter), in the same run.
    await eventually(() => docMsgs(auditor, id).length === 1, 8000, 'bob’s row for the auditor');
    await sleep(500);
    expect(docMsgs(bypassOnly, id)).toEqual([]);
  }, 20_000);

  it('answers a feed of an entity the tenant does not have NOT_FOUND, as GET answers 404', async () => {
    const admin = tok('ada', ['admin']);
    expect((await api(admin, 'GET', '/v1/entities/nosuch')).status).toBe(404);
    const ws = await openClient(runtime(), admin);
    // Until 2026-12-05 the feed answered FORBIDDEN for the same token.
    for (const action of ['subscribe', 'presence']) {
      expect(await ws.request({ action, group: 'entity:nosuch' })).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
    }
    await ws.close();
  });

  it('refuses the feed and presence to a member under a row filter its column cannot carry, as GET does', async () => {
    // `score` is double precision: its JSON text is not its SQL text, so the filter matches no row and only the
    // bypass roles read (applicableRule). Until 2026-12-04 a member's subscribe was acked all the same.
    await setRules({ ...teamRule, rowFilter: { column: 'score', inClaim: 'teams' } });
    const member = tok('mallory', ['member'], { teams: ['1'] });
    expect((await api(member, 'GET', '/v1/entities/doc')).status).toBe(403);
    const ws = await openClient(runtime(), member);
    for (const action of ['subscribe', 'presence']) {
      expect(await ws.request({ action, group: 'entity:doc' })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    }
    const admin = await sub(tok('ada', ['admin']));
    await Promise.all([ws.close(), admin.close()]);
  });

  it('lists the feed’s followers only to a caller who reads every row, and announces no join on it', async () => {
    await setRules(ownerRule);
    const config = await runtime().tenants.get(TENANT);
    await runtime().tenants.put({ ...config, presenceGroups: ['*'] });
    try {
      const bob = await sub(tok('bob', ['member']));
      const alice = await sub(tok('alice', ['member']));
      // Until 2026-12-05 alice, who reads only her own rows, got bob listed (found by an attacking pass).
      expect(await alice.request({ action: 'presence', group: 'entity:doc' })).toMatchObject({
        type: 'error',
        code: 'FORBIDDEN',
      });
      const admin = await sub(tok('root', ['admin']));
      const listed = await admin.request({ action: 'presence', group: 'entity:doc' });
      expect((listed.members as { userId: string }[]).map((m) => m.userId)).toEqual(
        expect.arrayContaining(['alice', 'bob', 'root']),
      );
      await sleep(300);
      expect(bob.frames.filter((f) => f.type === 'presence')).toEqual([]);
      await Promise.all([bob.close(), alice.close(), admin.close()]);
    } finally {
      await runtime().tenants.put({ ...config, presenceGroups: config.presenceGroups });
    }
  }, 20_000);

  it('matches a numeric claim value as GET does', async () => {
    await setRules(teamRule);
    const num = tok('num', ['member'], { teams: [7] });
    const admin = tok('root', ['admin']);
    const ws = await sub(num);
    const id = randomUUID();
    expect((await api(admin, 'POST', '/v1/entities/doc', { id, team: '7', title: 'team 7 row' })).status).toBe(201);
    expect((await api(num, 'GET', `/v1/entities/doc/${id}`)).status).toBe(200);
    await eventually(() => docMsgs(ws, id).length > 0, 8000, 'the change on the live feed');
  }, 20_000);

  it('sends an update read after its row was deleted to whom it gave the row, not to whom it took it from', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const admin = tok('root', ['admin']);
    const ws = await sub(bob);
    const id = randomUUID();
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 'b' })).status).toBe(201);
    await eventually(() => docMsgs(ws, id).length === 1, 8000, 'version 1');
    // Both later changes reach the feed together, after the delete: the outbox relay sends them.
    const restore = runtime().sqs.failSends(runtime().queues.changes.name);
    expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner: 'alice', title: 'ALICE-NOW' })).status).toBe(
      200,
    );
    expect((await api(alice, 'DELETE', `/v1/entities/doc/${id}`)).status).toBe(204);
    restore();
    await runtime().runScheduled('outboxRelay');
    expect((await feedAfter(ws, id, bob, { title: 'later' })).map((d) => d.version)).toEqual([1]);
  }, 30_000);
});

describe('a replay of the live feed (subscribe with since)', () => {
  const openRule = { readRoles: ['member', 'admin'], writeRoles: ['member', 'admin'], bypassRoles: ['admin'] };

  /** bob writes a row under `before`; the rules become `after`; `reader` subscribes with `since` from before the row. */
  async function replayAcrossRules(before: EntityRules[string], after: EntityRules[string], reader: string) {
    await setRules(before);
    const bob = tok('bob', ['member']);
    const bobWs = await openClient(runtime(), bob);
    const ack = await bobWs.request({ action: 'subscribe', group: 'entity:doc' });
    const since = Number(ack.seq);
    const id = randomUUID();
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, owner: 'bob', title: 'BOB-PRIVATE' })).status).toBe(201);
    await eventually(() => docMsgs(bobWs, id).length === 1, 8000, 'bob’s row on his feed');
    await setRules(after);
    const ws = await openClient(runtime(), reader);
    expect(await ws.request({ action: 'subscribe', group: 'entity:doc', since })).toMatchObject({ type: 'ack' });
    const answer = await ws.waitFor((f) => f.type === 'reset' || docMsgs(ws, id).length > 0, 8000);
    await Promise.all([bobWs.close(), ws.close()]);
    return { id, answer, rows: docMsgs(ws, id) };
  }

  it('replays what the rules in force let the member see', async () => {
    const { answer, rows } = await replayAcrossRules(openRule, openRule, tok('alice', ['member']));
    expect(answer.type).not.toBe('reset');
    expect(rows.map((d) => (d.row as Record<string, unknown>).title)).toEqual(['BOB-PRIVATE']);
  }, 30_000);

  it('gives a reset, not rows, once a row filter was added that GET applies to them', async () => {
    const alice = tok('alice', ['member']);
    const { id, answer, rows } = await replayAcrossRules(openRule, ownerRule, alice);
    expect((await api(alice, 'GET', `/v1/entities/doc/${id}`)).status).toBe(404);
    // Until 2026-12-05 the history was replayed by the audience it was judged under (found by an attacking pass).
    expect(answer).toMatchObject({ type: 'reset', group: 'entity:doc', reason: 'RULES_CHANGED' });
    expect(rows).toEqual([]);
  }, 30_000);

  it('gives a reset once the bypass role the member held was taken away', async () => {
    const audrey = tok('audrey', ['member', 'auditor']);
    const { answer, rows } = await replayAcrossRules(
      { ...ownerRule, bypassRoles: ['admin', 'auditor'] },
      ownerRule,
      audrey,
    );
    expect(answer).toMatchObject({ type: 'reset', reason: 'RULES_CHANGED' });
    expect(rows).toEqual([]);
  }, 30_000);
});

describe('a write’s reference to another row (a foreign key)', () => {
  it('to a row the caller may not read is refused as one to a missing row is, and pins nothing', async () => {
    const config = await runtime().tenants.get(TENANT);
    await runtime().tenants.put({ ...config, entityRules: { doc: ownerRule, note: ownerRule } });
    const [bob, alice, admin] = [tok('bob', ['member']), tok('alice', ['member']), tok('root', ['admin'])];
    const [bobsDoc, alicesDoc] = [randomUUID(), randomUUID()];
    expect((await api(bob, 'POST', '/v1/entities/doc', { id: bobsDoc, title: 'BOB' })).status).toBe(201);
    expect((await api(alice, 'POST', '/v1/entities/doc', { id: alicesDoc, title: 'ALICE' })).status).toBe(201);
    const note = (token: string, docId: string) =>
      api(token, 'POST', '/v1/entities/note', { id: randomUUID(), doc_id: docId, body: 'x' });

    const hidden = await note(alice, bobsDoc);
    const missing = await note(alice, randomUUID());
    // Until 2026-12-05 the hidden row's reference was taken (201), a missing one's refused (found by an attacker).
    expect(hidden.status).toBe(400);
    expect({ status: hidden.status, body: hidden.body }).toEqual({ status: missing.status, body: missing.body });
    expect((await note(alice, alicesDoc)).status).toBe(201);
    // An update that sets the reference is judged alike.
    const own = randomUUID();
    expect((await api(alice, 'POST', '/v1/entities/note', { id: own, doc_id: null })).status).toBe(201);
    expect((await api(alice, 'PATCH', `/v1/entities/note/${own}`, { doc_id: bobsDoc })).status).toBe(400);
    // So bob's row is pinned by nobody, and a bypass role references any row.
    expect((await api(bob, 'DELETE', `/v1/entities/doc/${bobsDoc}`)).status).toBe(204);
    expect((await note(admin, alicesDoc)).status).toBe(201);
  }, 30_000);

  it('is judged on the value as stored: a char(36) column drops the space that named the caller’s own row', async () => {
    const config = await runtime().tenants.get(TENANT);
    await runtime().tenants.put({ ...config, entityRules: { doc: ownerRule, pin: ownerRule } });
    const [bob, alice] = [tok('bob', ['member']), tok('alice', ['member'])];
    const [hidden, missing] = [randomUUID(), randomUUID()];
    expect((await api(bob, 'POST', '/v1/entities/doc', { id: hidden, title: 'BOB' })).status).toBe(201);
    // alice's own rows, keyed like bob's and a missing one's ids with a trailing space (other text keys).
    for (const id of [`${hidden} `, `${missing} `]) {
      expect((await api(alice, 'POST', '/v1/entities/doc', { id, title: 'decoy' })).status).toBe(201);
    }
    const pin = (docId: string) => api(alice, 'POST', '/v1/entities/pin', { id: randomUUID(), doc_id: docId });
    const [viaHidden, viaMissing] = [await pin(`${hidden} `), await pin(`${missing} `)];
    // Until a second attacking pass the value as sent named alice's decoy: 201, and bob's row was pinned.
    expect({ status: viaHidden.status, body: viaHidden.body }).toEqual({ status: 400, body: viaMissing.body });
    expect((await api(bob, 'DELETE', `/v1/entities/doc/${hidden}`)).status).toBe(204);
  }, 30_000);

  it('lets a row reference itself, as the database does', async () => {
    await setRules(ownerRule);
    const id = randomUUID();
    const created = await api(tok('alice', ['member']), 'POST', '/v1/entities/doc', { id, parent_id: id, title: 'me' });
    expect(created.status).toBe(201);
  }, 20_000);
});

describe('a write’s row filter value as stored', () => {
  it('refuses a value the column stores as another user’s (varchar drops trailing spaces)', async () => {
    const config = await runtime().tenants.get(TENANT);
    await runtime().tenants.put({ ...config, entityRules: { memo: ownerRule } });
    const spaced = tok('alice ', ['member']);
    const alice = tok('alice', ['member']);
    const id = randomUUID();
    // Until 2026-12-05: 201, stored as `alice`, readable by alice and not by its creator (found by an attacker).
    expect((await api(spaced, 'POST', '/v1/entities/memo', { id, title: 'PLANTED' })).status).toBe(403);
    expect((await api(alice, 'GET', `/v1/entities/memo/${id}`)).status).toBe(404);
    expect((await api(alice, 'POST', '/v1/entities/memo', { id, title: 'mine' })).status).toBe(201);
    expect((await api(spaced, 'PATCH', `/v1/entities/memo/${id}`, { title: 'x' })).status).toBe(404);
  }, 20_000);
});

describe('a write’s answer', () => {
  it('gives a role that may write but not read the key and version, none of the row', async () => {
    await setRules({ readRoles: ['admin'], writeRoles: ['admin', 'writer'], bypassRoles: [] });
    const admin = tok('root', ['admin']);
    const writer = tok('wally', ['writer']);
    const id = randomUUID();
    expect((await api(admin, 'POST', '/v1/entities/doc', { id, title: 'CONFIDENTIAL' })).status).toBe(201);
    expect((await api(writer, 'GET', `/v1/entities/doc/${id}`)).status).toBe(403);
    const patched = await api(writer, 'PATCH', `/v1/entities/doc/${id}`, { team: 'x' });
    expect(patched).toMatchObject({ status: 200, body: { id, _version: 2 } });
    expect(patched.text).not.toContain('CONFIDENTIAL');
  }, 20_000);
});

describe('a create that clashes with a row outside the caller’s filter', () => {
  it('answers 404 for the row’s key, and 409 for another unique field, which cannot be hidden', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const [id, slug] = [randomUUID(), `bob-${randomUUID()}`];
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, slug })).status).toBe(201);
    const sameKey = await api(alice, 'POST', '/v1/entities/doc', { id });
    expect(sameKey).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    const mine = randomUUID();
    const sameSlug = await api(alice, 'POST', '/v1/entities/doc', { id: mine, slug });
    expect(sameSlug).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } });
    expect(sameSlug.text).not.toContain(mine);
  }, 20_000);
});

describe('field types', () => {
  it('casts a double precision column by PostgreSQL’s name for it, in a filter and a body', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const id = randomUUID();
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, score: 1.5 })).status).toBe(201);
    const list = await api(bob, 'GET', '/v1/entities/doc?score=1.5');
    expect(list.status).toBe(200);
    expect((list.body.items as { id: string }[]).map((r) => r.id)).toContain(id);
  }, 20_000);
});

/** A change of `owner`'s after the late ones: the group's queue is ordered, so once it is there the earlier ones were too. */
async function settle(ws: TestClient, owner: string): Promise<void> {
  const marker = randomUUID();
  expect((await api(tok(owner, ['member']), 'POST', '/v1/entities/doc', { id: marker, title: 'marker' })).status).toBe(
    201,
  );
  await eventually(() => docMsgs(ws, marker).length === 1, 10_000, 'the marker change');
}

describe('the live feed and the change log judge a version alike', () => {
  it('does not send alice a version of bob’s history of a key she re-created (histories kept apart)', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const aliceWs = await sub(alice);
    const bobWs = await sub(bob);
    const id = `k-${randomUUID()}`;
    // bob's insert and delete reach the feed late (their publish fails; the outbox relay sends them).
    const restore = runtime().sqs.failSends(runtime().queues.changes.name);
    expect((await api(bob, 'POST', '/v1/entities/doc', { id, title: 'BOB-PRIVATE' })).status).toBe(201);
    expect((await api(bob, 'DELETE', `/v1/entities/doc/${id}`)).status).toBe(204);
    restore();
    expect((await api(alice, 'POST', '/v1/entities/doc', { id, title: 'alice own' })).status).toBe(201);
    await eventually(() => docMsgs(aliceWs, id).some((d) => d.version === 3), 10_000, 'alice’s own version 3');
    await runtime().runScheduled('outboxRelay');
    await settle(aliceWs, 'alice');
    await settle(bobWs, 'bob');

    // The change log keeps the histories apart: alice sees version 3 only, bob versions 1 and 2.
    const aliceLog = await api(alice, 'GET', `/v1/entities/doc/${id}/changes`);
    expect((aliceLog.body.items as { version: number }[]).map((i) => i.version)).toEqual([3]);
    const bobLog = await api(bob, 'GET', `/v1/entities/doc/${id}/changes`);
    expect((bobLog.body.items as { version: number }[]).map((i) => i.version)).toEqual([1, 2]);

    const aliceGot = docMsgs(aliceWs, id).map((d) => ({ v: d.version, op: d.op, by: d.changedBy }));
    const bobGot = docMsgs(bobWs, id).map((d) => ({ v: d.version, op: d.op, by: d.changedBy }));
    // As in her change log: bob's insert (version 1) and delete (2) are bob's, not hers.
    expect(aliceGot.map((d) => d.v)).toEqual([3]);
    expect(bobGot.map((d) => d.v).sort()).toEqual([1, 2]);
  }, 40_000);

  it('does not send alice an edit bob made while the row was his, once the row is reassigned to her', async () => {
    await setRules(ownerRule);
    const bob = tok('bob', ['member']);
    const alice = tok('alice', ['member']);
    const admin = tok('root', ['admin']);
    const aliceWs = await sub(alice);
    const bobWs = await sub(bob);
    const id = `m-${randomUUID()}`;
    expect((await api(admin, 'POST', '/v1/entities/doc', { id, owner: 'bob', title: 'v1' })).status).toBe(201);
    await eventually(() => docMsgs(bobWs, id).some((d) => d.version === 1), 10_000, 'bob’s version 1');
    const restore = runtime().sqs.failSends(runtime().queues.changes.name);
    expect((await api(bob, 'PATCH', `/v1/entities/doc/${id}`, { title: 'bob edit' })).status).toBe(200);
    restore();
    expect((await api(admin, 'PATCH', `/v1/entities/doc/${id}`, { owner: 'alice' })).status).toBe(200);
    await eventually(() => docMsgs(aliceWs, id).some((d) => d.version === 3), 10_000, 'alice’s version 3');
    await runtime().runScheduled('outboxRelay');
    await settle(aliceWs, 'alice');
    await settle(bobWs, 'bob');

    const aliceLog = await api(alice, 'GET', `/v1/entities/doc/${id}/changes`);
    expect((aliceLog.body.items as { version: number }[]).map((i) => i.version)).toEqual([3]);
    const aliceGot = docMsgs(aliceWs, id).map((d) => ({ v: d.version, by: d.changedBy }));
    const bobGot = docMsgs(bobWs, id).map((d) => ({ v: d.version, by: d.changedBy }));
    // Version 2 (bob's edit of his own row) is not alice's: her change log hides it, and so does the feed.
    expect(aliceGot.map((d) => d.v)).toEqual([3]);
    // …and it is bob's: he could see the row at version 2 (his change log shows it).
    expect(bobGot.map((d) => d.v)).toContain(2);
  }, 40_000);
});
