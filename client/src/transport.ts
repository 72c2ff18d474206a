/**
 * Transports and their requests. A transport is one socket with its role (the `primary` carries the app's traffic,
 * a `standby` opens during a rollover, a `draining` one finishes its outstanding acks), its named timers and the
 * requests sent on it and not answered yet. This unit owns the timers (`arm`/`disarm`; all disarmed by a teardown),
 * request refs and their timeouts (TIMEOUT), matching an answer to its request on the same socket, and, when a
 * socket dies, handing back the publishes that were in flight. What a failed send means (`failed`) and what follows
 * a settled request (`settled`) are the session's (session.ts).
 */
import { TenantcastClientError } from './errors.ts';
import type { QueuedPublish } from './outbox.ts';
import type { AckFrame, ClientFrame, Clock, WebSocketLike } from './types.ts';

export interface Transport {
  readonly ws: WebSocketLike;
  role: 'primary' | 'standby' | 'draining';
  open: boolean;
  dead: boolean;
  openedAt: number;
  lastSentAt: number;
  /** Epoch ms the token of this connection expires, if known. */
  expiresAt: number | undefined;
  /** Refs of requests sent on this socket and not answered yet. */
  readonly pending: Set<string>;
  readonly timers: Map<string, unknown>;
}

/** A transport for a socket just created (not open yet), opened at `now` with a token expiring at `expiresAt`. */
export function createTransport(
  ws: WebSocketLike,
  role: Transport['role'],
  now: number,
  expiresAt: number | undefined,
): Transport {
  return {
    ws,
    role,
    open: false,
    dead: false,
    openedAt: now,
    lastSentAt: now,
    expiresAt,
    pending: new Set(),
    timers: new Map(),
  };
}

/** The live transport with role `role` (at most one is primary and one standby), if any. */
export function withRole(transports: Iterable<Transport>, role: Transport['role']): Transport | undefined {
  for (const t of transports) if (t.role === role) return t;
  return undefined;
}

/** A frame the client sends, before its ref is added. */
export type Outgoing = ClientFrame extends infer F ? (F extends ClientFrame ? Omit<F, 'ref'> : never) : never;
export type Answer = AckFrame | TenantcastClientError;

interface Request {
  readonly transport: Transport;
  readonly timer: unknown;
  readonly group?: string;
  readonly publish?: QueuedPublish;
  settle(answer: Answer): void;
}

export interface Requests {
  /** (Re)arms the timer `name` of `t`. */
  arm(t: Transport, name: string, ms: number, callback: () => void): void;
  /** Disarms the timer `name` of `t`, or every timer of `t` without a name. */
  disarm(t: Transport, name?: string): void;
  /** Sends `frame` on `t` with a new ref; `settle` gets the answer, or TIMEOUT after `timeoutMs`. */
  send(
    t: Transport,
    frame: Outgoing,
    timeoutMs: number,
    settle: (answer: Answer) => void,
    extra?: { group?: string; publish?: QueuedPublish },
  ): void;
  /** Settles the request `ref` sent on `t` (an answer to a request of another socket is ignored). */
  answer(t: Transport, ref: string, outcome: Answer): void;
  /** The request `ref` not answered yet, on whichever socket. */
  find(ref: string): { readonly group?: string } | undefined;
  /** `t` died: forgets its requests and hands back the publishes in flight on it. */
  drop(t: Transport): QueuedPublish[];
}

export function createRequests(
  clock: Clock,
  failed: (t: Transport) => void,
  settled: (t: Transport) => void,
): Requests {
  let refs = 0;
  const requests = new Map<string, Request>();

  const disarm = (t: Transport, name?: string): void => {
    for (const key of name === undefined ? [...t.timers.keys()] : [name]) {
      const handle = t.timers.get(key);
      if (handle !== undefined) clock.clearTimeout(handle);
      t.timers.delete(key);
    }
  };

  return {
    arm(t, name, ms, callback) {
      disarm(t, name);
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
      const timer = clock.setTimeout(() => {
        if (!requests.delete(ref)) return;
        t.pending.delete(ref);
        settle(
          new TenantcastClientError('TIMEOUT', `no answer to ${frame.action} within ${timeoutMs} ms`, extra.group),
        );
        settled(t);
      }, timeoutMs);
      requests.set(ref, { transport: t, timer, settle, ...extra });
      t.pending.add(ref);
      try {
        t.ws.send(JSON.stringify({ ...frame, ref }));
        t.lastSentAt = clock.now();
      } catch {
        failed(t);
      }
    },
    answer(t, ref, outcome) {
      const pending = requests.get(ref);
      if (!pending || pending.transport !== t) return;
      requests.delete(ref);
      t.pending.delete(ref);
      clock.clearTimeout(pending.timer);
      pending.settle(outcome);
      settled(t);
    },
    find: (ref) => requests.get(ref),
    drop(t) {
      const inFlight: QueuedPublish[] = [];
      for (const ref of t.pending) {
        const request = requests.get(ref);
        requests.delete(ref);
        if (!request) continue;
        clock.clearTimeout(request.timer);
        if (request.publish) inFlight.push(request.publish);
      }
      t.pending.clear();
      return inFlight;
    },
  };
}
