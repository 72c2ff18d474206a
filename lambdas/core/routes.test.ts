import { describe, expect, it } from '@jest/globals';
import type { DeliveryMessage } from './delivery.ts';
import { ForbiddenError, RateLimitedError } from './errors.ts';
import type { RoleRules } from './permissions.ts';
import { handleFrame, type RouteDeps } from './routes.ts';

const roleRules: RoleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
  viewer: { subscribe: ['*'], publish: [] },
};

function fakes() {
  const subscriptions: string[] = [];
  const enqueued: DeliveryMessage[] = [];
  /** Memberships whose replay wait was ended, as tenant/group/connection@since. */
  const completed: string[] = [];
  /** The receive times the registry was given, per call. */
  const times: { call: string; at: number | undefined }[] = [];
  const deps: RouteDeps = {
    registry: {
      subscribe: async (caller, connectionId, group, _connectedAt, options) => {
        times.push({ call: 'subscribe', at: options?.at });
        subscriptions.push(`${caller.tenantId}/${group}/${connectionId}`);
        return true;
      },
      unsubscribe: async (tenantId, connectionId, group, at) => {
        times.push({ call: 'unsubscribe', at });
        subscriptions.splice(subscriptions.indexOf(`${tenantId}/${group}/${connectionId}`), 1);
        return true;
      },
      completeReplay: async (tenantId, group, connectionId, since, at) => {
        completed.push(`${tenantId}/${group}/${connectionId}@${since}${at === undefined ? '' : `:${at}`}`);
      },
    },
    tenants: {
      get: async (tenantId) => {
        if (tenantId !== 'acme') throw new ForbiddenError(`tenant '${tenantId}' is not configured`);
        return { tenantId, roleRules };
      },
    },
    enqueue: async (message) => {
      if ('kind' in message) throw new Error('unexpected replay request');
      enqueued.push(message);
    },
    newId: () => 'm-1',
    now: () => 1700000000000,
  };
  return { deps, subscriptions, enqueued, times, completed };
}

const alice = { tenantId: 'acme', userId: 'alice', roles: ['member'] };
const frame = (body: unknown, caller = alice) => ({
  body: typeof body === 'string' ? body : JSON.stringify(body),
  connectionId: 'c1',
  connectedAt: 1700000000000,
  caller,
});

