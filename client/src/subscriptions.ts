/**
 * Subscriptions: the groups this client is subscribed to, each with its handlers, its `ready` promise and its cursor
 * (dedupe.ts: where it stands, for `since`, and what was delivered). It owns subscribing a group on every usable
 * socket (and every group on a new one), sending a subscribe again on the same socket after a transient error,
 * dropping a group the server refused, telling the server when the last handler leaves, delivering messages once each
 * (a throwing handler is reported, the others still run) and resets. Sockets and requests are the client's: `request` sends a frame and settles with its ack or error.
 */
import { GroupCursor } from './dedupe.ts';
import { TenantcastClientError } from './errors.ts';
import type { AckFrame, Message, ResetEvent, ResetFrame } from './types.ts';

/**
 * Call it to unsubscribe; `ready` settles when the server acknowledged (or refused) the subscription, or resolves
 * when it is let go first.
 */
export interface Subscription {
  (): void;
  readonly ready: Promise<void>;
}

export interface Subscriptions<T> {
  /** Adds a handler to a group, subscribing the group on every usable socket if it is new. */
  add<M>(group: string, handler: (message: Message<M>) => void): Subscription;
  /** Subscribes every group on `t` (with `since` where one is known); each promise settles with its answer. */
  resubscribe(t: T): Promise<void>[];
  /** Hands a message to its group's handlers unless it was delivered already. */
  deliver(message: Message): void;
  /** A group's history expired: it resumes from the reset position, and the app is told. */
  reset(frame: ResetFrame): void;
}

interface Group {
  readonly handlers: Set<{ handler: (message: Message) => void }>;
  readonly cursor: GroupCursor;
  ready: Promise<void>;
  resolve(): void;
  reject(error: TenantcastClientError): void;
}

type Answer = AckFrame | TenantcastClientError;
export type SubscriptionFrame =
  | { action: 'subscribe'; group: string; since: number | undefined }
  | { action: 'unsubscribe'; group: string };

/**
 * `transports` are the client's sockets (usable: open and not draining); `request` sends a subscribe or unsubscribe
 * frame on one, `group` naming the group its errors are about; `report` and `onReset` reach the app's listeners;
 * `later` (re)arms a socket's timer for a group (ending the socket disarms it); `delay` is an attempt's backoff delay.
 */
