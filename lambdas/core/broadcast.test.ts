import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { FakeTable } from '../../test/support/fake-table.ts';
import { limits } from '../manifest.ts';
import {
  abandonReplay,
  allMembers,
  type BroadcastDeps,
  broadcastRun,
  DeliveryFailedError,
  deliverFanoutJob,
  deliverFanoutJobs,
  type FanoutPage,
  OutOfTimeError,
  REPLAY_WAIT_MS,
  replay,
  shardOf,
} from './broadcast.ts';
import type { DeliveryMessage, FanoutJob, ReplayRequest } from './delivery.ts';
import { GroupHistory } from './history.ts';
import { MemberCache } from './member-cache.ts';
import type { Member } from './registry.ts';
import { sqsBatches } from './sqs-batches.ts';

const T = 'acme';
const G = 'chat:general';

class StatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

interface Options {
  members?: Member[];
  /** Connections of users (the gsi1 view), for user groups. */
  userConnections?: Record<string, Member[]>;
  /** Per connection, the statuses its next posts fail with (then it succeeds). */
  failures?: Record<string, number[]>;
  splitThreshold?: number;
  pageSize?: number;
  shards?: number;
  /** Keep member lists between runs (a MemberCache) while the fake membership version stays the same. */
  memberCache?: boolean;
  /** Runs right after a member listing took its snapshot (a change racing the read). */
  afterListing?: () => void;
  /** Runs (once) right before the run raises the group's counter: its history items are written, its seqs not yet readable. */
  beforeCounterRaise?: () => Promise<void>;
  /** Connections that are no members when their replay runs (they left while it waited). */
  notAwaitingReplay?: string[];
}

/** The table's client, running `options.beforeCounterRaise` once before the first raise of a group's counter. */
function withHookBeforeCounterRaise(table: FakeTable, options: Options): FakeTable['client'] {
  let hook = options.beforeCounterRaise;
  if (hook === undefined) return table.client;
  return {
    send: async (command: { input: { Key?: { pk?: string }; UpdateExpression?: string } }) => {
      if (
        hook !== undefined &&
        command.input.Key?.pk?.endsWith('#S') &&
        command.input.UpdateExpression === 'SET seq = :seq'
      ) {
        const run = hook;
        hook = undefined;
        await run();
      }
      return table.client.send(command as never);
    },
  } as unknown as FakeTable['client'];
}

