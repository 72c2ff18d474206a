/**
 * A subscribe whose membership stood, then was removed (by the connection's own later unsubscribe, or by its
 * $disconnect) before the subscribe's announceJoin read its members: the other members' last event about the user
 * must be the `leave` (until 2026-12-04 a `join` came after it, and stood for ever; found by an attacking pass). On
 * DynamoDB Local, the join's read held at a gate while the removal runs.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { createConnectionRemoval } from '../shared/connection-removal.ts';
import type { RoleRules } from './permissions.ts';
import type { PresenceDeps } from './presence.ts';
import { Registry } from './registry.ts';
import { handleFrame, type RouteDeps } from './routes.ts';

const roleRules: RoleRules = { member: { subscribe: ['*'], publish: ['*'] } };
const tableName = 'presence-join-race-test';

describe('a join decided after its own connection left', () => {
  let client: DynamoDBDocumentClient;
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  let now = 1_800_000_000_000;

  async function setup() {
    now += 3_600_000;
    const registry = new Registry({ client, tableName, now: () => now });
    const posted: { to: string; event: { event: string; userId: string; group: string } }[] = [];
    // The subscribe's announceJoin consistent read waits at this gate (armed once).
    let armed = false;
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (reach = r));
    const released = new Promise<void>((r) => (release = r));
    const presenceRegistry: PresenceDeps['registry'] = {
      async *members(t, g, read) {
        if (armed && read?.consistent) {
          armed = false;
          reach();
          await released;
        }
        yield* registry.members(t, g, read);
      },
      removeConnection: (id) => registry.removeConnection(id),
    };
    const post = async (connectionId: string, data: string) => {
      posted.push({ to: connectionId, event: JSON.parse(data) });
      return true;
    };
    const tenants = { get: async (tenantId: string) => ({ tenantId, roleRules, presenceGroups: ['chat:*'] }) };
    const deps: RouteDeps = {
      registry,
      tenants,
      enqueue: async () => undefined,
      newId: () => 'm',
      now: () => now,
      presence: { registry: presenceRegistry, isConnected: async () => true, post },
    };
    const tenant = `acme${now}`;
    const alice = { tenantId: tenant, userId: 'alice', roles: ['member'] };
    const bob = { tenantId: tenant, userId: 'bob', roles: ['member'] };
    const c1 = `a${now}`;
    const c2 = `b${now}`;
    await registry.putConnection(bob, c2, now);
    await registry.putConnection(alice, c1, now);
    const frame = (connectionId: string, caller: typeof alice, receivedAt: number, body: unknown) => ({
      body: JSON.stringify(body),
      connectionId,
      connectedAt: now,
      receivedAt,
      caller,
    });
    await handleFrame(frame(c2, bob, now + 1, { action: 'subscribe', group: 'chat:x' }), deps);
    posted.length = 0;
    const arm = () => {
      armed = true;
    };
    const membersNow = async () => {
      const ids: string[] = [];
      for await (const page of registry.members(tenant, 'chat:x')) ids.push(...page.map((m) => m.userId));
      return ids.sort();
    };
    return { registry, deps, posted, arm, reached, release, alice, bob, c1, c2, frame, membersNow, tenants, post };
  }

  it('is not announced when the same connection unsubscribed meanwhile: bob is told leave last, as alice is gone', async () => {
    const w = await setup();
    w.arm();
    const sub = handleFrame(
      w.frame(w.c1, w.alice, now + 10, { action: 'subscribe', group: 'chat:x', ref: 's' }),
      w.deps,
    );
    await w.reached; // the subscribe stood; its join decision has not read yet
    const unsub = await handleFrame(
      w.frame(w.c1, w.alice, now + 20, { action: 'unsubscribe', group: 'chat:x', ref: 'u' }),
      w.deps,
    );
    expect(unsub).toMatchObject({ type: 'ack', ref: 'u' });
    w.release();
    expect(await sub).toMatchObject({ type: 'ack', ref: 's' });

    expect(await w.membersNow()).toEqual(['bob']); // the client's last word (unsubscribe) holds
    const toBob = w.posted.filter((p) => p.to === w.c2 && p.event.userId === 'alice').map((p) => p.event.event);
    expect(toBob.at(-1)).toBe('leave');
    expect(toBob).not.toContain('join');
  });

  it('is not announced when the same connection disconnected meanwhile', async () => {
    const w = await setup();
    const removal = createConnectionRemoval({
      registry: w.registry,
      connections: { post: w.post, close: async () => true, isConnected: async () => true },
      tenants: w.tenants as never,
      logger: { warn: () => undefined } as never,
    });
    w.arm();
    const sub = handleFrame(
      w.frame(w.c1, w.alice, now + 10, { action: 'subscribe', group: 'chat:x', ref: 's' }),
      w.deps,
    );
    await w.reached;
    await removal({ tenantId: w.alice.tenantId, userId: 'alice', connectionId: w.c1 });
    w.release();
    await sub;
    expect(await w.membersNow()).toEqual(['bob']);
    expect(await w.registry.getConnection(w.c1)).toBeUndefined();
    const toBob = w.posted.filter((p) => p.to === w.c2 && p.event.userId === 'alice').map((p) => p.event.event);
    expect(toBob.at(-1)).toBe('leave');
    expect(toBob).not.toContain('join');
  });
});
