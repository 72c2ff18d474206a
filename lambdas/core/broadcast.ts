/**
 * The delivery engine (docs/delivery.md): sequences a group's messages, keeps them in history, and sends each
 * member its frames, directly or, for a large group, through the fan-out queue. Pure: every port is passed in.
 *
 * Ordering: the delivery queue is FIFO with one message group per tenant and group, so one run of a group is
 * processed at a time, in order. Dedupe: progress records say which connections got which seqs, so a redelivered
 * run (after a failure or a crash) skips them.
 */
import { createHash } from 'node:crypto';
import { limits, queues } from '../manifest.ts';
import { type BackoffOptions, withBackoff } from './backoff.ts';
import { settleConcurrently } from './concurrency.ts';
import type { DeliveryMessage, FanoutJob, ReplayRequest, SequencedMessage } from './delivery.ts';
import {
  messagesFor,
  type PlanOptions,
  packFrames,
  planDelivery,
  type Recipient,
  repackFrames,
} from './delivery-plan.ts';
import { judgedUnderOtherRules } from './entities/feed-rules.ts';
import { fitJob, pageJob } from './fanout-pages.ts';
import type { GroupHistory } from './history.ts';
import { deferLagging, type LaggingDeps, type LeftOut, replayNotTaken, resendReplay } from './lagging.ts';
import type { MemberCache } from './member-cache.ts';
import type { NotReading } from './not-reading.ts';
import { USER_GROUP_PREFIX } from './permissions.ts';
import type { ResetFrame } from './protocol.ts';
import type { Member, Registry } from './registry.ts';

export interface BroadcastDeps {
  readonly history: Pick<
    GroupHistory,
    | 'state'
    | 'assign'
    | 'read'
    | 'markSplit'
    | 'addProgress'
    | 'progress'
    | 'readAfter'
    | 'addAhead'
    | 'ahead'
    | 'heldInLane'
    | 'holdInLane'
    | 'releaseInLane'
  >;
  readonly registry: Pick<
    Registry,
    'members' | 'membershipVersion' | 'removeConnection' | 'replayState' | 'completeReplay' | 'connectionsOfUser'
  >;
  /**
   * Member lists kept between runs, used while the group's membership version (`registry.membershipVersion`) is
   * the one they were read at (lambdas/core/member-cache.ts). @default none: every run reads the members
   */
  readonly memberCache?: MemberCache;
  /** PostToConnection. */
  readonly post: (connectionId: string, data: string) => Promise<void>;
  /** 410 Gone. */
  readonly isGone: (err: unknown) => boolean;
  /** 429, 5xx, throttling: worth another try. */
  readonly isRetryable: (err: unknown) => boolean;
  /** Sends fan-out jobs (a large group's pages) to the fan-out queue. */
  readonly enqueueFanout: (jobs: readonly { job: FanoutJob; shard: number; id: string }[]) => Promise<void>;
  /** Groups with more members than this are split into pages for the fan-out queue. @default 500 */
  readonly splitThreshold?: number;
  /** Members per fan-out page. @default splitThreshold */
  readonly pageSize?: number;
  /** Parallel fan-out lanes (FIFO message groups) of a split group. @default 8 */
  readonly shards?: number;
  /** How long a group stays on the split path after it last used it. @default 15 minutes */
  readonly stickySplitMs?: number;
  /**
   * A run whose oldest message waited longer than this in the queue (a backlog) takes the split path too, whatever
   * the group's size: its lanes then pack from the log (docs/delivery.md). @default off
   */
  readonly backlogMs?: number;
  /**
   * Members per lane when a split period starts: lanes = ceil(members / laneMembers), at most `shards`, kept for the
   * period. @default every split group gets `shards` lanes
   */
  readonly laneMembers?: number;
  /** Most messages a lane reads from the log past its pages in one unit. @default 500 */
  readonly readAheadMax?: number;
  /** Packing and coalescing (both on unless turned off, for measuring the naive pattern). */
  readonly plan?: PlanOptions;
  /** Posts in flight at once. @default DELIVERY_CONCURRENCY (64) */
  readonly concurrency?: number;
  readonly backoff?: Omit<BackoffOptions, 'isRetryable'>;
  /** @default Date.now */
  readonly now?: () => number;
  /**
   * Time left in this invocation (Lambda's `getRemainingTimeInMillis`). Connections not started when less than
   * `stopBeforeMs` is left are left for the redelivery (progress records what was done), instead of the function
   * timing out mid-post and the redelivery sending everything again. @default no limit
   */
  readonly remainingMs?: () => number;
  /** @default 5000 */
  readonly stopBeforeMs?: number;
  /**
   * The fingerprint of the rules an entity's live feed is judged under now (lambdas/core/entities/feed-rules.ts),
   * undefined when nobody reads it: a replay of messages judged under other rules is a `reset` (`RULES_CHANGED`).
   * Omitted: every such message counts as judged under other rules (closed by default).
   */
  readonly feedRules?: (tenantId: string, entity: string) => Promise<string | undefined>;
  /**
   * Connections left out as not reading and owed best effort only, by group (lambdas/core/not-reading.ts): while
   * remembered, a 429 to them in their group's live posts is not retried. Omitted: every post gets the backoff's.
   */
  readonly notReading?: NotReading;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
  /**
   * Members whose client does not take its frames (posts still throttled after the retries) are put on a replay wait
   * and the run goes on; a replay they do not take is queued again, and a connection that lags too long is closed
   * (lambdas/core/lagging.ts). @default none: such a member fails the run, which SQS gives back
   */
  readonly lagging?: LaggingDeps;
  /** What happens to each post, for metrics (the handler turns these into EMF). @default none */
  readonly observe?: (event: DeliveryEvent) => void;
}

/**
 * What the engine reports as it delivers. `latencyMs` is publish→post of the oldest message in the posted frame
 * (`now - ts`); replays report none (their messages come from history, not from a live publish).
 */
export type DeliveryEvent =
  | {
      readonly type: 'posted';
      readonly tenantId: string;
      readonly messages: number;
      readonly latencyMs: number | undefined;
    }
  | { readonly type: 'gone'; readonly tenantId: string }
  /** A post answered 429, 5xx or throttling: it is retried with backoff (and fails after the last attempt). */
  | { readonly type: 'retryable'; readonly tenantId: string; readonly error: unknown }
  /** A connection left out after every attempt: the run fails and SQS redelivers it. */
  | { readonly type: 'failed'; readonly tenantId: string };

/**
 * How `deliverFrames` reports to `deps.observe`: the tenant, and whether the frames are live (latency measured); and
 * the group of live frames, whose connections owed best effort only it posts without retrying a 429 (`notReading`).
 */
export interface ObserveContext {
  readonly tenantId: string;
  readonly live: boolean;
  readonly group?: string;
}

