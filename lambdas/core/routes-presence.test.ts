/**
 * A connection's subscribe (received at +10), unsubscribe (+15) and subscribe (+20) of one presence group, run at once
 * as API Gateway runs a connection's frames. The first subscribe writes its items and then finds the unsubscribe's
 * mark and undoes itself; the second read its members before (the first one's item among them). Until 2026-12-04 the
 * second announced no join ("not her first connection") and the first none either ("not standing"), so the other
 * members' last event about her was the unsubscribe's `leave`, though she stayed subscribed. (Found by a reviewing
 * helper.) And a subscribe whose membership stood, then was removed (its connection's own later unsubscribe, or its
 * $disconnect) before its join decision read the members: the others' last event must be the `leave` (until 2026-12-04
 * a `join` came after it, and stood for ever; found by an attacking pass).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { createConnectionRemoval } from './connection-removal.ts';
import type { RoleRules } from './permissions.ts';
import type { PresenceDeps } from './presence.ts';
import { Registry } from './registry.ts';
import { handleFrame, type RouteDeps } from './routes.ts';

const roleRules: RoleRules = { member: { subscribe: ['*'], publish: ['*'] } };
const tableName = 'routes-presence-race-test';

type Command = { constructor: { name: string }; input: { Key?: { pk?: string }; Item?: { pk?: string; at?: number } } };

/** A client that stops before the first command `match` accepts until `release()`; `reached` resolves there. */
function gated(client: DynamoDBDocumentClient, match: (c: Command) => boolean) {
  let release!: () => void;
  let reach!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (reach = r));
  let armed = true;
  const wrapped = {
    send: async (command: Command) => {
      if (armed && match(command)) {
        armed = false;
        reach();
        await released;
      }
      return client.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { wrapped, reached, release };
}

/** Alice and bob of a fresh tenant, their connections, and a frame of theirs as the route reads it. */
function twoUsers(now: number) {
  const tenant = `acme${now}`;
  const alice = { tenantId: tenant, userId: 'alice', roles: ['member'] };
  const bob = { tenantId: tenant, userId: 'bob', roles: ['member'] };
  const frame = (connectionId: string, caller: typeof alice, receivedAt: number, body: unknown) => ({
    body: JSON.stringify(body),
    connectionId,
    connectedAt: now,
    receivedAt,
    caller,
  });
  return { tenant, alice, bob, c1: `a${now}`, c2: `b${now}`, frame };
}

/** The user ids of the group's members, sorted. */
async function memberIds(registry: Registry, tenant: string, group: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of registry.members(tenant, group)) ids.push(...page.map((m) => m.userId));
  return ids.sort();
}

describe('presence events of a subscribe, an unsubscribe and a subscribe of one connection, run concurrently', () => {
  let client: DynamoDBDocumentClient;
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  let now = 1_800_000_000_000;

  it('tell the other members a user is there when her last frame was a subscribe, though an earlier one was undone', async () => {
    now += 3_600_000;
    const plain = new Registry({ client, tableName, now: () => now });
    const posted: { to: string; event: unknown }[] = [];
    const deps = (registry: Registry): RouteDeps => ({
      registry,
      tenants: { get: async (tenantId) => ({ tenantId, roleRules, presenceGroups: ['chat:*'] }) },
      enqueue: async () => undefined,
      newId: () => 'm',
      now: () => now,
      presence: {
        registry: plain,
        isConnected: async () => true,
        post: async (connectionId, data) => {
          posted.push({ to: connectionId, event: JSON.parse(data) });
          return true;
        },
      },
    });
    const { tenant, alice, bob, c1, c2, frame } = twoUsers(now);
    await plain.putConnection(bob, c2, now);
    await plain.putConnection(alice, c1, now);
    expect(
      await handleFrame(frame(c2, bob, now + 1, { action: 'subscribe', group: 'chat:x' }), deps(plain)),
    ).toMatchObject({
      type: 'ack',
    });
    posted.length = 0;

    // S1 (at +10): stops at its read-back, after both its items are written.
    // (The connection-side read back both versions make once the two items are written.)
    const s1Gate = gated(
      client,
      (c) =>
        c.constructor.name === 'GetCommand' &&
        c.input.Key?.pk === `C#${c1}` &&
        String((c.input.Key as { sk?: string }).sk).startsWith('G#'),
    );
    const s1 = handleFrame(
      frame(c1, alice, now + 10, { action: 'subscribe', group: 'chat:x', ref: 's1' }),
      deps(new Registry({ client: s1Gate.wrapped, tableName, now: () => now })),
    );
    await s1Gate.reached;
    // S2 (at +20): reads its `before` (alice's c1 is in it, from S1), then stops before its first write.
    const s2Gate = gated(client, (c) => c.constructor.name === 'PutCommand' && c.input.Item?.at === now + 20);
    const s2 = handleFrame(
      frame(c1, alice, now + 20, { action: 'subscribe', group: 'chat:x', ref: 's2' }),
      deps(new Registry({ client: s2Gate.wrapped, tableName, now: () => now })),
    );
    await s2Gate.reached;
    // U (at +15) runs wholly.
    expect(
      await handleFrame(frame(c1, alice, now + 15, { action: 'unsubscribe', group: 'chat:x', ref: 'u' }), deps(plain)),
    ).toMatchObject({ type: 'ack' });
    s1Gate.release();
    expect(await s1).toMatchObject({ type: 'ack', ref: 's1' });
    s2Gate.release();
    expect(await s2).toMatchObject({ type: 'ack', ref: 's2' });

    // The server holds alice's membership: her last frame was the subscribe.
    expect(await memberIds(plain, tenant, 'chat:x')).toEqual(['alice', 'bob']);
    // What bob was told about alice, in order: it must end with her present.
    const toBob = posted.filter((p) => p.to === c2).map((p) => (p.event as { event: string }).event);
    expect(toBob.at(-1)).toBe('join');
  });
});

describe('a join decided after its own connection left', () => {
  let client: DynamoDBDocumentClient;
  useLocalTable(`${tableName}-join`, (table) => {
    client = table.client;
  });
  let now = 1_800_000_000_000;

  async function setup() {
    now += 3_600_000;
    const registry = new Registry({ client, tableName: `${tableName}-join`, now: () => now });
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
    const { tenant, alice, bob, c1, c2, frame } = twoUsers(now);
    await registry.putConnection(bob, c2, now);
    await registry.putConnection(alice, c1, now);
    await handleFrame(frame(c2, bob, now + 1, { action: 'subscribe', group: 'chat:x' }), deps);
    posted.length = 0;
    const arm = () => {
      armed = true;
    };
    const membersNow = () => memberIds(registry, tenant, 'chat:x');
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
      connections: { post: w.post, isConnected: async () => true },
      tenants: w.tenants as never,
      onError: () => undefined,
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
