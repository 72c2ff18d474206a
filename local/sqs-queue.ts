/**
 * The fixes around local-aws-sqs's Queue objects (listed in local/sqs.ts's file comment). We wrap methods of its
 * public Queue objects, which its request handlers call, and keep our own index of each queue's messages to serve
 * ReceiveMessage as SQS does; its files and internals stay as they are. Written against local-aws-sqs 2.0.x.
 *
 * Hand-written: no library serves SQS's receive semantics (in-flight accounting, FIFO group locks) in memory.
 */
import { randomUUID } from 'node:crypto';

/** SQS's in-flight quota, standard and FIFO queues alike (FIFO's was raised from 20,000 to 120,000). */
export const SQS_MAX_IN_FLIGHT = 120_000;

interface StandInRecord {
  MessageId: string;
  ReceiptHandle: string;
  attributes: { ApproximateReceiveCount: string; MessageGroupId?: string; MessageDeduplicationId?: string };
}
/** What local-aws-sqs keeps per message; `setRecord` returns it for a message it stores. */
interface StandInEntry {
  visible: boolean;
  delayed?: boolean;
  record: StandInRecord;
}
interface ReceiveParams {
  VisibilityTimeout?: number | string;
  WaitTimeSeconds?: number | string;
  MaxNumberOfMessages?: number | string;
}
/** The public surface of local-aws-sqs's Queue that we wrap. */
export interface StandInQueue {
  QueueName: string;
  FifoQueue?: boolean;
  ReceiveMessageWaitTimeSeconds: number;
  VisibilityTimeout: number;
  MessageRetentionPeriod: number;
  RedrivePolicy?: { maxReceiveCount: number | string };
  receive(params: ReceiveParams): Promise<unknown[]>;
  changeVisibility(receiptHandle: string, visibilityTimeout: string): boolean;
  delete(receiptHandle: string): boolean;
  getAttributes(names?: string[]): Record<string, string> | undefined;
  clearRecords(): void;
  setRecord: (input: unknown, messageId?: string) => unknown;
  newRecord: (record: StandInRecord, delaySeconds: number) => StandInEntry & { MD5OfMessageSystemAttributes?: string };
  DeduplicationScope?: string;
  [patched]?: true;
}

export interface QueuePatchContext {
  /** The server is closing: receives answer empty at once. */
  closed(): boolean;
  /** The client of the request being served went away (e.g. an aborted long poll): take no messages for it. */
  requestGone(): boolean;
  /** In-flight quota per queue. */
  maxInFlight: number;
}

const patched = Symbol('tenantcast.patched');
/** Fallback re-check for messages becoming visible on local-aws-sqs's own timers (visibility timeouts, delays). */
const RECHECK_MS = 20;

/** One message as we track it, beside local-aws-sqs's own entry for it. */
interface Tracked {
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
  /** FIFO: its key in `byDedupKey`. */
  dedupKey?: string;
}
/** The messages of one group (FIFO) or of the whole queue (standard), in send order; `head` skips the gone. */
interface Lane {
  items: Tracked[];
  head: number;
}

/** local-aws-sqs receipt handles: base64 of a UUID followed by JSON naming the message and queue. */
function receiptHandleFor(queueName: string, messageId: string): string {
  const text = randomUUID() + JSON.stringify({ date: Date.now(), MessageId: messageId, QueueName: queueName });
  return Buffer.from(text, 'utf8').toString('base64');
}

function messageIdOf(receiptHandle: string): string | undefined {
  try {
    const text = Buffer.from(receiptHandle, 'base64').toString('utf8');
    const parsed: unknown = JSON.parse(text.slice(text.indexOf('{')));
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'MessageId' in parsed &&
      typeof parsed.MessageId === 'string'
    ) {
      return parsed.MessageId;
    }
  } catch {
    // Not one of its handles: let local-aws-sqs reject it.
  }
  return undefined;
}

function isEntry(value: unknown): value is StandInEntry {
  return (
    typeof value === 'object' &&
    value !== null &&
    'visible' in value &&
    'record' in value &&
    typeof (value as StandInEntry).record?.MessageId === 'string'
  );
}

/** What SendMessage(Batch) and DLQ moves hand to `setRecord` (its validated request entry). */
interface SendInput {
  MessageBody: string;
  MessageAttributes?: unknown;
  MessageSystemAttributes?: unknown;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
  DelaySeconds?: number | string;
}
/** local-aws-sqs's static `Queue.createRecord`: a new record and the MD5 of its system attributes. */
type CreateRecord = (init: {
  MessageId?: string;
  MessageBody: string;
  MessageAttributes?: unknown;
  MessageSystemAttributes?: unknown;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
  SequenceNumber?: string;
}) => [StandInRecord, string | undefined];

