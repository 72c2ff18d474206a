/**
 * The fixes around local-aws-sqs's Queue objects (listed in local/sqs.ts's file comment). We wrap methods of its
 * public Queue objects, which its request handlers call, and keep our own index of each queue's messages to serve
 * ReceiveMessage as SQS does; its files and internals stay as they are. Written against local-aws-sqs 2.0.x.
 *
 * Hand-written: no library serves SQS's receive semantics (in-flight accounting, FIFO group locks) in memory.
 */
import { randomUUID } from 'node:crypto';
import { MessageIndex, type StandInEntry, type StandInRecord, type Tracked } from './sqs-index.ts';

/** SQS's in-flight quota, standard and FIFO queues alike (FIFO's was raised from 20,000 to 120,000). */
export const SQS_MAX_IN_FLIGHT = 120_000;

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
 * An SQS error (`Code`, `com.amazonaws.sqs#<Code>`). local-aws-sqs answers with an SQS error only for errors of its own
 * base class, which it does not export: we take it from an error one of its methods throws (an unparsable receipt
 * handle).
 */
function sqsError(changeVisibility: StandInQueue['changeVisibility'], code: string, message: string): Error {
  if (sqsErrorClass === undefined) {
    try {
      changeVisibility('', '0');
    } catch (err) {
      const base: unknown = err instanceof Error ? Object.getPrototypeOf(err.constructor) : undefined;
      if (typeof base === 'function' && base.prototype instanceof Error) sqsErrorClass = base as SqsErrorClass;
    }
  }
  const init = { Code: code, Type: `com.amazonaws.sqs#${code}`, Message: message };
  return sqsErrorClass === undefined ? Object.assign(new Error(init.Message), init) : new sqsErrorClass(init);
}

/** SQS's `OverLimit`. */
function overLimit(changeVisibility: StandInQueue['changeVisibility']): Error {
  return sqsError(changeVisibility, 'OverLimit', 'The maximum number of in flight messages is reached');
}

/**
 * Characters an SQS message may not hold: anything outside #x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD |
 * #x10000–#x10FFFF (SendMessage API reference). With the `u` flag a lone surrogate is a character of its own, outside the
 * set; a pair is one character, inside it.
 */
const NOT_SQS_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * Fix 10: local-aws-sqs takes any character; SQS does not (the SendMessage(Batch) reference: "rejects the message
 * and returns an InvalidMessageContents error"; another page says it replaces them with U+FFFD instead). Refused
 * here as the former, so a body we build with such a character fails locally as loudly as it would in AWS; a batch
 * entry fails alone, in the batch's `Failed`.
 */
function invalidContents(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const { MessageBody, MessageAttributes } = input as SendInput;
  if (typeof MessageBody === 'string' && NOT_SQS_CHARACTER.test(MessageBody)) return 'the message body';
  for (const [name, value] of Object.entries((MessageAttributes ?? {}) as Record<string, { StringValue?: unknown }>)) {
    if (typeof value?.StringValue === 'string' && NOT_SQS_CHARACTER.test(value.StringValue)) {
      return `message attribute '${name}'`;
    }
  }
  return undefined;
}

/** Long polls waiting for a change of the queue, woken by a send, a delete or a message becoming visible. */
class Waiters {
  private readonly waiting = new Set<() => void>();

  get size(): number {
    return this.waiting.size;
  }

  wake(): void {
    for (const waiter of [...this.waiting]) waiter();
  }

  /** Resolves on the next wake, or after `ms`. */
  waitForChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.waiting.add(done);
    });
  }
}

/** local-aws-sqs's own methods, kept before they are replaced (each bound to its queue). */
interface StandInMethods {
  readonly changeVisibility: StandInQueue['changeVisibility'];
  readonly delete: StandInQueue['delete'];
  readonly getAttributes: StandInQueue['getAttributes'];
  readonly clearRecords: StandInQueue['clearRecords'];
  readonly setRecord: StandInQueue['setRecord'];
  readonly newRecord: StandInQueue['newRecord'];
  readonly createRecord: CreateRecord | undefined;
}

/** A queue's replacements for local-aws-sqs's methods, over our own index of its messages (local/sqs.ts lists the fixes). */
class PatchedQueue {
  private readonly fifo: boolean;
  private readonly index: MessageIndex;
  private readonly waiters = new Waiters();

