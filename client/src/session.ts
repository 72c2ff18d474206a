/**
 * The session: the client's one logical connection. It owns
 * - the state: `setState` is the one place it changes, and every change is emitted as the `state` event;
 * - opening a socket: a token from getToken (a fresh one after a failed open, reconnect.ts), a WebSocket offering it
 *   as subprotocol; both must be done within connectTimeoutMs (the attempt's transport exists from the start);
 * - what an open primary does: connected, resubscribed, what keeps it usable started (keepalive.ts: heartbeat, token
 *   refresh, rollover timer), the outbox flushed (a standby is rollover.ts's);
 * - the one teardown path, `end`: a socket's close or error, a connect or pong timeout, a failed getToken or send, a
 *   finished drain, close() and going offline all end a socket (or an attempt) there, which clears its timers, handlers, socket and pending
 *   requests (publishes in flight go back to the outbox);
 * - what a lost primary means: a standby takes over, else a reconnect after the backoff (unless closed or offline).
 * The units it is given or wires (requests and timers, subscriptions, outbox, reconnection, keepalive, rollover) own
 * the rest; the WebSocket, clock and network come with the settings.
 */
import type { ClientEvents } from './client.ts';
import { TenantcastClientError } from './errors.ts';
import type { Events } from './events.ts';
import { onFrame } from './frames.ts';
import { createKeepalive } from './keepalive.ts';
import type { Settings } from './options.ts';
import type { Outbox } from './outbox.ts';
import type { Reconnect } from './reconnect.ts';
import { createRollover } from './rollover.ts';
import type { Subscriptions } from './subscriptions.ts';
import { getTokenFailed, readToken } from './token.ts';
import { createTransport, type Requests, type Transport, withRole } from './transport.ts';
import type { ClientState, WebSocketLike } from './types.ts';

export interface Session {
  readonly state: ClientState;
  /** connect(): unless started already, connecting, then a primary opens (or the network is awaited). */
  start(): void;
  /** close(): disconnected; opens under way are abandoned, reconnecting stops, every socket ends. */
  stop(): void;
  /** Sends the waiting publishes on the primary, if it is open. */
  flush(): void;
  /** The one teardown path (see the header). */
  end(t: Transport): void;
  /** Opens a primary, unless one is open or opening (reconnect.ts's retry). */
  reopen(): void;
  /** A request on `t` settled (a draining socket may be done). */
  settled(t: Transport): void;
}

/** The units the session wires; `transports` are the live sockets, shared with the subscriptions. */
export interface SessionUnits {
  readonly transports: Set<Transport>;
  readonly requests: Requests;
  readonly subscriptions: Subscriptions<Transport>;
  readonly outbox: Outbox;
  readonly reconnect: Reconnect;
  readonly emit: Events<ClientEvents>['emit'];
}

