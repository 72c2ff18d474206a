/**
 * Frames from the server: parsing one, and handing it to the unit it is for. Messages and batches go to the
 * subscriptions (which drop duplicates), resets too; acks, pongs and errors with a ref settle their request (on the
 * socket that sent it); errors without a ref and API Gateway's own `{"message": ...}` frames are reported; a frame
 * that is not JSON is reported as PROTOCOL without closing the connection; unknown types are ignored, so the server
 * can add some.
 */
import { TenantcastClientError } from './errors.ts';
import type { Subscriptions } from './subscriptions.ts';
import type { Requests, Transport } from './transport.ts';
import type { AckFrame, ErrorCode, ServerFrame } from './types.ts';

export function errorFrom(frame: { code?: unknown; message?: unknown }, group?: string): TenantcastClientError {
  const code = typeof frame.code === 'string' ? (frame.code as ErrorCode) : 'INTERNAL';
  return new TenantcastClientError(code, typeof frame.message === 'string' ? frame.message : code, group);
}

/** Handles one frame `raw` received on `t`. */
export function onFrame(
  t: Transport,
  raw: unknown,
  subscriptions: Pick<Subscriptions<Transport>, 'deliver' | 'reset'>,
  requests: Pick<Requests, 'answer' | 'find'>,
  reportError: (error: TenantcastClientError) => void,
): void {
  if (t.dead) return;
  let frame: ServerFrame | { type?: undefined; message?: unknown };
  try {
    frame = JSON.parse(typeof raw === 'string' ? raw : String(raw));
  } catch {
    reportError(new TenantcastClientError('PROTOCOL', 'a frame from the server is not JSON'));
    return;
  }
  if (typeof frame !== 'object' || frame === null) return;
  switch (frame.type) {
    case 'message':
      subscriptions.deliver(frame);
      return;
    case 'batch':
      for (const message of Array.isArray(frame.messages) ? frame.messages : []) subscriptions.deliver(message);
      return;
    case 'reset':
      subscriptions.reset(frame);
      return;
    case 'ack':
    case 'pong':
      if (frame.ref !== undefined) requests.answer(t, frame.ref, frame as AckFrame);
      return;
    case 'error': {
      const pending = frame.ref === undefined ? undefined : requests.find(frame.ref);
      const error = errorFrom(frame, pending?.group);
      if (pending && frame.ref !== undefined) requests.answer(t, frame.ref, error);
      else reportError(error);
      return;
    }
    case undefined:
      // API Gateway's own error frames: {"message":"Forbidden" | "Internal server error", ...}.
      if (typeof frame.message === 'string') reportError(new TenantcastClientError('INTERNAL', frame.message));
      return;
    default:
    // Frame types this version does not know are ignored, so the server can add some.
  }
}