/** The engine's ports: history over a fake table, an in-memory registry, and a recording @connections. */
function setup(options: Options = {}) {
  const table = new FakeTable();
  let now = 1_700_000_000_000;
  const members = [...(options.members ?? [])];
  const posts: [string, string][] = [];
  const removed: string[] = [];
  const replayed: string[] = [];
  const jobs: { job: FanoutJob; shard: number; id: string }[] = [];
  const membership = { version: 0, listings: 0, consistentListings: 0 };
  const failures = Object.fromEntries(Object.entries(options.failures ?? {}).map(([k, v]) => [k, [...v]]));
  const deps: BroadcastDeps = {
    history: new GroupHistory({
      client: withHookBeforeCounterRaise(table, options),
      tableName: 'test',
      now: () => now,
    }),
    registry: {
      members: async function* (_tenantId, _group, read) {
        membership.listings++;
        if (read?.consistent === true) membership.consistentListings++;
        const snapshot = members.filter((m) => !removed.includes(m.connectionId));
        options.afterListing?.();
        yield snapshot;
      },
      membershipVersion: async () => membership.version,
      connectionsOfUser: async (_tenantId, userId) => options.userConnections?.[userId] ?? [],
      removeConnection: async (connectionId) => {
        removed.push(connectionId);
        return { groups: 1 };
      },
      replayState: async (_tenantId, _group, connectionId) =>
        removed.includes(connectionId) || (options.notAwaitingReplay ?? []).includes(connectionId) ? 'gone' : 'waiting',
      completeReplay: async (_tenantId, _group, connectionId) => {
        replayed.push(connectionId);
      },
    },
    post: async (connectionId, data) => {
      const status = failures[connectionId]?.shift();
      if (status !== undefined) throw new StatusError(status);
      posts.push([connectionId, data]);
    },
    isGone: (err) => err instanceof StatusError && err.status === 410,
    isRetryable: (err) => err instanceof StatusError && (err.status === 429 || err.status >= 500),
    enqueueFanout: async (batch) => {
      jobs.push(...batch);
    },
    backoff: { sleep: async () => undefined, attempts: 3 },
    now: () => now,
    ...(options.splitThreshold !== undefined && { splitThreshold: options.splitThreshold }),
    ...(options.pageSize !== undefined && { pageSize: options.pageSize }),
    ...(options.shards !== undefined && { shards: options.shards }),
    ...(options.memberCache === true && { memberCache: new MemberCache({ now: () => now }) }),
  };
  /** What one connection received, frames unpacked, as [id, seq]. */
  const received = (connectionId: string) =>
    posts
      .filter(([c]) => c === connectionId)
      .flatMap(([, data]) => {
        const frame = JSON.parse(data) as { type: string; messages?: unknown[] };
        return (frame.type === 'batch' ? (frame.messages ?? []) : [frame]) as Record<string, unknown>[];
      })
      .map((f) => (f.type === 'reset' ? ['reset', f.seq] : [f.id, f.seq]));
  return {
    table,
    deps,
    posts,
    removed,
    replayed,
    jobs,
    members,
    membership,
    received,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const member = (connectionId: string, extra: Partial<Member> = {}): Member => ({
  connectionId,
  userId: `u-${connectionId}`,
  roles: ['member'],
  claims: {},
  ...extra,
});

const message = (id: string, extra: Partial<DeliveryMessage> = {}): DeliveryMessage => ({
  v: 1,
  id,
  tenantId: T,
  group: G,
  data: { text: id },
  from: 'alice',
  ts: 1,
  ...extra,
});

describe('broadcastRun on a small group', () => {
  it('gives the run its seqs and posts every member all of it, one batch frame each', async () => {
    const { deps, posts, received } = setup({ members: [member('c1'), member('c2')] });
    const result = await broadcastRun([message('a'), message('b')], false, deps);
    expect(result).toEqual({ delivered: 2, gone: 0, failed: 0, seqs: [1, 2], split: false });
    expect(posts).toHaveLength(2);
    expect(JSON.parse(posts[0]?.[1] ?? '')).toMatchObject({ type: 'batch' });
    for (const c of ['c1', 'c2'])
      expect(received(c)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
  });

  it('sends a single message as a message frame with its seq', async () => {
    const { deps, posts } = setup({ members: [member('c1')] });
    await broadcastRun([message('a')], false, deps);
    expect(JSON.parse(posts[0]?.[1] ?? '')).toEqual({
      type: 'message',
      group: G,
      id: 'a',
      seq: 1,
      data: { text: 'a' },
      from: 'alice',
      ts: 1,
    });
  });

  it('skips a member waiting for its replay', async () => {
    const { deps, received } = setup({ members: [member('c1'), member('late', { replayFrom: 0 })] });
    await broadcastRun([message('a')], false, deps);
    expect(received('c1')).toEqual([['a', 1]]);
    expect(received('late')).toEqual([]);
  });

  it('filters by audience per member', async () => {
    const { deps, received } = setup({ members: [member('c1'), member('boss', { roles: ['admin'] })] });
    await broadcastRun([message('a'), message('secret', { audience: { roles: ['admin'] } })], false, deps);
    expect(received('c1')).toEqual([['a', 1]]);
    expect(received('boss')).toEqual([
      ['a', 1],
      ['secret', 2],
    ]);
  });

  it('removes a gone connection (410) and still delivers to everyone else', async () => {
    const { deps, removed, received } = setup({
      members: [member('c1'), member('ghost')],
      failures: { ghost: [410] },
    });
    const result = await broadcastRun([message('a')], false, deps);
    expect(result).toMatchObject({ delivered: 1, gone: 1, failed: 0 });
    expect(removed).toEqual(['ghost']);
    expect(received('c1')).toEqual([['a', 1]]);
  });

  it('retries throttled and failing posts (429, 500) until they go through', async () => {
    const { deps, received } = setup({ members: [member('c1')], failures: { c1: [429, 500] } });
    expect(await broadcastRun([message('a')], false, deps)).toMatchObject({ delivered: 1, failed: 0 });
    expect(received('c1')).toEqual([['a', 1]]);
  });
});

describe('broadcastRun after a failure', () => {
  it('fails the run when a post keeps failing, after everyone else got it; the redelivery posts only what is missing, same ids and seqs', async () => {
    const { deps, posts, received } = setup({
      members: [member('c1'), member('c2'), member('flaky')],
      failures: { flaky: [500, 500, 500] },
    });
    const run = [message('a'), message('b')];
    const error = await broadcastRun(run, false, deps).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DeliveryFailedError);
    expect((error as DeliveryFailedError).result).toEqual({ delivered: 2, gone: 0, failed: 1 });
    const postsBefore = posts.length;

    const retry = await broadcastRun(run, true, deps);
    expect(retry).toMatchObject({ delivered: 1, failed: 0, seqs: [1, 2] });
    expect(posts.slice(postsBefore).map(([c]) => c)).toEqual(['flaky']);
    for (const c of ['c1', 'c2', 'flaky'])
      expect(received(c)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
  });

  it('near the invocation timeout leaves the connections not yet started for the redelivery, which sends them only', async () => {
    const { deps, posts, received } = setup({ members: [member('c1'), member('c2'), member('c3'), member('c4')] });
    let left = 20_000;
    const timed: BroadcastDeps = {
      ...deps,
      concurrency: 1,
      stopBeforeMs: 5_000,
      remainingMs: () => left,
      post: async (connectionId, data) => {
        await deps.post(connectionId, data);
        left -= 8_000;
      },
    };
    const run = [message('a'), message('b')];
    const error = await broadcastRun(run, false, timed).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DeliveryFailedError);
    expect((error as DeliveryFailedError).result).toEqual({ delivered: 2, gone: 0, failed: 2 });
    expect((error as DeliveryFailedError).firstCause).toBeInstanceOf(OutOfTimeError);
    expect(posts.map(([c]) => c)).toEqual(['c1', 'c2']);

    left = 60_000;
    const retry = await broadcastRun(run, true, timed);
    expect(retry).toMatchObject({ delivered: 2, failed: 0, seqs: [1, 2] });
    expect(posts.map(([c]) => c)).toEqual(['c1', 'c2', 'c3', 'c4']);
    for (const c of ['c1', 'c2', 'c3', 'c4'])
      expect(received(c)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
  });

  it('a redelivery that grew a message delivers only the new one to members that had the rest', async () => {
    const { deps, received, members } = setup({ members: [member('c1')] });
    await broadcastRun([message('a')], false, deps);
    members.push(member('c2'));
    // The first message comes back with a second one behind it (e.g. the delete of the first was lost).
    await broadcastRun([message('a'), message('b')], true, deps);
    expect(received('c1')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(received('c2')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('a first delivery (not a redelivery) reads no progress', async () => {
    const { deps, table } = setup({ members: [member('c1')] });
    await broadcastRun([message('a')], false, deps);
    expect(table.calls.filter((c) => c.name === 'QueryCommand')).toEqual([]);
  });
});

describe("shardOf: a connection's lane", () => {
  const lane = (id: string, shards: number) => createHash('sha256').update(id).digest().readUInt32BE(0) % shards;

  it("is the first four bytes of the id's SHA-256 modulo the lanes, whatever lane counts were asked before", () => {
    const ids = Array.from({ length: 50 }, (_, i) => `conn-${i}=`);
    for (const shards of [3, 8, 1, 5]) for (const id of ids) expect(shardOf(id, shards)).toBe(lane(id, shards));
  });

  it('stays the same after the sandbox has hashed more connections than it keeps', () => {
    const before = Array.from({ length: 20 }, (_, i) => shardOf(`kept-${i}=`, 8));
    for (let i = 0; i < 250_001; i++) shardOf(`other-${i}=`, 8);
    expect(Array.from({ length: 20 }, (_, i) => shardOf(`kept-${i}=`, 8))).toEqual(before);
    expect(before).toEqual(Array.from({ length: 20 }, (_, i) => lane(`kept-${i}=`, 8)));
  });
});

describe('broadcastRun on a large group (the split path)', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => member(`c${i}`));

  it('pages the members onto the fan-out queue by shard, each member exactly once, and posts nothing itself', async () => {
    const { deps, jobs, posts } = setup({ members: many(25), splitThreshold: 10, pageSize: 4, shards: 3 });
    const result = await broadcastRun([message('a'), message('b')], false, deps);
    expect(result).toMatchObject({ split: true, seqs: [1, 2] });
    expect(posts).toEqual([]);
    const recipients = jobs.flatMap(({ job }) => Object.keys(job.recipients));
    expect(recipients.sort()).toEqual(
      many(25)
        .map((m) => m.connectionId)
        .sort(),
    );
    for (const { job, shard } of jobs) {
      expect(Object.keys(job.recipients).length).toBeLessThanOrEqual(4);
      for (const connectionId of Object.keys(job.recipients)) expect(shardOf(connectionId, 3)).toBe(shard);
      expect(job).toMatchObject({ tenantId: T, group: G, batchSeq: 1 });
    }
    // Every member shares the same frames: each page carries them once.
    for (const { job } of jobs) expect(job.frames).toHaveLength(1);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
  });

  it("raises the group's counter by the time the run ends, as the direct path does", async () => {
    const { deps } = setup({ members: many(25), splitThreshold: 10, shards: 3 });
    await broadcastRun([message('a'), message('b')], false, deps);
    expect((await deps.history.state(T, G)).seq).toBe(2);
    await broadcastRun([message('c')], false, deps);
    expect((await deps.history.state(T, G)).seq).toBe(3);
  });

  it('a run whose pages could not be queued is redelivered with its seqs, the counter raised and the same page ids', async () => {
    const { deps, jobs } = setup({ members: many(25), splitThreshold: 10, shards: 3 });
    const enqueue = deps.enqueueFanout;
    let refuse = true;
    const flaky: BroadcastDeps = {
      ...deps,
      enqueueFanout: async (batch) => {
        if (refuse) throw new Error('SQS is down');
        await enqueue?.(batch);
      },
    };
    await expect(broadcastRun([message('a'), message('b')], false, flaky)).rejects.toThrow('SQS is down');
    refuse = false;
    const again = await broadcastRun([message('a'), message('b')], true, flaky);
    expect(again).toMatchObject({ split: true, seqs: [1, 2] });
    expect((await deps.history.state(T, G)).seq).toBe(2);
    expect(new Set(jobs.map((j) => j.job.batchSeq))).toEqual(new Set([1]));
    expect(jobs.flatMap(({ job }) => Object.keys(job.recipients)).sort()).toEqual(
      many(25)
        .map((m) => m.connectionId)
        .sort(),
    );
  });

  it('shapes 4,000 members x 10 quote-heavy 16 KB messages into SQS-sized jobs and delivers every message, in order', async () => {
    const { deps, jobs, posts } = setup({ members: many(4000) });
    // 8,000 quotes: 16,002 bytes of JSON as data, and four bytes per quote once a frame is JSON inside a job.
    const run = Array.from({ length: 10 }, (_, i) => message(`m${i}`, { data: '"'.repeat(8000) }));
    await broadcastRun(run, false, deps);
    for (const { job } of jobs) expect(Buffer.byteLength(JSON.stringify(job))).toBeLessThanOrEqual(255 * 1024);
    for (const batch of sqsBatches(jobs.map(({ job }) => ({ MessageBody: JSON.stringify(job) })))) {
      expect(batch.reduce((n, e) => n + Buffer.byteLength(e.MessageBody), 0)).toBeLessThanOrEqual(1024 * 1024);
    }
    // Each lane's jobs in order, as the FIFO fan-out queue hands them out.
    for (const { job, id } of jobs) await deliverFanoutJob(job, id, false, deps);
    const got = new Map<string, string[]>();
    for (const [connectionId, data] of posts) {
      const frame = JSON.parse(data) as { type: string; id?: string; messages?: { id: string }[] };
      const ids = frame.type === 'batch' ? (frame.messages ?? []).map((m) => m.id) : [frame.id as string];
      got.set(connectionId, [...(got.get(connectionId) ?? []), ...ids]);
    }
    expect(got.size).toBe(4000);
    for (const ids of got.values()) expect(ids).toEqual(run.map((m) => m.id));
  }, 60_000);

  it('keeps a group that was split on the split path for a while, even once it is small', async () => {
    const { deps, jobs, members, advance } = setup({ members: many(12), splitThreshold: 10 });
    await broadcastRun([message('a')], false, deps);
    members.splice(2);
    const before = jobs.length;
    expect(await broadcastRun([message('b')], false, deps)).toMatchObject({ split: true });
    expect(jobs.length).toBeGreaterThan(before);
    advance(16 * 60_000);
    expect(await broadcastRun([message('c')], false, deps)).toMatchObject({ split: false, delivered: 2 });
  });

  it('a page delivers its frames, and a redelivered page skips connections that already got it', async () => {
    const { deps, jobs, received } = setup({
      members: many(12),
      splitThreshold: 10,
      shards: 1,
      failures: { c3: [500, 500, 500] },
    });
    await broadcastRun([message('a')], false, deps);
    expect(jobs).toHaveLength(2);
    const failing = jobs.find(({ job }) => Object.hasOwn(job.recipients, 'c3'));
    if (failing === undefined) throw new Error('no page for c3');
    for (const { job, id } of jobs.filter((j) => j !== failing)) await deliverFanoutJob(job, id, false, deps);
    await expect(deliverFanoutJob(failing.job, failing.id, false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    expect(await deliverFanoutJob(failing.job, failing.id, true, deps)).toEqual({ delivered: 1, gone: 0, failed: 0 });
    for (const m of many(12)) expect(received(m.connectionId)).toEqual([['a', 1]]);
  });
  it('a run redelivered after some of its pages were queued reaches every member even if the members changed', async () => {
    // One lane, pages of 2: the first attempt's queue takes 10 pages, then fails; c0 leaves before the redelivery, so
    // every later member moves one place up and its page id (its range, lane and number) names another body.
    const { deps, members } = setup({ members: many(24), splitThreshold: 5, pageSize: 2, shards: 1 });
    const queued = new Map<string, FanoutJob>();
    let accepts = 10;
    const fifo: BroadcastDeps = {
      ...deps,
      enqueueFanout: async (batch) => {
        for (const { id, job } of batch) {
          if (accepts-- <= 0) throw new Error('SendMessageBatch failed');
          // SQS FIFO: a deduplication id seen within five minutes is accepted and dropped.
          if (!queued.has(id)) queued.set(id, job);
        }
      },
    };
    await expect(broadcastRun([message('a')], false, fifo)).rejects.toThrow('SendMessageBatch failed');
    members.splice(0, 1);
    accepts = Number.POSITIVE_INFINITY;
    await broadcastRun([message('a')], true, fifo);
    const reached = new Set([...queued.values()].flatMap((job) => Object.keys(job.recipients)));
    expect(members.map((m) => m.connectionId).filter((id) => !reached.has(id))).toEqual([]);
  });
});

describe('deliverFanoutJobs: consecutive pages of a lane delivered as one', () => {
  const many = (n: number, extra: Partial<Member> = {}) => Array.from({ length: n }, (_, i) => member(`c${i}`, extra));
  /** A split group (12 members, one lane, one page per run): the pages of `runs` runs, in lane order. */
  async function pagesOf(runs: DeliveryMessage[][], options: Options = {}) {
    const env = setup({ members: many(12), splitThreshold: 10, pageSize: 20, shards: 1, ...options });
    for (const run of runs) await broadcastRun(run, false, env.deps);
    const pages = env.jobs.map(({ job, id }) => ({ job, jobId: id }));
    expect(pages).toHaveLength(runs.length);
    return { ...env, pages };
  }
  const framesOf = (posts: [string, string][], connectionId: string) => posts.filter(([c]) => c === connectionId);

  it('gives each recipient the messages of both pages in one frame when they fit', async () => {
    const { deps, pages, posts, received } = await pagesOf([[message('a'), message('b')], [message('c')]]);
    expect(await deliverFanoutJobs(pages, false, deps)).toEqual({ delivered: 12, gone: 0, failed: 0 });
    for (const m of many(12)) {
      expect(framesOf(posts, m.connectionId)).toHaveLength(1);
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]);
    }
  });

  it('splits merged messages over 32 KB into several frames, none larger, in order', async () => {
    const big = (id: string) => message(id, { data: { text: id.repeat(12_000) } });
    const { deps, pages, posts, received } = await pagesOf([
      [big('a'), big('b')],
      [big('c'), big('d')],
    ]);
    await deliverFanoutJobs(pages, false, deps);
    const frames = framesOf(posts, 'c0');
    expect(frames).toHaveLength(2);
    for (const [, frame] of frames) expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(32 * 1024);
    expect(received('c0').map(([id]) => id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('merges each recipient its own messages when an audience gives recipients different frames', async () => {
    const env = setup({
      members: [...many(6), ...Array.from({ length: 6 }, (_, i) => member(`boss${i}`, { roles: ['admin'] }))],
      splitThreshold: 10,
      pageSize: 20,
      shards: 1,
    });
    await broadcastRun([message('a'), message('secret', { audience: { roles: ['admin'] } })], false, env.deps);
    await broadcastRun([message('b')], false, env.deps);
    await deliverFanoutJobs(
      env.jobs.map(({ job, id }) => ({ job, jobId: id })),
      false,
      env.deps,
    );
    expect(framesOf(env.posts, 'c0')).toHaveLength(1);
    expect(env.received('c0')).toEqual([
      ['a', 1],
      ['b', 3],
    ]);
    expect(framesOf(env.posts, 'boss0')).toHaveLength(1);
    expect(env.received('boss0')).toEqual([
      ['a', 1],
      ['secret', 2],
      ['b', 3],
    ]);
  });

  it('records each page every recipient got as complete, naming nobody, and a redelivery then posts nothing', async () => {
    const { deps, pages, posts } = await pagesOf([[message('a')], [message('b')]]);
    await deliverFanoutJobs(pages, false, deps);
    for (const { job, jobId } of pages) {
      const records = await deps.history.progress(T, G, { first: job.batchSeq, last: job.batchSeq, jobId });
      expect(records).toHaveLength(1);
      expect(records[0]?.complete).toEqual(expect.any(String));
      expect(records[0]?.done.size).toBe(0);
    }
    const before = posts.length;
    expect(await deliverFanoutJobs(pages, true, deps)).toEqual({ delivered: 0, gone: 0, failed: 0 });
    expect(posts.length).toBe(before);
  });

  it('records a page with a gone recipient as complete too (nothing is left to post to it)', async () => {
    const { deps, pages } = await pagesOf([[message('a')]], { failures: { c5: [410] } });
    expect(await deliverFanoutJobs(pages, false, deps)).toEqual({ delivered: 11, gone: 1, failed: 0 });
    const { job, jobId } = pages[0] as (typeof pages)[number];
    const records = await deps.history.progress(T, G, { first: job.batchSeq, last: job.batchSeq, jobId });
    expect(records[0]?.complete).toEqual(expect.any(String));
  });

  it('does not take a gone recipient whose removal failed for done: the redelivery meets its 410 again', async () => {
    const { deps, pages, removed } = await pagesOf([[message('a')]], { failures: { c5: [410, 410] } });
    const flaky = {
      ...deps,
      registry: {
        ...deps.registry,
        removeConnection: async () => {
          throw new Error('throttled');
        },
      },
    };
    await expect(deliverFanoutJobs(pages, false, flaky)).rejects.toBeInstanceOf(DeliveryFailedError);
    expect(await deliverFanoutJobs(pages, true, deps)).toEqual({ delivered: 0, gone: 1, failed: 0 });
    expect(removed).toEqual(['c5']);
  });

  it('names who got a page when someone was left out, and marks it complete once the redelivery reaches them', async () => {
    const { deps, pages, posts } = await pagesOf([[message('a')]], { failures: { c3: [500, 500, 500] } });
    await expect(deliverFanoutJobs(pages, false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    const { job, jobId } = pages[0] as (typeof pages)[number];
    const range = { first: job.batchSeq, last: job.batchSeq, jobId };
    const [partial] = await deps.history.progress(T, G, range);
    expect(partial?.complete).toBeUndefined();
    expect([...(partial?.done ?? [])].sort()).toEqual(
      many(12)
        .map((m) => m.connectionId)
        .filter((id) => id !== 'c3')
        .sort(),
    );
    const before = posts.length;
    expect(await deliverFanoutJobs(pages, true, deps)).toEqual({ delivered: 1, gone: 0, failed: 0 });
    expect(posts.slice(before).map(([c]) => c)).toEqual(['c3']);
    expect((await deps.history.progress(T, G, range))[0]?.complete).toEqual(expect.any(String));
    const after = posts.length;
    expect(await deliverFanoutJobs(pages, true, deps)).toEqual({ delivered: 0, gone: 0, failed: 0 });
    expect(posts.length).toBe(after);
  });

  it('does not take a page split again under the same id, with a member that joined since, for the completed one', async () => {
    // The run comes back after SQS's 5-minute deduplication (its third receive) and is split again; a member that
    // joined meanwhile is a recipient of the new body. Today the body's fingerprint is in its page id, so the new body
    // has an id of its own; a page queued by code from before that has the old id for both, which the progress
    // record still tells apart by the body. Its first receive leaves that member out.
    const env = setup({ members: many(12), splitThreshold: 10, pageSize: 20, shards: 1 });
    const run = [message('a')];
    await broadcastRun(run, false, env.deps);
    const [first] = env.jobs.splice(0);
    if (first === undefined) throw new Error('no page');
    await deliverFanoutJob(first.job, first.id, false, env.deps);
    env.members.push(member('c12'));
    await broadcastRun(run, true, env.deps);
    const [resplit] = env.jobs.splice(0);
    if (resplit === undefined) throw new Error('no page');
    expect(resplit.id).not.toBe(first.id);
    const again = { ...resplit, id: first.id };
    const failing = {
      ...env.deps,
      post: async (connectionId: string, data: string) => {
        if (connectionId === 'c12') throw new StatusError(500);
        return env.deps.post(connectionId, data);
      },
    };
    await expect(deliverFanoutJob(again.job, again.id, true, failing)).rejects.toBeInstanceOf(DeliveryFailedError);
    await deliverFanoutJob(again.job, again.id, true, env.deps);
    expect(env.received('c12')).toEqual([['a', 1]]);
  });

  it('fails the whole unit when a connection is left out, and its redelivery sends only that connection both pages', async () => {
    const { deps, pages, posts, received } = await pagesOf([[message('a')], [message('b')]], {
      failures: { c3: [500, 500, 500] },
    });
    await expect(deliverFanoutJobs(pages, false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    const before = posts.length;
    expect(await deliverFanoutJobs(pages, true, deps)).toEqual({ delivered: 1, gone: 0, failed: 0 });
    expect(posts.slice(before).map(([c]) => c)).toEqual(['c3']);
    for (const m of many(12))
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
  });

  it('on redelivery skips the pages a connection already completed and merges the rest', async () => {
    const { deps, pages, posts, received } = await pagesOf([[message('a')], [message('b')], [message('c')]], {
      failures: { c3: [500, 500, 500] },
    });
    const [first, ...later] = pages as [(typeof pages)[number], ...typeof pages];
    // The first page alone fails for c3; its redelivery arrives in one batch with the next two pages.
    await expect(deliverFanoutJobs([first], false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    const before = posts.length;
    await deliverFanoutJobs([first, ...later], true, deps);
    const retried = posts.slice(before);
    expect(retried.filter(([c]) => c === 'c3')).toHaveLength(1);
    // c0 got all three at the first attempt, read ahead from the log: the later pages send it nothing.
    expect(retried.filter(([c]) => c === 'c0')).toHaveLength(0);
    expect(received('c3')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(received('c0')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
  });

  it('delivers a single page as it is, like deliverFanoutJob', async () => {
    const { deps, pages, posts } = await pagesOf([[message('a'), message('b')]]);
    await deliverFanoutJobs(pages, false, deps);
    const page = pages[0]?.job;
    expect(posts.filter(([c]) => c === 'c0').map(([, f]) => f)).toEqual(page?.frames);
  });

  it('refuses pages of different groups, naming them', async () => {
    const { deps, pages } = await pagesOf([[message('a')]]);
    const other = pages.map(({ job, jobId }) => ({ job: { ...job, group: 'chat:other' }, jobId: `${jobId}-x` }));
    await expect(deliverFanoutJobs([...pages, ...other], false, deps)).rejects.toThrow(/chat:other/);
  });
});

describe('pack from the log: a lane reads the group history past its pages', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => member(`c${i}`));
  const lane = { splitThreshold: 10, pageSize: 20, shards: 1 };

  it('delivers everything sequenced after its page in one frame, and the later pages send those connections nothing', async () => {
    const { deps, jobs, posts, received } = setup({ members: many(12), ...lane });
    for (const id of ['a', 'b', 'c']) await broadcastRun([message(id)], false, deps);
    const [first, ...later] = jobs.map(({ job, id }) => ({ job, jobId: id }));
    expect(await deliverFanoutJobs([first as FanoutPage], false, deps)).toEqual({ delivered: 12, gone: 0, failed: 0 });
    expect(posts).toHaveLength(12);
    for (const page of later) await deliverFanoutJobs([page], false, deps);
    expect(posts).toHaveLength(12);
    for (const m of many(12)) {
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]);
    }
  });

  it('writes no record of its own for a page whose recipients the read-ahead record covers, and a redelivery repeats nothing', async () => {
    const { deps, jobs, posts, received } = setup({ members: many(12), ...lane });
    for (const id of ['a', 'b']) await broadcastRun([message(id)], false, deps);
    const [first, second] = jobs.map(({ job, id }) => ({ job, jobId: id })) as [FanoutPage, FanoutPage];
    await deliverFanoutJobs([first], false, deps);
    const range = { first: first.job.batchSeq, last: first.job.batchSeq, jobId: first.jobId };
    expect(await deps.history.progress(T, G, range)).toEqual([]);
    expect(await deliverFanoutJobs([first], true, deps)).toEqual({ delivered: 0, gone: 0, failed: 0 });
    expect(await deliverFanoutJobs([second], false, deps)).toEqual({ delivered: 0, gone: 0, failed: 0 });
    expect(posts).toHaveLength(12);
    for (const m of many(12)) {
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
    }
  });

  it('gives a connection left out of a unit that read ahead its page and the read-ahead on redelivery, and no one else', async () => {
    const { deps, jobs, posts, received } = setup({ members: many(12), ...lane, failures: { c3: [500, 500, 500] } });
    for (const id of ['a', 'b']) await broadcastRun([message(id)], false, deps);
    const [first] = jobs.map(({ job, id }) => ({ job, jobId: id })) as [FanoutPage];
    await expect(deliverFanoutJobs([first], false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    const before = posts.length;
    expect(await deliverFanoutJobs([first], true, deps)).toEqual({ delivered: 1, gone: 0, failed: 0 });
    expect(posts.slice(before).map(([c]) => c)).toEqual(['c3']);
    for (const m of many(12)) {
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
    }
  });

  it('keeps the record of a page the read-ahead did not get past (a unit out of lane order), so a redelivery repeats nothing', async () => {
    const { deps, jobs, posts } = setup({ members: many(12), ...lane, failures: { c3: [500, 500, 500] } });
    const viewers = { audience: { roles: ['member'] } };
    await broadcastRun([message('a')], false, deps);
    await broadcastRun([message('b')], false, deps);
    await broadcastRun([message('x', viewers)], false, deps);
    await broadcastRun([message('c', viewers)], false, deps);
    const pages = jobs.map(({ job, id }) => ({ job, jobId: id }));
    // The page of 'a' redriven from the DLQ behind the page of 'c': its read-ahead stops before 'x', short of 'c'.
    const unit = [pages[3], pages[0]] as FanoutPage[];
    await expect(deliverFanoutJobs(unit, false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    const before = posts.length;
    await deliverFanoutJobs(unit, true, deps);
    expect(posts.slice(before).map(([c]) => c)).toEqual(['c3']);
  });

  it("reads ahead only the seqs the group's counter covers: a run still assigning may give a seq to another message", async () => {
    const { deps, jobs, table, received } = setup({ members: many(12), ...lane });
    for (const id of ['a', 'b']) await broadcastRun([message(id)], false, deps);
    // A run in progress has put 'x' at seq 3 and not raised the counter yet; it then meets a seq left by a crashed
    // attempt, takes 'x' back, and seq 3 goes to 'c'.
    const pk = `T#${T}#G#${G}#H`;
    const sk = String(3).padStart(12, '0');
    table.put({ pk, sk, type: 'history', seq: 3, messageId: 'x', body: JSON.stringify({ ...message('x') }), ttl: 2e9 });
    const [first] = jobs.map(({ job, id }) => ({ job, jobId: id }));
    await deliverFanoutJobs([first as FanoutPage], false, deps);
    table.delete(pk, sk);
    await broadcastRun([message('c')], false, deps);
    for (const { job, id } of jobs.slice(1)) await deliverFanoutJobs([{ job, jobId: id }], false, deps);
    for (const m of many(12)) {
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]);
    }
  });

  it('gives a member that joined after the read-ahead its own pages, so nothing is lost or repeated', async () => {
    const { deps, jobs, members, received } = setup({ members: many(12), ...lane });
    await broadcastRun([message('a')], false, deps);
    await broadcastRun([message('b')], false, deps);
    members.push(member('late'));
    await broadcastRun([message('c')], false, deps);
    const pages = jobs.map(({ job, id }) => ({ job, jobId: id }));
    await deliverFanoutJobs(pages.slice(0, 1), false, deps);
    for (const page of pages.slice(1)) await deliverFanoutJobs([page], false, deps);
    expect(received('c0')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(received('late')).toEqual([['c', 3]]);
  });

  it('stops reading before a message with an audience, which its own page delivers', async () => {
    const { deps, jobs, received } = setup({
      members: [member('c0'), member('v', { roles: ['viewer'] }), ...many(11).slice(1)],
      ...lane,
    });
    await broadcastRun([message('a')], false, deps);
    await broadcastRun([message('b', { audience: { roles: ['member'] } })], false, deps);
    await broadcastRun([message('c')], false, deps);
    for (const { job, id } of jobs) await deliverFanoutJobs([{ job, jobId: id }], false, deps);
    expect(received('c0')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(received('v')).toEqual([
      ['a', 1],
      ['c', 3],
    ]);
  });

  it('records who got the read-ahead, so a failed connection gets it from the redelivered pages', async () => {
    const { deps, jobs, received } = setup({ members: many(12), ...lane, failures: { c5: [500, 500, 500] } });
    for (const id of ['a', 'b']) await broadcastRun([message(id)], false, deps);
    const [first, second] = jobs.map(({ job, id }) => ({ job, jobId: id })) as [FanoutPage, FanoutPage];
    await expect(deliverFanoutJobs([first], false, deps)).rejects.toBeInstanceOf(DeliveryFailedError);
    await deliverFanoutJobs([first, second], true, deps);
    for (const m of many(12)) {
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
    }
  });

  it('keeps a redelivered run of a small group on the direct path, however old its messages are', async () => {
    const { deps, jobs, received, advance } = setup({ members: many(3), failures: { c1: [500, 500, 500] } });
    const backlogged = { ...deps, backlogMs: 250, laneMembers: 125 };
    const now = 1_700_000_000_000;
    const run = [message('a', { ts: now }), message('b', { ts: now })];
    await expect(broadcastRun(run, false, backlogged)).rejects.toBeInstanceOf(DeliveryFailedError);
    advance(30_000);
    expect(await broadcastRun(run, true, backlogged)).toMatchObject({ split: false, delivered: 1 });
    expect(jobs).toEqual([]);
    for (const m of many(3)) {
      expect(received(m.connectionId)).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
    }
  });

  it('sends a small group with a backlog through one lane, kept for the split period', async () => {
    const { deps, jobs, posts } = setup({ members: many(12) });
    const backlogged = { ...deps, backlogMs: 250, laneMembers: 125 };
    const old = 1_700_000_000_000 - 1000;
    expect(await broadcastRun([message('a', { ts: old })], false, backlogged)).toMatchObject({ split: true });
    expect(await broadcastRun([message('b')], false, backlogged)).toMatchObject({ split: true });
    expect(posts).toEqual([]);
    expect(new Set(jobs.map(({ shard }) => shard))).toEqual(new Set([0]));
    expect(jobs.every(({ job }) => job.lane === 0 && job.lastSeq === job.batchSeq)).toBe(true);
  });
});

describe('abandonReplay', () => {
  it('tells a member still waiting to reload at the group’s seq and ends its wait, even when the reset cannot be posted', async () => {
    const { deps, received, replayed } = setup({ members: [member('c1')], failures: { gone: [500, 500, 500, 500] } });
    await broadcastRun([message('a'), message('b')], false, deps);
    await abandonReplay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 0 }, deps);
    expect(received('late')).toEqual([['reset', 2]]);
    await abandonReplay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'gone', since: 0 }, deps);
    expect(received('gone')).toEqual([]);
    expect(replayed).toEqual(['late', 'gone']);
  });

  it('ends by itself a wait overdue past every receive its request could have had: a reset, then live delivery', async () => {
    const stuck = member('stuck', { replayFrom: 0, replayAt: 1_700_000_000_000 - REPLAY_WAIT_MS - 1 });
    const fresh = member('fresh', { replayFrom: 0, replayAt: 1_700_000_000_000 - 1000 });
    const { deps, received, replayed } = setup({ members: [member('c1'), stuck, fresh] });
    await broadcastRun([message('a'), message('b')], false, deps);
    // The stuck member is told to reload at the group's seq, then gets the run live; the fresh one still waits.
    expect(received('stuck')).toEqual([
      ['reset', 2],
      ['a', 1],
      ['b', 2],
    ]);
    expect(received('fresh')).toEqual([]);
    expect(replayed).toEqual(['stuck']);
  });

  it('leaves alone a member no longer waiting for that replay', async () => {
    const { deps, posts, replayed } = setup({ notAwaitingReplay: ['moved-on'] });
    await abandonReplay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'moved-on', since: 0 }, deps);
    expect(posts).toEqual([]);
    expect(replayed).toEqual([]);
  });
});

describe('replay', () => {
  it('sends the member what history holds after since, then lets live delivery include it', async () => {
    const { deps, received, replayed } = setup({ members: [member('c1')] });
    await broadcastRun([message('a'), message('b'), message('c')], false, deps);
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 1 }, deps);
    expect(received('late')).toEqual([
      ['b', 2],
      ['c', 3],
    ]);
    expect(replayed).toEqual(['late']);
  });

  it('sends a reset with the current seq when history after since has expired', async () => {
    const { deps, received, advance } = setup({ members: [member('c1')] });
    await broadcastRun([message('a'), message('b')], false, deps);
    advance(25 * 3600_000);
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 0 }, deps);
    expect(received('late')).toEqual([['reset', 2]]);
  });

  it('applies the audience with the roles the subscriber had', async () => {
    const { deps, received } = setup();
    await broadcastRun([message('a'), message('secret', { audience: { roles: ['admin'] } })], false, deps);
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'm', since: 0, roles: ['member'] }, deps);
    expect(received('m')).toEqual([['a', 1]]);
  });

  it('sends a reset instead of more than limits.replayMessages messages', async () => {
    const { deps, received, replayed, posts } = setup({ members: [member('c1')] });
    const n = limits.replayMessages + 1;
    for (let i = 0; i < n; i += 10) {
      await broadcastRun(
        Array.from({ length: Math.min(10, n - i) }, (_, k) => message(`m${i + k}`)),
        false,
        deps,
      );
    }
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 0 }, deps);
    expect(received('late')).toEqual([['reset', n]]);
    expect(JSON.parse(posts.filter(([c]) => c === 'late')[0]?.[1] ?? '{}')).toMatchObject({
      reason: 'HISTORY_TOO_LONG',
    });
    expect(replayed).toEqual(['late']);
    // One message fewer behind is replayed in full.
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'later', since: 1 }, deps);
    expect(received('later')).toHaveLength(n - 1);
  });

  it('sends a reset instead of more than limits.replayFrames frames', async () => {
    const { deps, received, posts } = setup({ members: [member('c1')] });
    const big = 'x'.repeat(15_000);
    // Two 15 KB messages per 32 KB frame: replayFrames + 1 frames' worth.
    const count = 2 * (limits.replayFrames + 1);
    for (let i = 0; i < count; i += 10) {
      const run = Array.from({ length: Math.min(10, count - i) }, (_, k) => message(`b${i + k}`, { data: big }));
      await broadcastRun(run, false, deps);
    }
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 0 }, deps);
    expect(received('late')).toEqual([['reset', count]]);
    expect(JSON.parse(posts.filter(([c]) => c === 'late')[0]?.[1] ?? '{}')).toMatchObject({
      reason: 'HISTORY_TOO_LONG',
    });
  });

  it('reads no more of a long history of large messages than its frames could replay, and resets', async () => {
    const { deps, received, table } = setup({ members: [member('c1')] });
    const big = 'x'.repeat(15_000);
    const count = 300; // 4.5 MB of messages: over four times what limits.replayFrames frames hold
    for (let i = 0; i < count; i += 10) {
      const run = Array.from({ length: 10 }, (_, k) => message(`h${i + k}`, { data: big }));
      await broadcastRun(run, false, deps);
    }
    let bytesRead = 0;
    const counting = {
      send: async (command: { constructor: { name: string } }) => {
        const out = (await table.client.send(command as never)) as { Items?: Record<string, unknown>[] };
        if (command.constructor.name === 'QueryCommand') {
          for (const item of out.Items ?? []) bytesRead += String(item.body ?? '').length;
        }
        return out;
      },
    } as unknown as FakeTable['client'];
    const history = new GroupHistory({ client: counting, tableName: 'test', now: () => 1_700_000_000_000 });
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 0 }, { ...deps, history });
    expect(received('late')).toEqual([['reset', count]]);
    // The bound is the frames' bytes; a read stops at most a page past it (DynamoDB's pages hold at most 1 MB).
    expect(bytesRead).toBeLessThanOrEqual(2 * limits.replayFrames * limits.frameBytes);
  });

  it('ends a replay the time left cannot finish with a reset, and completes it, rather than failing it', async () => {
    const { deps, posts, replayed } = setup({ members: [member('c1')] });
    const big = 'x'.repeat(15_000);
    for (let i = 0; i < 6; i += 3) {
      await broadcastRun(
        Array.from({ length: 3 }, (_, k) => message(`t${i + k}`, { data: big })),
        false,
        deps,
      );
    }
    let left = 10_000;
    const slow = {
      ...deps,
      remainingMs: () => left,
      post: async (connectionId: string, data: string) => {
        await deps.post(connectionId, data);
        left -= 4_000; // each post takes 4 s of the invocation
      },
    };
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'late', since: 0 }, slow);
    const frames = posts
      .filter(([c]) => c === 'late')
      .map(([, d]) => JSON.parse(d) as { type: string; reason?: string });
    expect(frames.map((f) => f.type)).toEqual(['batch', 'batch', 'reset']);
    expect(frames.at(-1)).toMatchObject({ reason: 'HISTORY_TOO_LONG', seq: 6 });
    expect(replayed).toEqual(['late']);
  });

  it('sends nothing to a member that left before its replay ran', async () => {
    const { deps, posts, replayed } = setup({ members: [member('c1')], notAwaitingReplay: ['left'] });
    await broadcastRun([message('a'), message('b')], false, deps);
    const before = posts.length;
    const result = await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'left', since: 0 }, deps);
    expect(posts.length).toBe(before);
    expect(result).toEqual({ delivered: 0, gone: 0, failed: 0 });
    expect(replayed).toEqual([]);
  });

  it('completes the replay even when there is nothing to send', async () => {
    const { deps, posts, replayed } = setup();
    await replay({ v: 1, kind: 'replay', tenantId: T, group: G, connectionId: 'new', since: 0 }, deps);
    expect(posts).toEqual([]);
    expect(replayed).toEqual(['new']);
  });
});

