/**
 * The delivery engine (docs/delivery.md): sequences a group's messages, keeps them in history, and sends each
 * member its frames, directly or, for a large group, through the fan-out queue. Pure: every port is passed in.
 *
 * Ordering: the delivery queue is FIFO with one message group per tenant and group, so one run of a group is
 * processed at a time, in order. Dedupe: progress records say which connections got which seqs, so a redelivered
 * run (after a failure or a crash) skips them.
 */
import { createHash } from 'node:crypto';
import { limits } from '../manifest.ts';
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
import { fitJob, pageJob } from './fanout-pages.ts';
import type { GroupHistory } from './history.ts';
import type { Member, Registry } from './registry.ts';

export interface BroadcastDeps {
  readonly history: Pick<GroupHistory, 'state' | 'assign' | 'read' | 'markSplit' | 'addProgress' | 'progress'>;
  readonly registry: Pick<Registry, 'members' | 'removeConnection' | 'completeReplay' | 'connectionsOfUser'>;
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
  /** Posts in flight at once. @default 32 */
  /** Packing and coalescing (both on unless turned off, for measuring the naive pattern). */
  readonly plan?: PlanOptions;
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
  readonly log?: (message: string, details: Record<string, unknown>) => void;
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

/** How `deliverFrames` reports to `deps.observe`: the tenant, and whether the frames are live (latency measured). */
export interface ObserveContext {
  readonly tenantId: string;
  readonly live: boolean;
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

export interface DeliveryResult {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
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
  ) {
    super(`delivery failed for ${result.failed} connection(s); ${result.delivered} delivered, ${result.gone} gone`);
  }
}

/** Room left in a fan-out message for what SQS counts besides the job's JSON (no attributes are sent). */
const FANOUT_ENVELOPE_BYTES = 1024;

/** Stable lane of a connection within a split group, so its pages of successive runs stay in one FIFO group. */
export function shardOf(connectionId: string, shards: number): number {
  return createHash('sha256').update(connectionId).digest().readUInt32BE(0) % shards;
}

/** The `user:` group prefix: a user's own group, delivered to every connection of that user. */
export const USER_GROUP_PREFIX = 'user:';

/**
 * The group's members. A `user:<id>` group also reaches every connection of user `<id>`, subscribed or not (found
 * through gsi1); a connection that did subscribe keeps its membership item (and so its replay mark).
 */
export async function allMembers(
  deps: Pick<BroadcastDeps, 'registry'>,
  tenantId: string,
  group: string,
): Promise<Member[]> {
  const members: Member[] = [];
  for await (const page of deps.registry.members(tenantId, group)) members.push(...page);
  if (!group.startsWith(USER_GROUP_PREFIX)) return members;
  const userId = group.slice(USER_GROUP_PREFIX.length);
  const subscribed = new Set(members.map((m) => m.connectionId));
  for (const connection of await deps.registry.connectionsOfUser(tenantId, userId)) {
    if (!subscribed.has(connection.connectionId)) members.push(connection);
  }
  return members;
}

/**
 * Posts each connection its frames in order, retrying throttles and 5xx with full-jitter backoff, removing gone
 * connections, and recording who got everything. Throws DeliveryFailedError when anyone is left out.
 */
export async function deliverFrames(
  plan: ReadonlyMap<string, readonly string[]>,
  deps: BroadcastDeps,
  record: (connectionIds: readonly string[]) => Promise<void>,
  observed?: ObserveContext,
): Promise<DeliveryResult> {
  let delivered = 0;
  let gone = 0;
  let failed = 0;
  let firstCause: unknown;
  const done: string[] = [];
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
  const stopBeforeMs = deps.stopBeforeMs ?? 5000;
  const results = await settleConcurrently([...plan], deps.concurrency ?? 32, async ([connectionId, frames]) => {
    if (deps.remainingMs !== undefined && deps.remainingMs() < stopBeforeMs) throw new OutOfTimeError(stopBeforeMs);
    try {
      for (const frame of frames) {
        await withBackoff(() => post(connectionId, frame), { ...deps.backoff, isRetryable: deps.isRetryable });
      }
      done.push(connectionId);
      return 'delivered' as const;
    } catch (err) {
      if (!deps.isGone(err)) throw err;
      await deps.registry.removeConnection(connectionId);
      deps.log?.('removed gone connection', { connectionId });
      if (observed !== undefined) observe?.({ type: 'gone', tenantId: observed.tenantId });
      return 'gone' as const;
    }
  });
  for (const result of results) {
    if (result.status === 'fulfilled') {
      if (result.value === 'delivered') delivered++;
      else gone++;
    } else {
      failed++;
      firstCause ??= result.reason;
      if (observed !== undefined) observe?.({ type: 'failed', tenantId: observed.tenantId });
    }
  }
  await record(done);
  const result = { delivered, gone, failed };
  if (failed > 0) throw new DeliveryFailedError(result, firstCause);
  return result;
}

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
  // Sequencing and the member list are independent reads: one round trip less on every run.
  const reading = deps.history.state(tenantId, group);
  const [state, messages, everyone] = await Promise.all([
    reading,
    reading.then((s) => deps.history.assign(run, s)),
    allMembers(deps, tenantId, group),
  ]);
  const seqs = messages.map((m) => m.seq);
  const range = { first: Math.min(...seqs), last: Math.max(...seqs) };
  // A member waiting for its replay gets these messages from history instead (docs/delivery.md, "Recovery").
  const members = everyone.filter((m) => m.replayFrom === undefined);
  const threshold = deps.splitThreshold ?? 500;

