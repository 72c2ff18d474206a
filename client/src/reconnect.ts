/**
 * Reconnection of the primary connection. It owns the attempt count, the failure count and the reconnect timer:
 * - a lost primary is retried after a full-jitter backoff that grows with each consecutive attempt and starts again
 *   after a socket that stayed open `STAYED_OPEN_MS` (one the server closes at once, for something it sent, say, does
 *   not reset it, so such a loop slows down); a failed rollover or subscribe waits the delay of its own attempts;
 * - the fresh-token rule: from the second attempt since a socket last opened, getToken is asked for a fresh token
 *   (a browser cannot see the handshake's 401, so a cached token may be the reason);
 * - when fresh tokens keep failing, `authCheckUrl` is asked with one; its 401 is reported once through `onAuth`.
 * What an attempt does (`retry`: session.ts's `reopen`), the clock and the random source are passed in; `fetch` is
 * the global one.
 */
import { type BackoffOptions, backoffDelay } from './backoff.ts';
import { TenantcastClientError } from './errors.ts';
import type { Clock } from './types.ts';

export interface Reconnect {
  /** Counts a primary attempt; true when it must ask getToken for a fresh token. */
  fresh(): boolean;
  /** A primary socket opened: the fresh-token rule starts again, and the backoff once it stayed open a while. */
  opened(): void;
  /** Schedules the next attempt after the backoff, unless one is scheduled already. */
  later(): void;
  /** Cancels a scheduled attempt; with `restart`, the backoff starts again too. */
  cancel(restart?: boolean): void;
  /** The backoff delay of attempt number `attempt` (by default the current one), without counting an attempt. */
  delay(attempt?: number): number;
  /** A token is about to be used: when fresh tokens failed before, asks `authCheckUrl` about it. */
  check(token: string): void;
}

/** How long a primary must have stayed open for the backoff to start again after it is lost. */
export const STAYED_OPEN_MS = 10_000;

export function createReconnect(
  clock: Clock,
  random: () => number,
  backoff: BackoffOptions | undefined,
  authCheckUrl: string | undefined,
  retry: () => void,
  onAuth: (error: TenantcastClientError) => void,
): Reconnect {
  let attempt = 0;
  /** Primary attempts since one last opened. */
  let failures = 0;
  let authReported = false;
  let timer: unknown;
  /** When the primary last opened; Infinity once a retry after it is scheduled. */
  let openedAt = Infinity;

  const delay = (n = attempt) => backoffDelay(n, backoff, random);
  const cancel = (restart?: boolean): void => {
    clock.clearTimeout(timer);
    timer = undefined;
    if (restart) attempt = 0;
  };

  return {
    fresh: () => failures++ > 0,
    opened() {
      failures = 0;
      authReported = false;
      openedAt = clock.now();
    },
    later() {
      if (timer !== undefined) return;
      if (clock.now() - openedAt >= STAYED_OPEN_MS) attempt = 0;
      openedAt = Infinity;
      timer = clock.setTimeout(() => {
        timer = undefined;
        retry();
      }, delay(attempt++));
    },
    cancel,
    delay,
    check(token) {
      // A fresh token failed before this one: ask the HTTP API whether the tokens themselves are refused.
      if (failures <= 2 || !authCheckUrl || authReported) return;
      fetch(authCheckUrl, { headers: { authorization: `Bearer ${token}` } }).then(
        (answer) => {
          if (answer.status !== 401 || authReported || failures === 0) return;
          authReported = true;
          onAuth(new TenantcastClientError('UNAUTHORIZED', `tokens refused: ${authCheckUrl} answers 401`));
        },
        () => undefined, // unreachable: not an answer about the token
      );
    },
  };
}
