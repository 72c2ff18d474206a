/**
 * Subscriptions: the groups this client is subscribed to, each with its handlers, its `ready` promise and its cursor
 * (dedupe.ts: where it stands, for `since`, and the ids already delivered). It owns subscribing a group on every
 * usable socket (and every group on a new one), dropping a group the server refused, telling the server when the
 * last handler leaves, delivering messages once each (a throwing handler is reported, the others still run) and
 * resets. Sockets and requests are the client's: `request` sends a frame and settles with its ack or error.
 */
import { GroupCursor } from './dedupe.ts';
import { TenantcastClientError } from './errors.ts';
import type { AckFrame, Message, ResetEvent, ResetFrame } from './types.ts';

/** Call it to unsubscribe; `ready` settles when the server acknowledged (or refused) the subscription. */
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
  readonly ready: Promise<void>;
  resolve(): void;
  reject(error: TenantcastClientError): void;
}

type Answer = AckFrame | TenantcastClientError;
export type SubscriptionFrame =
  | { action: 'subscribe'; group: string; since?: number }
  | { action: 'unsubscribe'; group: string };

/**
 * `transports` are the client's sockets (usable: open and not draining); `request` sends a subscribe or unsubscribe
 * frame on one, `group` naming the group its errors are about; `report` and `onReset` reach the app's listeners.
 */
export function createSubscriptions<T extends { readonly open: boolean; readonly role: string }>(
  dedupeWindow: number,
  transports: Set<T>,
  request: (t: T, frame: SubscriptionFrame, settle: (answer: Answer) => void, group?: string) => void,
  report: (error: TenantcastClientError) => void,
  onReset: (event: ResetEvent) => void,
): Subscriptions<T> {
  const groups = new Map<string, Group>();
  const usable = (t: T) => t.open && t.role !== 'draining';

  function subscribeOn(t: T, name: string): Promise<void> {
    const group = groups.get(name);
    if (!group) return Promise.resolve();
    const since = group.cursor.lastSeq;
    return new Promise((done) => {
      request(
        t,
        since === undefined ? { action: 'subscribe', group: name } : { action: 'subscribe', group: name, since },
        (outcome) => {
          done();
          if (outcome instanceof TenantcastClientError) {
            report(outcome);
            // Refused by the server (not a timeout): drop the group, so it is not retried on every reconnect.
            if (outcome.code !== 'TIMEOUT' && groups.get(name) === group) {
              groups.delete(name);
              group.reject(outcome);
            }
            return;
          }
          // Subscribed live (no `since`): where the group stands now is where a later resubscribe resumes.
          if (since === undefined && group.cursor.lastSeq === undefined) group.cursor.advance(outcome.seq);
          group.resolve();
        },
        name,
      );
    });
  }

  return {
    add<M>(name: string, handler: (message: Message<M>) => void): Subscription {
      let group = groups.get(name);
      if (!group) {
        let resolve!: () => void;
        let reject!: (error: TenantcastClientError) => void;
        const ready = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        // `ready` need not be awaited: an unobserved refusal is reported through the 'error' event instead.
        ready.catch(() => undefined);
        group = { handlers: new Set(), cursor: new GroupCursor(dedupeWindow), ready, resolve, reject };
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
        for (const t of transports) {
          if (!usable(t)) continue;
          request(t, { action: 'unsubscribe', group: name }, (outcome) => {
            if (outcome instanceof TenantcastClientError) report(outcome);
          });
        }
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
