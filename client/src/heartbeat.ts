/**
 * The heartbeat of the primary connection. API Gateway closes a connection idle for 10 minutes, and a connection cut
 * somewhere on the way may not know it is dead. It owns when to ping (after `heartbeatMs` without any frame from the server:
 * each frame received postpones it; frames sent do not, so a socket whose sends go nowhere, a subscribe retried
 * without an answer, is still found dead) and what a ping left unanswered for `pongTimeoutMs` means (the socket is dead). The timer
 * and the ping request (transport.ts) and the teardown (session.ts) are passed in.
 */
import { TenantcastClientError } from './errors.ts';
import type { Settings } from './options.ts';
import type { Requests, Transport } from './transport.ts';

/**
 * Returns the function that starts (or restarts) the heartbeat of a primary connection `t`: the one heartbeat timer
 * of `t` and the ping are `requests`' (a ping left unanswered for `pongTimeoutMs` settles with TIMEOUT); `dead` is
 * told `t` missed a pong.
 */
export function createHeartbeat(
  s: Pick<Settings, 'heartbeatMs' | 'pongTimeoutMs' | 'clock'>,
  requests: Pick<Requests, 'arm' | 'send'>,
  dead: (t: Transport) => void,
): (t: Transport) => void {
  const { heartbeatMs, clock } = s;
  // After a ping the next check is a whole `heartbeatMs` later (its pong, a frame heard, postpones it further).
  const beat = (t: Transport, ms = t.heardAt + heartbeatMs - clock.now()): void =>
    requests.arm(t, 'heartbeat', ms, () => {
      if (t.role !== 'primary') return;
      if (clock.now() - t.heardAt < heartbeatMs) return beat(t);
      requests.send(t, { action: 'ping' }, s.pongTimeoutMs, (answer) => {
        // No pong in time: the socket is dead even if it does not know it yet.
        if (answer instanceof TenantcastClientError && answer.code === 'TIMEOUT') dead(t);
      });
      beat(t, heartbeatMs);
    });
  return beat;
}