/** Messages in a frame and the publish time (`ts`) of its oldest one; a reset frame has none. */
export function framePublishTimes(frame: string): { readonly messages: number; readonly oldestTs: number | undefined } {
  let parsed: { type?: unknown; ts?: unknown; messages?: unknown };
  try {
    parsed = JSON.parse(frame) as typeof parsed;
  } catch {
    return { messages: 0, oldestTs: undefined };
  }
  const all = parsed.type === 'batch' && Array.isArray(parsed.messages) ? (parsed.messages as unknown[]) : [parsed];
  const times = all
    .map((m) => (m as { type?: unknown; ts?: unknown }).ts)
    .filter((ts): ts is number => typeof ts === 'number');
  return { messages: times.length, oldestTs: times.length === 0 ? undefined : Math.min(...times) };
}

/** The highest `seq` of the messages in a frame; none for a frame without messages (a `reset` carries the group's). */
export function frameLastSeq(frame: string): number | undefined {
  let parsed: { type?: unknown; seq?: unknown; messages?: unknown };
  try {
    parsed = JSON.parse(frame) as typeof parsed;
  } catch {
    return undefined;
  }
  if (parsed.type !== 'message' && parsed.type !== 'batch') return undefined;
  const all = Array.isArray(parsed.messages) ? (parsed.messages as { seq?: unknown }[]) : [parsed];
  const seqs = all.map((m) => m.seq).filter((seq): seq is number => typeof seq === 'number');
  return seqs.length === 0 ? undefined : Math.max(...seqs);
}

export interface DeliveryResult {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
  /** Members left out because their client did not take the frames, put on a replay wait (lagging.ts). */
  readonly deferred?: number;
}

/** Too little of the invocation is left to start another connection: it is left for the redelivery. */
export class OutOfTimeError extends Error {
  override readonly name = 'OutOfTimeError';
  constructor(stopBeforeMs: number) {
    super(`less than ${stopBeforeMs} ms left in this invocation; the rest is left for the redelivery`);
  }
}

export class DeliveryFailedError extends Error {
  override readonly name = 'DeliveryFailedError';
  constructor(
    readonly result: DeliveryResult,
    readonly firstCause: unknown,
    /** Why each connection left out failed (the first is `firstCause`). */
    readonly causes: readonly unknown[] = [firstCause],
  ) {
    super(`delivery failed for ${result.failed} connection(s); ${result.delivered} delivered, ${result.gone} gone`);
  }
}

/**
 * Posts one delivering invocation keeps in flight. In Lambda a post costs ~1.4 ms of CPU at 1 GB and ~20 ms of round
 * trip, so ~15 in flight already keep the invocation CPU-bound; 64 leave room for slower round trips, and on the
 * 2-core bench machine they let the posting and the local gateway batch their work: at 1000 members × 100 msg/s, 5–10 %
 * more frames and p99 475–515 ms against 503–541 ms with 32 (scratch, 3 alternations, 2026-12-03; 16: 544–609 ms).
 * The API's request quota is shared per account, and a lane's posts per second stay bound by its CPU, not by this.
 */
export const DELIVERY_CONCURRENCY = 64;

/** Room left in a fan-out message for what SQS counts besides the job's JSON (no attributes are sent). */
const FANOUT_ENVELOPE_BYTES = 1024;

/**
 * Each connection's lane hash, kept for the sandbox's life: a split group's runs meet the same members again and
 * again, and one SHA-256 per member per run cost ~1.5 µs each (scratch, 2026-12-02: ~305 ms of CPU per run of a
 * 100,000-member group, ~133 ms with this). Bounded in two generations of `LANE_HASHES_MAX` ids (~10 MB each): when
 * the newer one is full it becomes the older one, and a hash found only in the older one is carried over, so ids
 * seen on every run stay however many others pass through.
 */
const LANE_HASHES_MAX = 100_000;
let laneHashes = new Map<string, number>();
let olderLaneHashes = new Map<string, number>();

function laneHash(connectionId: string): number {
  let hash = laneHashes.get(connectionId);
  if (hash !== undefined) return hash;
  hash = olderLaneHashes.get(connectionId) ?? createHash('sha256').update(connectionId).digest().readUInt32BE(0);
  if (laneHashes.size >= LANE_HASHES_MAX) {
    olderLaneHashes = laneHashes;
    laneHashes = new Map();
  }
  laneHashes.set(connectionId, hash);
  return hash;
}

/** Stable lane of a connection within a split group, so its pages of successive runs stay in one FIFO group. */
export function shardOf(connectionId: string, shards: number): number {
  return laneHash(connectionId) % shards;
}

/**
 * The group's members. A `user:<id>` group also reaches every connection of user `<id>`, subscribed or not (found
 * through gsi1); a connection that did subscribe keeps its membership item (and so its replay mark).
 */
export async function allMembers(
  deps: Pick<BroadcastDeps, 'registry'>,
  tenantId: string,
  group: string,
  options: { readonly consistent?: boolean } = {},
): Promise<Member[]> {
  const members: Member[] = [];
  for await (const page of deps.registry.members(tenantId, group, options)) members.push(...page);
  if (!group.startsWith(USER_GROUP_PREFIX)) return members;
  const userId = group.slice(USER_GROUP_PREFIX.length);
  const subscribed = new Set(members.map((m) => m.connectionId));
  for (const connection of await deps.registry.connectionsOfUser(tenantId, userId)) {
    if (!subscribed.has(connection.connectionId)) members.push(connection);
  }
  return members;
}

/**
 * How long a member may wait for its replay before live delivery gives up on it: past every receive its request can
 * have (and a margin), it was served or dead-lettered. A dead-lettered request's last receive ends the wait itself
 * (`abandonReplay`), unless no invocation ever saw that receive: SQS counts a receive a throttled function never got.
 */
export const REPLAY_WAIT_MS = (queues.delivery.maxReceiveCount * queues.delivery.visibilityTimeoutSeconds + 300) * 1000;

/** A member waiting for a replay for longer than REPLAY_WAIT_MS. */
const overdue = (m: Member, now: number) =>
  m.replayFrom !== undefined && m.replayAt !== undefined && now - m.replayAt > REPLAY_WAIT_MS;

/**
 * Members a live run delivers to: one waiting for its replay gets the run from history instead (docs/delivery.md,
 * "Recovery"), unless its wait is overdue (`endOverdueWaits`).
 */
function liveOnly(members: readonly Member[], now: number): Member[] {
  return members.filter((m) => m.replayFrom === undefined || overdue(m, now));
}

/**
 * Ends the overdue replay waits among `members` (a reset, as `abandonReplay` sends): until review a replay request
 * dead-lettered with no invocation seeing its last receive left its member deaf to the group for good.
 */
