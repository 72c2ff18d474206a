/**
 * Our index of one local-aws-sqs queue's messages, beside its own array of them: what ReceiveMessage may return, in
 * SQS's order, with SQS's in-flight accounting and FIFO group locks (local/sqs.ts, fixes 6-9). It holds
 * local-aws-sqs's own entry objects and reads their `visible`/`delayed` flags, which its timers change.
 *
 * Hand-written: no library serves SQS's receive semantics over another SQS stand-in's messages.
 */

/** What local-aws-sqs keeps per message. */
export interface StandInEntry {
  visible: boolean;
  delayed?: boolean;
  record: StandInRecord;
}
export interface StandInRecord {
  MessageId: string;
  ReceiptHandle: string;
  attributes: { ApproximateReceiveCount: string; MessageGroupId?: string; MessageDeduplicationId?: string };
}

/** The queue settings the index reads, at the time it needs them (SetQueueAttributes may change them). */
export interface IndexedQueue {
  readonly fifo: boolean;
  retentionSeconds(): number;
  /** The RedrivePolicy's maxReceiveCount; undefined without one. */
  maxReceiveCount(): number | undefined;
  deduplicationScope(): string | undefined;
}

/** SQS's deduplication interval: a message sent with a deduplication id already sent in the last 5 minutes is taken and not delivered. */
export const DEDUPLICATION_INTERVAL_MS = 5 * 60_000;

/** The first message sent under a deduplication key, which a duplicate's send answers with. */
export interface FirstSent {
  readonly messageId: string;
  readonly sequenceNumber: string | undefined;
  readonly sentAt: number;
}

/** One message as we track it. */
export interface Tracked {
  id: string;
  entry: StandInEntry;
  /** Message group (FIFO); '' in a standard queue. */
  group: string;
  /** End of its retention period, when local-aws-sqs drops it. */
  expiresAt: number;
  /** While in flight: when its visibility timeout ends. */
  visibleAt: number;
  /** Deleted, expired, or moved to the DLQ. */
  gone: boolean;
  /** Its place in the queue: tracked messages are numbered in send order. */
  order: number;
}

/** The messages of one group (FIFO) or of the whole queue (standard), in send order; `head` skips the gone. */
interface Lane {
  items: Tracked[];
  head: number;
}

/** A lane in the heap, under the `order` its first message had when it was put there. */
interface LaneEntry {
  group: string;
  lane: Lane;
  order: number;
}

/** Receives one message in local-aws-sqs (counts the receive, hides it); undefined if it no longer has it. */
export type ReceiveOne = (t: Tracked) => unknown;

export class MessageIndex {
  private readonly byId = new Map<string, Tracked>();
  /** Lanes by group: a group's lane is dropped when empty. */
  private readonly lanes = new Map<string, Lane>();
  /** Received and not yet deleted or visible again (settled lazily by `settle`). */
  private readonly inFlight = new Set<Tracked>();
  /**
   * FIFO: the first message sent under each deduplication key in the last DEDUPLICATION_INTERVAL_MS, oldest first,
   * whether it is still queued or not, as SQS deduplicates (API reference, SendMessage, `MessageDeduplicationId`).
   * Until 2026-12-04 a duplicate was found only among queued messages: one sent again after the first was received
   * and deleted was delivered again locally, and dropped in AWS (found by an AWS-fidelity pass).
   */
  private readonly firstSent = new Map<string, FirstSent>();
  /** The next message's `order`. */
  private sent = 0;
  /**
   * The lanes by the order of their first message, oldest first: a binary min-heap, written here (a few lines; no
   * kept library of ours has one). A lane's key only grows (its head only moves on), so a key left behind is corrected
   * when it comes up; a dropped lane's entry is dropped then. With it a receive looks at the lanes it serves or passes
   * over (locked ones), not at every lane: a backlog of 50,000 groups of one message drains in ~60 ms here, where
   * visiting every lane per receive took 10 s.
   */
  private heap: LaneEntry[] = [];

  constructor(private readonly queue: IndexedQueue) {}

  /** In-flight messages; exact after `settle`. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  get(messageId: string): Tracked | undefined {
    return this.byId.get(messageId);
  }

  /** A message local-aws-sqs has just stored. */
  track(entry: StandInEntry, now: number): void {
    const { record } = entry;
    const known = this.byId.get(record.MessageId);
    if (known !== undefined) this.forget(known);
    const group = this.queue.fifo ? (record.attributes.MessageGroupId ?? '') : '';
    const t: Tracked = {
      id: record.MessageId,
      entry,
      group,
      expiresAt: now + this.queue.retentionSeconds() * 1000,
      visibleAt: 0,
      gone: false,
      order: this.sent++,
    };
    const deduplicationId = record.attributes.MessageDeduplicationId;
    if (this.queue.fifo && deduplicationId !== undefined) {
      const key = this.dedupKey(group, deduplicationId);
      if (!this.firstSent.has(key)) {
        this.firstSent.set(key, {
          messageId: record.MessageId,
          sequenceNumber: (record.attributes as { SequenceNumber?: string }).SequenceNumber,
          sentAt: now,
        });
      }
    }
    this.byId.set(t.id, t);
    let lane = this.lanes.get(group);
    if (lane === undefined) {
      lane = { items: [], head: 0 };
      this.lanes.set(group, lane);
      this.push({ group, lane, order: t.order });
    }
    lane.items.push(t);
  }

  /** Deleted, moved or expired: no longer queued. */
  forget(t: Tracked): void {
    t.gone = true;
    this.byId.delete(t.id);
    this.inFlight.delete(t);
  }