describe('message routes', () => {
  it('end the replay wait of a subscribe with since whose replay request could not be queued, and answer the error', async () => {
    const { deps, subscriptions, completed } = fakes();
    const failing: RouteDeps = {
      ...deps,
      enqueue: async () => {
        throw new Error('queue unreachable');
      },
    };
    const answer = await handleFrame(
      { ...frame({ action: 'subscribe', group: 'chat:x', since: 4, ref: 's' }), receivedAt: 1_700_000_000_500 },
      failing,
    );
    expect(answer).toMatchObject({ type: 'error', code: 'INTERNAL', ref: 's' });
    // Subscribed, and not waiting for a replay that will never come: live messages reach it. Only this subscribe's
    // wait ends (the one written at its receive time).
    expect(subscriptions).toEqual(['acme/chat:x/c1']);
    expect(completed).toEqual(['acme/chat:x/c1@4:1700000000500']);
  });

  it('answer a subscribe at the cap RATE_LIMITED in its first minute there since the last unsubscribe, FORBIDDEN after', async () => {
    const { deps } = fakes();
    const at = 1_700_000_100_000;
    let since = at;
    const full: RouteDeps = { ...deps, hasRoomFor: async () => false, atCapSince: async () => since };
    const subscribe = () =>
      handleFrame({ ...frame({ action: 'subscribe', group: 'chat:more', ref: 's' }), receivedAt: at }, full);
    expect(await subscribe()).toMatchObject({ type: 'error', code: 'RATE_LIMITED', retryAfterMs: 1000 });
    since = at - 59_000;
    expect(await subscribe()).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
    since = at - 60_000;
    expect(await subscribe()).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
      message: expect.stringContaining('100'),
    });
    expect(
      await handleFrame(frame({ action: 'subscribe', group: 'chat:more', ref: 's' }), {
        ...full,
        atCapSince: undefined,
      }),
    ).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('count a presence request against the presence limit before any GetConnection call', async () => {
    const { deps } = fakes();
    const kinds: string[] = [];
    let checks = 0;
    const limited: RouteDeps = {
      ...deps,
      admit: async (kind) => {
        kinds.push(kind);
        if (kind === 'presence') throw new RateLimitedError('too many presence requests on this connection', 900);
      },
      presence: {
        registry: {
          async *members() {
            yield [{ connectionId: 'c2', userId: 'bob', roles: [], claims: {} }];
          },
          removeConnection: async () => ({ groups: 0 }),
        },
        isConnected: async () => {
          checks++;
          return true;
        },
        post: async () => true,
      },
    };
    expect(await handleFrame(frame({ action: 'presence', group: 'chat:general', ref: 'p' }), limited)).toMatchObject({
      type: 'error',
      ref: 'p',
      code: 'RATE_LIMITED',
      retryAfterMs: 900,
    });
    expect(kinds).toEqual(['message', 'presence']);
    expect(checks).toBe(0);
  });

  it('answer a ping with a pong carrying the ref', async () => {
    expect(await handleFrame(frame({ action: 'ping', ref: '4' }), fakes().deps)).toEqual({ type: 'pong', ref: '4' });
  });

  it('acknowledge a live subscribe with the group seq read after the membership was written', async () => {
    const { deps, subscriptions } = fakes();
    const reads: number[] = [];
    const withSeq: RouteDeps = {
      ...deps,
      groupSeq: async (tenantId, group) => {
        reads.push(subscriptions.length);
        return tenantId === 'acme' && group === 'chat:general' ? 41 : 0;
      },
    };
    expect(await handleFrame(frame({ action: 'subscribe', group: 'chat:general', ref: 's' }), withSeq)).toEqual({
      type: 'ack',
      ref: 's',
      seq: 41,
    });
    expect(reads).toEqual([1]);
  });

  it('subscribe and unsubscribe the connection in its own tenant', async () => {
    const { deps, subscriptions } = fakes();
    expect(await handleFrame(frame({ action: 'subscribe', group: 'chat:general', ref: '1' }), deps)).toEqual({
      type: 'ack',
      ref: '1',
    });
    expect(subscriptions).toEqual(['acme/chat:general/c1']);
    expect(await handleFrame(frame({ action: 'unsubscribe', group: 'chat:general', ref: '2' }), deps)).toEqual({
      type: 'ack',
      ref: '2',
    });
    expect(subscriptions).toEqual([]);
  });

  it('give the registry the time each frame was received, which orders a subscribe and unsubscribe run at once', async () => {
    const { deps: base, times } = fakes();
    const deps: RouteDeps = { ...base, enqueue: async () => undefined };
    const at = (body: unknown, receivedAt: number) => ({ ...frame(body), receivedAt });
    await handleFrame(at({ action: 'subscribe', group: 'chat:general' }, 10), deps);
    await handleFrame(at({ action: 'unsubscribe', group: 'chat:general' }, 20), deps);
    expect(await handleFrame(at({ action: 'subscribe', group: 'chat:general', since: 0 }, 30), deps)).toEqual({
      type: 'ack',
    });
    expect(times).toEqual([
      { call: 'subscribe', at: 10 },
      { call: 'unsubscribe', at: 20 },
      { call: 'subscribe', at: 30 },
    ]);
  });

  it('answer a subscribe that an unsubscribe received after it overtook, without a replay or a join', async () => {
    const { deps: base } = fakes();
    const posted: unknown[] = [];
    const requested: unknown[] = [];
    const deps: RouteDeps = {
      ...base,
      registry: { ...base.registry, subscribe: async () => false },
      tenants: { get: async (tenantId) => ({ tenantId, roleRules, presenceGroups: ['chat:*'] }) },
      enqueue: async (message) => {
        requested.push(message);
      },
      presence: {
        registry: {
          async *members() {
            yield [{ connectionId: 'c2', userId: 'bob', roles: [], claims: {} }];
          },
          removeConnection: async () => ({ groups: 0 }),
        },
        isConnected: async () => true,
        post: async (_connectionId, frame) => {
          posted.push(frame);
          return true;
        },
      },
    };
    const at = (body: unknown) => ({ ...frame(body), receivedAt: 10 });
    expect(await handleFrame(at({ action: 'subscribe', group: 'chat:general', since: 3, ref: 'r' }), deps)).toEqual({
      type: 'ack',
      ref: 'r',
    });
    expect(await handleFrame(at({ action: 'subscribe', group: 'chat:general', ref: 'l' }), deps)).toEqual({
      type: 'ack',
      ref: 'l',
    });
    expect(requested).toEqual([]);
    expect(posted).toEqual([]);
  });

  it('enqueue a publish with the tenant and user from the token and ack it with the message id', async () => {
    const { deps, enqueued } = fakes();
    const reply = await handleFrame(
      frame({ action: 'publish', group: 'chat:general', data: { text: 'hi' }, ref: '3' }),
      deps,
    );
    expect(reply).toEqual({ type: 'ack', ref: '3', id: 'm-1' });
    expect(enqueued).toEqual([
      {
        v: 1,
        id: 'm-1',
        tenantId: 'acme',
        group: 'chat:general',
        data: { text: 'hi' },
        from: 'alice',
        ts: 1700000000000,
      },
    ]);
  });

  it('refuse a viewer publish and another user group with FORBIDDEN, enqueueing nothing', async () => {
    const { deps, enqueued, subscriptions } = fakes();
    const viewer = { ...alice, userId: 'vera', roles: ['viewer'] };
    expect(
      await handleFrame(frame({ action: 'publish', group: 'chat:general', data: 1, ref: 'p' }, viewer), deps),
    ).toMatchObject({
      type: 'error',
      ref: 'p',
      code: 'FORBIDDEN',
    });
    expect(await handleFrame(frame({ action: 'subscribe', group: 'user:bob' }), deps)).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(enqueued).toEqual([]);
    expect(subscriptions).toEqual([]);
  });

  it('refuse everything for a tenant that is not configured', async () => {
    const stranger = { tenantId: 'initech', userId: 'x', roles: ['admin'] };
    expect(await handleFrame(frame({ action: 'subscribe', group: 'g' }, stranger), fakes().deps)).toMatchObject({
      code: 'FORBIDDEN',
      message: "tenant 'initech' is not configured",
    });
  });

  it('answer bad input with BAD_REQUEST and the ref when there is one', async () => {
    const { deps } = fakes();
    expect(await handleFrame(frame('not json'), deps)).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      message: 'frame is not valid JSON',
    });
    expect(await handleFrame(frame({ action: 'dance', ref: '9' }), deps)).toEqual({
      type: 'error',
      ref: '9',
      code: 'BAD_REQUEST',
      message: "unknown action 'dance'",
    });
  });

  it('refuse data over 16 KB with TOO_LARGE', async () => {
    const { deps, enqueued } = fakes();
    const reply = await handleFrame(frame({ action: 'publish', group: 'chat:x', data: 'x'.repeat(17000) }), deps);
    expect(reply).toMatchObject({ code: 'TOO_LARGE' });
    expect(enqueued).toEqual([]);
  });

  it('turn an unexpected failure into INTERNAL without leaking its message', async () => {
    const { deps } = fakes();
    const errors: unknown[] = [];
    const failing: RouteDeps = {
      ...deps,
      enqueue: async () => {
        throw new Error('queue https://sqs.secret/123 unreachable');
      },
      onError: (err) => errors.push(err),
    };
    expect(await handleFrame(frame({ action: 'publish', group: 'chat:x', data: 1 }), failing)).toEqual({
      type: 'error',
      code: 'INTERNAL',
      message: 'internal error',
    });
    expect(errors).toHaveLength(1);
  });

  it('refuse a frame on a connection without identity as UNAUTHORIZED', async () => {
    const reply = await handleFrame({ ...frame({ action: 'ping' }), caller: undefined }, fakes().deps);
    expect(reply).toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
