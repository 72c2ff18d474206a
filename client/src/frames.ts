/**
 * Frames from the server: parsing one, and handing it to the unit it is for. Messages and batches go to the
 * subscriptions (which drop duplicates), resets too; acks, pongs and errors with a ref settle their request (on the
 * socket that sent it: transport.ts); other errors and API Gateway's own `{"message": ...}` frames are reported; a
 * frame that is not JSON is reported as PROTOCOL without closing the connection; unknown types are ignored, so the
 * server can add some.
 */
import { TenantcastClientError } from './errors.ts';
import type { Subscriptions } from './subscriptions.ts';
import type { Requests, Transport } from './transport.ts';
import type { ErrorCode, ServerFrame } from './types.ts';

export function errorFrom(
  frame: { code?: unknown; message?: unknown; retryAfterMs?: number },
  group?: string,
): TenantcastClientError {
  const code = typeof frame.code === 'string' ? (frame.code as ErrorCode) : 'INTERNAL';
  return new TenantcastClientError(
    code,
    typeof frame.message === 'string' ? frame.message : code,
    group,
    frame.retryAfterMs,
  );
}

/** Handles one frame `raw` received on `t`. */
export function onFrame(
  t: Transport,
  raw: unknown,
  subscriptions: Pick<Subscriptions<Transport>, 'deliver' | 'reset'>,
  requests: Pick<Requests, 'answer'>,
  reportError: (error: TenantcastClientError) => void,
): void {
  if (t.dead) return;
  let frame: ServerFrame | { type?: undefined; message?: unknown };
  try {
    frame = JSON.parse(String(raw));
  } catch {
    reportError(new TenantcastClientError('PROTOCOL', 'frame not JSON'));
    return;
  }
  switch (frame?.type) {
    case 'message':
      subscriptions.deliver(frame);
      return;
    case 'batch':
      // Not past a close() one of them made.
      for (const message of Array.isArray(frame.messages) ? frame.messages : [])
        if (!t.dead) subscriptions.deliver(message);
      return;
    case 'reset':
      subscriptions.reset(frame);
      return;
    case 'ack':
    case 'pong':
    case 'error':
      // An answer settles its request (on the socket that sent it); an error answering none is reported.
      if (!requests.answer(t, frame.ref, frame) && frame.type === 'error') reportError(errorFrom(frame));
      return;
    case undefined:
      // API Gateway's own error frames: {"message":"Forbidden" | "Internal server error", ...}.
      if (typeof frame?.message === 'string') reportError(new TenantcastClientError('INTERNAL', frame.message));
    // Frame types this version does not know are ignored, so the server can add some.
  }
}
