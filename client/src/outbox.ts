/**
 * The outbox (offline queue): publishes waiting for a connection. It owns their order, its bound (QUEUE_FULL
 * beyond `max`), putting publishes that were in flight on a dead socket back in their original order
 * (at-least-once), and refusing what is left when the client closes. Sending is the session's: it takes the waiting
 * publishes with `take()` and gives back any it could not send.
 */
import { TenantcastClientError } from './errors.ts';

export interface QueuedPublish {
  readonly order: number;
  readonly group: string;
  readonly data: unknown;
  resolve(value: { id: string }): void;
  reject(error: TenantcastClientError): void;
}

export interface Outbox {
  /** Queues a publish (true), or rejects it with QUEUE_FULL when `max` are already waiting (false). */
  add(group: string, data: unknown, resolve: QueuedPublish['resolve'], reject: QueuedPublish['reject']): boolean;
  /** Empties the queue, handing over what was waiting, oldest first. */
  take(): QueuedPublish[];
  /** Takes the oldest waiting publish out of the queue. */
  oldest(): QueuedPublish | undefined;
  /** Puts publishes that were in flight back, all in their original order. */
  requeue(items: QueuedPublish[]): void;
  /** Rejects every waiting publish with CLOSED. */
  close(): void;
}

export function createOutbox(max: number): Outbox {
  let queue: QueuedPublish[] = [];
  let order = 0;
  return {
    add(group, data, resolve, reject) {
      if (queue.length >= max) {
        reject(new TenantcastClientError('QUEUE_FULL', `${max} publishes waiting`, group));
        return false;
      }
      queue.push({ order: ++order, group, data, resolve, reject });
      return true;
    },
    take() {
      const batch = queue;
      queue = [];
      return batch;
    },
    oldest: () => queue.shift(),
    requeue(items) {
      queue = [...items, ...queue].sort((a, b) => a.order - b.order);
    },
    close() {
      for (const item of this.take()) {
        item.reject(new TenantcastClientError('CLOSED', 'closed', item.group));
      }
    },
  };
}