  if (members.length > threshold || state.splitUntil > now) {
    await splitRun(messages, members, range, deps);
    await deps.history.markSplit(tenantId, group, now + (deps.stickySplitMs ?? 15 * 60_000));
    return { delivered: 0, gone: 0, failed: 0, seqs, split: true };
  }

  let plan = planDelivery(messages, members, undefined, deps.plan);
  if (redelivered) plan = await withoutDelivered(plan, messages, members, range, deps);
  const result = await deliverFrames(plan, deps, (ids) => deps.history.addProgress(tenantId, group, range, ids), {
    tenantId,
    live: true,
  });
  return { ...result, seqs, split: false };
}

/** Drops, per connection, the seqs earlier attempts already delivered to it. */
async function withoutDelivered(
  plan: Map<string, string[]>,
  messages: readonly SequencedMessage[],
  members: readonly Member[],
  range: { first: number; last: number },
  deps: BroadcastDeps,
): Promise<Map<string, string[]>> {
  const head = messages[0];
  if (head === undefined) return plan;
  const records = await deps.history.progress(head.tenantId, head.group, range);
  if (records.length === 0) return plan;
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
  }
  return out;
}

/** Splits a large group's run into fan-out jobs: one lane per shard, pages of at most `pageSize` members. */
async function splitRun(
  messages: readonly SequencedMessage[],
  members: readonly Member[],
  range: { first: number; last: number },
  deps: BroadcastDeps,
): Promise<void> {
  const head = messages[0];
  if (head === undefined) return;
  const shards = deps.shards ?? 8;
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
  const jobHead = { tenantId: head.tenantId, group: head.group, batchSeq: range.first };
  for (const [shard, entries] of [...lanes].sort((a, b) => a[0] - b[0])) {
    for (let page = 0; page * pageSize < entries.length; page++) {
      const job = pageJob(jobHead, entries.slice(page * pageSize, (page + 1) * pageSize));
      // A page too big for one SQS message goes as consecutive parts of its lane (lambdas/core/fanout-pages.ts).
      const parts = fitJob(job, limits.queueMessageBytes - FANOUT_ENVELOPE_BYTES);
      const id = `${groupKey}-${range.first}-${range.last}-${shard}-${page}`;
      for (const [n, part] of parts.entries()) {
        jobs.push({ shard, id: parts.length === 1 ? id : `${id}-${n}`, job: part });
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
 * progress record (`J#<jobId>`): a connection that got all its frames is recorded under every page it is in, and
 * a redelivery skips, per page, the connections that page lists as done. Throws DeliveryFailedError when anyone
 * is left out, so the caller fails every page of the unit together.
 */
export async function deliverFanoutJobs(
  pages: readonly FanoutPage[],
  redelivered: boolean,
  deps: BroadcastDeps,
): Promise<DeliveryResult> {
  const head = pages[0]?.job;
  if (head === undefined) return { delivered: 0, gone: 0, failed: 0 };
  const { tenantId, group } = head;
  const strays = pages.filter(({ job }) => job.tenantId !== tenantId || job.group !== group);
  if (strays.length > 0) {
    const given = strays.map(({ job, jobId }) => `${jobId} (${job.tenantId}/${job.group})`).join(', ');
    throw new Error(
      `fan-out pages delivered together must be of one tenant and group (${tenantId}/${group}); got ${given}`,
    );
  }
  const ranges = pages.map(({ job, jobId }) => ({ first: job.batchSeq, last: job.batchSeq, jobId }));
  const done = redelivered
    ? await Promise.all(
        ranges.map(
          async (range) => new Set((await deps.history.progress(tenantId, group, range)).flatMap((r) => [...r.done])),
        ),
      )
    : ranges.map(() => new Set<string>());

  // Per connection, the pages it still needs (page index, frame indexes), in page order.
  const needs = new Map<string, { page: number; indexes: readonly number[] }[]>();
  for (const [page, { job }] of pages.entries()) {
    for (const [connectionId, indexes] of Object.entries(job.recipients)) {
      if (done[page]?.has(connectionId)) continue;
      const own = needs.get(connectionId) ?? [];
      own.push({ page, indexes });
      needs.set(connectionId, own);
    }
  }
  // Connections needing the same frames of the same pages share one re-packing (usually everyone does).
  const shared = new Map<string, string[]>();
  const plan = new Map<string, string[]>();
  for (const [connectionId, own] of needs) {
    const key = own.map(({ page, indexes }) => `${page}:${indexes.join(',')}`).join(';');
    let frames = shared.get(key);
    if (frames === undefined) {
      const separate = own.flatMap(({ page, indexes }) => indexes.map((i) => pages[page]?.job.frames[i] ?? ''));
      // One page's frames are packed already; only frames of several pages are packed again.
      frames = own.length > 1 ? repackFrames(separate, undefined, deps.plan) : separate;
      shared.set(key, frames);
    }
    if (frames.length > 0) plan.set(connectionId, frames);
  }
  const record = async (connectionIds: readonly string[]) => {
    await Promise.all(
      pages.map(({ job }, page) =>
        deps.history.addProgress(
          tenantId,
          group,
          ranges[page] as (typeof ranges)[number],
          connectionIds.filter((id) => Object.hasOwn(job.recipients, id)),
        ),
      ),
    );
  };
  return deliverFrames(plan, deps, record, { tenantId, live: true });
}

/**
 * A `subscribe` with `since`, in order with the group's live messages: replay what history holds after `since`
 * (or a `reset` when part of it is gone), then let live delivery include the member.
 */
export async function replay(
  request: ReplayRequest & { roles?: readonly string[]; claims?: Readonly<Record<string, unknown>> },
  deps: BroadcastDeps,
): Promise<DeliveryResult> {
  const { tenantId, group, connectionId, since } = request;
  const history = await deps.history.read(tenantId, group, since);
  const frames =
    history.kind === 'expired'
      ? [JSON.stringify({ type: 'reset', group, reason: 'HISTORY_EXPIRED', seq: history.seq })]
      : packFrames(
          messagesFor(history.messages, { roles: request.roles ?? [], claims: request.claims ?? {} }, deps.plan),
          undefined,
          deps.plan,
        );
  const plan = new Map(frames.length > 0 ? [[connectionId, frames]] : []);
  const result = await deliverFrames(plan, deps, async () => undefined, { tenantId, live: false });
  await deps.registry.completeReplay(tenantId, group, connectionId);
  return result;
}

export type { Recipient };
