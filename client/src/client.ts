/**
 * The tenantcast browser client: one logical connection that survives network drops, API Gateway's idle timeout
 * and 2-hour cap, and token expiry, and delivers every message of a subscribed group to its handlers once.
 *
 * Written by hand (no kept library does this in a browser-sized package); the shape follows centrifuge-js's good
 * ideas: the state changes in one place (`setState`), every socket dies through one path (`teardown`), and the
 * WebSocket, clock, randomness and network status are injected. This file owns the connection's life (opening
 * sockets, the state, teardown, rollover, the network status) and wires the units that own the rest:
 * subscriptions.ts (groups, handlers, resubscribe, delivery), outbox.ts (the offline queue), reconnect.ts (backoff,
 * fresh tokens, the auth check), heartbeat.ts, token.ts (expiry, refresh), transport.ts (a socket's timers and
 * requests), frames.ts (server frames), options.ts and environment.ts (option checks, default ports).
 *
 * Sockets ("transports") have a role: the `primary` carries the app's traffic; during a rollover a `standby` opens
 * with a fresh token and resubscribes (with `since`) before it becomes the primary; the old primary then drains (its
 * outstanding publishes get their acks) and closes. Messages from every open socket go through the same per-group
 * cursor, which drops duplicates by id, so the overlap produces neither a gap nor a repeat.
 */
import type { BackoffOptions } from './backoff.ts';
import { browserNetwork, systemClock } from './environment.ts';
import { TenantcastClientError } from './errors.ts';
import { onFrame } from './frames.ts';
import { createHeartbeat } from './heartbeat.ts';
import { positive, webSocketFor } from './options.ts';
import { createOutbox } from './outbox.ts';
import { createReconnect } from './reconnect.ts';
import { createSubscriptions, type Subscription } from './subscriptions.ts';
import { createRefresh, getTokenFailed, readToken } from './token.ts';
import { createRequests, createTransport, type Transport } from './transport.ts';
import type {
  ClientState,
  Clock,
  Message,
  Network,
  ResetEvent,
  TokenResult,
  WebSocketConstructor,
  WebSocketLike,
} from './types.ts';

export interface ClientOptions {
  /** The WebSocket URL (`WebSocketUrl` stack output, or `ws://127.0.0.1:4000/ws` locally). */
  readonly url: string;
  /**
   * Returns a token valid for at least `refreshBeforeMs`; called for every new connection and before the token
   * expires. Its expiry is `expiresAt` (epoch seconds) when given, else the JWT's `exp` claim. `fresh` is true when
   * the last connection attempt failed to open (a browser cannot see the handshake's 401): return a newly issued
   * token then, not a cached one.
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

const OPEN = 1;
const CONNECTING = 0;

export function createClient(options: ClientOptions): TenantcastClient {
  const WebSocketImpl = webSocketFor(options);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const network = options.network === null ? undefined : (options.network ?? browserNetwork());
  const heartbeatMs = positive('heartbeatMs', options.heartbeatMs, 240_000);
  const pongTimeoutMs = positive('pongTimeoutMs', options.pongTimeoutMs, 10_000);
  const requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs, 15_000);
  const connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 15_000);
  const rolloverAfterMs = positive('rolloverAfterMs', options.rolloverAfterMs, 110 * 60_000);
  const refreshBeforeMs = positive('refreshBeforeMs', options.refreshBeforeMs, 60_000);
  const outbox = createOutbox(positive('maxQueuedPublishes', options.maxQueuedPublishes, 100));

  let state: ClientState = 'disconnected';
  let primary: Transport | undefined;
  let standby: Transport | undefined;
  /** Bumped whenever in-flight connection attempts must be abandoned (close, offline). */
  let epoch = 0;
  let opening = false;
  let rolling = false;
  let stopNetwork: (() => void) | undefined;
  const reconnect = createReconnect(clock, random, options.backoff, options.authCheckUrl, openPrimary, (error) =>
    emit('auth', error),
  );
  const transports = new Set<Transport>();
  const requests = createRequests(clock, teardown, drainIfIdle);
  const { arm: setTimer, disarm, send: request } = requests;
  const subscriptions = createSubscriptions(
    positive('dedupeWindow', options.dedupeWindow, 1000),
    transports,
    (t, frame, settle, group) => request(t, frame, requestTimeoutMs, settle, { group }),
    (error) => reportError(error),
    (event) => emit('reset', event),
  );
  const connectWaiters: (() => void)[] = [];
  const listeners: { [E in keyof ClientEvents]: Set<ClientEvents[E]> } = {
    state: new Set(),
    error: new Set(),
    reset: new Set(),
    auth: new Set(),
  };

