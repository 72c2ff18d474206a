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
import type { ReplayRequest } from './delivery.ts';
import type { Member, Registry } from './registry.ts';

/** How long a member's client may take none of its replays before its connection is closed, ms. */
export const LAG_CLOSE_AFTER_MS = 5_000;
/** How many replays (each with the post's own retries) a client must have refused before it is closed. */
export const LAG_CLOSE_AFTER_PASSES = 3;

export interface LaggingDeps {
  readonly registry: Pick<Registry, 'deferToReplay' | 'lagPass'>;
  /** Puts a replay request on the group's stream of the delivery queue, deduplicated by `dedupId`. */
  readonly requeueReplay: (request: ReplayRequest, dedupId: string) => Promise<void>;
  /**
   * A post refused because the client's buffer is full: 429 `LimitExceededException`. Only that defers: a 5xx is
   * API Gateway's own failure, which closing clients would not cure (it fails the run, which SQS gives back).
   */
  readonly isThrottled: (err: unknown) => boolean;
  /** Closes a connection (DeleteConnection); a connection already gone is no error. */
  readonly close: (connectionId: string) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
  readonly logError?: (message: string, details: Record<string, unknown>) => void;
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
 * Puts the members of a live run that were left out by throttled posts (`isThrottled`) on a replay wait from `since` (the seq before
 * the run's first), the replay request queued first: it lands behind the run on the group's stream, so it is read
 * only after this invocation, by when the wait is written (and a failure before then fails the run, which is given
 * back ahead of the request: a request finding no wait from its `since` sends nothing). Returns the connections the
 * run no longer owes: deferred, or no member any more; the others (a `user:` group's connection with no membership)
 * still fail the run.
 */
export async function deferLagging(
  leftOut: readonly LeftOut[],
  members: readonly Member[],
  target: { readonly tenantId: string; readonly group: string; readonly since: number },
  deps: LaggingDeps,
): Promise<ReadonlySet<string>> {
  const { tenantId, group, since } = target;
  const byId = new Map(members.map((m) => [m.connectionId, m]));
  const now = (deps.now ?? Date.now)();
  const handled = new Set<string>();
  for (const { connectionId, cause } of leftOut) {
    const member = byId.get(connectionId);
    if (member === undefined || !deps.isThrottled(cause)) continue;
    await deps.requeueReplay(replayRequest(tenantId, group, member, since), `lag-${connectionId}-${since}`);
    const marked = await deps.registry.deferToReplay(tenantId, group, connectionId, since, now);
    if (marked === 'absent' && group.startsWith('user:')) continue;
    handled.add(connectionId);
    deps.log?.('client not reading: deferred to a replay', {
      tenantId,
      group,
      connectionId,
      since,
      marked,
      cause: String(cause),
    });
  }
  return handled;
}

/**
 * A replay whose posts were still throttled after their retries: queued again behind the group's later messages, or,
 * once the member has lagged `LAG_CLOSE_AFTER_MS` over `LAG_CLOSE_AFTER_PASSES` replays, its connection closed.
 * Nothing happens when the membership no longer waits for this replay.
 */
export async function replayNotTaken(
  request: ReplayRequest,
  cause: unknown,
  deps: LaggingDeps,
): Promise<'requeued' | 'closed' | 'not waiting'> {
  const { tenantId, group, connectionId, since } = request;
  const now = (deps.now ?? Date.now)();
  const lag = await deps.registry.lagPass(tenantId, group, connectionId, since, now);
  if (lag === undefined) return 'not waiting';
  const details = { tenantId, group, connectionId, since, passes: lag.passes, lagMs: now - lag.lagAt };
  if (lag.passes < LAG_CLOSE_AFTER_PASSES || now - lag.lagAt < LAG_CLOSE_AFTER_MS) {
    await deps.requeueReplay(request, `lag-${connectionId}-${since}-${lag.passes}`);
    deps.log?.('client not reading: replay queued again', { ...details, cause: String(cause) });
    return 'requeued';
  }
  // Its memberships go with its `$disconnect`, which announces its presence `leave` (removing them here first would
  // leave that unsent); until then the wait keeps live delivery off it, and nothing queues another replay.
  await deps.close(connectionId);
  (deps.logError ?? deps.log)?.('client not reading: connection closed', { ...details, cause: String(cause) });
  return 'closed';
}
