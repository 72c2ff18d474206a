/**
 * A client that stops reading (docs/delivery.md, "A client that stops reading"): a device asleep with its socket open
 * takes no frames, and API Gateway answers its posts 429 `LimitExceededException` for as long as it does not read.
 * Until 2026-12-05 its member failed every run of its group, which SQS gave back until the DLQ: the group's later
 * messages waited up to 15 minutes behind one sleeping client. Now a member still throttled after a run's retries is
 * put on a replay wait (as a subscribe with `since` is) and the run goes on: live delivery skips it, and a replay
 * request queued behind the group's later messages brings it what it missed, from history, in order. A replay it
 * still does not take is queued again; a client that has taken nothing for `LAG_CLOSE_AFTER_MS`, over at least
 * `LAG_CLOSE_AFTER_PASSES` replays, is closed (Centrifugo closes a client whose queue overflows likewise), and its
 * SDK reconnects and resumes with `since`. A 429 is also the account's post rate: that is why one refusal defers and
 * does not close, and why closing needs the wait's time and passes too.
 */
import { settleConcurrently } from './concurrency.ts';
import type { ReplayRequest } from './delivery.ts';
import type { NotReading } from './not-reading.ts';
import { USER_GROUP_PREFIX } from './permissions.ts';
import type { Member, Registry } from './registry.ts';

/** How long a member's client may take none of its replays before its connection is closed, ms (the default; env `LAG_CLOSE_AFTER_MS`). */
export const LAG_CLOSE_AFTER_MS = 5_000;
/** How many replays (each with the post's own retries) a client must have refused before it is closed. */
export const LAG_CLOSE_AFTER_PASSES = 3;

export interface LaggingDeps {
  readonly registry: Pick<Registry, 'deferToReplay' | 'lagPass' | 'advanceReplay' | 'replayState' | 'member'>;
  /** Puts a replay request on the group's stream of the delivery queue, deduplicated by `dedupId`. */
  readonly requeueReplay: (request: ReplayRequest, dedupId: string) => Promise<void>;
  /**
   * A post refused because the client's buffer is full: 429 `LimitExceededException`. Only that defers: a 5xx is
   * API Gateway's own failure, which closing clients would not cure (it fails the run, which SQS gives back).
   */
  readonly isThrottled: (err: unknown) => boolean;
  /** Closes a connection (DeleteConnection); a connection already gone is no error. */
  readonly close: (connectionId: string) => Promise<void>;
  /** How long a client may take none of its replays before it is closed, ms. @default LAG_CLOSE_AFTER_MS */
  readonly closeAfterMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
  readonly logError?: (message: string, details: Record<string, unknown>) => void;
  /** Where a connection owed best effort only is remembered (lambdas/core/not-reading.ts). @default nowhere */
  readonly notReading?: Pick<NotReading, 'add'>;
}

/** A connection a run left out after every retry, and why. */
export interface LeftOut {
  readonly connectionId: string;
  readonly cause: unknown;
}

const replayRequest = (tenantId: string, group: string, member: Member, since: number): ReplayRequest => ({
  v: 1,
  kind: 'replay',
  tenantId,
  group,
  connectionId: member.connectionId,
  since,
  roles: [...member.roles],
  claims: { ...member.claims },
});

/**
 * Puts the members of a live run (or a fan-out lane's unit: `hold`) that were left out by throttled posts
 * (`isThrottled`) on a replay wait from `since`, with a replay request on the group's stream; the order of the two
 * steps differs by caller, explained below. Returns the connections the run no longer owes: deferred, or no member any
 * more, or, in a `user:` group, not subscribed (owed best effort only); the others (not throttled) still fail the run.
 */
export async function deferLagging(
  leftOut: readonly LeftOut[],
  members: readonly Member[],
  target: {
    readonly tenantId: string;
    readonly group: string;
    /** The seq through which each connection had everything. */
    readonly since: number | ((connectionId: string) => number);
    /** Runs first for each member deferred (a fan-out lane's hold: `deliverFanoutJobs`). */
    readonly hold?: (connectionId: string) => Promise<void>;
  },
  deps: LaggingDeps,
): Promise<ReadonlySet<string>> {
  const { tenantId, group } = target;
  const byId = new Map(members.map((m) => [m.connectionId, m]));
  const now = (deps.now ?? Date.now)();
  const handled = new Set<string>();
  const defer = async ({ connectionId, cause }: LeftOut) => {
    const member = byId.get(connectionId);
    if (member === undefined || !deps.isThrottled(cause)) return;
    const since = typeof target.since === 'number' ? target.since : target.since(connectionId);
    // A `user:` group also reaches its user's connections that never subscribed, best effort (docs/protocol.md: only
    // a subscription gives a group's guarantee): no membership to wait on, so no request (it would replay to the
    // connection anyway), and the run goes on without it. Until 2026-12-05 the run failed for it: one sleeping tab
    // that never subscribed held its user's group for every other tab until the DLQ, 15 minutes, and took the
    // messages there with it.
    const userGroup = group.startsWith(USER_GROUP_PREFIX);
    const notSubscribed = () => {
      handled.add(connectionId);
      deps.notReading?.add(tenantId, group, connectionId);
      deps.log?.('client not reading, not subscribed to its user group: this frame is not sent', {
        tenantId,
        group,
        connectionId,
        since,
        cause: String(cause),
      });
    };
    if (userGroup && (await deps.registry.replayState(tenantId, group, connectionId, since)) === 'gone') {
      notSubscribed();
      return;
    }
    const request = replayRequest(tenantId, group, member, since);
    let marked: Awaited<ReturnType<LaggingDeps['registry']['deferToReplay']>>;
    if (target.hold === undefined) {
      // The broadcaster: queued first, then marked. The request lands behind the batch in flight on the group's stream,
      // so it is read only after this invocation, by when the wait is written; a failure in between fails the run,
      // which is given back ahead of the request (a request finding no wait from its `since` sends nothing).
      await deps.requeueReplay(request, waitDedupId(connectionId, since, now));
      marked = await deps.registry.deferToReplay(tenantId, group, connectionId, since, now);
    } else {
      // A fan-out lane: nothing of the group waits ahead of the request on the delivery queue, so the broadcaster may
      // read it at once: held first, then marked, then queued (until review the request could be read, and skipped,
      // before the wait was written: the member then got nothing for 20 minutes). A failure after the hold leaves
      // the rest to the lane's next unit: it releases a held connection that does not wait, and sends the request
      // again for one that does (`resendReplay`).
      await target.hold(connectionId);
      marked = await deps.registry.deferToReplay(tenantId, group, connectionId, since, now);
      if (marked !== 'absent') await deps.requeueReplay(request, waitDedupId(connectionId, since, now));
    }
    if (marked === 'absent' && userGroup) {
      notSubscribed();
      return;
    }
    handled.add(connectionId);
    deps.log?.('client not reading: deferred to a replay', {
      tenantId,
      group,
      connectionId,
      since,
      marked,
      cause: String(cause),
    });
  };
  // Several at once (under the account's own throttling a run can leave many out), each failure failing the run.
  const settled = await settleConcurrently(leftOut, DEFER_CONCURRENCY, defer);
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return handled;
}

