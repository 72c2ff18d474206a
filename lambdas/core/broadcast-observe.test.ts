import { describe, expect, it } from '@jest/globals';
import { FakeTable } from '../../test/support/fake-table.ts';
import { type BroadcastDeps, broadcastRun, type DeliveryEvent, framePublishTimes, replay } from './broadcast.ts';
import type { DeliveryMessage } from './delivery.ts';
import { GroupHistory } from './history.ts';
import type { Member } from './registry.ts';

class StatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

const NOW = 1_700_000_000_000;
const member = (connectionId: string): Member => ({
  connectionId,
  userId: connectionId,
  roles: ['member'],
  claims: {},
});
const message = (id: string, ts: number): DeliveryMessage => ({
  v: 1,
  id,
  tenantId: 'acme',
  group: 'chat:general',
  data: { id },
  from: 'alice',
  ts,
});

/** The engine's ports with an observer recording every event; `failures` are the statuses of a connection's next posts. */
function setup(members: Member[], failures: Record<string, number[]> = {}) {
  const events: DeliveryEvent[] = [];
  const deps: BroadcastDeps = {
    history: new GroupHistory({ client: new FakeTable().client, tableName: 'test', now: () => NOW }),
    registry: {
      members: async function* () {
        yield members;
      },
      connectionsOfUser: async () => [],
      membershipVersion: async () => 0,
      removeConnection: async () => ({ groups: 1 }),
      replayState: async () => 'waiting' as const,
      completeReplay: async () => undefined,
    },
    post: async (connectionId) => {
      const status = failures[connectionId]?.shift();
      if (status !== undefined) throw new StatusError(status);
    },
    isGone: (err) => err instanceof StatusError && err.status === 410,
    isRetryable: (err) => err instanceof StatusError && (err.status === 429 || err.status >= 500),
    enqueueFanout: async () => undefined,
    backoff: { sleep: async () => undefined, attempts: 2 },
    now: () => NOW,
    observe: (event) => events.push(event),
  };
  return { deps, events };
}

describe('the observe port of the delivery engine', () => {
  it('reports each post with its message count and the publish-to-post latency of the oldest message', async () => {
    const { deps, events } = setup([member('c1'), member('c2')]);
    await broadcastRun([message('a', NOW - 250), message('b', NOW - 100)], false, deps);
    // Packing puts both messages in one batch frame per connection.
    expect(events).toEqual([
      { type: 'posted', tenantId: 'acme', messages: 2, latencyMs: 250 },
      { type: 'posted', tenantId: 'acme', messages: 2, latencyMs: 250 },
    ]);
  });

  it('reports retryable failures, gone connections and connections left out', async () => {
    const { deps, events } = setup([member('ok'), member('gone'), member('down')], {
      ok: [429],
      gone: [410],
      down: [500, 500],
    });
    await expect(broadcastRun([message('a', NOW)], false, deps)).rejects.toThrow('delivery failed for 1');
    const types = events.map((e) => e.type).sort();
    expect(types).toEqual(['failed', 'gone', 'posted', 'retryable', 'retryable', 'retryable']);
    expect(
      events
        .filter((e) => e.type === 'retryable')
        .map((e) => (e.error as StatusError).status)
        .sort(),
    ).toEqual([429, 500, 500]);
  });

  it('measures no latency for a replay from history', async () => {
    const { deps, events } = setup([member('c1')]);
    await broadcastRun([message('a', NOW - 50)], false, deps);
    events.length = 0;
    await replay(
      { v: 1, kind: 'replay', tenantId: 'acme', group: 'chat:general', connectionId: 'late', since: 0 },
      deps,
    );
    expect(events).toEqual([{ type: 'posted', tenantId: 'acme', messages: 1, latencyMs: undefined }]);
  });
});

describe('framePublishTimes', () => {
  it('reads the ts of a message frame, the oldest of a batch, and none of a reset', () => {
    expect(framePublishTimes(JSON.stringify({ type: 'message', ts: 5 }))).toEqual({ messages: 1, oldestTs: 5 });
    expect(framePublishTimes(JSON.stringify({ type: 'batch', messages: [{ ts: 9 }, { ts: 3 }, { ts: 7 }] }))).toEqual({
      messages: 3,
      oldestTs: 3,
    });
    expect(framePublishTimes(JSON.stringify({ type: 'reset', seq: 4 }))).toEqual({ messages: 0, oldestTs: undefined });
    expect(framePublishTimes('not json')).toEqual({ messages: 0, oldestTs: undefined });
  });
});
