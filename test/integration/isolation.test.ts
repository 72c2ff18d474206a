/**
 * Tenant isolation (docs/security.md): an admin of tenant `acme` tries every path to tenant `globex` — group names
 * spelled with globex's prefix or key separators, `tenantId` in frames, bodies, queries and headers, globex's entity
 * ids over HTTP, globex's `user:` groups, replay with `since` — and receives nothing of globex's. Everything globex
 * sends carries a marker, and the test checks that no frame or response acme got contains it.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { httpApi, openClient, sleep, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import type { Frame, TestClient } from '../support/ws-client.ts';

const MARKER = 'GLOBEX-SECRET';
const acmeSaw: string[] = [];
let carol: TestClient;
let globexAdmin: TestClient;
let globexTaskIds: string[] = [];

const token = (tenantId: string, userId: string, roles: string[]) => tokenFor(runtime(), tenantId, userId, roles);

async function client(tenantId: string, userId: string, roles: string[]): Promise<TestClient> {
  return openClient(runtime(), token(tenantId, userId, roles));
}

async function api(tenantId: string, userId: string, method: string, path: string, body?: unknown, headers = {}) {
  const { status, text } = await httpApi(runtime(), token(tenantId, userId, ['admin']), method, path, body, headers);
  if (tenantId === 'acme') acmeSaw.push(text);
  return { status, text };
}

async function globexPublish(group: string): Promise<void> {
  const ack = await globexAdmin.request({ action: 'publish', group, data: { secret: `${MARKER} in ${group}` } });
  expect(ack).toMatchObject({ type: 'ack' });
}

const runtime = useQuietRuntime(
  { sqsRetryDelaySeconds: 0, schedules: false },
  {
    prepare: async () => {
      carol = await client('globex', 'carol', ['member']);
      globexAdmin = await client('globex', 'gadmin', ['admin']);
      for (const group of ['chat:general', 'user:carol', 'entity:task']) {
        expect(await carol.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
      }
      // History for replays: globex's chat:general has messages before acme ever subscribes.
      await globexPublish('chat:general');
      await globexPublish('chat:general');
      await carol.waitFor((f) => f.type === 'message' || f.type === 'batch', 5000);
      const list = await api('globex', 'gadmin', 'GET', '/v1/entities/task');
      expect(list.status).toBe(200);
      const items = (JSON.parse(list.text) as { items: { id: unknown }[] }).items;
      globexTaskIds = items.map((item) => String(item.id));
      expect(globexTaskIds.length).toBeGreaterThan(0);
    },
  },
);

describe('an admin of acme', () => {
  let mallory: TestClient;

  beforeAll(async () => {
    mallory = await client('acme', 'mallory', ['admin']);
  });

  it('subscribes to same-named groups of its own tenant only, and cannot spell another tenant into a group name', async () => {
    const attempts = [
      'chat:general',
      'globex:chat:general',
      'T:globex:G:chat:general',
      'T#globex#G#chat:general',
      'globex#chat:general',
      '#G#chat:general',
      'chat:general#',
      '../globex/chat:general',
      'chat:general\u0000globex',
      'entity:task',
    ];
    for (const group of attempts) {
      const answer = await mallory.request({ action: 'subscribe', group });
      if (group.includes('#') || group.includes('/') || group.includes('\u0000')) {
        expect(answer).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
      } else {
        expect(answer).toMatchObject({ type: 'ack' });
      }
    }
  });

  it("cannot subscribe to a globex user's group, even with acme's admin role", async () => {
    expect(await mallory.request({ action: 'subscribe', group: 'user:carol' })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await mallory.request({ action: 'subscribe', group: 'user:gadmin' })).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('cannot name a tenant in a frame', async () => {
    for (const frame of [
      { action: 'subscribe', group: 'chat:general', tenantId: 'globex' },
      { action: 'publish', group: 'chat:general', data: 1, tenantId: 'globex' },
      { action: 'subscribe', group: 'chat:general', tenant_id: 'globex' },
      { action: 'unsubscribe', group: 'chat:general', tenant: 'globex' },
      { action: 'ping', tenantId: 'globex' },
    ]) {
      expect(await mallory.request(frame)).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    }
  });

  it("replays only acme's history with since, never globex's", async () => {
    const replayer = await client('acme', 'replayer', ['admin']);
    expect(await replayer.request({ action: 'subscribe', group: 'chat:general', since: 0 })).toMatchObject({
      type: 'ack',
    });
    const own = await replayer.request({ action: 'publish', group: 'chat:general', data: 'acme only' });
    await replayer.waitFor(
      (f) =>
        (f.type === 'message' && f.id === own.id) ||
        (f.type === 'batch' && (f.messages as Frame[]).some((m) => m.id === own.id)),
      5000,
    );
    acmeSaw.push(JSON.stringify(replayer.frames));
  });

  it("cannot read, change or delete globex's entities by id, query, body or header", async () => {
    for (const id of globexTaskIds) {
      const get = await api('acme', 'mallory', 'GET', `/v1/entities/task/${encodeURIComponent(id)}`);
      expect([200, 400, 404]).toContain(get.status);
      const patch = await api('acme', 'mallory', 'PATCH', `/v1/entities/task/${encodeURIComponent(id)}`, {
        tenantId: 'globex',
      });
      expect(patch.status).toBeGreaterThanOrEqual(400);
      await api('acme', 'mallory', 'GET', `/v1/entities/task/${encodeURIComponent(id)}/changes`);
    }
    await api('acme', 'mallory', 'GET', '/v1/entities/task?tenantId=globex&tenant_id=globex');
    await api('acme', 'mallory', 'GET', '/v1/entities/task', undefined, { 'x-tenant-id': 'globex' });
    await api('acme', 'mallory', 'GET', '/v1/schema?tenantId=globex');
    await api('acme', 'mallory', 'GET', '/v1/usage?tenantId=globex');
    const create = await api('acme', 'mallory', 'POST', '/v1/entities/task', { tenantId: 'globex', title: 'x' });
    expect(create.status).toBeGreaterThanOrEqual(400);
    // globex's rows are all still there.
    const list = await api('globex', 'gadmin', 'GET', '/v1/entities/task');
    expect((JSON.parse(list.text) as { items: unknown[] }).items).toHaveLength(globexTaskIds.length);
  });

  it('receives nothing of what globex publishes meanwhile, while globex receives it', async () => {
    for (const group of ['chat:general', 'globex:chat:general', 'user:carol']) await globexPublish(group);
    // entity:* is a system group: only the change feed publishes there (test/security/attacks.test.ts).
    expect(await globexAdmin.request({ action: 'publish', group: 'entity:task', data: MARKER })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    await carol.waitFor((f) => JSON.stringify(f).includes(`${MARKER} in user:carol`), 5000);
    await sleep(300);
    acmeSaw.push(JSON.stringify(mallory.frames));
    const leaks = acmeSaw.filter((text) => text.includes(MARKER) || text.includes('Quarterly report'));
    expect(leaks).toEqual([]);
    expect(acmeSaw.length).toBeGreaterThan(10);
  });
});