/** Deferrals in flight at once: each is a SendMessage and two or three DynamoDB writes. */
const DEFER_CONCURRENCY = 16;

/**
 * Sends again the replay request of a member a fan-out lane holds back and that still waits (`deferLagging`): its
 * first send may have failed after the wait was written. Deduplicated by SQS with the first within 5 minutes; after
 * that, a second request finds the wait taken by the first's replay, or serves it the same.
 */
export async function resendReplay(
  tenantId: string,
  group: string,
  member: Member,
  deps: Pick<LaggingDeps, 'requeueReplay'>,
): Promise<void> {
  if (member.replayFrom === undefined) return;
  const since = member.replayFrom;
  const id = waitDedupId(member.connectionId, since, member.replayAt ?? 0);
  await deps.requeueReplay(replayRequest(tenantId, group, member, since), id);
}

/**
 * The dedup id of a wait's first request: the connection, its `since` and when it began, so a later wait from the
 * same `since` (the member served, then asleep again, within SQS's 5-minute deduplication) is not taken for it and
 * dropped (found in review).
 */
const waitDedupId = (connectionId: string, since: number, lagAt: number) => `lag-${connectionId}-${since}-at-${lagAt}`;

/**
 * A replay whose posts were still throttled after their retries (`through`: the seq through which the frames it did
 * take went; `since` when none): queued again behind the group's later messages, from `through`; or,
 * once the member has lagged `LAG_CLOSE_AFTER_MS` over `LAG_CLOSE_AFTER_PASSES` replays, its connection closed.
 * Nothing happens when the membership no longer waits for this replay.
 */
export async function replayNotTaken(
  request: ReplayRequest,
  cause: unknown,
  deps: LaggingDeps,
  through = request.since,
): Promise<'requeued' | 'closed' | 'not waiting'> {
  const { tenantId, group, connectionId, since } = request;
  const now = (deps.now ?? Date.now)();
  if (through > since) {
    // It took part of the replay: a client reading slowly, not asleep. It waits from where it got to, and its lag
    // starts again (until review it was closed as if it had taken nothing, while it got the same frames every pass).
    // Queued first, then the wait moved (as `deferLagging`): the request is read after this invocation, and a failure in
    // between gives this one back, which still finds its wait (until review the wait moved first, and a failed send left
    // it waiting with no request for 20 minutes).
    await deps.requeueReplay({ ...request, since: through }, waitDedupId(connectionId, through, now));
    if (!(await deps.registry.advanceReplay(tenantId, group, connectionId, since, through, now))) return 'not waiting';
    deps.log?.('client reading slowly: replay queued again from where it got to', {
      tenantId,
      group,
      connectionId,
      since,
      through,
    });
    return 'requeued';
  }
  const lag = await deps.registry.lagPass(tenantId, group, connectionId, since, now);
  if (lag === undefined) return 'not waiting';
  const details = { tenantId, group, connectionId, since, passes: lag.passes, lagMs: now - lag.lagAt };
  if (lag.passes < LAG_CLOSE_AFTER_PASSES || now - lag.lagAt < (deps.closeAfterMs ?? LAG_CLOSE_AFTER_MS)) {
    // The wait's start in the id too: a subscribe again with the same `since` starts the count over, and its passes'
    // ids must not be the earlier wait's, which SQS would drop within 5 minutes (found by an attacking pass).
    await deps.requeueReplay(request, `${waitDedupId(connectionId, since, lag.lagAt)}-${lag.passes}`);
    deps.log?.('client not reading: replay queued again', { ...details, cause: String(cause) });
    return 'requeued';
  }
  // Its memberships go with its `$disconnect`, which announces its presence `leave` (removing them here first would
  // leave that unsent); until then the wait keeps live delivery off it, and nothing queues another replay.
  await deps.close(connectionId);
  (deps.logError ?? deps.log)?.('client not reading: connection closed', { ...details, cause: String(cause) });
  return 'closed';
}