  /** Hidden until `visibleAt` (a receive, or a visibility change). */
  markInFlight(t: Tracked, visibleAt: number): void {
    t.visibleAt = visibleAt;
    this.inFlight.add(t);
  }

  /**
   * FIFO: the message first sent with this deduplication id (in its group, with that deduplication scope) in the last
   * DEDUPLICATION_INTERVAL_MS, if any: a send of it now is a duplicate.
   */
  duplicateOf(group: string, deduplicationId: string, now: number): FirstSent | undefined {
    for (const [key, first] of this.firstSent) {
      if (now - first.sentAt < DEDUPLICATION_INTERVAL_MS) break;
      this.firstSent.delete(key);
    }
    return this.firstSent.get(this.dedupKey(group, deduplicationId));
  }

  /** Drops from the in-flight set what is visible again, deleted, expired, or moved to the DLQ. */
  settle(now: number): void {
    for (const t of this.inFlight) {
      if (this.expired(t, now)) continue;
      if (t.entry.visible) this.inFlight.delete(t);
      else if (this.movedToDlq(t, now)) this.forget(t);
    }
  }

  /**
   * One receive: up to `max` messages. FIFO: a group is locked while any of its messages is in flight; of the others,
   * the group of the oldest receivable message comes first, with as many of its messages as possible, then the group
   * of the next oldest, as SQS does: it looks for available groups by scanning the queue from its oldest message
   * (developer guide, "FIFO queue delivery logic"; knowledge center, "sqs-fifo-messages-not-returned"). So a group
   * that fell behind is served before the busier groups that are ahead of it. (Until 2026-12-03 groups here took
   * turns in a fixed order: of the fan-out lanes of a large group, which two sandboxes shared in batches of 10, every
   * other lane got only the slots the lane before it left and fell seconds behind; see docs/delivery.md.) Call
   * `settle` first.
   */
  take(max: number, visibilityTimeout: number, now: number, receiveOne: ReceiveOne): unknown[] {
    const batch: unknown[] = [];
    const locked = new Set<string>();
    if (this.queue.fifo) for (const t of this.inFlight) locked.add(t.group);
    // Lanes taken off the heap and put back afterwards: locked, not receivable, or served.
    const passed: LaneEntry[] = [];
    while (batch.length < max) {
      const top = this.pop();
      if (top === undefined) break;
      const { group, lane } = top;
      if (this.lanes.get(group) !== lane) continue;
      const head = this.headOf(lane, now);
      if (head === undefined) {
        this.lanes.delete(group);
        continue;
      }
      if (head.order !== top.order) {
        this.push({ group, lane, order: head.order });
        continue;
      }
      passed.push(top);
      if (!locked.has(group)) this.takeFrom(lane, batch, max, now, now + visibilityTimeout * 1000, receiveOne);
    }
    for (const entry of passed) this.push(entry);
    return batch;
  }

  private push(entry: LaneEntry): void {
    const h = this.heap;
    let i = h.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = h[parent] as LaneEntry;
      if (above.order <= entry.order) break;
      h[i] = above;
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): LaneEntry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= h.length) break;
      if (child + 1 < h.length && (h[child + 1] as LaneEntry).order < (h[child] as LaneEntry).order) child++;
      const below = h[child] as LaneEntry;
      if (below.order >= last.order) break;
      h[i] = below;
      i = child;
    }
    h[i] = last;
    return top;
  }

  /** PurgeQueue, DeleteQueue. */
  clear(): void {
    for (const t of this.byId.values()) t.gone = true;
    this.byId.clear();
    this.firstSent.clear();
    this.lanes.clear();
    this.heap = [];
    this.inFlight.clear();
  }

  /**
   * Takes receivable messages of one lane into `batch`, in order. In a FIFO queue, never past a message that is not
   * receivable, which keeps the group in order.
   */
  private takeFrom(
    lane: Lane,
    batch: unknown[],
    max: number,
    now: number,
    visibleAt: number,
    receiveOne: ReceiveOne,
  ): void {
    for (let i = lane.head; i < lane.items.length && batch.length < max; i++) {
      const t = lane.items[i] as Tracked;
      if (this.expired(t, now)) continue;
      if (!t.entry.visible || t.entry.delayed === true) {
        if (this.queue.fifo) return;
        continue;
      }
      const message = receiveOne(t);
      if (message === undefined) {
        this.forget(t);
      } else {
        this.markInFlight(t, visibleAt);
        batch.push(message);
      }
    }
  }

  /** The lane's first message still queued (passing the gone ones for good); undefined when it has none. */
  private headOf(lane: Lane, now: number): Tracked | undefined {
    while (lane.head < lane.items.length && this.expired(lane.items[lane.head] as Tracked, now)) lane.head++;
    if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
      lane.items = lane.items.slice(lane.head);
      lane.head = 0;
    }
    return lane.items[lane.head];
  }

  /** Whether local-aws-sqs has dropped the message (at the end of its retention period, or otherwise). */
  private expired(t: Tracked, now: number): boolean {
    if (!t.gone && now >= t.expiresAt) this.forget(t);
    return t.gone;
  }

  /** local-aws-sqs moves a message to the DLQ when a visibility timeout ends with maxReceiveCount receives. */
  private movedToDlq(t: Tracked, now: number): boolean {
    const max = this.queue.maxReceiveCount();
    return max !== undefined && now >= t.visibleAt && Number(t.entry.record.attributes.ApproximateReceiveCount) >= max;
  }

  private dedupKey(group: string, deduplicationId: string): string {
    return this.queue.deduplicationScope() === 'messageGroup' ? `${group}\u0000${deduplicationId}` : deduplicationId;
  }
}
