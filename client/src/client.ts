/**
 * The tenantcast browser client: one logical connection that survives network drops, API Gateway's idle timeout
 * and 2-hour cap, and token expiry, and delivers every message of a subscribed group to its handlers once.
 *
 * Written by hand (no kept library does this in a browser-sized package); the shape follows centrifuge-js's good
 * ideas: the state changes in one place, every socket dies through one path, and the WebSocket, clock, randomness
 * and network status are injected. This file owns the public API (the options, events and client types) and
 * `createClient`, which only wires the units that own the rest: session.ts (the state funnel `setState`, opening
 * sockets, the one teardown path `end`, a lost primary, the network status), rollover.ts (the standby, promotion,
 * the old primary's drain), keepalive.ts (the primary's heartbeat, token refresh and rollover timer),
 * subscriptions.ts (groups, handlers, resubscribe, delivery), outbox.ts (the offline queue), reconnect.ts (backoff,
 * fresh tokens, the auth check), heartbeat.ts, token.ts (expiry, refresh), transport.ts (a socket's timers and
 * requests), frames.ts (server frames), events.ts (listeners), options.ts and environment.ts (defaults, option
 * checks, default ports).
 *
 * Sockets ("transports") have a role: the `primary` carries the app's traffic; during a rollover a `standby` opens
 * with a fresh token and resubscribes (with `since`) before it becomes the primary; the old primary then drains (its
 * outstanding publishes get their acks) and closes. Messages from every open socket go through the same per-group
 * cursor, which drops duplicates by id, so the overlap produces neither a gap nor a repeat.
 */
import type { BackoffOptions } from './backoff.ts';
import type { TenantcastClientError } from './errors.ts';
import { createEvents } from './events.ts';
import { settingsFor } from './options.ts';
import { createOutbox } from './outbox.ts';
import { createReconnect } from './reconnect.ts';
import { createSession } from './session.ts';
import { createSubscriptions, type Subscription } from './subscriptions.ts';
import { createRequests, type Transport } from './transport.ts';
import type { ClientState, Clock, Message, Network, ResetEvent, TokenResult, WebSocketConstructor } from './types.ts';

export interface ClientOptions {
  /** The WebSocket URL (`WebSocketUrl` stack output, or `ws://127.0.0.1:4000/ws` locally). */
  readonly url: string;
  /**
   * Returns a token valid for at least `refreshBeforeMs`; called for every new connection and before the token
   * expires. Its expiry is `expiresAt` (epoch seconds) when given, else the JWT's `exp` claim. `fresh` is true when
   * the last connection attempt failed to open (a browser cannot see the handshake's 401), or when a refresh got a
   * token expiring no later than the current one: return a newly issued token then, not a cached one.
   */
  readonly getToken: (request?: { readonly fresh: boolean }) => TokenResult | Promise<TokenResult>;
  /**
   * An HTTP URL of the same stage that answers 401 to a bad token (e.g. `<HttpApiUrl>/v1/schema`). When connections
   * opened with fresh tokens keep failing, the client asks it with the fresh token; a 401 is reported once through
   * the `auth` event (the user must sign in again). @default none: no check
   */
  readonly authCheckUrl?: string;
  /** @default globalThis.WebSocket (pass `ws`'s WebSocket in Node 20) */
  readonly WebSocket?: WebSocketConstructor;
  /** @default Date.now and the global timers */
  readonly clock?: Clock;
  /** A number in [0, 1); drives the backoff jitter. @default Math.random */
  readonly random?: () => number;
  /** Reachability; `null` ignores it. @default the browser's `online`/`offline` events when there are any */
  readonly network?: Network | null;
  /** Reconnect delays (full jitter). @default { baseMs: 500, maxMs: 20_000 } */
  readonly backoff?: BackoffOptions;
  /** Ping after this long without sending a frame (API Gateway closes idle connections after 10 min). @default 240_000 */
  readonly heartbeatMs?: number;
  /** A ping not answered within this long means the connection is dead. @default 10_000 */
  readonly pongTimeoutMs?: number;
  /** How long a request (publish, subscribe, refresh) waits for its answer. @default 15_000 */
  readonly requestTimeoutMs?: number;
  /** How long a socket may take to open. @default 15_000 */
  readonly connectTimeoutMs?: number;
  /** Open a new connection this long after the current one opened (API Gateway's cap is 2 h). @default 6_600_000 */
  readonly rolloverAfterMs?: number;
  /** Refresh the token this long before it expires. @default 60_000 */
  readonly refreshBeforeMs?: number;
  /** Publishes waiting for a connection; more are refused with QUEUE_FULL. @default 100 */
  readonly maxQueuedPublishes?: number;
  /** Message ids remembered per group to drop duplicates. @default 1000 */
  readonly dedupeWindow?: number;
}

export interface ClientEvents {
  state: (state: ClientState, previous: ClientState) => void;
  error: (error: TenantcastClientError) => void;
  /** A group's history expired while this client was away: reload the group's state from its source. */
  reset: (event: ResetEvent) => void;
  /** Fresh tokens are refused (`authCheckUrl` answered 401): sign the user in again. Reconnecting goes on. */
  auth: (error: TenantcastClientError) => void;
}

export { browserNetwork } from './environment.ts';
export type { Subscription } from './subscriptions.ts';
export { tokenExpiry } from './token.ts';

export interface TenantcastClient {
  readonly state: ClientState;
  /** Starts connecting; resolves once connected (or when `close()` is called first). */
  connect(): Promise<void>;
  /** Closes every socket; outstanding and queued publishes are rejected with CLOSED. `connect()` may follow. */
  close(): void;
  subscribe<T = unknown>(group: string, handler: (message: Message<T>) => void): Subscription;
  /** Resolves with the message id once the server has durably queued it; rejects with the server's code. */
  publish(group: string, data: unknown): Promise<{ id: string }>;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
}

export function createClient(options: ClientOptions): TenantcastClient {
  const s = settingsFor(options);
  const { emit, on } = createEvents<ClientEvents>();
  const transports = new Set<Transport>();
  const requests = createRequests(
    s.clock,
    (t) => session.end(t),
    (t) => session.settled(t),
  );
  const outbox = createOutbox(s.maxQueuedPublishes);
  const reconnect = createReconnect(
    s.clock,
    s.random,
    s.backoff,
    s.authCheckUrl,
    () => session.reopen(),
    (error) => emit('auth', error),
  );
  const subscriptions = createSubscriptions(
    s.dedupeWindow,
    transports,
    (t, frame, settle) => requests.send(t, frame, s.requestTimeoutMs, settle, { group: frame.group }),
    (error) => emit('error', error),
    (event) => emit('reset', event),
    requests.arm,
    reconnect.delay,
  );
  const session = createSession(s, { transports, requests, subscriptions, outbox, reconnect, emit });

  return {
    get state() {
      return session.state;
    },

    connect() {
      const connected = new Promise<void>((resolve) => {
        if (session.state === 'connected') return resolve();
        const stop = on('state', (state) => {
          if (state !== 'connected' && state !== 'disconnected') return;
          stop();
          resolve();
        });
      });
      session.start();
      return connected;
    },

    close() {
      session.stop();
      outbox.close();
    },

    subscribe: subscriptions.add,

    publish: (group, data) =>
      new Promise((resolve, reject) => {
        if (outbox.add(group, data, resolve, reject)) session.flush();
      }),

    on,
  };
}
