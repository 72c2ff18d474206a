/**
 * Transports and their requests. A transport is one socket with its role (the `primary` carries the app's traffic,
 * a `standby` opens during a rollover, a `draining` one finishes its outstanding acks), its named timers and the
 * requests sent on it and not answered yet. This unit owns the timers (`arm`/`disarm`; all disarmed by a teardown),
 * request refs and their timeouts (TIMEOUT), refusing a frame over API Gateway's 32 KB (TOO_LARGE), matching an
 * answer (an error frame becomes an error) to its request on the same socket, and, when a socket dies, handing back
 * the publishes that were in flight. What a failed send means (`failed`) and what follows
 * a settled request (`settled`) are the session's (session.ts).
 */
import { TenantcastClientError } from './errors.ts';
import { errorFrom } from './frames.ts';
import type { QueuedPublish } from './outbox.ts';
import type { AckFrame, ClientFrame, Clock, ErrorFrame, PongFrame, WebSocketLike } from './types.ts';

export interface Transport {
  /** A stand-in without a socket until getToken answered (session.ts). */
  ws: WebSocketLike;
  role: 'primary' | 'standby' | 'draining';
  /** Unset until the socket opens. */
  open?: boolean;
  /** Unset until the socket is torn down. */
  dead?: boolean;
  /** Set when the socket opens (session.ts). */
  openedAt: number;
  /**
   * A frame came from the server since the heartbeat last looked (heartbeat.ts): it pings after a whole `heartbeatMs`
   * without one. A flag, not a time: a wall clock stepped back (or frozen) never made the heartbeat ping (until
   * 2026-12-04: API Gateway then closed the idle connection).
   */
  heard?: boolean;
  /** Epoch ms the token of this connection expires, if known. */
  expiresAt: number | undefined;
  /** The requests sent on this socket and not answered yet, by ref. */
  readonly pending: Map<string, Request>;
  /** A publish is in flight on this socket: the next waits for its answer (session.ts, `flush`). */
  publishing?: boolean;
  /** Timers by name, or by the object they are for (a group's subscribe retry: subscriptions.ts). */
  readonly timers: Map<unknown, unknown>;
}

/** A transport for a socket about to be opened: its `ws` is a stand-in (never open, nothing to close) until then. */
export function createTransport(role: Transport['role']): Transport {
  return {
    ws: {} as WebSocketLike,
    role,
    pending: new Map(),
    timers: new Map(),
    // openedAt is set when it opens, expiresAt when getToken answered (session.ts).
  } as Transport;
}

/** The live transport with role `role` (at most one is primary and one standby), if any. */
export const withRole = (transports: Iterable<Transport>, role: Transport['role']): Transport | undefined =>
  [...transports].find((t) => t.role === role);

/** A frame the client sends, before its ref is added. */
export type Outgoing = ClientFrame extends infer F ? (F extends ClientFrame ? Omit<F, 'ref'> : never) : never;
export type Answer = AckFrame | TenantcastClientError;

/** A request sent on a transport and not answered yet. */
export interface Request {
  readonly timer: unknown;
  readonly group?: string;
  readonly publish?: QueuedPublish;
  settle(answer: Answer): void;
}

export interface Requests {
  /** (Re)arms the timer `name` of `t` (a string, or an object the timer is for). */
  arm(t: Transport, name: unknown, ms: number, callback: () => void): void;
  /** Disarms the timer `name` of `t`, or every timer of `t` without a name. */
  disarm(t: Transport, name?: unknown): void;
  /** Sends `frame` on `t` with a new ref; `settle` gets the answer, or TIMEOUT after `timeoutMs`. */
  send(
    t: Transport,
    frame: Outgoing,
    timeoutMs: number,
    settle: (answer: Answer) => void,
    extra?: { group?: string; publish?: QueuedPublish },
  ): void;
  /**
   * Settles the request `ref` sent on `t` with the server's answer (an error frame as an error naming the request's
   * group); false when `t` has no such request (an answer to a request of another socket is not taken).
   */
  answer(t: Transport, ref: string | undefined, frame: AckFrame | PongFrame | ErrorFrame): boolean;
  /** `t` died: forgets its requests and hands back the publishes in flight on it. */
  drop(t: Transport): QueuedPublish[];
}

export function createRequests(
  clock: Clock,
  failed: (t: Transport) => void,
  settled: (t: Transport) => void,
): Requests {
  let refs = 0;

  const disarm = (t: Transport, name?: unknown): void => {
    for (const key of name === undefined ? [...t.timers.keys()] : [name]) {
      clock.clearTimeout(t.timers.get(key));
      t.timers.delete(key);
    }
  };

  return {
    arm(t, name, ms, callback) {
      disarm(t, name);
      // Nothing is armed on a socket torn down: a close() from a listener (of `state`, `error`) ran while its caller
      // was about to arm timers (until 2026-12-04 a ping loop and token refreshes went on for ever after it).
      if (t.dead) return;
      t.timers.set(
        name,
        clock.setTimeout(() => {
          t.timers.delete(name);
          callback();
        }, ms),
      );
    },
    disarm,
    send(t, frame, timeoutMs, settle, extra = {}) {
      const ref = String(++refs);
      let data: string;
      try {
        data = JSON.stringify({ ...frame, ref });
      } catch (error) {
        // Data JSON cannot encode (a cycle, a BigInt) fails its own request, not the socket (until 2026-12-03 it
        // closed the connection, and the publish, put back, did the same on every new one).
        return settle(new TenantcastClientError('BAD_REQUEST', String(error), extra.group));
      }
      // API Gateway closes a connection sent a frame over 32 KB (1009), and a publish in flight on it would be sent
      // again on every new one: such a frame is refused instead.
      if (new Blob([data]).size > 32768) {
        return settle(new TenantcastClientError('TOO_LARGE', `a ${frame.action} frame over 32 KB`, extra.group));
      }
      try {
        const timer = clock.setTimeout(() => {
          t.pending.delete(ref);
          settle(new TenantcastClientError('TIMEOUT', `no answer in ${timeoutMs} ms`, extra.group));
          settled(t);
        }, timeoutMs);
        t.pending.set(ref, { timer, settle, ...extra });
        t.ws.send(data);
      } catch {
        failed(t);
      }
    },
    answer(t, ref, frame) {
      const pending = t.pending.get(ref as string);
      if (!pending) return false;
      t.pending.delete(ref as string);
      clock.clearTimeout(pending.timer);
      pending.settle(frame.type === 'error' ? errorFrom(frame, pending.group) : (frame as AckFrame));
      settled(t);
      return true;
    },
    drop(t) {
      const inFlight: QueuedPublish[] = [];
      for (const request of t.pending.values()) {
        clock.clearTimeout(request.timer);
        if (request.publish) inFlight.push(request.publish);
      }
      t.pending.clear();
      return inFlight;
    },
  };
}
