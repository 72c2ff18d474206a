/**
 * The wire frames of docs/protocol.md as the client sees them, and the ports the client is given (WebSocket,
 * clock, network status) so it runs in browsers, in Node with an injected `ws`, and in tests with fakes.
 */

/** Codes the server puts in `error` frames (docs/protocol.md, "Error codes"). */
export type ServerErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'TOO_LARGE'
  | 'INTERNAL';

/**
 * Codes only the client produces: `TIMEOUT` (no answer in time), `QUEUE_FULL` (too many publishes waiting for a
 * connection), `CLOSED` (the client was closed with the request outstanding), `HANDLER_FAILED` (an app handler
 * threw), `PROTOCOL` (a frame the client does not understand).
 */
export type ClientOnlyErrorCode = 'TIMEOUT' | 'QUEUE_FULL' | 'CLOSED' | 'HANDLER_FAILED' | 'PROTOCOL';

export type ErrorCode = ServerErrorCode | ClientOnlyErrorCode;

/** A delivered message. `seq` counts per tenant and group, from 1. */
export interface Message<T = unknown> {
  readonly type: 'message';
  readonly group: string;
  readonly id: string;
  readonly data: T;
  readonly from: string;
  readonly ts: number;
  readonly seq?: number;
}

export interface AckFrame {
  type: 'ack';
  ref?: string;
  id?: string;
  /** The group's current sequence number, if the server tells it on a subscribe. */
  seq?: number;
}
export interface PongFrame {
  type: 'pong';
  ref?: string;
}
export interface ErrorFrame {
  type: 'error';
  ref?: string;
  code: ServerErrorCode;
  message: string;
  /** RATE_LIMITED: wait this long (ms) before trying again. */
  retryAfterMs?: number;
}
export interface BatchFrame {
  type: 'batch';
  messages: Message[];
}
export interface ResetFrame {
  type: 'reset';
  group: string;
  reason: string;
  seq: number;
}

export type ServerFrame = AckFrame | PongFrame | ErrorFrame | Message | BatchFrame | ResetFrame;

export type ClientFrame =
  | { action: 'subscribe'; group: string; since?: number; ref: string }
  | { action: 'unsubscribe'; group: string; ref: string }
  | { action: 'publish'; group: string; data: unknown; ref: string }
  | { action: 'ping'; ref: string }
  | { action: 'refresh'; token: string; ref: string };

/** disconnected → connecting → connected → reconnecting → connected … → disconnected (after `close()`). */
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting';

/** What a `reset` event carries: the group's history no longer reaches back to what this client saw (`HISTORY_EXPIRED`), is too long to replay (`HISTORY_TOO_LONG`), its replay failed for good (`REPLAY_FAILED`), or an entity feed's history was judged under access rules since changed (`RULES_CHANGED`); reload it. */
export interface ResetEvent {
  readonly group: string;
  readonly reason: string;
  readonly seq: number;
}

// ---- ports ----

/**
 * An event handler property. Declared through a method so its parameter is checked bivariantly: implementations
 * whose handlers take a richer event (the DOM's MessageEvent, ws's) still fit.
 */
type Handler<E> = { handle(event: E): void }['handle'];

/** The part of the WHATWG WebSocket the client uses; browsers' `WebSocket` and Node's `ws` both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * Time and timers; inject a fake in tests. As the platform's: a delay below 0 means 0, and clearing `undefined` (or a
 * timer that fired) does nothing.
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Network reachability, e.g. the browser's `online`/`offline` events. */
export interface Network {
  isOnline(): boolean;
  /** Calls `listener` on every change; returns a function that stops listening. */
  subscribe(listener: (online: boolean) => void): () => void;
}

/** A token, with its expiry (epoch seconds) when the caller knows it; otherwise the JWT's `exp` is read. */
export type TokenResult = string | { readonly token: string; readonly expiresAt?: number };