export function createSubscriptions<T extends { readonly open?: boolean; readonly role: string }>(
  dedupeWindow: number,
  transports: Set<T>,
  request: (t: T, frame: SubscriptionFrame, settle: (answer: Answer) => void) => void,
  report: (error: TenantcastClientError) => void,
  onReset: (event: ResetEvent) => void,
  later: (t: T, key: object | string, ms: number, callback: () => void) => void,
  delay: (attempt: number) => number,
): Subscriptions<T> {
  const groups = new Map<string, Group>();
  const usable = (t: T) => t.open && t.role !== 'draining';
  /** A refusal no retry changes (the server's, or the client's own for a frame over 32 KB). */
  const refused = (error: TenantcastClientError) => /BAD_REQUEST|FORBIDDEN|NOT_FOUND|TOO_LARGE/.test(error.code);
  // Said again after a transient failure (RATE_LIMITED, TIMEOUT, ...), as a subscribe is, unless the group was wanted
  // again meanwhile: until 2026-12-04 a rate-limited unsubscribe was only reported, and the server kept the
  // subscription, delivering to it and counting it under the cap. Its timer is keyed `#<group>`, apart from the socket's
  // own timers (`heartbeat`, …) and the subscribe retries (keyed by the group object). Not on a draining socket.
  const leave = (t: T, name: string, attempt = 0): void =>
    request(t, { action: 'unsubscribe', group: name }, (outcome) => {
      if (outcome instanceof TenantcastClientError) {
        report(outcome);
        if (!refused(outcome)) {
          later(t, `#${name}`, delay(attempt) + (+(outcome.retryAfterMs as number) || 0), () => {
            if (!groups.has(name) && usable(t)) leave(t, name, attempt + 1);
          });
        }
      }
    });

  /**
   * Subscribes `name` on `t`; the promise settles once the server acked or refused it (or it no longer needs to be:
   * unsubscribed, or `t` no longer usable). A refusal (BAD_REQUEST, FORBIDDEN, NOT_FOUND) drops the group; any other
   * error (RATE_LIMITED, INTERNAL, TIMEOUT, ...) is transient: the subscribe is sent again on `t` after the backoff
   * delay of its attempt plus the `retryAfterMs` the server asked for.
   */
  function subscribeOn(t: T, name: string): Promise<void> {
    const group = groups.get(name) as Group; // add and resubscribe call it for a group that is there
    let attempt = 0;
    return new Promise(function send(done) {
      // A group let go (or refused) meanwhile is not subscribed again (until review a standby's wait ended in one).
      if (!usable(t) || groups.get(name) !== group) return done();
      // A standby subscribes `since` where the group stands, so it misses nothing the primary's subscription gets: a
      // group whose first answer (a live subscribe's ack always carries the group's seq) is still to come waits for it.
      // Until 2026-12-04 a standby opening then subscribed it live, from later than the primary's ack, and the
      // primary, ended once nothing was pending on it, took the messages between with it (found by a review).
      if (t.role === 'standby' && group.cursor.lastSeq === undefined) return later(t, group, 50, () => send(done));
      request(t, { action: 'subscribe', group: name, since: group.cursor.lastSeq }, (outcome) => {
        // Unsubscribed while this was in flight: that unsubscribe, sent at once, may have reached the server in the
        // same millisecond, which counts as subscribe last (docs/protocol.md). Said again now, it is surely later;
        // unless the group was subscribed to again since (that subscribe, received later, stands anyway).
        if (!groups.has(name)) leave(t, name);
        if (outcome instanceof TenantcastClientError) {
          report(outcome);
          // Retried while the group is still wanted (a `ready` let go meanwhile has resolved: rejecting is a no-op).
          if (!refused(outcome) && groups.get(name) === group) {
            return later(t, group, delay(attempt++) + (+(outcome.retryAfterMs as number) || 0), () => send(done));
          }
          if (groups.get(name) === group) groups.delete(name);
          group.reject(outcome);
        } else {
          // Subscribed live (no `since`: only then does the ack carry a seq): where the group stands now is where a
          // later resubscribe resumes (unless a message seen meanwhile is further on: a cursor only moves forward).
          group.cursor.advance(outcome.seq);
          group.resolve();
        }
        done();
      });
    });
  }

  return {
    add<M>(name: string, handler: (message: Message<M>) => void): Subscription {
      let group = groups.get(name);
      if (!group) {
        group = { handlers: new Set(), cursor: new GroupCursor(dedupeWindow) } as Group;
        const created = group;
        created.ready = new Promise((resolve, reject) => Object.assign(created, { resolve, reject }));
        // `ready` need not be awaited: an unobserved refusal is reported through the 'error' event instead.
        created.ready.catch(() => undefined);
        groups.set(name, group);
        for (const t of transports) if (usable(t)) void subscribeOn(t, name);
      }
      const entry = { handler: handler as (message: Message) => void };
      const subscribed = group;
      subscribed.handlers.add(entry);
      const unsubscribe = () => {
        subscribed.handlers.delete(entry);
        if (subscribed.handlers.size > 0 || groups.get(name) !== subscribed) return;
        groups.delete(name);
        // Where its subscribe is still unanswered, the answer sends the unsubscribe again (`subscribeOn`).
        for (const t of transports) if (usable(t)) leave(t, name);
        // Let go, `ready` resolves now unless it was refused already: an answer still awaited may never come (its
        // socket can drop, which disarms its retry too), and until 2026-12-05 `ready` then stayed pending for ever.
        subscribed.resolve();
      };
      return Object.assign(unsubscribe, { ready: subscribed.ready });
    },

    resubscribe: (t) => [...groups.keys()].map((name) => subscribeOn(t, name)),

    deliver(message) {
      const group = groups.get(message?.group);
      if (!group || typeof message.id !== 'string' || !group.cursor.accept(message.id, message.seq)) return;
      for (const { handler } of [...group.handlers]) {
        try {
          handler(message);
        } catch (err) {
          report(new TenantcastClientError('HANDLER_FAILED', `a handler threw: ${String(err)}`, message.group));
        }
      }
    },

    reset(frame) {
      const group = groups.get(frame.group);
      if (!group) return;
      group.cursor.resetTo(frame.seq);
      onReset({ group: frame.group, reason: frame.reason, seq: frame.seq });
    },
  };
}
