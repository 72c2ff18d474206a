/**
 * Rollover: replacing the primary before API Gateway's 2-hour cap (or when its token cannot be refreshed) without a
 * gap or a repeat. It owns the standby's part of the connection: opening one (one at a time, only while the primary
 * is open and the client connected), promoting it once every group is resubscribed on it, the old primary's drain
 * (it keeps its outstanding acks for up to `drainMs`, then ends), retrying after a backoff growing per failed standby
 * (with a fresh token) when the standby fails, and an open standby taking over at once when the primary is cut.
 * Opening a socket, making a primary run (`activate`), ending a socket and flushing the outbox are the session's; the
 * sockets are found by their role.
 */
import { type Requests, type Transport, withRole } from './transport.ts';

export interface Rollover {
  /** Opens a standby, unless one is on its way or the primary is not open. */
  start(): void;
  /** The standby opened: it takes over once every group is resubscribed on it. */
  opened(t: Transport): void;
  /**
   * The standby could not open (or ended): the primary stays, and a rollover is tried again after a backoff that
   * grows with each failed standby, with a fresh token.
   */
  failed(): void;
  /** The primary ended: an open standby takes over at once (true); one still opening ends (false). */
  takeOver(): boolean;
  /** The connection is going away (close, offline, a lost primary): the standby ends and no rollover is under way. */
  cancel(): void;
  /** A request on `t` settled: a draining socket with nothing left outstanding ends. */
  settled(t: Transport): void;
}

/** What the rollover asks of the session. */
export interface RolloverPorts {
  connected(): boolean;
  /** Opens a standby; `fresh`: one failed before, so getToken is asked for a fresh token. */
  openStandby(fresh: boolean): void;
  resubscribe(t: Transport): Promise<void>[];
  activate(t: Transport): void;
  end(t: Transport): void;
  flush(): void;
}

export function createRollover(
  transports: Set<Transport>,
  requests: Pick<Requests, 'arm' | 'disarm'>,
  drainMs: number,
  delay: (attempt: number) => number,
  session: RolloverPorts,
): Rollover {
  let rolling = false;
  /** Standbys failed since one last took over. */
  let failures = 0;

  function start(): void {
    if (rolling || !withRole(transports, 'primary')?.open || !session.connected()) return;
    rolling = true;
    session.openStandby(failures > 0);
  }

  function promote(next: Transport): void {
    const previous = withRole(transports, 'primary');
    rolling = false;
    failures = 0;
    if (previous) {
      previous.role = 'draining';
      requests.disarm(previous);
      requests.arm(previous, 'drain', drainMs, () => session.end(previous));
    }
    next.role = 'primary';
    session.activate(next);
    if (previous) settled(previous);
    session.flush();
  }

  function settled(t: Transport): void {
    if (t.role === 'draining' && t.pending.size === 0) session.end(t);
  }

  return {
    start,
    opened(t) {
      // Each settles once its group is acked or refused (subscriptions.ts retries the rest): none rejects.
      void Promise.all(session.resubscribe(t)).then(() => {
        if (!t.dead && t.role === 'standby') promote(t);
      });
    },
    failed() {
      rolling = false;
      const primary = withRole(transports, 'primary');
      if (primary?.open) requests.arm(primary, 'rollover', delay(failures++), start);
    },
    takeOver() {
      const standby = withRole(transports, 'standby');
      if (!standby?.open) return false;
      promote(standby);
      return true;
    },
    cancel() {
      const standby = withRole(transports, 'standby');
      if (standby) session.end(standby);
      rolling = false;
    },
    settled,
  };
}
