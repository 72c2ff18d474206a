/**
 * The heartbeat of the primary connection. API Gateway closes a connection idle for 10 minutes, and a connection cut
 * somewhere on the way may not know it is dead. It owns when to ping (after `everyMs` without any frame sent: each
 * frame sent postpones it) and what a ping left unanswered for `pongTimeoutMs` means (the socket is dead). The timer,
 * the ping request and the teardown are passed in (keepalive.ts, session.ts).
 */
import { TenantcastClientError } from './errors.ts';
import type { Clock } from './types.ts';

/**
 * Returns the function that starts (or restarts) the heartbeat of a primary connection `t`. Positional ports keep
 * the minified bundle small: `arm` (re)arms the one heartbeat timer of `t`; `ping` sends a ping on `t` and hands
 * its answer (the pong, or an error: TIMEOUT after `timeoutMs`) to `answered`; `dead` is told `t` missed a pong.
 */
export function createHeartbeat<T extends { readonly role: string; readonly lastSentAt: number }>(
  everyMs: number,
  pongTimeoutMs: number,
  clock: Clock,
  arm: (t: T, ms: number, callback: () => void) => void,
  ping: (t: T, timeoutMs: number, answered: (answer: unknown) => void) => void,
  dead: (t: T) => void,
): (t: T) => void {
  const beat = (t: T): void =>
    arm(t, Math.max(0, t.lastSentAt + everyMs - clock.now()), () => {
      if (t.role !== 'primary') return;
      if (clock.now() - t.lastSentAt >= everyMs) {
        ping(t, pongTimeoutMs, (answer) => {
          // No pong in time: the socket is dead even if it does not know it yet.
          if (answer instanceof TenantcastClientError && answer.code === 'TIMEOUT') dead(t);
        });
      }
      beat(t);
    });
  return beat;
}