async function endOverdueWaits(
  members: readonly Member[],
  now: number,
  tenantId: string,
  group: string,
  deps: BroadcastDeps,
): Promise<void> {
  for (const m of members) {
    if (!overdue(m, now)) continue;
    deps.log?.('replay wait overdue: ended', { tenantId, group, connectionId: m.connectionId, since: m.replayFrom });
    const request = { v: 1, kind: 'replay', tenantId, group, connectionId: m.connectionId, since: m.replayFrom };
    await abandonReplay(request as ReplayRequest, deps);
  }
}

/** A run's member list and the group's membership version read before it. */
export interface MemberList {
  readonly members: Member[];
  readonly version: number;
}

/**
 * The group's members for a run: from `deps.memberCache` while the group's membership version is the one they were
 * read at, else read (after the version, so the list is at least as new as the version it is kept under). A
 * `user:` group's connections of the user are not versioned (they come from an index), so those groups are always
 * read; the version is read for every group, for `joinedSince`.
 */
export async function currentMembers(
  deps: Pick<BroadcastDeps, 'registry' | 'memberCache'>,
  tenantId: string,
  group: string,
): Promise<MemberList> {
  const cache = deps.memberCache;
  const version = await deps.registry.membershipVersion(tenantId, group);
  const cacheable = cache !== undefined && !group.startsWith(USER_GROUP_PREFIX);
  const held = cacheable ? cache.get(tenantId, group, version) : undefined;
  if (held !== undefined) return { members: held, version };
  // Consistent: an eventually consistent read could miss a change acknowledged before the version read, and the
  // list would then be kept without it until the next change.
  const members = await allMembers(deps, tenantId, group, { consistent: true });
  if (cacheable) cache.set(tenantId, group, version, members);
  return { members, version };
}

/**
 * Members who joined after `listed` was read, for a run whose seqs are now readable (its counter raised). A subscribe
 * writes its member item and raises the membership version before it reads the counter for its ack. The run read its
 * list beside its sequencing, so a subscribe landing between that read and the counter raise has an ack below the
 * run's seqs and is not in the list; its version raise came before the raise, so the version read after the raise
 * shows it, and those members are read and returned. Usually the version has not moved: one GetItem, read while the
 * run delivers to the others. (Until 2026-12-03 such a subscriber missed the run's messages.)
 */
export async function joinedSince(
  deps: Pick<BroadcastDeps, 'registry' | 'memberCache'>,
  tenantId: string,
  group: string,
  listed: MemberList,
): Promise<Member[]> {
  if ((await deps.registry.membershipVersion(tenantId, group)) === listed.version) return [];
  const known = new Set(listed.members.map((m) => m.connectionId));
  const { members } = await currentMembers(deps, tenantId, group);
  return members.filter((m) => !known.has(m.connectionId));
}

/**
 * Posts each connection its frames in order, retrying throttles and 5xx with full-jitter backoff, removing gone
 * connections, and recording who got everything. Throws DeliveryFailedError when anyone is left out.
 */
export async function deliverFrames(
  plan: ReadonlyMap<string, readonly string[]>,
  deps: BroadcastDeps,
  record: (connectionIds: readonly string[], goneIds: readonly string[]) => Promise<void>,
  observed?: ObserveContext,
  defer?: (leftOut: readonly LeftOut[]) => Promise<ReadonlySet<string>>,
): Promise<DeliveryResult> {
  let delivered = 0;
  let gone = 0;
  let failed = 0;
  let deferred = 0;
  let firstCause: unknown;
  const causes: unknown[] = [];
  const done: string[] = [];
  const goneIds: string[] = [];
  const observe = observed === undefined ? undefined : deps.observe;
  const now = deps.now ?? Date.now;
  const frameInfo = new Map<string, ReturnType<typeof framePublishTimes>>();
  const post = async (connectionId: string, frame: string) => {
    if (observe === undefined || observed === undefined) return deps.post(connectionId, frame);
    try {
      await deps.post(connectionId, frame);
    } catch (err) {
      if (deps.isRetryable(err)) observe({ type: 'retryable', tenantId: observed.tenantId, error: err });
      throw err;
    }
    let info = frameInfo.get(frame);
    if (info === undefined) {
      info = framePublishTimes(frame);
      frameInfo.set(frame, info);
    }
    const latencyMs = observed.live && info.oldestTs !== undefined ? Math.max(0, now() - info.oldestTs) : undefined;
    observe({ type: 'posted', tenantId: observed.tenantId, messages: info.messages, latencyMs });
  };
  // A live connection of the group remembered as not reading and owed best effort only: a 429 is not retried.
  const bestEffort = (connectionId: string) =>
    observed?.live === true &&
    observed.group !== undefined &&
    deps.notReading?.has(observed.tenantId, observed.group, connectionId) === true;
  const retryableUnlessThrottled = (err: unknown) => deps.isRetryable(err) && deps.lagging?.isThrottled(err) !== true;
  const stopBeforeMs = deps.stopBeforeMs ?? 5000;
  const entries = [...plan];
  const results = await settleConcurrently(
    entries,
    deps.concurrency ?? DELIVERY_CONCURRENCY,
    async ([connectionId, frames]) => {
      if (deps.remainingMs !== undefined && deps.remainingMs() < stopBeforeMs) throw new OutOfTimeError(stopBeforeMs);
      try {
        const once = bestEffort(connectionId);
        for (const frame of frames) {
          await withBackoff(() => post(connectionId, frame), {
            ...deps.backoff,
            isRetryable: once ? retryableUnlessThrottled : deps.isRetryable,
          });
        }
        if (once && observed?.group !== undefined)
          deps.notReading?.delete(observed.tenantId, observed.group, connectionId);
        done.push(connectionId);
        return 'delivered' as const;
      } catch (err) {
        if (!deps.isGone(err)) throw err;
        // Remembered: its `$disconnect`, finding no membership left, announces its presence `leave`s from that.
        await deps.registry.removeConnection(connectionId, { remember: true });
        goneIds.push(connectionId);
        deps.log?.('removed gone connection', { connectionId });
        if (observed !== undefined) observe?.({ type: 'gone', tenantId: observed.tenantId });
        return 'gone' as const;
      }
    },
  );
  // Who got everything is recorded first: a deferral that fails fails the run, whose redelivery skips them.
  await record(done, goneIds);
  // Left out after every retry: `defer` may take some off the run (a client that does not read: lagging.ts).
  const leftOut = results.flatMap((result, i) =>
    result.status === 'rejected' ? [{ connectionId: entries[i]?.[0] as string, cause: result.reason }] : [],
  );
  const excused = defer === undefined || leftOut.length === 0 ? new Set<string>() : await defer(leftOut);
  for (const [i, result] of results.entries()) {
    if (result.status === 'fulfilled') {
      if (result.value === 'delivered') delivered++;
      else gone++;
    } else if (excused.has(entries[i]?.[0] as string)) {
      deferred++;
    } else {
      failed++;
      firstCause ??= result.reason;
      causes.push(result.reason);
      if (observed !== undefined) observe?.({ type: 'failed', tenantId: observed.tenantId });
    }
  }
  const result = { delivered, gone, failed, ...(deferred > 0 && { deferred }) };
  if (failed > 0) throw new DeliveryFailedError(result, firstCause, causes);
  return result;
}

