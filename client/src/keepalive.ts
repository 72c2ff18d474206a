/**
 * What keeps the primary usable, started whenever a socket becomes the primary: its heartbeat (heartbeat.ts: ping
 * after `heartbeatMs` without a frame sent; no pong in `pongTimeoutMs` ends it), its token refresh (token.ts:
 * `refreshBeforeMs` before expiry, a rollover when that fails) and the rollover before the connection cap
 * (`rolloverAfterMs` after it opened). Each runs on one named timer of the transport, so ending the transport (the
 * session's `end`) stops them all.
 */
import type { TenantcastClientError } from './errors.ts';
import { createHeartbeat } from './heartbeat.ts';
import type { Settings } from './options.ts';
import { createRefresh } from './token.ts';
import type { Requests, Transport } from './transport.ts';

/** Returns the function that starts (or restarts) what runs on the primary `t`. */
export function createKeepalive(
  s: Settings,
  requests: Pick<Requests, 'arm' | 'send' | 'disarm'>,
  end: (t: Transport) => void,
  rollover: () => void,
  report: (error: TenantcastClientError) => void,
): (t: Transport) => void {
  const heartbeat = createHeartbeat(s, requests, end);
  const refresh = createRefresh(s, requests, report, rollover);
  return (t) => {
    heartbeat(t);
    refresh(t);
    requests.arm(t, 'rollover', t.openedAt + s.rolloverAfterMs - s.clock.now(), rollover);
  };
}
