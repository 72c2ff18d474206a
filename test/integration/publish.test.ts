/**
 * Server-side publishing over HTTP (`POST /v1/publish`), end to end against the local runtime: the HTTP API stand-in
 * with its JWT authorizer, the publishApi function, the delivery queue and broadcaster, and real WebSockets.
 */
import { describe, expect, it } from '@jest/globals';
import { defaultMaxSandboxes } from '../../local/function-host.ts';
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

/** Sandboxes per function: not the default, to see the option reach every function. */
const SANDBOXES = defaultMaxSandboxes() + 1;
const runtime = useQuietRuntime({
  sqsRetryDelaySeconds: 0,
  schedules: false,
  functionLogLevel: 'WARN',
  maxSandboxes: SANDBOXES,
});

interface Who {
  readonly tenant: string;
  readonly user: string;
  readonly roles: string[];
}
const acmeAdmin: Who = { tenant: 'acme', user: 'ops', roles: ['admin'] };
const acmeMember: Who = { tenant: 'acme', user: 'mia', roles: ['member'] };
const acmeViewer: Who = { tenant: 'acme', user: 'vic', roles: ['viewer'] };

async function publish(
  as: Who | undefined,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const token = as && tokenFor(runtime(), as.tenant, as.user, as.roles);
  const answer = await httpApi(runtime(), token, 'POST', '/v1/publish', body);
  return { status: answer.status, body: jsonOf(answer) };
}

async function client(who: Who): Promise<TestClient> {
  return openClient(runtime(), tokenFor(runtime(), who.tenant, who.user, who.roles));
}