/**
 * Posts a replay makes: `timed`, stopping when the invocation's time runs short. A replay holds its group's stream
 * while it posts, so where a client that does not take it is queued again (`lagging`), a post gets one retry, not
 * three: each refused pass of such a client held every live message of the group behind ~0.2 s of backoff (an
 * attacking pass measured 10 sleepers of 20 members putting the others' p50 at ~1 s).
 */
const replayDeps = (deps: BroadcastDeps, timed: boolean): BroadcastDeps => ({
  ...deps,
  ...(!timed && { remainingMs: undefined }),
  ...(deps.lagging !== undefined && { backoff: { ...deps.backoff, attempts: REPLAY_POST_ATTEMPTS } }),
});
const REPLAY_POST_ATTEMPTS = 2;

/** The lagging ports, with the engine's clock and log where they have none of their own. */
const withEngineDefaults = (lagging: LaggingDeps, deps: BroadcastDeps): LaggingDeps => ({
  ...lagging,
  now: lagging.now ?? deps.now,
  log: lagging.log ?? deps.log,
  notReading: lagging.notReading ?? deps.notReading,
});

/** One run of consecutive published messages of one group, in queue order. */
export async function broadcastRun(
  run: readonly DeliveryMessage[],
  redelivered: boolean,
  deps: BroadcastDeps,
): Promise<DeliveryResult & { readonly seqs: readonly number[]; readonly split: boolean }> {
  const head = run[0];
  if (head === undefined) return { delivered: 0, gone: 0, failed: 0, seqs: [], split: false };
  const { tenantId, group } = head;
  const now = (deps.now ?? Date.now)();
  // Sequencing and the member list are independent reads: one round trip less on every run. A member who joined in
  // between is caught up once the counter is raised (`joinedSince`), while the others are delivered to.
  const reading = deps.history.state(tenantId, group);
  const [state, messages, listed] = await Promise.all([
    reading,
    reading.then((s) => deps.history.assign(run, s, { redelivered })),
    currentMembers(deps, tenantId, group),
  ]);
  const joining = joinedSince(deps, tenantId, group, listed);
  // Awaited on every path, so its failure fails the run (redelivered: nothing is lost) and is never left unhandled.
  joining.catch(() => undefined);
  const seqs = messages.map((m) => m.seq);
  const range = { first: Math.min(...seqs), last: Math.max(...seqs) };
  await endOverdueWaits(listed.members, now, tenantId, group, deps);
  const members = liveOnly(listed.members, now);
  const threshold = deps.splitThreshold ?? 500;

  const splitting = state.splitUntil > now;
  const oldest = Math.min(...run.map((m) => m.ts));
  // A redelivered run stays on the path its first attempt took (its progress records are for that path): its
  // messages are old by now, which is no backlog of the group.
  const backlogged = !redelivered && deps.backlogMs !== undefined && now - oldest > deps.backlogMs;
  if (members.length > threshold || splitting || backlogged) {
    const shards = deps.shards ?? 8;
    // A connection's lane must not change while its earlier pages may still be queued: lanes are kept per period.
    const lanes = splitting
      ? (state.lanes ?? shards)
      : deps.laneMembers === undefined
        ? shards
        : Math.min(shards, Math.max(1, Math.ceil(members.length / deps.laneMembers)));
    // Marked before the pages go, so a redelivery after a crash in between takes the split path again. The period
    // is extended at most once a minute (one write, not one per run), and always when it starts.
    const sticky = deps.stickySplitMs ?? 15 * 60_000;
    if (!splitting || state.splitUntil - now < sticky - 60_000 || state.lanes !== lanes) {
      await deps.history.markSplit(tenantId, group, now + sticky, lanes);
    }
    await splitRun(messages, members, range, lanes, deps);
    const joiners = liveOnly(await joining, now);
    // Their own pages: each page id carries its body's fingerprint, so these never collide with the pages above.
    if (joiners.length > 0) await splitRun(messages, joiners, range, lanes, deps);
    return { delivered: 0, gone: 0, failed: 0, seqs, split: true };
  }

  const lagging = deps.lagging;
  const deliver = async (to: readonly Member[]) => {
    const planned = planDelivery(messages, to, undefined, deps.plan);
    const { plan, after } = redelivered
      ? await withoutDelivered(planned, messages, to, range, deps)
      : { plan: planned, after: new Map<string, number>() };
    // A member an earlier attempt of the run reached waits from the first seq it still needs (until 2026-12-05 from
    // the run's first: its replay repeated what it had, found by CI under injected 429s and 500s).
    const since = (connectionId: string) => after.get(connectionId) ?? range.first - 1;
    const defer =
      lagging === undefined
        ? undefined
        : (leftOut: readonly LeftOut[]) =>
            deferLagging(leftOut, to, { tenantId, group, since }, withEngineDefaults(lagging, deps));
    return deliverFrames(
      plan,
      deps,
      (ids) => deps.history.addProgress(tenantId, group, range, ids),
      { tenantId, group, live: true },
      defer,
    );
  };
  const result = await deliver(members);
  const joiners = liveOnly(await joining, now);
  if (joiners.length === 0) return { ...result, seqs, split: false };
  const late = await deliver(joiners);
  const deferred = (result.deferred ?? 0) + (late.deferred ?? 0);
  return {
    delivered: result.delivered + late.delivered,
    gone: result.gone + late.gone,
    failed: result.failed + late.failed,
    ...(deferred > 0 && { deferred }),
    seqs,
    split: false,
  };
}

/**
 * Drops, per connection, the seqs earlier attempts already delivered to it; `after` holds, for each connection an
 * earlier attempt reached, the seq before the first one it still needs (where a wait for a replay starts: lagging.ts).
 */
