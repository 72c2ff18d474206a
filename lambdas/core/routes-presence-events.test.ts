/**
 * Presence events of the subscribe and unsubscribe routes, over an in-memory registry whose consistent member reads can
 * be held or made to fail: two tabs of one user subscribing at once, and an announcement that fails after the
 * unsubscribe is done. (Both broke in the first version of deciding on reads after the write, 2026-12-04; found by a
 * reviewing helper.)
 */
import { describe, expect, it } from '@jest/globals';
import type { Member } from './registry.ts';
import { handleFrame, type RouteDeps } from './routes.ts';

const roleRules = { member: { subscribe: ['*'], publish: ['*'] } };

function world() {
  const members: Member[] = [{ connectionId: 'ivan1', userId: 'ivan', roles: [], claims: {} }];
  const posted: [string, string][] = [];
  let readGate: Promise<void> = Promise.resolve();
  let failReads = false;
  const errors: unknown[] = [];
  const deps: RouteDeps = {
    registry: {
      subscribe: async (caller, connectionId) => {
        members.push({ connectionId, userId: caller.userId, roles: [], claims: {} });
        return true;
      },
      unsubscribe: async (_t, connectionId) => {
        const i = members.findIndex((m) => m.connectionId === connectionId);
        if (i >= 0) members.splice(i, 1);
        return true;
      },
      completeReplay: async () => undefined,
    },
    tenants: { get: async (tenantId) => ({ tenantId, roleRules, presenceGroups: ['room:*'] }) },
    enqueue: async () => undefined,
    newId: () => 'id',
    now: () => 1,
    presence: {
      registry: {
        async *members(_t, _g, read) {
          if (read?.consistent) {
            await readGate;
            if (failReads) throw new Error('ProvisionedThroughputExceeded');
          }
          yield [...members];
        },
        removeConnection: async () => ({ groups: 0 }),
      },
      isConnected: async () => true,
      post: async (c, d) => {
        posted.push([c, d]);
        return true;
      },
      onError: (err) => errors.push(err),
    },
  };
  return {
    deps,
    posted,
    members,
    errors,
    gate: (p: Promise<void>) => {
      readGate = p;
    },
    failAfterReads: () => {
      failReads = true;
    },
  };
}
const judy = { tenantId: 'acme', userId: 'judy', roles: ['member'] };
const frame = (connectionId: string, body: unknown) => ({
  body: JSON.stringify(body),
  connectionId,
  connectedAt: 1,
  receivedAt: 5,
  caller: judy,
});

describe('presence events of the routes', () => {
  it('announce a join when two tabs of a user subscribe at once, both written before either reads after', async () => {
    const w = world();
    let open!: () => void;
    w.gate(new Promise((r) => (open = r)));
    const both = Promise.all([
      handleFrame(frame('j1', { action: 'subscribe', group: 'room:a' }), w.deps),
      handleFrame(frame('j2', { action: 'subscribe', group: 'room:a' }), w.deps),
    ]);
    await new Promise((r) => setTimeout(r, 10));
    open();
    await both;
    expect(w.members.map((m) => m.connectionId)).toEqual(['ivan1', 'j1', 'j2']);
    expect(w.posted.filter(([c]) => c === 'ivan1').length).toBeGreaterThanOrEqual(1);
  });

  it('acknowledge an unsubscribe whose leave announcement fails, and report the failure', async () => {
    const w = world();
    w.members.push({ connectionId: 'j1', userId: 'judy', roles: [], claims: {} });
    w.failAfterReads();
    const reply = await handleFrame(frame('j1', { action: 'unsubscribe', group: 'room:a', ref: 'u' }), w.deps);
    expect(w.members.map((m) => m.connectionId)).toEqual(['ivan1']);
    expect(reply).toMatchObject({ type: 'ack', ref: 'u' });
    expect(w.errors).toHaveLength(1);
  });
});
