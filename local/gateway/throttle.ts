/**
 * The answer to a frame refused because its connection already has `maxQueuedPerConnection` frames waiting in the
 * local gateway (local/gateway/routes.ts; "Fair share" in local/gateway/index.ts; docs/security.md, "Frame floods"):
 * the protocol's own `RATE_LIMITED` error frame, with the frame's `ref` when it has one, so a client handles it exactly like the
 * backend's per-connection rate limit (wait `retryAfterMs`, send again).
 *
 * API Gateway has no per-connection message quota (only the account-wide request throttle, shared by every API);
 * in AWS each frame is its own Lambda invocation and the backend's rate limit answers a flood. Locally the frames of
 * one connection wait for a few sandboxes, so without this bound one connection could queue any number of them
 * (15,000 frames of 30 KB grew the runtime by 400 MB and kept it busy after the client left).
 */
import { errorFrame, refOf } from '../../lambdas/core/protocol.ts';

/** How long a client is told to wait: about the time a full queue takes to drain. */
export const QUEUE_FULL_RETRY_AFTER_MS = 1000;

/** The RATE_LIMITED frame for a refused frame (`body` as received; its `ref` is echoed when it is JSON with one). */
export function queueFullFrame(body: string, maxQueued: number): string {
  let ref: string | undefined;
  try {
    ref = refOf(JSON.parse(body));
  } catch {
    ref = undefined;
  }
  return JSON.stringify(
    errorFrame(ref, 'RATE_LIMITED', `too many frames waiting on this connection (at most ${maxQueued})`, {
      retryAfterMs: QUEUE_FULL_RETRY_AFTER_MS,
    }),
  );
}
