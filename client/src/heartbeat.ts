/**
 * The heartbeat of the primary connection. API Gateway closes a connection idle for 10 minutes, and a connection cut
 * somewhere on the way may not know it is dead. It owns when to ping (every `heartbeatMs` it looks whether any frame came
 * from the server since it last looked, `t.heard`; if none did, it pings: so after 1 to 2 × `heartbeatMs` of silence;
 * frames sent do not count, so a socket whose sends go nowhere, a subscribe retried without an answer, is still found
 * dead) and what a ping left unanswered for `pongTimeoutMs` means (the socket is dead). Elapsed time only, no wall
 * clock: until 2026-12-04 it compared `Date.now()`s, and a clock stepped back (or frozen) never pinged, so API Gateway
 * closed the idle connection. The timer and the ping request (transport.ts) and the teardown (session.ts) are passed in.
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
  s: Pick<Settings, 'heartbeatMs' | 'pongTimeoutMs'>,
  requests: Pick<Requests, 'arm' | 'send'>,
  dead: (t: Transport) => void,
): (t: Transport) => void {
  const { heartbeatMs } = s;
  const beat = (t: Transport): void =>
    requests.arm(t, 'heartbeat', heartbeatMs, () => {
      if (t.role !== 'primary') return;
      if (!t.heard) {
        requests.send(t, { action: 'ping' }, s.pongTimeoutMs, (answer) => {
          // No pong in time: the socket is dead even if it does not know it yet.
          if (answer instanceof TenantcastClientError && answer.code === 'TIMEOUT') dead(t);
        });
      }
      t.heard = false;
      beat(t);
    });
  return beat;
}