function isFifoInput(value: unknown): value is SendInput & { MessageGroupId: string; MessageDeduplicationId: string } {
  if (typeof value !== 'object' || value === null) return false;
  const input = value as SendInput;
  return (
    typeof input.MessageBody === 'string' &&
    typeof input.MessageGroupId === 'string' &&
    input.MessageGroupId !== '' &&
    typeof input.MessageDeduplicationId === 'string' &&
    input.MessageDeduplicationId !== ''
  );
}

/** FIFO sequence numbers: 20 digits, increasing across every queue of the process (SQS: increasing per group). */
let lastSequenceNumber = BigInt(Date.now()) * 1_000_000n;
function nextSequenceNumber(): string {
  lastSequenceNumber += 1n;
  return lastSequenceNumber.toString().padStart(20, '0');
}

type SqsErrorClass = new (init: { Code: string; Type: string; Message: string }) => Error;
let sqsErrorClass: SqsErrorClass | undefined;
/**
 * SQS's `OverLimit`. local-aws-sqs answers with an SQS error only for errors of its own base class, which it does not
 * export: we take it from an error one of its methods throws (an unparsable receipt handle).
 */
function overLimit(changeVisibility: StandInQueue['changeVisibility']): Error {
  if (sqsErrorClass === undefined) {
    try {
      changeVisibility('', '0');
    } catch (err) {
      const base: unknown = err instanceof Error ? Object.getPrototypeOf(err.constructor) : undefined;
      if (typeof base === 'function' && base.prototype instanceof Error) sqsErrorClass = base as SqsErrorClass;
    }
  }
  const init = {
    Code: 'OverLimit',
    Type: 'com.amazonaws.sqs#OverLimit',
    Message: 'The maximum number of in flight messages is reached',
  };
  return sqsErrorClass === undefined ? Object.assign(new Error(init.Message), init) : new sqsErrorClass(init);
}