async function withoutDelivered(
  plan: Map<string, string[]>,
  messages: readonly SequencedMessage[],
  members: readonly Member[],
  range: { first: number; last: number },
  deps: BroadcastDeps,
): Promise<{ plan: Map<string, string[]>; after: Map<string, number> }> {
  const after = new Map<string, number>();
  const head = messages[0];
  if (head === undefined) return { plan, after };
  const records = await deps.history.progress(head.tenantId, head.group, range);
  if (records.length === 0) return { plan, after };
  const byId = new Map(members.map((m) => [m.connectionId, m]));
  const out = new Map<string, string[]>();
  for (const [connectionId, frames] of plan) {
    const covered = records.filter((r) => r.done.has(connectionId));
    if (covered.length === 0) {
      out.set(connectionId, frames);
      continue;
    }
    const member = byId.get(connectionId);
    if (member === undefined) continue;
    const left = messages.filter((m) => !covered.some((r) => m.seq >= r.first && m.seq <= r.last));
    const rest = packFrames(messagesFor(left, member, deps.plan), undefined, deps.plan);
    if (rest.length > 0) out.set(connectionId, rest);
    const first = left[0];
    if (first !== undefined) after.set(connectionId, first.seq - 1);
  }
  return { plan: out, after };
}

/** Splits a run into fan-out jobs: one lane per shard (of `shards`), pages of at most `pageSize` members. */
async function splitRun(
  messages: readonly SequencedMessage[],
  members: readonly Member[],
  range: { first: number; last: number },
  shards: number,
  deps: BroadcastDeps,
): Promise<void> {
  const head = messages[0];
  if (head === undefined) return;
  const pageSize = deps.pageSize ?? deps.splitThreshold ?? 500;
  const plan = planDelivery(messages, members, undefined, deps.plan);
  const groupKey = createHash('sha256').update(`${head.tenantId}#${head.group}`).digest('base64url').slice(0, 22);
  const lanes = new Map<number, [string, string[]][]>();
  for (const entry of plan) {
    const shard = shardOf(entry[0], shards);
    const lane = lanes.get(shard) ?? [];
    lane.push(entry);
    lanes.set(shard, lane);
  }
  const jobs: { job: FanoutJob; shard: number; id: string }[] = [];
  const jobHead = { tenantId: head.tenantId, group: head.group, batchSeq: range.first, lastSeq: range.last };
  for (const [shard, entries] of [...lanes].sort((a, b) => a[0] - b[0])) {
    for (let page = 0; page * pageSize < entries.length; page++) {
      const job = pageJob({ ...jobHead, lane: shard }, entries.slice(page * pageSize, (page + 1) * pageSize));
      // A page too big for one SQS message goes as consecutive parts of its lane (lambdas/core/fanout-pages.ts);
      // every part but the last says more follow, so the lane does not read ahead between them.
      const parts = fitJob(job, limits.queueMessageBytes - FANOUT_ENVELOPE_BYTES);
      // The body's fingerprint is in the id: a redelivered run lists the members again, and if they changed (a leave,
      // a 410) its pages shift, so a page id the queue accepted before stands for another body; without it SQS's
      // deduplication would drop the new body and a member moved into that page would miss the run.
      const id = `${groupKey}-${range.first}-${range.last}-${shard}-${page}-${pageFingerprint(job)}`;
      for (const [n, part] of parts.entries()) {
        const more = n < parts.length - 1 ? { continued: true } : {};
        jobs.push({ shard, id: parts.length === 1 ? id : `${id}-${n}`, job: { ...part, ...more } });
      }
    }
  }
  await deps.enqueueFanout(jobs);
}

/** One page of a split group, from the fan-out queue. `jobId` identifies it across redeliveries. */
export function deliverFanoutJob(
  job: FanoutJob,
  jobId: string,
  redelivered: boolean,
  deps: BroadcastDeps,
): Promise<DeliveryResult> {
  return deliverFanoutJobs([{ job, jobId }], redelivered, deps);
}

/** A fan-out page and the id that identifies it across redeliveries (its progress key). */
export interface FanoutPage {
  readonly job: FanoutJob;
  readonly jobId: string;
}

/**
 * Consecutive pages of one lane (same tenant, group and shard; from one fan-out batch), delivered as one unit:
 * each connection gets the messages of all its pages, in page order, re-packed into as few frames as possible
 * (`repackFrames`), so under load a backlog of pages becomes fewer, fuller frames. Each page keeps its own
 * progress record (`J#<jobId>`): a connection that got all its frames is recorded under every page it is in (a page
 * nobody was left out of, by its body's fingerprint instead of the ids), and a redelivery skips, per page, the
 * connections that page lists as done. Throws DeliveryFailedError when anyone is left out, so the caller fails every
 * page of the unit together.
 */
export async function deliverFanoutJobs(
  pages: readonly FanoutPage[],
  redelivered: boolean,
  deps: BroadcastDeps,
): Promise<DeliveryResult> {
  const head = pages[0]?.job;
  if (head === undefined) return { delivered: 0, gone: 0, failed: 0 };
  const unit = laneUnit(pages);
  const { tenantId, group } = unit;
  const lagging = deps.lagging;
  const lane = head.lane;
  const [done, ahead, held] = await Promise.all([
    redelivered ? pagesDone(unit, deps) : pages.map(() => new Set<string>()),
    readAhead(pages, deps),
    lagging === undefined || lane === undefined ? new Set<string>() : deps.history.heldInLane(tenantId, group, lane),
  ]);
  const readers = ahead.frames.length === 0 ? new Set<string>() : new Set(Object.keys(ahead.lastJob.recipients));
  // Connections the lane holds back: their client did not take a page, and they get what they miss from a replay, in
  // order (lagging.ts); a later page posted to them first could overtake it. Skipped while their member waits.
  const skipped =
    held.size === 0 || lagging === undefined || lane === undefined
      ? new Set<string>()
      : await stillHeld(held, pages, readers, { tenantId, group, lane }, deps, lagging);
  const { needs, plan } = planUnit(pages, { done, skipped, ahead, readers }, deps.plan);
  const record = unitRecorder(unit, { done, ahead, readers, plan }, deps);
  const defer =
    lagging === undefined || lane === undefined
      ? undefined
      : (leftOut: readonly LeftOut[]) => {
          // The seq before the first page the connection needed here (an earlier one of its pages may be among them:
          // it gets it again, and drops it by seq), but not below its floor: an earlier unit's read-ahead gave it
          // everything through that (until 2026-12-05 its replay repeated those seqs).
          const since = (connectionId: string) =>
            Math.max(
              Math.min(
                ...(needs.get(connectionId) ?? []).map(({ page }) => (pages[page] as FanoutPage).job.batchSeq),
                ahead.lastJob.batchSeq,
              ) - 1,
              ahead.floors.get(connectionId) ?? 0,
            );
          return deferInLane(leftOut, { tenantId, group, lane, since }, deps, lagging);
        };
  return deliverFrames(plan, deps, record, { tenantId, group, live: true }, defer);
}

/** A lane's unit: its pages, of one tenant and group, each with its progress range and (hashed once) fingerprint. */
interface LaneUnit {
  readonly pages: readonly FanoutPage[];
  readonly tenantId: string;
  readonly group: string;
  readonly ranges: readonly { readonly first: number; readonly last: number; readonly jobId: string }[];
  /** The unit's read-ahead record is its own, named by its last page (`addAhead`). */
  readonly unitId: string;
  /** A page body's fingerprint, hashed when first needed (a redelivery reads it, the record writes it). */
  readonly fingerprintOf: (page: number) => string;
}