  constructor(
    private readonly queue: StandInQueue,
    private readonly context: QueuePatchContext,
    private readonly own: StandInMethods,
  ) {
    this.fifo = queue.FifoQueue === true;
    this.index = new MessageIndex({
      fifo: this.fifo,
      retentionSeconds: () => queue.MessageRetentionPeriod,
      maxReceiveCount: () =>
        queue.RedrivePolicy === undefined ? undefined : Number(queue.RedrivePolicy.maxReceiveCount),
      deduplicationScope: () => queue.DeduplicationScope,
    });
  }

  /** Receives one message through local-aws-sqs's visibility change; undefined if it no longer has it. */
  private receiveOne(t: Tracked, visibilityTimeout: number): unknown {
    const handle = receiptHandleFor(this.queue.QueueName, t.id);
    t.entry.record.ReceiptHandle = handle;
    // Its FIFO queues change the visibility of in-flight messages only.
    if (this.fifo) t.entry.visible = false;
    try {
      // Counts a receive (ApproximateReceiveCount, first-receive time), hides the message, and arms its timer that
      // makes it visible again or moves it to the DLQ.
      if (!this.own.changeVisibility(handle, String(visibilityTimeout))) return undefined;
    } catch {
      return undefined;
    }
    const { record } = t.entry;
    return { ...record, attributes: { ...record.attributes } };
  }

  /**
   * Fix 9: local-aws-sqs looks for a FIFO message's duplicate by scanning every queued message, which makes queueing
   * a backlog quadratic (50,000 messages: tens of seconds), and finds none once the first was deleted (SQS: within 5
   * minutes of its send, whatever became of it). We look it up in our index, and store a message that has none the
   * way it would (its `createRecord` and `newRecord`), with our own sequence numbers.
   */
  private storeFifo(input: unknown, messageId: string | undefined): unknown {
    const { createRecord } = this.own;
    if (createRecord === undefined || !isFifoInput(input)) return undefined;
    const first = this.index.duplicateOf(input.MessageGroupId, input.MessageDeduplicationId, Date.now());
    if (first !== undefined) {
      // Taken and not stored, answered as the message first sent (local-aws-sqs answers a duplicate it finds queued
      // this way too: its record, not an entry).
      const [record, md5OfSystemAttributes] = createRecord({
        MessageId: first.messageId,
        MessageBody: input.MessageBody,
        MessageAttributes: input.MessageAttributes,
        MessageSystemAttributes: input.MessageSystemAttributes,
        MessageGroupId: input.MessageGroupId,
        MessageDeduplicationId: input.MessageDeduplicationId,
        SequenceNumber: first.sequenceNumber,
      });
      return { record, MD5OfMessageSystemAttributes: md5OfSystemAttributes };
    }
    const [record, md5OfSystemAttributes] = createRecord({
      ...(messageId === undefined ? {} : { MessageId: messageId }),
      MessageBody: input.MessageBody,
      MessageAttributes: input.MessageAttributes,
      MessageSystemAttributes: input.MessageSystemAttributes,
      MessageGroupId: input.MessageGroupId,
      MessageDeduplicationId: input.MessageDeduplicationId,
      SequenceNumber: nextSequenceNumber(),
    });
    const entry = this.own.newRecord(record, Number(input.DelaySeconds));
    if (md5OfSystemAttributes !== undefined) entry.MD5OfMessageSystemAttributes = md5OfSystemAttributes;
    return entry;
  }

  setRecord(input: unknown, messageId?: string): unknown {
    const invalid = invalidContents(input);
    if (invalid !== undefined) {
      throw sqsError(this.own.changeVisibility, 'InvalidMessageContents', `Invalid characters found in ${invalid}`);
    }
    const result = (this.fifo ? this.storeFifo(input, messageId) : undefined) ?? this.own.setRecord(input, messageId);
    if (isEntry(result)) this.index.track(result, Date.now());
    // local-aws-sqs marks a new message delayed until a timer of DelaySeconds (usually 0) fires: wake after it.
    if (this.waiters.size > 0) setTimeout(() => this.waiters.wake(), 0).unref();
    return result;
  }