export function patchQueue(queue: StandInQueue, context: QueuePatchContext): void {
  if (queue[patched]) return;
  queue[patched] = true;
  const changeVisibility = queue.changeVisibility.bind(queue);
  const deleteMessage = queue.delete.bind(queue);
  const getAttributes = queue.getAttributes.bind(queue);
  const clearRecords = queue.clearRecords.bind(queue);
  const setRecord = queue.setRecord;
  const newRecord = queue.newRecord;
  const fifo = queue.FifoQueue === true;
  const createRecord = (queue.constructor as { createRecord?: CreateRecord }).createRecord;

  const byId = new Map<string, Tracked>();
  /** Lanes by group, oldest first: a group's lane is dropped when empty and comes back at the end. */
  const lanes = new Map<string, Lane>();
  /** Received and not yet deleted or visible again (settled lazily by `settleInFlight`). */
  const inFlight = new Set<Tracked>();
  /** FIFO: queued messages by deduplication key (see `dedupKey`). */
  const byDedupKey = new Map<string, Tracked>();
  const dedupKey = (group: string, deduplicationId: string) =>
    queue.DeduplicationScope === 'messageGroup' ? `${group}\u0000${deduplicationId}` : deduplicationId;

  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const waitForChange = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      waiters.add(done);
    });

  const forget = (t: Tracked) => {
    t.gone = true;
    byId.delete(t.id);
    inFlight.delete(t);
    if (t.dedupKey !== undefined && byDedupKey.get(t.dedupKey) === t) byDedupKey.delete(t.dedupKey);
  };
  /** Whether local-aws-sqs has dropped the message at the end of its retention period. */
  const expired = (t: Tracked, now: number) => {
    if (!t.gone && now >= t.expiresAt) forget(t);
    return t.gone;
  };
  /** local-aws-sqs moves a message to the DLQ when its visibility timeout ends with maxReceiveCount receives. */
  const movedToDlq = (t: Tracked, now: number) =>
    queue.RedrivePolicy !== undefined &&
    now >= t.visibleAt &&
    Number(t.entry.record.attributes.ApproximateReceiveCount) >= Number(queue.RedrivePolicy.maxReceiveCount);

  /** Drops from `inFlight` what is visible again, deleted, expired or moved to the DLQ. */
  const settleInFlight = (now: number) => {
    for (const t of inFlight) {
      if (expired(t, now)) continue;
      if (t.entry.visible) inFlight.delete(t);
      else if (movedToDlq(t, now)) forget(t);
    }
  };

  /** Receives one message the way local-aws-sqs does (through its visibility change); undefined if it is gone. */
  const deliver = (t: Tracked, visibilityTimeout: number): unknown => {
    const handle = receiptHandleFor(queue.QueueName, t.id);
    t.entry.record.ReceiptHandle = handle;
    // Its FIFO queues change the visibility of in-flight messages only.
    if (fifo) t.entry.visible = false;
    let ok = false;
    try {
      // Counts a receive (ApproximateReceiveCount, first-receive time), hides the message, and arms its timer that
      // makes it visible again or moves it to the DLQ.
      ok = changeVisibility(handle, String(visibilityTimeout));
    } catch {
      ok = false;
    }
    if (!ok) {
      forget(t);
      return undefined;
    }
    t.visibleAt = Date.now() + visibilityTimeout * 1000;
    inFlight.add(t);
    const { record } = t.entry;
    return { ...record, attributes: { ...record.attributes } };
  };

  /**
   * Takes receivable messages of one lane into `batch`, in order. In a FIFO queue a group is locked while any of its
   * messages is in flight (the caller skips locked lanes), and a message is never taken past one that is not
   * receivable, which keeps the group in order.
   */
  const takeFrom = (lane: Lane, batch: unknown[], max: number, visibilityTimeout: number, now: number) => {
    while (lane.head < lane.items.length && expired(lane.items[lane.head] as Tracked, now)) lane.head++;
    if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
      lane.items = lane.items.slice(lane.head);
      lane.head = 0;
    }
    for (let i = lane.head; i < lane.items.length && batch.length < max; i++) {
      const t = lane.items[i] as Tracked;
      if (expired(t, now)) continue;
      if (!t.entry.visible || t.entry.delayed === true) {
        if (fifo) return;
        continue;
      }
      const message = deliver(t, visibilityTimeout);
      if (message !== undefined) batch.push(message);
    }
  };

  /**
   * One receive: up to `max` messages, as many as possible from one group first (FIFO), as SQS does. Groups take
   * turns: a group served goes to the back of the line, so that none waits behind busier ones.
   */
  const take = (max: number, visibilityTimeout: number, now: number): unknown[] => {
    const batch: unknown[] = [];
    const locked = new Set<string>();
    if (fifo) for (const t of inFlight) locked.add(t.group);
    const served: [string, Lane][] = [];
    for (const [group, lane] of lanes) {
      if (batch.length >= max) break;
      const before = batch.length;
      if (!locked.has(group)) takeFrom(lane, batch, max, visibilityTimeout, now);
      if (lane.head >= lane.items.length) lanes.delete(group);
      else if (batch.length > before) served.push([group, lane]);
    }
    for (const [group, lane] of served) {
      lanes.delete(group);
      lanes.set(group, lane);
    }
    return batch;
  };

  const track = (entry: StandInEntry) => {
    const { record } = entry;
    const known = byId.get(record.MessageId);
    if (known !== undefined) forget(known);
    const group = fifo ? (record.attributes.MessageGroupId ?? '') : '';
    const t: Tracked = {
      id: record.MessageId,
      entry,
      group,
      expiresAt: Date.now() + queue.MessageRetentionPeriod * 1000,
      visibleAt: 0,
      gone: false,
    };
    const deduplicationId = record.attributes.MessageDeduplicationId;
    if (fifo && deduplicationId !== undefined) {
      t.dedupKey = dedupKey(group, deduplicationId);
      byDedupKey.set(t.dedupKey, t);
    }
    byId.set(t.id, t);
    let lane = lanes.get(group);
    if (lane === undefined) {
      lane = { items: [], head: 0 };
      lanes.set(group, lane);
    }
    lane.items.push(t);
  };

  /**
   * Fix 9: local-aws-sqs looks for a FIFO message's duplicate by scanning every queued message, which makes queueing
   * a backlog quadratic (50,000 messages: tens of seconds). We look it up in our index, and store a message that has
   * none the way it would (its `createRecord` and `newRecord`), with our own sequence numbers; a duplicate goes to it.
   */
  const storeFifo = (input: unknown, messageId: string | undefined): unknown => {
    if (createRecord === undefined || !isFifoInput(input)) return undefined;
    const known = byDedupKey.get(dedupKey(input.MessageGroupId, input.MessageDeduplicationId));
    if (known !== undefined && !expired(known, Date.now())) return undefined;
    const [record, md5OfSystemAttributes] = createRecord({
      ...(messageId === undefined ? {} : { MessageId: messageId }),
      MessageBody: input.MessageBody,
      MessageAttributes: input.MessageAttributes,
      MessageSystemAttributes: input.MessageSystemAttributes,
      MessageGroupId: input.MessageGroupId,
      MessageDeduplicationId: input.MessageDeduplicationId,
      SequenceNumber: nextSequenceNumber(),
    });
    const entry = newRecord(record, Number(input.DelaySeconds));
    if (md5OfSystemAttributes !== undefined) entry.MD5OfMessageSystemAttributes = md5OfSystemAttributes;
    return entry;
  };

  queue.setRecord = (input, messageId) => {
    const result = (fifo ? storeFifo(input, messageId) : undefined) ?? setRecord(input, messageId);
    if (isEntry(result)) track(result);
    // local-aws-sqs marks a new message delayed until a timer of DelaySeconds (usually 0) fires: wake after it.
    if (waiters.size > 0) setTimeout(wake, 0).unref();
    return result;
  };

  queue.delete = (receiptHandle) => {
    // Throws where SQS refuses (an expired FIFO receipt handle); otherwise the message is no longer queued.
    const ok = deleteMessage(receiptHandle);
    const id = messageIdOf(receiptHandle);
    const t = id === undefined ? undefined : byId.get(id);
    if (t !== undefined) forget(t);
    // A FIFO group may be unlocked now.
    if (fifo) wake();
    return ok;
  };

  queue.clearRecords = () => {
    clearRecords();
    for (const t of byId.values()) t.gone = true;
    byId.clear();
    byDedupKey.clear();
    lanes.clear();
    inFlight.clear();
  };

  // Fix 3: ChangeMessageVisibility must not count as a receive.
  queue.changeVisibility = (receiptHandle, visibilityTimeout) => {
    const id = messageIdOf(receiptHandle);
    const t = id === undefined ? undefined : byId.get(id);
    const count = t?.entry.record.attributes.ApproximateReceiveCount;
    const ok = changeVisibility(receiptHandle, visibilityTimeout);
    const seconds = Number(visibilityTimeout);
    if (t !== undefined && count !== undefined) {
      t.entry.record.attributes.ApproximateReceiveCount = count;
      if (ok && Number.isFinite(seconds)) {
        t.visibleAt = Date.now() + seconds * 1000;
        inFlight.add(t);
      }
    }
    // Wake long polls when the message becomes visible again rather than at the next re-check.
    if (ok && Number.isFinite(seconds)) setTimeout(wake, seconds * 1000 + 1).unref();
    return ok;
  };

  // Fix 4: ApproximateNumberOfMessages counts visible messages only.
  queue.getAttributes = (names) => {
    const result = getAttributes(names);
    if (result?.ApproximateNumberOfMessages !== undefined) {
      const a = getAttributes(['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
      // local-aws-sqs counts every undelayed message, in flight or not; in-flight messages are never delayed.
      const visible =
        Number(a?.ApproximateNumberOfMessages ?? 0) - Number(a?.ApproximateNumberOfMessagesNotVisible ?? 0);
      result.ApproximateNumberOfMessages = String(visible);
    }
    return result;
  };

  // Fixes 1, 2, 6, 7 and 8: our own receive over our index (see the file comment of local/sqs.ts).
  queue.receive = async (params) => {
    const waitSeconds = Number(params.WaitTimeSeconds ?? queue.ReceiveMessageWaitTimeSeconds ?? 0);
    const max = Number(params.MaxNumberOfMessages ?? 1);
    const visibilityTimeout = Number(params.VisibilityTimeout ?? queue.VisibilityTimeout);
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      if (context.closed() || context.requestGone()) return [];
      const now = Date.now();
      settleInFlight(now);
      const room = context.maxInFlight - inFlight.size;
      // At the quota, SQS answers a standard queue's short poll with OverLimit, and returns nothing otherwise.
      if (room <= 0 && !fifo && waitSeconds <= 0) throw overLimit(changeVisibility);
      if (room > 0) {
        const messages = take(Math.min(max, room), visibilityTimeout, now);
        if (messages.length > 0) return messages;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await waitForChange(Math.min(left, RECHECK_MS));
    }
  };
}