function laneUnit(pages: readonly FanoutPage[]): LaneUnit {
  const { tenantId, group } = (pages[0] as FanoutPage).job;
  const strays = pages.filter(({ job }) => job.tenantId !== tenantId || job.group !== group);
  if (strays.length > 0) {
    const given = strays.map(({ job, jobId }) => `${jobId} (${job.tenantId}/${job.group})`).join(', ');
    throw new Error(
      `fan-out pages delivered together must be of one tenant and group (${tenantId}/${group}); got ${given}`,
    );
  }
  const fingerprints: (string | undefined)[] = [];
  return {
    pages,
    tenantId,
    group,
    ranges: pages.map(({ job, jobId }) => ({ first: job.batchSeq, last: job.batchSeq, jobId })),
    unitId: (pages.at(-1) as FanoutPage).jobId,
    fingerprintOf: (page) => (fingerprints[page] ??= pageFingerprint((pages[page] as FanoutPage).job)),
  };
}

/** Per page of a redelivered unit, the connections its progress records say got it. */
function pagesDone(unit: LaneUnit, deps: BroadcastDeps): Promise<Set<string>[]> {
  const { tenantId, group, pages, fingerprintOf } = unit;
  return Promise.all(
    unit.ranges.map(async (range, page) => {
      const records = await deps.history.progress(tenantId, group, range);
      // A complete record of this very page body names nobody: every recipient of it got it.
      const job = (pages[page] as FanoutPage).job;
      if (records.some((r) => r.complete !== undefined && r.complete === fingerprintOf(page))) {
        return new Set(Object.keys(job.recipients));
      }
      return new Set(records.flatMap((r) => [...r.done]));
    }),
  );
}

/** Per connection, the pages of a unit it still needs (page index, frame indexes), in page order. */
type Needs = Map<string, { page: number; indexes: readonly number[] }[]>;

/**
 * What a lane's unit posts to each connection: the frames of the pages it still needs (not `done`, not `skipped`),
 * and for the last page's recipients (`readers`) what the unit read ahead, re-packed past each one's floor. Pure.
 */
function planUnit(
  pages: readonly FanoutPage[],
  state: {
    readonly done: readonly ReadonlySet<string>[];
    readonly skipped: ReadonlySet<string>;
    readonly ahead: ReadAhead;
    readonly readers: ReadonlySet<string>;
  },
  options: BroadcastDeps['plan'],
): { needs: Needs; plan: Map<string, string[]> } {
  const { done, skipped, ahead, readers } = state;
  const needs: Needs = new Map();
  for (const [page, { job }] of pages.entries()) {
    for (const [connectionId, indexes] of Object.entries(job.recipients)) {
      if (done[page]?.has(connectionId) || skipped.has(connectionId)) continue;
      const own = needs.get(connectionId) ?? [];
      own.push({ page, indexes });
      needs.set(connectionId, own);
    }
  }
  for (const connectionId of readers) {
    if (!needs.has(connectionId) && !skipped.has(connectionId)) needs.set(connectionId, []);
  }
  // Connections needing the same frames of the same pages share one re-packing (usually everyone does).
  const shared = new Map<string, string[]>();
  const plan = new Map<string, string[]>();
  for (const [connectionId, own] of needs) {
    const after = ahead.floors.get(connectionId) ?? 0;
    const reads = readers.has(connectionId);
    const key = `${own.map(({ page, indexes }) => `${page}:${indexes.join(',')}`).join(';')}|${after}|${reads}`;
    let frames = shared.get(key);
    if (frames === undefined) {
      const separate = own.flatMap(({ page, indexes }) => indexes.map((i) => pages[page]?.job.frames[i] ?? ''));
      if (reads) separate.push(...ahead.frames);
      // One page's frames are packed already; only frames of several pages (or the log's) are packed again.
      frames = own.length > 1 || reads || after > 0 ? repackFrames(separate, undefined, options, after) : separate;
      shared.set(key, frames);
    }
    if (frames.length > 0) plan.set(connectionId, frames);
  }
  return { needs, plan };
}

/**
 * Records who got a lane unit's frames (`deliverFrames`' `record`): a progress record per page (a fingerprint where
 * nobody of the page was left out, none where the read-ahead record covers everyone it reached), and the unit's
 * read-ahead record.
 */
function unitRecorder(
  unit: LaneUnit,
  state: {
    readonly done: readonly ReadonlySet<string>[];
    readonly ahead: ReadAhead;
    readonly readers: ReadonlySet<string>;
    readonly plan: ReadonlyMap<string, readonly string[]>;
  },
  deps: BroadcastDeps,
): (connectionIds: readonly string[], goneIds: readonly string[]) => Promise<void> {
  const { tenantId, group, pages, ranges, unitId, fingerprintOf } = unit;
  const { done, ahead, readers, plan } = state;
  return async (connectionIds, goneIds) => {
    const got = new Set(connectionIds);
    const gone = new Set(goneIds);
    // Who the read-ahead record says has everything through its seq, past every page of the unit.
    const aheadDone = new Set(
      ahead.frames.length === 0 ? [] : [...readers].filter((id) => got.has(id) || !plan.has(id)),
    );
    await Promise.all([
      ...pages.map(({ job }, page) => {
        const ids = connectionIds.filter((id) => Object.hasOwn(job.recipients, id));
        // Everyone the page reached now is in the read-ahead record, whose seq is past the page's: its floors already
        // make a redelivery skip the page for them, so the page needs no record of its own. (A unit out of lane
        // order, a page redriven from the DLQ behind a later one, can read ahead less far than a page's seq.)
        const covered = job.lastSeq !== undefined && ahead.through >= job.lastSeq;
        if (covered && ids.length > 0 && ids.every((id) => aheadDone.has(id))) return undefined;
        // Nobody of the page left out (got it now or earlier, had nothing left to get, or is gone): a record of the
        // page body's fingerprint instead of the ids. Written only when someone of the page got something now.
        const complete = Object.keys(job.recipients).every(
          (id) => got.has(id) || gone.has(id) || done[page]?.has(id) === true || !plan.has(id),
        );
        const range = ranges[page] as (typeof ranges)[number];
        return deps.history.addProgress(tenantId, group, range, ids, complete ? fingerprintOf(page) : undefined);
      }),
      ahead.frames.length === 0
        ? undefined
        : deps.history.addAhead(tenantId, group, ahead.lane, ahead.through, [...aheadDone], unitId),
    ]);
  };
}