  delete(receiptHandle: string): boolean {
    // Throws where SQS refuses (an expired FIFO receipt handle); otherwise the message is no longer queued.
    const ok = this.own.delete(receiptHandle);
    const id = messageIdOf(receiptHandle);
    const t = id === undefined ? undefined : this.index.get(id);
    if (t !== undefined) this.index.forget(t);
    // A FIFO group may be unlocked now.
    if (this.fifo) this.waiters.wake();
    return ok;
  }

  clearRecords(): void {
    this.own.clearRecords();
    this.index.clear();
  }

  /** Fix 3: ChangeMessageVisibility must not count as a receive. */
  changeVisibility(receiptHandle: string, visibilityTimeout: string): boolean {
    const id = messageIdOf(receiptHandle);
    const t = id === undefined ? undefined : this.index.get(id);
    const count = t?.entry.record.attributes.ApproximateReceiveCount;
    const ok = this.own.changeVisibility(receiptHandle, visibilityTimeout);
    const seconds = Number(visibilityTimeout);
    if (t !== undefined && count !== undefined) {
      t.entry.record.attributes.ApproximateReceiveCount = count;
      if (ok && Number.isFinite(seconds)) this.index.markInFlight(t, Date.now() + seconds * 1000);
    }
    // Wake long polls when the message becomes visible again rather than at the next re-check.
    if (ok && Number.isFinite(seconds)) setTimeout(() => this.waiters.wake(), seconds * 1000 + 1).unref();
    return ok;
  }

  /** Fix 4: ApproximateNumberOfMessages counts visible messages only. */
  getAttributes(names?: string[]): Record<string, string> | undefined {
    const result = this.own.getAttributes(names);
    if (result?.ApproximateNumberOfMessages !== undefined) {
      const a = this.own.getAttributes(['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
      // local-aws-sqs counts every undelayed message, in flight or not; in-flight messages are never delayed.
      const visible =
        Number(a?.ApproximateNumberOfMessages ?? 0) - Number(a?.ApproximateNumberOfMessagesNotVisible ?? 0);
      result.ApproximateNumberOfMessages = String(visible);
    }
    return result;
  }

  /** Fixes 1, 2, 6, 7 and 8: our own receive over our index (see the file comment of local/sqs.ts). */
  async receive(params: ReceiveParams): Promise<unknown[]> {
    const { queue, context, index } = this;
    const waitSeconds = Number(params.WaitTimeSeconds ?? queue.ReceiveMessageWaitTimeSeconds ?? 0);
    const max = Number(params.MaxNumberOfMessages ?? 1);
    const visibilityTimeout = Number(params.VisibilityTimeout ?? queue.VisibilityTimeout);
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      if (context.closed() || context.requestGone()) return [];
      const now = Date.now();
      index.settle(now);
      const room = context.maxInFlight - index.inFlightCount;
      // At the quota, SQS answers a standard queue's short poll with OverLimit, and returns nothing otherwise.
      if (room <= 0 && !this.fifo && waitSeconds <= 0) throw overLimit(this.own.changeVisibility);
      if (room > 0) {
        const messages = index.take(Math.min(max, room), visibilityTimeout, now, (t) =>
          this.receiveOne(t, visibilityTimeout),
        );
        if (messages.length > 0) return messages;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.waiters.waitForChange(Math.min(left, RECHECK_MS));
    }
  }
}

/** Replaces a local-aws-sqs queue's methods with `PatchedQueue`'s, once. */
export function patchQueue(queue: StandInQueue, context: QueuePatchContext): void {
  if (queue[patched]) return;
  queue[patched] = true;
  const own: StandInMethods = {
    changeVisibility: queue.changeVisibility.bind(queue),
    delete: queue.delete.bind(queue),
    getAttributes: queue.getAttributes.bind(queue),
    clearRecords: queue.clearRecords.bind(queue),
    setRecord: queue.setRecord,
    newRecord: queue.newRecord,
    createRecord: (queue.constructor as { createRecord?: CreateRecord }).createRecord,
  };
  const patch = new PatchedQueue(queue, context, own);
  queue.setRecord = (input, messageId) => patch.setRecord(input, messageId);
  queue.delete = (receiptHandle) => patch.delete(receiptHandle);
  queue.clearRecords = () => patch.clearRecords();
  queue.changeVisibility = (receiptHandle, visibilityTimeout) =>
    patch.changeVisibility(receiptHandle, visibilityTimeout);
  queue.getAttributes = (names) => patch.getAttributes(names);
  queue.receive = (params) => patch.receive(params);
}
