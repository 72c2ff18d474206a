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
import {
  abandonReplay,
  type BroadcastDeps,
  broadcastRun,
  DeliveryFailedError,
  deliverFanoutJobs,
  type FanoutPage,
  replay,
} from './broadcast.ts';
import type { DeliveryMessage, ReplayRequest } from './delivery.ts';
import { GroupHistory } from './history.ts';
import { LAG_CLOSE_AFTER_MS, LAG_CLOSE_AFTER_PASSES } from './lagging.ts';
import { MemberCache } from './member-cache.ts';
import { NotReading } from './not-reading.ts';
import { Registry } from './registry.ts';

const tableName = 'replay-membership-test';

describe('a replay request reaching the broadcaster', () => {
  let client: DynamoDBDocumentClient;
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  const now = 1_800_000_000_000;
  let tenants = 0;

  /** A post to a client that does not read: API Gateway's 429 (`LimitExceededException`). */
  const throttled = () => Object.assign(new Error('LimitExceededException'), { $metadata: { httpStatusCode: 429 } });

  function setup() {
    const tenantId = `t${++tenants}`;
    let clock = now;
    const registry = new Registry({ client, tableName, now: () => clock });
    const posts: [string, string][] = [];
    /** Connections whose client takes nothing: their posts are answered 429. */
    const asleep = new Set<string>();
    /** Frames a connection's client can still take before its buffer is full (none listed: any number). */
    const room = new Map<string, number>();
    let failRequeues = 0;
    /** Connections whose posts API Gateway fails (500). */
    const broken = new Set<string>();
    const attempts: string[] = [];
    /** Replay requests the engine queued (with their dedup ids), and the connections it closed. */
    const queued: [ReplayRequest, string][] = [];
    const closed: string[] = [];
    const deps: BroadcastDeps = {
      history: new GroupHistory({ client, tableName, now: () => clock }),
      registry,
      memberCache: new MemberCache({ now: () => clock }),
      post: async (connectionId, data) => {
        attempts.push(connectionId);
        if (asleep.has(connectionId) || room.get(connectionId) === 0) throw throttled();
        if (room.has(connectionId)) room.set(connectionId, (room.get(connectionId) ?? 0) - 1);
        if (broken.has(connectionId))
          throw Object.assign(new Error('InternalServerError'), { $metadata: { httpStatusCode: 500 } });
        posts.push([connectionId, data]);
      },
      isGone: () => false,
      isRetryable: (err) =>
        ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0) >= 429,
      enqueueFanout: async () => undefined,
      lagging: {
        registry,
        isThrottled: (err) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 429,
        requeueReplay: async (request, dedupId) => {
          if (failRequeues > 0 && failRequeues--)
            throw Object.assign(new Error('ServiceUnavailable'), { $metadata: {} });
          queued.push([request, dedupId]);
        },
        close: async (connectionId) => {
          closed.push(connectionId);
        },
      },
      backoff: { sleep: async () => undefined, attempts: 2 },
      notReading: new NotReading({ now: () => clock }),
      now: () => clock,
    };
    const alice = { tenantId, userId: 'alice', roles: ['member'], claims: {} };
    /** One run of `ids` (each message's data made by `data`), redelivered or not. */
    const run = (
      group: string,
      ids: string[],
      options: { redelivered?: boolean; data?: (id: string) => unknown } = {},
    ) =>
      broadcastRun(
        ids.map(
          (id): DeliveryMessage => ({
            v: 1,
            id,
            tenantId,
            group,
            data: options.data?.(id) ?? id,
            from: 'svc',
            ts: now,
          }),
        ),
        options.redelivered === true,
        deps,
      );
    const publish = (group: string, ...ids: string[]) => run(group, ids);
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
    /** The seqs a connection (c1 unless named) was sent, in order. */
    const seqs = (connection = 'c1') =>
      posts
        .filter(([connectionId]) => connectionId === connection)
        .flatMap(([, data]) => {
          const frame = JSON.parse(data) as { type: string; seq?: number; messages?: { seq: number }[] };
          return frame.type === 'batch' ? (frame.messages ?? []) : [frame as { seq?: number }];
        })
        .map((frame) => frame.seq);
    const advance = (ms: number) => {
      clock += ms;
    };
    const failRequeue = () => {
      failRequeues++;
    };
    return {
      ...{ tenantId, registry, deps, alice, publish, run, request, seqs, asleep, broken, room, attempts },
      ...{ queued, closed, advance, failRequeue },
    };
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
  describe('for a member whose client takes nothing (posts answered 429 after every retry)', () => {
    /** Two members of `chat` (connection ids of their own: connection items outlive a test's tenant). */
    async function twoMembers() {
      const fixture = setup();
      const { tenantId, registry, alice } = fixture;
      const c1 = `${tenantId}-c1`;
      const c2 = `${tenantId}-c2`;
      for (const c of [c1, c2]) {
        await registry.putConnection(alice, c, now);
        await registry.subscribe(alice, c, 'chat', now, { at: now });
      }
      return { ...fixture, c1, c2 };
    }

    it('puts it on a replay wait and lets the run and its group go on without it', async () => {
      const { publish, seqs, asleep, attempts, queued, c1, c2 } = await twoMembers();
      asleep.add(c1);
      await expect(publish('chat', 'm1')).resolves.toMatchObject({ delivered: 1, failed: 0, deferred: 1 });
      expect(queued.map(([r, id]) => [r.connectionId, r.since, id])).toEqual([[c1, 0, `lag-${c1}-0-at-${now}`]]);
      // The next run skips it (its membership version moved, so no member list from before the wait is used).
      const tried = attempts.filter((c) => c === c1).length;
      await expect(publish('chat', 'm2')).resolves.toMatchObject({ delivered: 1, failed: 0 });
      expect(attempts.filter((c) => c === c1)).toHaveLength(tried);
      expect(seqs(c2)).toEqual([1, 2]);
    });

    it('brings it everything it missed, in order, once its client reads again, then live messages', async () => {
      const { deps, publish, seqs, asleep, queued, c1, c2 } = await twoMembers();
      asleep.add(c1);
      await publish('chat', 'm1');
      await publish('chat', 'm2', 'm3');
      asleep.delete(c1);
      await replay(queued[0]?.[0] as ReplayRequest, deps);
      await publish('chat', 'm4');
      expect(seqs(c1)).toEqual([1, 2, 3, 4]);
      expect(seqs(c2)).toEqual([1, 2, 3, 4]);
    });

    it('queues a replay it does not take again, each with its own dedup id, and keeps it waiting', async () => {
      const { deps, publish, seqs, asleep, queued, closed, c1 } = await twoMembers();
      asleep.add(c1);
      await publish('chat', 'm1');
      await expect(replay(queued[0]?.[0] as ReplayRequest, deps)).resolves.toMatchObject({ failed: 0 });
      await expect(replay(queued[1]?.[0] as ReplayRequest, deps)).resolves.toMatchObject({ failed: 0 });
      expect(queued.map(([, id]) => id)).toEqual([
        `lag-${c1}-0-at-${now}`,
        `lag-${c1}-0-at-${now}-1`,
        `lag-${c1}-0-at-${now}-2`,
      ]);
      await publish('chat', 'm2');
      asleep.delete(c1);
      await replay(queued[2]?.[0] as ReplayRequest, deps);
      expect(seqs(c1)).toEqual([1, 2]);
      expect(closed).toEqual([]);
    });

    it(`closes its connection once it has lagged ${LAG_CLOSE_AFTER_MS} ms over ${LAG_CLOSE_AFTER_PASSES} replays, not before`, async () => {
      const { deps, publish, seqs, asleep, queued, closed, advance, c1, c2 } = await twoMembers();
      asleep.add(c1);
      await publish('chat', 'm1');
      // Many quick passes are not enough: the account's own post rate answers 429 too.
      for (let pass = 0; pass < LAG_CLOSE_AFTER_PASSES + 2; pass++) {
        await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
        advance(100);
      }
      expect(closed).toEqual([]);
      advance(LAG_CLOSE_AFTER_MS);
      await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
      expect(closed).toEqual([c1]);
      // Nothing more is queued for it; its memberships go with its $disconnect (which announces its presence leave).
      const requests = queued.length;
      await publish('chat', 'm2');
      expect(queued).toHaveLength(requests);
      expect(seqs(c2)).toEqual([1, 2]);
    });

    it('is not closed for a long wait alone: it needs the replays refused too', async () => {
      const { deps, publish, asleep, queued, closed, advance, c1 } = await twoMembers();
      asleep.add(c1);
      await publish('chat', 'm1');
      advance(LAG_CLOSE_AFTER_MS * 10);
      for (let pass = 1; pass < LAG_CLOSE_AFTER_PASSES; pass++) await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
      expect(closed).toEqual([]);
      await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
      expect(closed).toEqual([c1]);
    });

    it('gives a second wait from the same since its own dedup id, so SQS does not drop its request as the first', async () => {
      const { deps, run, asleep, queued, advance, c1 } = await twoMembers();
      asleep.add(c1);
      await run('chat', ['m1']);
      asleep.delete(c1);
      await replay(queued[0]?.[0] as ReplayRequest, deps);
      // Asleep again, and the run given back (a redelivery): deferred again from the same since, a second later.
      asleep.add(c1);
      advance(1000);
      await run('chat', ['m1'], { redelivered: true });
      const ids = queued.map(([, id]) => id);
      expect(ids).toHaveLength(2);
      expect(new Set(ids).size).toBe(2);
    });

    it('gives the passes of a wait a subscribe made again its own dedup ids, so SQS does not drop them as the first', async () => {
      const { registry, alice, deps, run, asleep, queued, advance, c1 } = await twoMembers();
      asleep.add(c1);
      await run('chat', ['m1']);
      await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
      // Still asleep, its client subscribes again from the same since (the SDK's last seq): the wait starts over.
      await registry.subscribe(alice, c1, 'chat', now, { since: 0, at: now + 5 });
      advance(1000);
      await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
      const ids = queued.map(([, id]) => id);
      expect(ids).toHaveLength(3);
      expect(new Set(ids).size).toBe(3);
    });

    it('still fails the run when API Gateway fails the posts (a 500 is not the client not reading)', async () => {
      const { publish, broken, queued, c1 } = await twoMembers();
      broken.add(c1);
      await expect(publish('chat', 'm1')).rejects.toBeInstanceOf(DeliveryFailedError);
      expect(queued).toEqual([]);
    });

    it("goes on without a user group's connection that never subscribed (owed best effort), and queues nothing", async () => {
      const { registry, alice, publish, seqs, asleep, queued } = setup();
      await registry.putConnection(alice, 'c1', now);
      await registry.putConnection(alice, 'c2', now);
      asleep.add('c1');
      // Until 2026-12-05 the run failed for it, and SQS gave it back until the DLQ: her other tab got nothing later.
      await expect(publish('user:alice', 'm1')).resolves.toMatchObject({ failed: 0 });
      await publish('user:alice', 'm2');
      expect(seqs('c2')).toEqual([1, 2]);
      // A request would replay to it anyway (a user group reaches its user's connections), repeating the run.
      expect(queued).toEqual([]);
      // Awake again, it gets what comes next.
      asleep.delete('c1');
      await publish('user:alice', 'm3');
      expect(seqs('c1')).toEqual([3]);
    });

    it("keeps a remembered connection's retries in another group, where it is a member, and of a 5xx", async () => {
      const { tenantId, registry, alice, publish, asleep, broken, attempts } = setup();
      const [c1, c2] = [`${tenantId}-c1`, `${tenantId}-c2`];
      await registry.putConnection(alice, c1, now);
      await registry.putConnection(alice, c2, now);
      await registry.subscribe(alice, c1, 'chat', now, { at: now });
      asleep.add(c1);
      await publish('user:alice', 'm1');
      asleep.delete(c1);
      // A review found a first version keyed by connection only: the member got one attempt in every group.
      broken.add(c1);
      const before = attempts.length;
      await expect(publish('chat', 'c-m1')).rejects.toBeInstanceOf(DeliveryFailedError);
      expect(attempts.slice(before).filter((c) => c === c1)).toHaveLength(2);
      // In its user group a 500 is still retried (only a 429 is not): the run fails as any run on a 500 does.
      const inGroup = attempts.length;
      await expect(publish('user:alice', 'm2')).rejects.toBeInstanceOf(DeliveryFailedError);
      expect(attempts.slice(inGroup).filter((c) => c === c1)).toHaveLength(2);
      broken.delete(c1);
      await expect(publish('chat', 'c-m2')).resolves.toMatchObject({ delivered: 1, failed: 0 });
    });

    it("posts once, not with the backoff's retries, to a never-subscribed connection of a user group still asleep", async () => {
      const { tenantId, registry, alice, publish, asleep, attempts, seqs, advance } = setup();
      const [c1, c2] = [`${tenantId}-c1`, `${tenantId}-c2`];
      await registry.putConnection(alice, c1, now);
      await registry.putConnection(alice, c2, now);
      asleep.add(c1);
      await publish('user:alice', 'm1');
      expect(attempts.filter((c) => c === c1)).toHaveLength(2);
      // Until 2026-12-05 every run of the group tried it with the backoff's attempts (~90 ms here) while it slept.
      await publish('user:alice', 'm2');
      expect(attempts.filter((c) => c === c1)).toHaveLength(3);
      // Awake, it takes the next frame at its one attempt, and is forgotten; a minute after its last refusal, too.
      asleep.delete(c1);
      await publish('user:alice', 'm3');
      asleep.add(c1);
      await publish('user:alice', 'm4');
      expect(attempts.filter((c) => c === c1)).toHaveLength(6);
      advance(61_000);
      await publish('user:alice', 'm5');
      expect(attempts.filter((c) => c === c1)).toHaveLength(8);
      expect(seqs(c2)).toEqual([1, 2, 3, 4, 5]);
      expect(seqs(c1)).toEqual([3]);
    });

    it("defers a member from the first seq it still needed, not the run's first, when an earlier attempt reached it", async () => {
      const { deps, run, seqs, asleep, queued, c1, c2 } = await twoMembers();
      await run('chat', ['m1']);
      // The run comes back (another member's 500 failed it) with m2 behind: c1 had m1 already, and now sleeps.
      asleep.add(c1);
      await run('chat', ['m1', 'm2'], { redelivered: true });
      // Until 2026-12-05 its wait began before the run's first seq, and its replay repeated seq 1 (CI saw [1, 1, 2, …]).
      expect(queued.map(([r]) => [r.connectionId, r.since])).toEqual([[c1, 1]]);
      asleep.delete(c1);
      await replay(queued[0]?.[0] as ReplayRequest, deps);
      expect(seqs(c1)).toEqual([1, 2]);
      expect(seqs(c2)).toEqual([1, 2]);
    });

    it('records who got the run before deferring, so a deferral that fails fails the run and its redelivery skips them', async () => {
      const { run, seqs, asleep, failRequeue, c1, c2 } = await twoMembers();
      asleep.add(c1);
      failRequeue();
      await expect(run('chat', ['m1'])).rejects.toThrow('ServiceUnavailable');
      await run('chat', ['m1'], { redelivered: true });
      expect(seqs(c2)).toEqual([1]);
    });

    it('lets a client that reads slowly catch up, each pass going on from where it got to, and never closes it', async () => {
      const { deps, run, seqs, asleep, room, queued, closed, advance, c1 } = await twoMembers();
      asleep.add(c1);
      // Four messages of ~20 KB: a frame each.
      for (const id of ['m1', 'm2', 'm3', 'm4'])
        await run('chat', [id], { data: (m) => ({ m, pad: 'x'.repeat(20_000) }) });
      asleep.delete(c1);
      // Between two passes its client takes two frames, passes further apart than LAG_CLOSE_AFTER_MS.
      for (let pass = 0; pass < 3; pass++) {
        room.set(c1, 2);
        advance(LAG_CLOSE_AFTER_MS);
        await replay(queued.at(-1)?.[0] as ReplayRequest, deps);
      }
      expect(seqs(c1)).toEqual([1, 2, 3, 4]);
      expect(closed).toEqual([]);
      room.delete(c1);
      await run('chat', ['m5']);
      expect(seqs(c1)).toEqual([1, 2, 3, 4, 5]);
    });

    it('keeps it waiting, rather than back on live delivery with a gap, when its wait is abandoned and closing fails', async () => {
      const { tenantId, registry, deps, run, seqs, asleep, queued, c1 } = await twoMembers();
      asleep.add(c1);
      await run('chat', ['m1']);
      const lagging = deps.lagging as NonNullable<BroadcastDeps['lagging']>;
      const unclosable = {
        ...deps,
        lagging: { ...lagging, close: () => Promise.reject(new Error('InternalServerError')) },
      };
      await abandonReplay(queued[0]?.[0] as ReplayRequest, unclosable);
      expect(await registry.replayState(tenantId, 'chat', c1, 0)).toBe('waiting');
      asleep.delete(c1);
      await run('chat', ['m2']);
      expect(seqs(c1)).toEqual([]);
    });

    it('queues a replay again when even its out-of-time reset is refused, instead of failing it to hold the group', async () => {
      const { deps, publish, asleep, queued, c1 } = await twoMembers();
      asleep.add(c1);
      await publish('chat', 'm1');
      const outOfTime = { ...deps, remainingMs: () => 0 };
      await expect(replay(queued[0]?.[0] as ReplayRequest, outOfTime)).resolves.toMatchObject({ failed: 0 });
      expect(queued.map(([, id]) => id)).toEqual([`lag-${c1}-0-at-${now}`, `lag-${c1}-0-at-${now}-1`]);
    });

    it('keeps its wait where it was when queuing the rest of a replay it took part of fails', async () => {
      const { deps, run, seqs, asleep, room, queued, advance, failRequeue, c1 } = await twoMembers();
      asleep.add(c1);
      for (const id of ['m1', 'm2', 'm3', 'm4'])
        await run('chat', [id], { data: (m) => ({ m, pad: 'x'.repeat(20_000) }) });
      asleep.delete(c1);
      const request = queued.at(-1)?.[0] as ReplayRequest;
      // It takes two frames; the SendMessage for the rest fails, and so does the invocation.
      room.set(c1, 2);
      advance(LAG_CLOSE_AFTER_MS);
      failRequeue();
      await expect(replay(request, deps)).rejects.toThrow('ServiceUnavailable');
      room.delete(c1);
      // SQS gives the same request back: it still finds its wait, and brings the rest (the first two again).
      await replay(request, deps);
      await run('chat', ['m5']);
      expect(seqs(c1)).toEqual([1, 2, 1, 2, 3, 4, 5]);
    });

    it('closes it, rather than putting it back on live delivery, when its wait is abandoned: it could not be told', async () => {
      const { deps, run, seqs, asleep, queued, closed, c1 } = await twoMembers();
      asleep.add(c1);
      await run('chat', ['m1']);
      // Its request's last receive (behind a run failing five times), or its wait overdue: the reset is refused too.
      await abandonReplay(queued[0]?.[0] as ReplayRequest, deps);
      expect(closed).toEqual([c1]);
      asleep.delete(c1);
      await run('chat', ['m2']);
      // Not put back on live delivery with seq 1 missing (the client SDK would never ask for it).
      expect(seqs(c1)).toEqual([]);
    });
    describe('in a split group, whose pages the fan-out lanes post', () => {
      /** The group split (one lane); its runs' pages kept, to be delivered by `deliverFanoutJobs` when the test says. */
      function splitGroup(fixture: Awaited<ReturnType<typeof twoMembers>>) {
        const jobs: FanoutPage[] = [];
        const deps: BroadcastDeps = {
          ...fixture.deps,
          splitThreshold: 1,
          pageSize: 10,
          shards: 1,
          enqueueFanout: async (queued) => {
            jobs.push(...queued.map(({ job, id }) => ({ job, jobId: id })));
          },
        };
        const run = (...ids: string[]) =>
          broadcastRun(
            ids.map(
              (id): DeliveryMessage => ({
                v: 1,
                id,
                tenantId: fixture.tenantId,
                group: 'chat',
                data: id,
                from: 'svc',
                ts: now,
              }),
            ),
            false,
            deps,
          );
        const page = (n: number, using = deps) => deliverFanoutJobs([jobs[n] as FanoutPage], false, using);
        /** Pages `ns` delivered as one unit of the lane. */
        const unit = (...ns: number[]) =>
          deliverFanoutJobs(
            ns.map((n) => jobs[n] as FanoutPage),
            false,
            deps,
          );
        return { deps, run, page, unit };
      }

      it("goes on without a user group's connection that never subscribed, as the broadcaster's run does", async () => {
        const { registry, alice, deps: direct, tenantId, seqs, asleep, queued } = setup();
        await registry.putConnection(alice, 'c1', now);
        await registry.putConnection(alice, 'c2', now);
        await registry.subscribe(alice, 'c2', 'user:alice', now, { at: now });
        const jobs: FanoutPage[] = [];
        const deps: BroadcastDeps = {
          ...direct,
          splitThreshold: 1,
          pageSize: 10,
          shards: 1,
          enqueueFanout: async (pages) => {
            jobs.push(...pages.map(({ job, id }) => ({ job, jobId: id })));
          },
        };
        const message = (id: string): DeliveryMessage => ({
          v: 1,
          id,
          tenantId,
          group: 'user:alice',
          data: id,
          from: 'svc',
          ts: now,
        });
        asleep.add('c1');
        await broadcastRun([message('m1')], false, deps);
        // Until review the lane's unit failed for it, again on every receive, until the DLQ.
        await expect(deliverFanoutJobs([jobs[0] as FanoutPage], false, deps)).resolves.toMatchObject({ failed: 0 });
        await broadcastRun([message('m2')], false, deps);
        await deliverFanoutJobs([jobs[1] as FanoutPage], false, deps);
        expect(seqs('c2')).toEqual([1, 2]);
        expect(queued).toEqual([]);
      });

      it("defers it from past what an earlier unit read ahead to it, not from its pages' first seq", async () => {
        const fixture = await twoMembers();
        const { seqs, asleep, queued, c1 } = fixture;
        const { deps, run, page, unit } = splitGroup(fixture);
        await run('m1');
        await run('m2');
        await run('m3');
        // The first page's unit reads the log ahead: both members get 1..3, recorded in the lane's read-ahead record.
        await page(0);
        expect(seqs(c1)).toEqual([1, 2, 3]);
        await run('m4');
        asleep.add(c1);
        // The next unit holds the pages of seqs 2..4; for c1 only seq 4 is new, and it does not take it. Until
        // 2026-12-05 its wait began before seq 2, and its replay repeated 2 and 3.
        await expect(unit(1, 2, 3)).resolves.toMatchObject({ failed: 0 });
        expect(queued.map(([r]) => [r.connectionId, r.since])).toEqual([[c1, 3]]);
        asleep.delete(c1);
        await replay(queued[0]?.[0] as ReplayRequest, deps);
        expect(seqs(c1)).toEqual([1, 2, 3, 4]);
      });

      it('holds it back in its lane, so a page queued before is not posted ahead of its replay, and goes on', async () => {
        const fixture = await twoMembers();
        const { seqs, asleep, queued, c1, c2 } = fixture;
        const { deps, run, page } = splitGroup(fixture);
        await run('m1');
        await run('m2');
        asleep.add(c1);
        // Its client takes nothing of the first page: the lane's unit goes on without it (until 2026-12-05 it failed,
        // and SQS held the lane, an eighth of the group, until the DLQ).
        await expect(page(0)).resolves.toMatchObject({ delivered: 1, failed: 0, deferred: 1 });
        expect(queued.map(([r]) => [r.connectionId, r.since])).toEqual([[c1, 0]]);
        // It reads again before its replay comes: the second page (queued before it lagged) must not reach it first.
        asleep.delete(c1);
        await page(1);
        expect(seqs(c1)).toEqual([]);
        await replay(queued[0]?.[0] as ReplayRequest, deps);
        // Live again: the lane posts to it (and releases it).
        await run('m3');
        await page(2);
        expect(seqs(c1)).toEqual([1, 2, 3]);
        expect(seqs(c2)).toEqual([1, 2, 3]);
      });

      it('marks its wait before queuing its request, which an idle broadcaster may read at once', async () => {
        const fixture = await twoMembers();
        const { seqs, asleep, queued, c1 } = fixture;
        const { deps, run, page } = splitGroup(fixture);
        const lagging = deps.lagging as NonNullable<BroadcastDeps['lagging']>;
        // Nothing of the group is ahead of a lane's request on the delivery queue: the broadcaster reads it at once.
        const eager: BroadcastDeps = {
          ...deps,
          lagging: {
            ...lagging,
            requeueReplay: async (request, dedupId) => {
              await lagging.requeueReplay(request, dedupId);
              if (queued.length === 1) await replay(request, eager);
            },
          },
        };
        await run('m1');
        asleep.add(c1);
        await page(0, eager);
        asleep.delete(c1);
        // The first request was read (and is gone); what it queued again serves it.
        for (const [request] of queued.slice(1)) await replay(request, deps);
        expect(seqs(c1)).toEqual([1]);
      });

      it('sends its request again from the next unit when the first send failed after its wait was written', async () => {
        const fixture = await twoMembers();
        const { seqs, asleep, queued, failRequeue, c1 } = fixture;
        const { deps, run, page } = splitGroup(fixture);
        await run('m1');
        asleep.add(c1);
        failRequeue();
        await expect(page(0)).rejects.toThrow('ServiceUnavailable');
        expect(queued).toEqual([]);
        // SQS gives the unit back (180 s later): the held member whose wait is that old has its request sent again.
        fixture.advance(180_000);
        await page(0);
        expect(queued.map(([r]) => [r.connectionId, r.since])).toEqual([[c1, 0]]);
        asleep.delete(c1);
        await replay(queued[0]?.[0] as ReplayRequest, deps);
        expect(seqs(c1)).toEqual([1]);
      });

      it('holds before it writes the wait, so a unit failing in between leaves no wait without a request', async () => {
        const fixture = await twoMembers();
        const { seqs, asleep, c1 } = fixture;
        const { deps, run, page } = splitGroup(fixture);
        let holdFails = 1;
        const flaky: BroadcastDeps = {
          ...deps,
          history: Object.assign(Object.create(deps.history) as BroadcastDeps['history'], {
            holdInLane: async (...args: Parameters<BroadcastDeps['history']['holdInLane']>) => {
              if (holdFails-- > 0) throw new Error('ProvisionedThroughputExceededException');
              return deps.history.holdInLane(...args);
            },
          }),
        };
        await run('m1');
        asleep.add(c1);
        await expect(page(0, flaky)).rejects.toThrow('ProvisionedThroughputExceededException');
        // It read again before SQS gave the unit back: it gets the page, then live pages.
        asleep.delete(c1);
        await page(0, flaky);
        await run('m2');
        await page(1, flaky);
        expect(seqs(c1)).toEqual([1, 2]);
      });

      it('does not fail the unit for a member that left while its client slept', async () => {
        const fixture = await twoMembers();
        const { tenantId, registry, asleep, c1 } = fixture;
        const { run, page } = splitGroup(fixture);
        await run('m1');
        asleep.add(c1);
        await registry.unsubscribe(tenantId, c1, 'chat', now + 1);
        await expect(page(0)).resolves.toMatchObject({ delivered: 1, failed: 0 });
      });

      it('releases a held connection that is gone, though no later page names it', async () => {
        const fixture = await twoMembers();
        const { tenantId, registry, deps: base, asleep, c1 } = fixture;
        const { run, page } = splitGroup(fixture);
        await run('m1');
        asleep.add(c1);
        await page(0);
        expect(await base.history.heldInLane(tenantId, 'chat', 0)).toEqual(new Set([c1]));
        // It is closed (its $disconnect removes it); the next run's page names only c2.
        await registry.removeConnection(c1);
        await run('m2');
        await page(1);
        expect(await base.history.heldInLane(tenantId, 'chat', 0)).toEqual(new Set());
      });
    });
  });
});