  function emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    for (const listener of [...listeners[event]]) {
      try {
        (listener as (...a: Parameters<ClientEvents[E]>) => void)(...args);
      } catch {
        // A throwing listener must not break the connection; there is nowhere better to report it.
      }
    }
  }
  const reportError = (error: TenantcastClientError) => emit('error', error);

  /** The one place the state changes. */
  function setState(next: ClientState): void {
    if (next === state) return;
    const previous = state;
    state = next;
    if (next === 'connected' || next === 'disconnected') {
      for (const resolve of connectWaiters.splice(0)) resolve();
    }
    emit('state', next, previous);
  }

  // ---- opening sockets ----

  async function open(role: 'primary' | 'standby'): Promise<void> {
    const myEpoch = epoch;
    const fresh = role === 'primary' && reconnect.fresh();
    let token: string;
    let expiresAt: number | undefined;
    try {
      ({ token, expiresAt } = readToken(await options.getToken({ fresh })));
    } catch (err) {
      if (myEpoch !== epoch) return;
      reportError(getTokenFailed(err));
      if (role === 'primary') connectionLost();
      else rolloverFailed();
      return;
    } finally {
      if (role === 'primary' && myEpoch === epoch) opening = false;
    }
    if (myEpoch !== epoch || state === 'disconnected') return;
    reconnect.check(token);
    if (role === 'standby' && !primary?.open) {
      rolling = false;
      return;
    }
    let ws: WebSocketLike;
    try {
      ws = new WebSocketImpl(options.url, ['tenantcast.v1', token]);
    } catch (err) {
      reportError(new TenantcastClientError('INTERNAL', `cannot open a WebSocket: ${String(err)}`));
      if (role === 'primary') connectionLost();
      else rolloverFailed();
      return;
    }
    const t = createTransport(ws, role, clock.now(), expiresAt);
    transports.add(t);
    if (role === 'primary') primary = t;
    else standby = t;
    ws.onopen = () => onOpen(t);
    ws.onmessage = (event) => onFrame(t, event.data, subscriptions, requests, reportError);
    ws.onclose = () => teardown(t);
    ws.onerror = () => undefined; // a close event always follows
    setTimer(t, 'connect', connectTimeoutMs, () => teardown(t));
  }

  function openPrimary(): void {
    if (opening || primary || state === 'disconnected') return;
    opening = true;
    void open('primary');
  }

  function onOpen(t: Transport): void {
    if (t.dead) return;
    disarm(t, 'connect');
    t.open = true;
    t.openedAt = clock.now();
    if (t.role === 'primary') {
      reconnect.opened();
      setState('connected');
      activate(t);
      subscriptions.resubscribe(t);
      flushQueue();
    } else {
      // Rollover: the standby takes over only once every group is resubscribed on it.
      void Promise.allSettled(subscriptions.resubscribe(t)).then(() => {
        if (!t.dead && t.role === 'standby') promote(t);
      });
    }
  }

  /** Starts the primary's heartbeat, token refresh and rollover timers. */
  function activate(t: Transport): void {
    scheduleHeartbeat(t);
    scheduleRefresh(t);
    setTimer(t, 'rollover', Math.max(0, t.openedAt + rolloverAfterMs - clock.now()), startRollover);
  }

  // ---- the one teardown path ----

  function teardown(t: Transport): void {
    if (t.dead) return;
    t.dead = true;
    t.open = false;
    transports.delete(t);
    disarm(t);
    t.ws.onopen = null;
    t.ws.onmessage = null;
    t.ws.onclose = null;
    if (t.ws.readyState === OPEN || t.ws.readyState === CONNECTING) {
      try {
        t.ws.close(1000, 'client closing');
      } catch {
        // Closing a socket that is still connecting throws in some implementations; it is abandoned either way.
      }
    }
    // Publishes in flight go back to the front of the queue, in order: at-least-once.
    outbox.requeue(requests.drop(t));

    if (t === standby) {
      standby = undefined;
      rolloverFailed();
    } else if (t === primary) {
      primary = undefined;
      if (standby?.open) promote(standby);
      else connectionLost();
    }
    flushQueue();
  }

  /** The primary is gone (or could not open): retry after a full-jitter backoff, unless closed or offline. */
  function connectionLost(): void {
    if (state === 'disconnected') return;
    if (standby) teardown(standby);
    rolling = false;
    setState('reconnecting');
    if (!network || network.isOnline()) reconnect.later();
  }

  // ---- rollover ----

  function startRollover(): void {
    if (rolling || !primary?.open || state !== 'connected') return;
    rolling = true;
    void open('standby');
  }

  function rolloverFailed(): void {
    rolling = false;
    const t = primary;
    if (t?.open) setTimer(t, 'rollover', reconnect.delay(), startRollover);
  }

  function promote(next: Transport): void {
    const previous = primary;
    standby = undefined;
    rolling = false;
    next.role = 'primary';
    primary = next;
    activate(next);
    if (previous && !previous.dead) {
      previous.role = 'draining';
      disarm(previous);
      setTimer(previous, 'drain', requestTimeoutMs, () => teardown(previous));
      drainIfIdle(previous);
    }
    flushQueue();
  }

  function drainIfIdle(t: Transport): void {
    if (t.role === 'draining' && t.pending.size === 0) teardown(t);
  }

  // ---- heartbeat and token refresh ----

  const scheduleHeartbeat = createHeartbeat<Transport>(
    heartbeatMs,
    pongTimeoutMs,
    clock,
    (t, ms, callback) => setTimer(t, 'heartbeat', ms, callback),
    (t, ms, answered) => request(t, { action: 'ping' }, ms, answered),
    teardown,
  );

  const scheduleRefresh = createRefresh<Transport>(
    refreshBeforeMs,
    clock,
    () => options.getToken(),
    (t, ms, callback) => setTimer(t, 'refresh', ms, callback),
    (t, token, answered) => request(t, { action: 'refresh', token }, requestTimeoutMs, answered),
    (error) => reportError(error),
    startRollover,
  );

  function flushQueue(): void {
    const t = primary;
    if (!t?.open || t.role !== 'primary') return;
    for (const item of outbox.take()) {
      if (t.dead) {
        outbox.back(item);
        continue;
      }
      request(
        t,
        { action: 'publish', group: item.group, data: item.data },
        requestTimeoutMs,
        (outcome) => {
          if (outcome instanceof TenantcastClientError) item.reject(outcome);
          else item.resolve({ id: outcome.id ?? '' });
        },
        { group: item.group, publish: item },
      );
    }
  }

  // ---- network ----

  function onNetwork(online: boolean): void {
    if (state === 'disconnected') return;
    if (!online) {
      epoch++;
      opening = false;
      reconnect.cancel();
      for (const t of [...transports]) teardown(t);
      setState('reconnecting');
      return;
    }
    if (!primary && !opening) {
      reconnect.cancel(true);
      openPrimary();
    }
  }

  // ---- the API ----

  return {
    get state() {
      return state;
    },

    connect() {
      const connected = new Promise<void>((resolve) => {
        if (state === 'connected') resolve();
        else connectWaiters.push(resolve);
      });
      if (state !== 'disconnected') return connected;
      setState('connecting');
      reconnect.cancel(true);
      stopNetwork = network?.subscribe(onNetwork);
      if (network && !network.isOnline()) setState('reconnecting');
      else openPrimary();
      return connected;
    },

    close() {
      if (state !== 'disconnected') {
        epoch++;
        opening = false;
        rolling = false;
        setState('disconnected');
        stopNetwork?.();
        stopNetwork = undefined;
        reconnect.cancel();
        for (const t of [...transports]) teardown(t);
      }
      outbox.close();
    },

    subscribe: (name, handler) => subscriptions.add(name, handler),

    publish(group, data) {
      return new Promise((resolve, reject) => {
        if (outbox.add(group, data, resolve, reject)) flushQueue();
      });
    },

    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>;
      set.add(listener);
      return () => {
        set.delete(listener);
      };
    },
  };
}