/**
 * A lane unit's connections whose client takes no page: held back by the lane, their members put on a replay wait
 * (`deferLagging`). Returns those the unit no longer owes: deferred, or no member any more.
 */
async function deferInLane(
  leftOut: readonly LeftOut[],
  where: {
    readonly tenantId: string;
    readonly group: string;
    readonly lane: number;
    readonly since: (connectionId: string) => number;
  },
  deps: BroadcastDeps,
  lagging: LaggingDeps,
): Promise<ReadonlySet<string>> {
  const { tenantId, group, lane, since } = where;
  const read = await Promise.all(leftOut.map((l) => lagging.registry.member(tenantId, group, l.connectionId)));
  const members = read.filter((m): m is Member => m !== undefined);
  // A member that left meanwhile (an unsubscribe, its ttl) is owed nothing more, and a `user:` group's connection that
  // never subscribed is owed its frames best effort only (lagging.ts, `deferLagging`): the unit does not fail for
  // either (until review the second still failed every unit of the lane, as it had failed the broadcaster's runs).
  const left = leftOut
    .filter((l, i) => read[i] === undefined && lagging.isThrottled(l.cause))
    .map((l) => l.connectionId);
  if (left.length > 0 && group.startsWith(USER_GROUP_PREFIX)) {
    deps.log?.('client not reading, with no membership of its user group (never subscribed, or left): unit not sent', {
      tenantId,
      group,
      lane,
      connectionIds: left,
    });
    for (const connectionId of left) deps.notReading?.add(tenantId, group, connectionId);
  }
  const hold = (connectionId: string) => deps.history.holdInLane(tenantId, group, lane, connectionId);
  const deferred = await deferLagging(
    leftOut,
    members,
    { tenantId, group, since, hold },
    withEngineDefaults(lagging, deps),
  );
  return new Set([...deferred, ...left]);
}

/** Held connections not in a lane unit that it checks at most (to release those gone): the rest in later units. */
const HELD_CLEANUPS_PER_UNIT = 16;
/** How old a held member's wait is before a lane unit sends its replay request again (`resendReplay`), ms. */
const RESEND_AFTER_MS = 10_000;

/**
 * Of the connections lane `lane` holds back, those whose member still waits for a replay (consistent reads): the
 * unit skips them, and sends their replay request again (`resendReplay`). The others are released: their replay
 * came, or they left (a sleeper closed, a disconnect, another split period's lanes). Every held connection in the unit
 * is checked, and up to `HELD_CLEANUPS_PER_UNIT` others (until review only those in the unit were, and the others stayed
 * held for good, the item growing toward DynamoDB's 400 KB).
 */
async function stillHeld(
  held: ReadonlySet<string>,
  pages: readonly FanoutPage[],
  readers: ReadonlySet<string>,
  where: { readonly tenantId: string; readonly group: string; readonly lane: number },
  deps: BroadcastDeps,
  lagging: LaggingDeps,
): Promise<Set<string>> {
  const { tenantId, group, lane } = where;
  const inUnit = (id: string) => readers.has(id) || pages.some(({ job }) => Object.hasOwn(job.recipients, id));
  const checked = [
    ...[...held].filter(inUnit),
    ...[...held].filter((id) => !inUnit(id)).slice(0, HELD_CLEANUPS_PER_UNIT),
  ];
  const members = await Promise.all(checked.map((id) => lagging.registry.member(tenantId, group, id)));
  const waiting = members.filter((m): m is Member => m?.replayFrom !== undefined);
  // Only a wait past RESEND_AFTER_MS may have lost its request (a send that failed after the hold); best effort, as
  // the unit's own work does not depend on it.
  const now = (deps.now ?? Date.now)();
  const stale = waiting.filter((m) => now - (m.replayAt ?? 0) > RESEND_AFTER_MS);
  await settleConcurrently(stale, 4, async (member) => {
    try {
      await resendReplay(tenantId, group, member, lagging);
    } catch (err) {
      deps.log?.('held member: replay request not sent again', { tenantId, group, lane, error: String(err) });
    }
  });
  const still = new Set(waiting.map((m) => m.connectionId));
  await deps.history.releaseInLane(
    tenantId,
    group,
    lane,
    checked.filter((id) => !still.has(id)),
  );
  return still;
}

/**
 * A fan-out page body's fingerprint (its frames and recipients): a progress record marks a page complete under it,
 * so a later body of the same page id (the run split again, with other members) is not taken for the one recorded.
 */
function pageFingerprint(job: FanoutJob): string {
  return createHash('sha256')
    .update(JSON.stringify([job.frames, job.recipients]))
    .digest('base64url')
    .slice(0, 22);
}

/** What a lane's unit reads from the log past its pages, and what earlier units of the lane read ahead. */
interface ReadAhead {
  /** Per connection, the seq through which an earlier unit of the lane already delivered everything. */
  readonly floors: ReadonlyMap<string, number>;
  /** Frames of the messages after the last page's run (no audience), for the last page's recipients. */
  readonly frames: readonly string[];
  readonly lastJob: FanoutJob;
  readonly lane: number;
  /** Seq of the last message read ahead. */
  readonly through: number;
}

/**
 * Pack from the log (docs/delivery.md): a lane's unit delivers, with its pages, every message the group's history
 * holds after its last page's run (up to `readAheadMax`, stopping before a message with an audience, which needs
 * each member's roles and claims), to that page's recipients; later pages skip what they got (`floors`). Pages
 * without a lane or last seq (sent before this existed), a page with more parts to come, and the naive pattern
 * (packing off) read nothing ahead.
 */
async function readAhead(pages: readonly FanoutPage[], deps: BroadcastDeps): Promise<ReadAhead> {
  const lastJob = (pages.at(-1) as FanoutPage).job;
  const { tenantId, group, lane, lastSeq } = lastJob;
  const none = { floors: new Map<string, number>(), frames: [], lastJob, lane: lane ?? 0, through: 0 };
  if (lane === undefined || lastSeq === undefined || deps.plan?.packing === false) return none;
  const first = Math.min(...pages.map(({ job }) => job.batchSeq));
  const [records, after] = await Promise.all([
    deps.history.ahead(tenantId, group, lane, first),
    lastJob.continued === true
      ? []
      : // Only seqs the group's counter covers, read first: their runs are done. Above it a run may still be assigning,
        // and one that meets a seq left by a crashed attempt takes its other puts back and gives their seqs to other
        // messages (history.ts, `appendAll`): read ahead there, a lane could record a connection as having a seq it
        // then never gets.
        deps.history
          .state(tenantId, group)
          .then((state) => deps.history.readAfter(tenantId, group, lastSeq, deps.readAheadMax ?? 500, state.seq)),
  ]);
  const floors = new Map<string, number>();
  for (const { through, done } of records) {
    for (const id of done) floors.set(id, Math.max(floors.get(id) ?? 0, through));
  }
  const stop = after.findIndex((m) => m.audience !== undefined);
  const messages = stop === -1 ? after : after.slice(0, stop);
  const through = messages.at(-1)?.seq ?? 0;
  const frames = packFrames(messagesFor(messages, { roles: [], claims: {} }, deps.plan), undefined, deps.plan);
  return { floors, frames, lastJob, lane, through };
}

