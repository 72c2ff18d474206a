/**
 * A replay request and the membership it serves, on a real local table: the request waits in the group's queue while
 * the client may unsubscribe, or subscribe again; what stands when the broadcaster reaches it decides what the
 * connection gets. (Until 2026-12-04 a request replayed whatever stood; the first fix of that, the
 * same day, lost messages in the two cases a reviewing helper found: an older request serving a newer subscribe, and
 * a `user:` group's connection that left.)
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { type BroadcastDeps, broadcastRun, replay } from './broadcast.ts';
import type { DeliveryMessage, ReplayRequest } from './delivery.ts';
import { GroupHistory } from './history.ts';
import { Registry } from './registry.ts';

const tableName = 'replay-membership-test';

describe('a replay request reaching the broadcaster', () => {
  let client: DynamoDBDocumentClient;
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  const now = 1_800_000_000_000;
  let tenants = 0;

  function setup() {
    const tenantId = `t${++tenants}`;
    const registry = new Registry({ client, tableName, now: () => now });
    const posts: [string, string][] = [];
    const deps: BroadcastDeps = {
      history: new GroupHistory({ client, tableName, now: () => now }),
      registry,
      post: async (connectionId, data) => {
        posts.push([connectionId, data]);
      },
      isGone: () => false,
      isRetryable: () => false,
      enqueueFanout: async () => undefined,
      backoff: { sleep: async () => undefined, attempts: 1 },
      now: () => now,
    };
    const alice = { tenantId, userId: 'alice', roles: ['member'], claims: {} };
    const publish = (group: string, ...ids: string[]) =>
      broadcastRun(
        ids.map((id): DeliveryMessage => ({ v: 1, id, tenantId, group, data: id, from: 'svc', ts: now })),
        false,
        deps,
      );
    const request = (group: string, since: number): ReplayRequest => ({
      v: 1,
      kind: 'replay',
      tenantId,
      group,
      connectionId: 'c1',
      since,
      roles: ['member'],
      claims: {},
    });
    /** The seqs connection c1 was sent, in order. */
    const seqs = () =>
      posts
        .filter(([connectionId]) => connectionId === 'c1')
        .flatMap(([, data]) => {
          const frame = JSON.parse(data) as { type: string; seq?: number; messages?: { seq: number }[] };
          return frame.type === 'batch' ? (frame.messages ?? []) : [frame as { seq?: number }];
        })
        .map((frame) => frame.seq);
    return { tenantId, registry, deps, alice, publish, request, seqs };
  }

  it('sends nothing to a connection that unsubscribed while it waited', async () => {
    const { tenantId, registry, deps, alice, publish, request, seqs } = setup();
    await registry.putConnection(alice, 'c1', now);
    await publish('chat', 'm1', 'm2');
    await registry.subscribe(alice, 'c1', 'chat', now, { since: 0, at: now + 10 });
    await registry.unsubscribe(tenantId, 'c1', 'chat', now + 20);
    await replay(request('chat', 0), deps);
    expect(seqs()).toEqual([]);
  });

  it('lets the subscribe that stands be served by its own request, not by an older one still queued', async () => {
    const { tenantId, registry, deps, alice, publish, request, seqs } = setup();
    await registry.putConnection(alice, 'c1', now);
    await publish('chat', 'm1', 'm2', 'm3', 'm4', 'm5');
    // Subscribe since 4, unsubscribe, subscribe since 1: both requests queued before the broadcaster reaches either.
    await registry.subscribe(alice, 'c1', 'chat', now, { since: 4, at: now + 10 });
    await registry.unsubscribe(tenantId, 'c1', 'chat', now + 15);
    await registry.subscribe(alice, 'c1', 'chat', now, { since: 1, at: now + 20 });
    await replay(request('chat', 4), deps);
    await replay(request('chat', 1), deps);
    await publish('chat', 'm6');
    expect(seqs()).toEqual([2, 3, 4, 5, 6]);
  });

  it('replays once to a subscribe made again from the same since, whichever of the two requests serves it', async () => {
    const { tenantId, registry, deps, alice, publish, request, seqs } = setup();
    await registry.putConnection(alice, 'c1', now);
    await publish('chat', 'm1', 'm2', 'm3');
    await registry.subscribe(alice, 'c1', 'chat', now, { since: 1, at: now + 10 });
    await registry.unsubscribe(tenantId, 'c1', 'chat', now + 15);
    await registry.subscribe(alice, 'c1', 'chat', now, { since: 1, at: now + 20 });
    await replay(request('chat', 1), deps);
    await publish('chat', 'm4');
    await replay(request('chat', 1), deps);
    await publish('chat', 'm5');
    expect(seqs()).toEqual([2, 3, 4, 5]);
  });

  it("still sends a user group's connection what it missed after it unsubscribed: the group reaches it anyway", async () => {
    const { tenantId, registry, deps, alice, publish, request, seqs } = setup();
    await registry.putConnection(alice, 'c1', now);
    await publish('user:alice', 'm1');
    await registry.subscribe(alice, 'c1', 'user:alice', now, { since: 1, at: now + 10 });
    // Live delivery skips the connection while it waits for its replay.
    await publish('user:alice', 'm2');
    await registry.unsubscribe(tenantId, 'c1', 'user:alice', now + 20);
    await replay(request('user:alice', 1), deps);
    await publish('user:alice', 'm3');
    expect(seqs()).toEqual([1, 2, 3]);
  });
});