export function createSession(s: Settings, units: SessionUnits): Session {
  const { clock, network } = s;
  const { transports, requests, subscriptions, outbox, reconnect, emit } = units;
  const report = (error: TenantcastClientError) => emit('error', error);
  let state: ClientState = 'disconnected';
  let stopNetwork: (() => void) | undefined;
  /** When the token of the last primary socket to end expires (epoch ms), if known (a standby's never tells). */
  let expiry: number | undefined;

  /** The one place the state changes, but for stop(), which tells it after its teardown. */
  function setState(next: ClientState): void {
    const previous = state;
    if (next === previous) return;
    state = next;
    emit('state', next, previous);
  }

  const keepalive = createKeepalive(s, requests, end, () => rollover.start(), report);
  /** A socket becomes the primary (reconnected, or a standby taking over): the expiry of the one before is no concern. */
  const activate = (t: Transport) => {
    expiry = undefined;
    keepalive(t);
  };
  const rollover = createRollover(transports, requests, s.requestTimeoutMs, reconnect.delay, {
    connected: () => state === 'connected',
    openStandby: (fresh) => void open('standby', fresh),
    resubscribe: subscriptions.resubscribe,
    activate,
    end,
    flush,
  });

  /**
   * Opens a socket with role `role`. Its transport is there from the start, before getToken answers (with no socket
   * yet), so it counts as the primary (or standby) under way, whatever ends it ends the open too (close, offline, a
   * lost primary), and the connect timeout covers getToken: one that never answers is abandoned and retried as well.
   * `fresh` (a standby's: rollover.ts) defaults to the reconnection's fresh-token rule, which counts an attempt.
   */
  async function open(role: 'primary' | 'standby', fresh = reconnect.fresh()): Promise<void> {
    const t = createTransport(role);
    transports.add(t);
    requests.arm(t, 'connect', s.connectTimeoutMs, () => end(t));
    let token: string;
    try {
      // A token known to have expired (the server closes a connection whose token did) is never asked for again.
      fresh ||= (expiry as number) <= clock.now();
      ({ token, expiresAt: t.expiresAt } = readToken(await s.getToken({ fresh })));
    } catch (err) {
      return failed(t, getTokenFailed(err));
    }
    if (t.dead) return;
    reconnect.check(token);
    let ws: WebSocketLike;
    try {
      ws = t.ws = new s.WebSocket(s.url, ['tenantcast.v1', token]);
    } catch (err) {
      return failed(t, new TenantcastClientError('INTERNAL', `WebSocket: ${String(err)}`));
    }
    ws.onopen = () => opened(t);
    ws.onmessage = (event) => {
      t.heard = true;
      onFrame(t, event.data, subscriptions, requests, report);
    };
    ws.onclose = () => end(t);
    ws.onerror = () => undefined; // a close event always follows
  }

  /** No token or no socket: reported, and the open ends (a primary is retried later, a standby's rollover too). */
  function failed(t: Transport, error: TenantcastClientError): void {
    if (t.dead) return;
    report(error);
    end(t);
  }

  function reopen(): void {
    if (withRole(transports, 'primary') || state === 'disconnected') return;
    void open('primary');
  }

  function opened(t: Transport): void {
    if (t.dead) return;
    requests.disarm(t, 'connect');
    t.open = true;
    t.openedAt = clock.now();
    if (t.role !== 'primary') {
      rollover.opened(t);
      return;
    }
    reconnect.opened();
    setState('connected');
    activate(t);
    subscriptions.resubscribe(t);
    flush();
  }

  function end(t: Transport): void {
    if (t.dead) return;
    t.dead = true;
    t.open = false;
    transports.delete(t);
    requests.disarm(t);
    const { ws } = t;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // CONNECTING (0) or OPEN (1): close it; one already closing or closed is left alone.
    if (ws.readyState < 2) {
      try {
        ws.close(1000);
      } catch {
        // Closing a socket that is still connecting throws in some implementations; it is abandoned either way.
      }
    }
    // Publishes in flight go back to the front of the queue, in order: at-least-once.
    outbox.requeue(requests.drop(t));
    if (t.role === 'primary') expiry = t.expiresAt;
    if (t.role === 'standby') rollover.failed();
    else if (t.role === 'primary' && !rollover.takeOver()) lost();
    flush();
  }

  /** The primary is gone (or could not open): retry after a full-jitter backoff, unless closed or offline. */
  function lost(): void {
    if (state === 'disconnected') return;
    rollover.cancel();
    setState('reconnecting');
    if (!network || network.isOnline()) reconnect.later();
  }

  /**
   * Sends the oldest queued publish on the primary, one at a time in the session: API Gateway runs a connection's
   * frames concurrently, so publishes sent together could be sequenced in another order (until 2026-12-05 the queue
   * went out at once, and 15 publishes made in one tick arrived as `1,0,2,…,13,12,14`). The next goes once the previous
   * is answered, queued in its group's order by then, or its socket ended (`requests.drop` hands it back in place); a
   * draining socket's publish holds the new primary's back. Each publish refused before it is sent (TOO_LARGE,
   * BAD_REQUEST) is answered at once and flushes the next from its answer: a recursion as deep as such publishes in a
   * row, at most `maxQueuedPublishes`.
   */
  function flush(): void {
    const t = withRole(transports, 'primary');
    const item = t?.open && ![...transports].some((x) => x.publishing) ? outbox.oldest() : undefined;
    if (!item || !t) return;
    t.publishing = true;
    requests.send(
      t,
      { action: 'publish', group: item.group, data: item.data },
      s.requestTimeoutMs,
      (outcome) => {
        t.publishing = false;
        if (outcome instanceof TenantcastClientError) item.reject(outcome);
        else item.resolve({ id: outcome.id ?? '' });
        flush();
      },
      { group: item.group, publish: item },
    );
  }

  /**
   * Reconnecting stops and every socket ends, attempts under way too, the standby first (so the primary's end does not
   * promote it).
   */
  function endAll(): void {
    reconnect.cancel();
    rollover.cancel();
    for (const t of [...transports]) end(t);
  }

  function onNetwork(online: boolean): void {
    if (state === 'disconnected') return;
    if (!online) {
      endAll();
      setState('reconnecting');
    } else if (!withRole(transports, 'primary')) {
      reconnect.cancel(true);
      reopen();
    }
  }

  return {
    get state() {
      return state;
    },
    start() {
      if (state !== 'disconnected') return;
      setState('connecting');
      reconnect.cancel(true);
      stopNetwork = network?.subscribe(onNetwork);
      if (network && !network.isOnline()) setState('reconnecting');
      else reopen();
    },
    stop() {
      // Disconnected before the teardown (so no lost socket reconnects), told after it: a listener that connects
      // again at once then starts from a clean session (until 2026-12-04 the teardown ended the new attempt and dropped
      // its network subscription).
      const previous = state;
      if (previous === 'disconnected') return;
      state = 'disconnected';
      stopNetwork?.();
      endAll();
      emit('state', state, previous);
    },
    flush,
    end,
    reopen,
    settled: rollover.settled,
  };
}