/**
 * A `subscribe` with `since`, in order with the group's live messages: replay what history holds after `since`, then
 * let live delivery include the member. Bounded (`limits.replayMessages`, `limits.replayFrames`, and the invocation's
 * time, checked before each frame): a member further behind, or one whose replay the time left cannot finish, gets a
 * `reset` to the group's seq instead (`HISTORY_TOO_LONG`; `HISTORY_EXPIRED` when part of the history is gone) and
 * reloads, live messages following. Until 2026-12-03 a replay read and posted all of it: a `since: 0` on a long
 * history ran the broadcaster past its timeout, again on every redelivery, held the group's queue and left the member
 * waiting for a replay that went to the DLQ.
 */
export async function replay(
  request: ReplayRequest & { roles?: readonly string[]; claims?: Readonly<Record<string, unknown>> },
  deps: BroadcastDeps,
): Promise<DeliveryResult> {
  const { tenantId, group, connectionId, since } = request;
  // While the request waited in the queue the member may have left (a frame now would arrive after its unsubscribe was
  // acknowledged), or subscribed again (that subscribe's own request, or live delivery, serves it). A `user:` group
  // reaches its user's connections subscribed or not, so one that left is still owed what it missed.
  const state = await deps.registry.replayState(tenantId, group, connectionId, since);
  if (state === 'taken' || (state === 'gone' && !group.startsWith(USER_GROUP_PREFIX))) {
    deps.log?.('replay skipped: no membership waits for it', { tenantId, group, connectionId, since, state });
    return { delivered: 0, gone: 0, failed: 0 };
  }
  // Read no further than what could be replayed: more message bytes than `replayFrames` full frames hold is a reset.
  const maxBytes = limits.replayFrames * limits.frameBytes;
  const history = await deps.history.read(tenantId, group, since, limits.replayMessages, maxBytes);
  const reset = (reason: ResetFrame['reason']) => JSON.stringify({ type: 'reset', group, reason, seq: history.seq });
  let frames: string[];
  if (history.kind !== 'ok') frames = [reset(history.kind === 'expired' ? 'HISTORY_EXPIRED' : 'HISTORY_TOO_LONG')];
  else if (await judgedUnderOtherRules(tenantId, group, history.messages, deps)) frames = [reset('RULES_CHANGED')];
  else {
    const member = { roles: request.roles ?? [], claims: request.claims ?? {} };
    frames = packFrames(messagesFor(history.messages, member, deps.plan), undefined, deps.plan);
  }
  if (frames.length > limits.replayFrames) frames = [reset('HISTORY_TOO_LONG')];
  const total = { delivered: 0, gone: 0, failed: 0 };
  // The seq through which the client has had everything after `since`: a replay it takes part of goes on from there.
  let through = since;
  const post = async (frame: string, timed: boolean): Promise<DeliveryResult | undefined> => {
    try {
      return await deliverFrames(new Map([[connectionId, [frame]]]), replayDeps(deps, timed), async () => undefined, {
        tenantId,
        live: false,
      });
    } catch (err) {
      if (!(err instanceof DeliveryFailedError && deps.lagging?.isThrottled(err.firstCause) === true)) throw err;
      // Its client takes no more: queued again behind the group's later messages (or closed), not given back to SQS to
      // hold the group (lagging.ts).
      await replayNotTaken(request, err.firstCause, withEngineDefaults(deps.lagging, deps), through);
      return undefined;
    }
  };
  for (const frame of frames) {
    let result: DeliveryResult | undefined;
    let cut = false;
    try {
      result = await post(frame, true);
    } catch (err) {
      if (!(err instanceof DeliveryFailedError && err.firstCause instanceof OutOfTimeError)) throw err;
      // Out of time part way: the member reloads from the group's seq rather than the replay failing (and starting
      // over on every redelivery).
      deps.log?.('replay cut short: out of time', { tenantId, group, connectionId, since });
      result = await post(reset('HISTORY_TOO_LONG'), false);
      cut = true;
    }
    if (result === undefined) return total;
    total.delivered = Math.max(total.delivered, result.delivered);
    total.gone += result.gone;
    if (cut || result.gone > 0) break;
    through = Math.max(through, frameLastSeq(frame) ?? through);
  }
  await deps.registry.completeReplay(tenantId, group, connectionId, since);
  return total;
}

/**
 * A replay that will not be served: it failed for good, or on its queue record's last receive (the record then goes
 * to the dead-letter queue). The member is told to reload (`reset`, `REPLAY_FAILED`, at the group's seq; best effort:
 * its posts may be what failed) and its wait ends, so live delivery includes it again; a client that does not read
 * (the reset refused with a 429) is closed instead, and resumes with `since`. Until 2026-12-04 the wait
 * stayed: a member whose replay request was dead-lettered got no live message for the rest of its membership (found
 * by an attacking pass).
 */
export async function abandonReplay(request: ReplayRequest, deps: BroadcastDeps): Promise<void> {
  const { tenantId, group, connectionId, since } = request;
  if ((await deps.registry.replayState(tenantId, group, connectionId, since)) !== 'waiting') return;
  try {
    const { seq } = await deps.history.state(tenantId, group);
    const reset = JSON.stringify({ type: 'reset', group, reason: 'REPLAY_FAILED', seq });
    await deliverFrames(
      new Map([[connectionId, [reset]]]),
      { ...deps, remainingMs: undefined },
      async () => undefined,
      {
        tenantId,
        live: false,
      },
    );
  } catch (err) {
    deps.log?.('replay reset not posted', { tenantId, group, connectionId, since, error: String(err) });
    // A client that does not read takes no reset either: ending its wait would put it back on live delivery with a gap
    // it cannot see. Closed instead, it resumes with `since` (lagging.ts).
    const cause = err instanceof DeliveryFailedError ? err.firstCause : err;
    if (deps.lagging?.isThrottled(cause) === true) {
      try {
        await deps.lagging.close(connectionId);
        deps.log?.('replay abandoned: client not reading, connection closed', { tenantId, group, connectionId, since });
        return;
      } catch (closeErr) {
        // The wait stays (no gap opened): the connection's `$disconnect`, or the next overdue check, ends it.
        deps.log?.('connection not closed', { tenantId, group, connectionId, error: String(closeErr) });
        return;
      }
    }
  }
  await deps.registry.completeReplay(tenantId, group, connectionId, since);
}

export type { Recipient };
