/**
 * Tokens: reading what getToken returns (the token and its expiry: `expiresAt` when given, else the JWT's `exp`)
 * and refreshing the primary's token `refreshBeforeMs` before it expires. The refresh owns when to ask getToken
 * again, and what to do with the answer: send it on the connection (a `refresh` request) when it expires later than
 * the current one, else ask again for a fresh one a second later (so a getToken returning the same token cannot
 * spin), and fall back to a rollover (`rollover`), which opens a connection with a new token, when getToken or the
 * server fails. The timer and request (transport.ts), reports and the rollover are passed in (keepalive.ts).
 */
import { TenantcastClientError } from './errors.ts';
import type { Settings } from './options.ts';
import type { Requests, Transport } from './transport.ts';
import type { TokenResult } from './types.ts';

/** Reads a JWT's `exp` (epoch seconds) without verifying it: only to know when to refresh. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

/** The token getToken returned and when it expires (epoch ms), if known. */
export function readToken(result: TokenResult): { token: string; expiresAt: number | undefined } {
  const { token, expiresAt = tokenExpiry(token) } = (typeof result === 'string' ? { token: result } : result) as {
    token: string;
    expiresAt?: number;
  };
  return { token, expiresAt: expiresAt && expiresAt * 1000 };
}

export const getTokenFailed = (err: unknown) =>
  new TenantcastClientError('UNAUTHORIZED', `getToken failed: ${String(err)}`);

/**
 * Returns the function that schedules the token refresh of a primary connection `t`: its refresh timer and the
 * `refresh` request are `requests'`; `report` reaches the app's error listeners; `rollover` starts a rollover.
 */
export function createRefresh(
  s: Pick<Settings, 'refreshBeforeMs' | 'requestTimeoutMs' | 'clock' | 'getToken'>,
  requests: Pick<Requests, 'arm' | 'send' | 'disarm'>,
  report: (error: TenantcastClientError) => void,
  rollover: () => void,
): (t: Transport) => void {
  // `fresh`: the last answer did not expire later (a cached token, or one issued in the same second as the current
  // one, exp having whole seconds), so ask for a newly issued one. `wait`: at least this long, a second after any
  // answer, so neither that nor a token living less than refreshBeforeMs can spin.
  const schedule = (t: Transport, fresh = false, wait = 0): void => {
    const current = t.expiresAt;
    if (current === undefined) return;
    requests.arm(t, 'refresh', Math.max(wait, current - s.refreshBeforeMs - s.clock.now()), async () => {
      let answer: ReturnType<typeof readToken> | TenantcastClientError;
      // A getToken that never answers (a fetch without a timeout) turns into a rollover, whose connect timeout covers
      // its own: until 2026-12-04 the refresh then stopped for the connection's life.
      requests.arm(t, 'refresh', s.requestTimeoutMs, rollover);
      try {
        // Read inside: an answer that is no token (null, {}) fails as a throwing getToken does (until 2026-12-04 it
        // escaped as an unhandled rejection, and ended a Node process).
        answer = readToken(await s.getToken({ fresh }));
      } catch (err) {
        answer = getTokenFailed(err);
      }
      requests.disarm(t, 'refresh');
      // The socket was replaced meanwhile: its refresh, failed or not, is nobody's business.
      if (t.dead || t.role !== 'primary') return;
      if (answer instanceof TenantcastClientError) {
        report(answer);
        return rollover();
      }
      const { token, expiresAt } = answer;
      // A token of unknown expiry (undefined is not <=) is sent, and not refreshed again.
      if ((expiresAt as number) <= current) return schedule(t, true, 1000);
      requests.send(t, { action: 'refresh', token }, s.requestTimeoutMs, (answer) => {
        if (answer instanceof TenantcastClientError) {
          // The server could not take the new token: a rollover opens a connection with it, without a gap.
          report(answer);
          return rollover();
        }
        if (expiresAt) {
          t.expiresAt = expiresAt;
          schedule(t, false, 1000);
        }
      });
    });
  };
  return schedule;
}
