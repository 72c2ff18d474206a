/**
 * Reconnection of the primary connection. It owns the attempt count, the failure count and the reconnect timer:
 * - a lost primary is retried after a full-jitter backoff that grows with each consecutive attempt and starts again
 *   once a socket opens (a failed rollover waits the same delay, without counting an attempt);
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
  /** A primary socket opened: the backoff and the fresh-token rule start again. */
  opened(): void;
  /** Schedules the next attempt after the backoff, unless one is scheduled already. */
  later(): void;
  /** Cancels a scheduled attempt; with `restart`, the backoff starts again too. */
  cancel(restart?: boolean): void;
  /** The current backoff delay, without counting an attempt (a rollover retry waits it). */
  delay(): number;
  /** A token is about to be used: when fresh tokens failed before, asks `authCheckUrl` about it. */
  check(token: string): void;
}

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

  const cancel = (restart?: boolean): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    if (restart) attempt = 0;
  };

  return {
    fresh: () => failures++ > 0,
    opened() {
      attempt = failures = 0;
      authReported = false;
    },
    later() {
      if (timer !== undefined) return;
      timer = clock.setTimeout(
        () => {
          timer = undefined;
          retry();
        },
        backoffDelay(attempt++, backoff, random),
      );
    },
    cancel,
    delay: () => backoffDelay(attempt, backoff, random),
    check(token) {
      // A fresh token failed before this one: ask the HTTP API whether the tokens themselves are refused.
      const url = authCheckUrl;
      if (failures <= 2 || url === undefined || authReported) return;
      fetch(url, { headers: { authorization: `Bearer ${token}` } }).then(
        (answer) => {
          if (answer.status !== 401 || authReported || failures === 0) return;
          authReported = true;
          onAuth(new TenantcastClientError('UNAUTHORIZED', `fresh tokens are refused (${url} answers 401)`));
        },
        () => undefined, // unreachable: not an answer about the token
      );
    },
  };
}