describe('replay of an entity feed, judged under rules (Audience.rules)', () => {
  const E = 'entity:task';
  const judged = (id: string, rules: string) => message(id, { group: E, audience: { roles: ['member'], rules } });
  const replayE: ReplayRequest = {
    v: 1,
    kind: 'replay',
    tenantId: T,
    group: E,
    connectionId: 'late',
    since: 0,
    roles: ['member'],
  };

  it('replays history judged under the rules in force', async () => {
    const { deps, received } = setup();
    await broadcastRun([judged('a', 'r1'), judged('b', 'r1')], false, deps);
    const asked: string[] = [];
    const feedRules = async (tenantId: string, entity: string) => {
      asked.push(`${tenantId}/${entity}`);
      return 'r1';
    };
    await replay(replayE, { ...deps, feedRules });
    expect(received('late')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(asked).toEqual([`${T}/task`]);
  });

  it('sends a reset (RULES_CHANGED) at the current seq when any of it was judged under other rules', async () => {
    const { deps, received, posts } = setup();
    await broadcastRun([judged('a', 'r0'), judged('b', 'r1')], false, deps);
    await replay(replayE, { ...deps, feedRules: async () => 'r1' });
    expect(received('late')).toEqual([['reset', 2]]);
    expect(JSON.parse(posts[0]?.[1] as string)).toMatchObject({ type: 'reset', group: E, reason: 'RULES_CHANGED' });
  });

  it('sends a reset for history with no fingerprint in an entity feed (sequenced before fingerprints)', async () => {
    const { deps, received } = setup();
    await broadcastRun([judged('a', 'r1'), message('old', { group: E, audience: { roles: ['member'] } })], false, deps);
    await replay(replayE, { ...deps, feedRules: async () => 'r1' });
    expect(received('late')).toEqual([['reset', 2]]);
  });

  it('sends a reset when nobody reads the entity any more, or no port tells the rules (closed by default)', async () => {
    const { deps, received } = setup();
    await broadcastRun([judged('a', 'r1')], false, deps);
    await replay(replayE, { ...deps, feedRules: async () => undefined });
    await replay({ ...replayE, connectionId: 'other' }, deps);
    expect([received('late'), received('other')]).toEqual([[['reset', 1]], [['reset', 1]]]);
  });
});

describe('user groups', () => {
  it("reach every connection of the user, subscribed or not, once, and keep a subscriber's replay mark", async () => {
    const bob = (id: string, extra: Partial<Member> = {}) => member(id, { userId: 'bob', ...extra });
    const { deps } = setup({
      members: [bob('subscribed'), bob('replaying', { replayFrom: 3 })],
      userConnections: { bob: [bob('subscribed'), bob('replaying'), bob('phone'), bob('laptop')] },
    });
    const members = await allMembers(deps, T, 'user:bob');
    expect(members.map((m) => [m.connectionId, m.replayFrom])).toEqual([
      ['subscribed', undefined],
      ['replaying', 3],
      ['phone', undefined],
      ['laptop', undefined],
    ]);
  });

  it('are delivered through broadcastRun like any group', async () => {
    const { deps, received } = setup({ userConnections: { bob: [member('phone', { userId: 'bob' })] } });
    await broadcastRun([message('hi', { group: 'user:bob' })], false, deps);
    expect(received('phone')).toEqual([['hi', 1]]);
  });

  it('other groups never look up user connections', async () => {
    const { deps } = setup({ members: [member('c1')], userConnections: { general: [member('intruder')] } });
    expect((await allMembers(deps, T, 'chat:general')).map((m) => m.connectionId)).toEqual(['c1']);
  });
});

describe('member lists between runs (a member cache)', () => {
  it('reads the members once while the membership version stays the same', async () => {
    const { deps, membership, received } = setup({ members: [member('c1'), member('c2')], memberCache: true });
    await broadcastRun([message('a')], false, deps);
    await broadcastRun([message('b')], false, deps);
    await broadcastRun([message('c')], false, deps);
    expect(membership.listings).toBe(1);
    // A list kept under a version is read consistently, so it holds every change acknowledged before the version.
    expect(membership.consistentListings).toBe(1);
    expect(received('c2')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
  });

  it('reads them again after the version moved, so a new member gets the next run and a leaver does not', async () => {
    const { deps, membership, members, received } = setup({
      members: [member('c1'), member('old')],
      memberCache: true,
    });
    await broadcastRun([message('a')], false, deps);
    members.push(member('new'));
    members.splice(
      members.findIndex((m) => m.connectionId === 'old'),
      1,
    );
    membership.version++;
    await broadcastRun([message('b')], false, deps);
    expect(membership.listings).toBe(2);
    expect(received('new')).toEqual([['b', 2]]);
    expect(received('old')).toEqual([['a', 1]]);
    expect(received('c1')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('does not post to a kept member whose membership expired since the list was read', async () => {
    const start = 1_700_000_000_000;
    const { deps, advance, received } = setup({
      members: [member('c1', { ttl: start / 1000 + 10 }), member('c2', { ttl: start / 1000 + 3600 })],
      memberCache: true,
    });
    await broadcastRun([message('a')], false, deps);
    // Within the cache's maximum age (30 s), so the kept list is used.
    advance(11_000);
    await broadcastRun([message('b')], false, deps);
    expect(received('c1')).toEqual([['a', 1]]);
    expect(received('c2')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('keeps a list under the version read before it, so a change racing the read is picked up (by the run itself, then by the next)', async () => {
    let race: (() => void) | undefined;
    const { deps, members, membership, received } = setup({
      members: [member('c1')],
      memberCache: true,
      afterListing: () => race?.(),
    });
    race = () => {
      race = undefined;
      members.push(member('new'));
      membership.version++;
    };
    await broadcastRun([message('a')], false, deps);
    // The run found the version moved once its counter was raised, and caught the new member up.
    expect(received('new')).toEqual([['a', 1]]);
    await broadcastRun([message('b')], false, deps);
    expect(received('new')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(received('c1')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it.each([
    ['kept', true],
    ['not kept', false],
  ])(
    "delivers a subscriber every message after its ack's seq when it subscribes right after a run listed the members (lists %s)",
    async (_, memberCache) => {
      // The subscribe route: member item, version raise, then the group's seq for the ack (lambdas/core/routes.ts).
      let ack: Promise<number> | undefined;
      let race: (() => void) | undefined;
      const { deps, members, membership, received } = setup({
        members: [member('c1')],
        memberCache,
        afterListing: () => race?.(),
      });
      race = () => {
        race = undefined;
        members.push(member('new'));
        membership.version++;
        ack = deps.history.state(T, G).then((s) => s.seq);
      };
      const { seqs } = await broadcastRun([message('a'), message('b')], false, deps);
      const acked = await ack;
      expect(acked).toBeDefined();
      const due = seqs.filter((seq) => seq > (acked ?? Number.POSITIVE_INFINITY));
      expect(received('new').map(([, seq]) => seq)).toEqual(due);
    },
  );

  it.each([
    ['kept', true],
    ['not kept', false],
  ])(
    'delivers a run to a subscriber acknowledged after the run wrote its history but before it raised the counter (lists %s)',
    async (_, memberCache) => {
      let ack: number | undefined;
      let joined: (() => Promise<void>) | undefined;
      const { deps, members, membership, received } = setup({
        members: [member('c1')],
        memberCache,
        beforeCounterRaise: () => (joined as () => Promise<void>)(),
      });
      joined = async () => {
        members.push(member('new'));
        membership.version++;
        ack = (await deps.history.state(T, G)).seq;
      };
      const { seqs } = await broadcastRun([message('a'), message('b')], false, deps);
      expect(ack).toBe(0);
      expect(seqs).toEqual([1, 2]);
      expect(received('new')).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
    },
  );

  it('queues pages of their own for members who joined a split group between its list and its counter raise', async () => {
    let joined: (() => Promise<void>) | undefined;
    const many = Array.from({ length: 12 }, (_, i) => member(`c${i}`));
    const { deps, members, membership, jobs } = setup({
      members: many,
      memberCache: true,
      splitThreshold: 10,
      shards: 2,
      beforeCounterRaise: () => (joined as () => Promise<void>)(),
    });
    joined = async () => {
      members.push(member('new'));
      membership.version++;
    };
    await broadcastRun([message('a')], false, deps);
    const recipients = jobs.flatMap(({ job }) => Object.keys(job.recipients));
    expect(recipients.filter((id) => id === 'new')).toHaveLength(1);
    expect(recipients).toHaveLength(13);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
  });

  it('reads the members consistently when it keeps no lists, so a subscribe acknowledged before the read is in it', async () => {
    const { deps, membership } = setup({ members: [member('c1')] });
    await broadcastRun([message('a')], false, deps);
    expect(membership).toMatchObject({ listings: 1, consistentListings: 1 });
  });

  it('reads the membership version again once the run has its seqs, so a subscribe acknowledged before them is found', async () => {
    const order: string[] = [];
    const { deps } = setup({ members: [member('c1')], memberCache: true });
    const history = deps.history;
    const traced: BroadcastDeps = {
      ...deps,
      history: Object.assign(Object.create(history) as typeof history, {
        assign: async (...args: Parameters<typeof history.assign>) => {
          const out = await history.assign(...args);
          order.push('seqs');
          return out;
        },
      }),
      registry: {
        ...deps.registry,
        membershipVersion: async (tenantId: string, group: string) => {
          order.push('version');
          return deps.registry.membershipVersion(tenantId, group);
        },
      },
    };
    await broadcastRun([message('a')], false, traced);
    expect(order.slice(order.indexOf('seqs'))).toEqual(['seqs', 'version']);
  });

  it('reads the members again once a kept list is 30 s old, even if the version did not move', async () => {
    const { deps, membership, advance } = setup({ members: [member('c1')], memberCache: true });
    await broadcastRun([message('a')], false, deps);
    advance(29_000);
    await broadcastRun([message('b')], false, deps);
    expect(membership.listings).toBe(1);
    advance(1_000);
    await broadcastRun([message('c')], false, deps);
    expect(membership.listings).toBe(2);
  });

  it('always reads a user group, whose connections of the user carry no version', async () => {
    const { deps, membership } = setup({
      userConnections: { bob: [member('phone', { userId: 'bob' })] },
      memberCache: true,
    });
    await broadcastRun([message('a', { group: 'user:bob' })], false, deps);
    await broadcastRun([message('b', { group: 'user:bob' })], false, deps);
    expect(membership.listings).toBe(2);
  });

  it('reads the members on every run without a cache', async () => {
    const { deps, membership } = setup({ members: [member('c1')] });
    await broadcastRun([message('a')], false, deps);
    await broadcastRun([message('b')], false, deps);
    expect(membership.listings).toBe(2);
  });
});