describe('POST /v1/publish to a group', () => {
  it('queues the message (202 with its id) and every subscriber of the group receives it from the caller', async () => {
    const group = 'chat:http';
    const subs = [await client(acmeViewer), await client({ ...acmeViewer, user: 'val' })];
    for (const s of subs) expect(await s.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
    const answer = await publish(acmeMember, { group, data: { text: 'from a backend' } });
    expect(answer).toMatchObject({ status: 202, body: { id: expect.any(String), group } });
    for (const s of subs) await eventually(() => messages(s, group).length === 1);
    for (const s of subs) {
      expect(messages(s, group)).toEqual([
        {
          type: 'message',
          group,
          id: answer.body.id,
          seq: 1,
          data: { text: 'from a backend' },
          from: 'mia',
          ts: expect.any(Number),
        },
      ]);
    }
  });

  it("applies the tenant's role rules like a WebSocket publish, and never reaches another tenant", async () => {
    const outsider = await client({ tenant: 'globex', user: 'gus', roles: ['admin'] });
    await outsider.request({ action: 'subscribe', group: 'chat:shared-name' });
    expect(await publish(acmeViewer, { group: 'chat:shared-name', data: 1 })).toMatchObject({
      status: 403,
      body: { error: { code: 'FORBIDDEN', message: "not allowed to publish to 'chat:shared-name'" } },
    });
    expect(await publish(acmeMember, { group: 'news:all', data: 1 })).toMatchObject({
      status: 403,
      body: { error: { code: 'FORBIDDEN' } },
    });
    expect((await publish(acmeMember, { group: 'chat:shared-name', data: 'acme only' })).status).toBe(202);
    await sleep(500);
    expect(messages(outsider, 'chat:shared-name')).toEqual([]);
  });
});

describe('POST /v1/publish to a user', () => {
  it('reaches users whose ids are spelled as OpenID Connect issuers spell them, and nobody else', async () => {
    const ids = ['auth0|5f3c2a', 'bob+tag@example.com', `samlp|corp|${'u'.repeat(200)}`];
    const users = await Promise.all(ids.map((user) => client({ tenant: 'acme', user, roles: ['member'] })));
    const near = await client({ tenant: 'acme', user: 'auth0|5f3c2', roles: ['member'] });
    // A user subscribes to its own group (and recovers with since), never to another's.
    expect(await users[0]?.request({ action: 'subscribe', group: 'user:auth0|5f3c2a', since: 0 })).toMatchObject({
      type: 'ack',
    });
    expect(await near.request({ action: 'subscribe', group: 'user:auth0|5f3c2a' })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    for (const [n, userId] of ids.entries()) {
      const answer = await publish(acmeAdmin, { userId, data: { n } });
      expect(answer).toMatchObject({ status: 202, body: { group: `user:${userId}` } });
    }
    for (const [n, c] of users.entries()) {
      const group = `user:${ids[n]}`;
      await eventually(() => messages(c, group).length >= 1);
      expect(messages(c, group).map((m) => [m.seq, m.data])).toEqual([[1, { n }]]);
    }
    await sleep(300);
    expect(near.frames.filter((f) => f.type === 'message')).toEqual([]);
  });

  it('reaches every connection of that user exactly once, subscribed or not, in seq order, and nobody else', async () => {
    const bob = { tenant: 'acme', user: 'bob', roles: ['member'] };
    const idle = await client(bob);
    const busy = await client(bob);
    await busy.request({ action: 'subscribe', group: 'chat:elsewhere' });
    const own = await client(bob);
    await own.request({ action: 'subscribe', group: 'user:bob' });
    const other = await client({ ...bob, user: 'bobby' });
    const otherTenant = await client({ ...bob, tenant: 'globex' });

    const ids: unknown[] = [];
    for (let i = 1; i <= 3; i++) {
      const answer = await publish(acmeAdmin, { userId: 'bob', data: { i } });
      expect(answer).toMatchObject({ status: 202, body: { group: 'user:bob' } });
      ids.push(answer.body.id);
    }
    for (const c of [idle, busy, own]) await eventually(() => messages(c, 'user:bob').length >= 3);
    await sleep(300);
    for (const c of [idle, busy, own]) {
      expect(messages(c, 'user:bob').map((m) => [m.id, m.seq, m.data, m.from])).toEqual([
        [ids[0], 1, { i: 1 }, 'ops'],
        [ids[1], 2, { i: 2 }, 'ops'],
        [ids[2], 3, { i: 3 }, 'ops'],
      ]);
    }
    expect(messages(other, 'user:bob')).toEqual([]);
    expect(messages(otherTenant, 'user:bob')).toEqual([]);
  });

  it("needs a role that may publish to 'user:<id>' (a member may not)", async () => {
    expect(await publish(acmeMember, { userId: 'bob', data: 'psst' })).toMatchObject({
      status: 403,
      body: { error: { code: 'FORBIDDEN', message: "not allowed to publish to 'user:bob'" } },
    });
  });
});

describe('POST /v1/publish refuses', () => {
  it.each([
    ['both group and userId', { group: 'chat:x', userId: 'bob', data: 1 }, 400, 'BAD_REQUEST'],
    ['neither group nor userId', { data: 1 }, 400, 'BAD_REQUEST'],
    ['no data', { group: 'chat:x' }, 400, 'BAD_REQUEST'],
    ['a tenantId in the body', { group: 'chat:x', data: 1, tenantId: 'globex' }, 400, 'BAD_REQUEST'],
    ['a bad group name', { group: 'chat x', data: 1 }, 400, 'BAD_REQUEST'],
    ['a userId that makes no group name', { userId: 'bob#1', data: 1 }, 400, 'BAD_REQUEST'],
    ['a body that is not JSON', '{"group":', 400, 'BAD_REQUEST'],
    ['data over 16 KB', { group: 'chat:x', data: 'x'.repeat(17 * 1024) }, 413, 'TOO_LARGE'],
  ])('%s with the typed error body', async (_what, body, status, code) => {
    const answer = await publish(acmeAdmin, body);
    expect(answer.status).toBe(status);
    expect(answer.body.error?.code).toBe(code);
    expect(typeof answer.body.error?.message).toBe('string');
  });

  it('a request without a valid token with 401, as API Gateway does', async () => {
    expect(await publish(undefined, { group: 'chat:x', data: 1 })).toMatchObject({
      status: 401,
      body: { message: 'Unauthorized' },
    });
  });
});

describe('the quiet test runtime', () => {
  it("starts a function's sandboxes on first use only: the publish API ran, the unscheduled reaper never did", () => {
    expect(runtime().functions.get('publishApi')?.coldStarts).toBeGreaterThan(0);
    expect(runtime().functions.get('reaper')?.coldStarts).toBe(0);
    expect(runtime().functions.get('reaper')?.sandboxCount).toBe(0);
  });

  it('runs each function in at most the sandboxes it was given', () => {
    const caps = [...runtime().functions.values()].map((f) => f.maxSandboxes);
    expect(caps.length).toBeGreaterThan(10);
    expect(new Set(caps)).toEqual(new Set([SANDBOXES]));
  });
});
