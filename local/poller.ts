/**
 * A stand-in for Lambda's SQS event source mapping with `ReportBatchItemFailures`: polls a queue, invokes the
 * function's handler in-process with a real `SQSEvent` and Lambda `Context`, deletes what succeeded, and leaves what
 * failed to come back.
 *
 * Where it knowingly differs from Lambda:
 * - Failed messages: Lambda leaves them invisible for the rest of the queue's visibility timeout (180 s for
 *   `delivery`). By default this poller shortens that to `retryDelaySeconds` (1 s) with ChangeMessageVisibility, so
 *   a developer sees the retry at once. `retryDelaySeconds: null` gives AWS's behaviour. The receive count, and thus
 *   the move to the DLQ after `maxReceiveCount` receives, is the same either way.
 * - Scaling: Lambda starts several pollers and scales them with the backlog, and backs off when the function fails.
 *   Here a fixed number (`concurrency`, default 2) of loops each have at most one batch in flight, with no back-off
 *   on function errors.
 * - Timeouts: a handler still running after the function timeout is not killed (it runs in this process); its batch
 *   counts as failed, as in Lambda, and whatever it does later still happens.
 * - The 6 MB invocation payload limit is not applied.
 */
import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSMessageAttributes, SQSRecord, SQSRecordAttributes } from 'aws-lambda';
import { createLambdaContext } from './lambda-events.ts';

/** A Lambda handler for SQS events; may return a partial batch response `{ batchItemFailures }`. */
export type SqsHandler = (event: SQSEvent, context: Context) => unknown;

export interface PollerLog {
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

export interface PollerOptions {
  client: SQSClient;
  queueUrl: string;
  /** Goes into each record's `eventSourceARN`. */
  queueArn: string;
  /**
   * The queue's DLQ. With `maxReceiveCount`, a message received more often than that is moved there (SendMessage with
   * the same body and attributes, then DeleteMessage) without invoking the handler, as SQS would never have delivered
   * it. A safety net only: local-aws-sqs enforces the queue's RedrivePolicy itself, so this does not normally happen.
   */
  dlqUrl?: string;
  maxReceiveCount?: number;
  /** Records per invocation: 1-10, or up to 10000 with a batching window (as in Lambda). */
  batchSize: number;
  /** 0: invoke with what one receive returns. Otherwise gather up to `batchSize` for at most this long (0-300). */
  maxBatchingWindowSeconds: number;
  /** The queue's visibility timeout; the function timeout may not exceed it (Lambda refuses such a mapping). */
  visibilityTimeoutSeconds: number;
  handler: SqsHandler;
  functionName: string;
  /** Function timeout, for `context.getRemainingTimeInMillis()` and to fail hung batches. Default: visibility / 6. */
  timeoutSeconds?: number;
  /** `context.memoryLimitInMB`. Default 128. */
  memoryMB?: number;
  /** Records' `awsRegion` and the context's ARN. Default: AWS_REGION or us-east-1. */
  region?: string;
  /** Receive loops, each with at most one batch in flight. Default 2. */
  concurrency?: number;
  /**
   * Seconds before failed messages are visible again (ChangeMessageVisibility): a local-development speed-up. Default
   * 1; 0 retries at once; `null` leaves them for the queue's visibility timeout, as Lambda does.
   */
  retryDelaySeconds?: number | null;
  /** Long-poll wait of each ReceiveMessage (0-20). Default 20. */
  waitTimeSeconds?: number;
  log?: PollerLog;
}

export interface PollerStats {
  /** ReceiveMessage calls and the messages they returned. */
  receives: number;
  received: number;
  invocations: number;
  /** Messages deleted after their invocation succeeded for them. */
  succeeded: number;
  /** Messages left to come back (failed items, or whole failed batches). */
  failed: number;
  /** Invocations that threw, timed out or returned a malformed response. */
  invocationErrors: number;
  /** Moved to the DLQ by the safety net (see `dlqUrl`). */
  movedToDlq: number;
  /** Failed SQS calls (receive, delete, visibility, DLQ), all logged and retried or left to SQS's redelivery. */
  sqsErrors: number;
  /** Batches being handled right now. */
  inFlight: number;
}

export interface Poller {
  /** Stops receiving and resolves once the batches in flight are handled and settled (deleted or left). */
  stop(): Promise<void>;
  readonly stats: Readonly<PollerStats>;
}

const LAMBDA_RECORD_ATTRIBUTES = [
  'ApproximateReceiveCount',
  'SentTimestamp',
  'SenderId',
  'ApproximateFirstReceiveTimestamp',
  'AWSTraceHeader',
  'SequenceNumber',
  'MessageGroupId',
  'MessageDeduplicationId',
  'DeadLetterQueueSourceArn',
] as const;

function toLambdaAttributes(attributes: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined ? {} : { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
      dataType: value.DataType ?? 'String',
    };
  }
  return out;
}

/** One SQS message as Lambda presents it in `event.Records`. */
export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const received = message.Attributes ?? {};
  const attributes: Record<string, string> = {};
  for (const name of LAMBDA_RECORD_ATTRIBUTES) {
    const value = received[name];
    if (value !== undefined) attributes[name] = value;
  }
  const body = message.Body ?? '';
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body,
    attributes: attributes as unknown as SQSRecordAttributes,
    messageAttributes: toLambdaAttributes(message.MessageAttributes),
    // Lambda sends null when the message has no attributes (@types/aws-lambda only allows a string or absence).
    md5OfMessageAttributes: (message.MD5OfMessageAttributes ?? null) as string | undefined,
    md5OfBody: message.MD5OfBody ?? createHash('md5').update(body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

type Outcome = { kind: 'ok'; failed: Set<string> } | { kind: 'error'; reason: string; error?: unknown };

/**
 * Lambda's reading of a partial batch response. Complete success: nothing returned (null/undefined), an object
 * without `batchItemFailures`, or with it null or empty. Complete failure: a response that is not a JSON object, a
 * `batchItemFailures` that is not a list, or an entry whose `itemIdentifier` is missing, null, empty, or not the
 * messageId of a record in the batch.
 */
export function readBatchResponse(result: unknown, messageIds: ReadonlySet<string>): Outcome {
  let json: unknown;
  try {
    // Lambda sees the handler's result as JSON.
    const text = JSON.stringify(result);
    json = text === undefined ? null : JSON.parse(text);
  } catch (error) {
    return { kind: 'error', reason: 'the response is not serializable to JSON', error };
  }
  if (json === null) return { kind: 'ok', failed: new Set() };
  if (typeof json !== 'object' || Array.isArray(json)) {
    return { kind: 'error', reason: `the response is not an object: ${truncate(JSON.stringify(json))}` };
  }
  const failures = (json as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { kind: 'ok', failed: new Set() };
  if (!Array.isArray(failures)) return { kind: 'error', reason: 'batchItemFailures is not a list' };
  const failed = new Set<string>();
  for (const entry of failures) {
    const id =
      typeof entry === 'object' && entry !== null ? (entry as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    if (typeof id !== 'string' || id === '' || !messageIds.has(id)) {
      return { kind: 'error', reason: `invalid batchItemFailures entry ${truncate(JSON.stringify(entry))}` };
    }
    failed.add(id);
  }
  return { kind: 'ok', failed };
}

function truncate(text: string | undefined, max = 200): string {
  const t = text ?? 'undefined';
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

const MAX_ATTEMPTS = 4;

/** The mapping's settings with their defaults, checked against Lambda's own limits on an SQS event source mapping. */
interface MappingSettings {
  readonly region: string;
  readonly batchSize: number;
  readonly windowMs: number;
  readonly timeoutSeconds: number;
  readonly concurrency: number;
  readonly retryDelaySeconds: number | null;
  readonly waitTimeSeconds: number;
  readonly tag: string;
  /** The function's ARN in the context uses the queue's account (arn:aws:sqs:region:account:name). */
  readonly accountId: string | undefined;
}

function mappingSettings(options: PollerOptions): MappingSettings {
  const batchSize = options.batchSize;
  const timeoutSeconds = options.timeoutSeconds ?? Math.max(1, Math.floor(options.visibilityTimeoutSeconds / 6));
  const concurrency = options.concurrency ?? 2;
  const waitTimeSeconds = options.waitTimeSeconds ?? 20;
  const tag = `[sqs-poller ${options.functionName}]`;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new Error(`${tag} batchSize must be 1-10000`);
  }
  if (options.maxBatchingWindowSeconds < 0 || options.maxBatchingWindowSeconds > 300) {
    throw new Error(`${tag} maxBatchingWindowSeconds must be 0-300`);
  }
  if (batchSize > 10 && options.maxBatchingWindowSeconds < 1) {
    throw new Error(`${tag} a batchSize over 10 needs maxBatchingWindowSeconds of at least 1`);
  }
  if (timeoutSeconds > options.visibilityTimeoutSeconds) {
    throw new Error(
      `${tag} the queue's visibility timeout (${options.visibilityTimeoutSeconds} s) is less than the function timeout (${timeoutSeconds} s)`,
    );
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`${tag} concurrency must be at least 1`);
  if (waitTimeSeconds < 0 || waitTimeSeconds > 20) throw new Error(`${tag} waitTimeSeconds must be 0-20`);
  return {
    region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
    batchSize,
    windowMs: options.maxBatchingWindowSeconds * 1000,
    timeoutSeconds,
    concurrency,
    retryDelaySeconds: options.retryDelaySeconds === undefined ? 1 : options.retryDelaySeconds,
    waitTimeSeconds,
    tag,
    accountId: options.queueArn.split(':')[4] || undefined,
  };
}

/** Sleeps that `stop` wakes early. */
class Pauses {
  private readonly waiting = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiting]) wake();
  }
}

/** The SQS side of a mapping: receives, deletes, retries' visibility, and the DLQ safety net, with their stats. */
class MappingQueue {
  private readonly receiveAborts = new Set<AbortController>();

  constructor(
    private readonly options: PollerOptions,
    private readonly settings: MappingSettings,
    private readonly stats: PollerStats,
    private readonly log: PollerLog,
  ) {}

  abortReceives(): void {
    for (const abort of this.receiveAborts) abort.abort();
  }

  async receive(max: number, wait: number, abortable: boolean): Promise<Message[]> {
    const abort = abortable ? new AbortController() : undefined;
    if (abort) this.receiveAborts.add(abort);
    try {
      this.stats.receives++;
      const out = await this.options.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.options.queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: wait,
          // Both spellings: AttributeNames is deprecated but it is what older SQS stand-ins understand.
          AttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        abort ? { abortSignal: abort.signal } : {},
      );
      const messages = out.Messages ?? [];
      this.stats.received += messages.length;
      return messages;
    } finally {
      if (abort) this.receiveAborts.delete(abort);
    }
  }

  /** Runs an SQS call, retrying failures with a short backoff; logs and gives up after a few attempts. */
  private async withRetries(what: string, call: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        return true;
      } catch (err) {
        this.stats.sqsErrors++;
        if (attempt >= MAX_ATTEMPTS) {
          this.log.error(`${this.settings.tag} ${what} failed ${attempt} times; SQS will redeliver`, err);
          return false;
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  async delete(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      let chunk = messages.slice(i, i + 10);
      await this.withRetries(`DeleteMessageBatch of ${chunk.length}`, async () => {
        const out = await this.options.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.options.queueUrl,
            Entries: chunk.map((m, n) => ({ Id: `m${n}`, ReceiptHandle: m.ReceiptHandle })),
          }),
        );
        const failed = out.Failed ?? [];
        if (failed.length > 0) {
          const failedIds = new Set(failed.map((f) => f.Id));
          chunk = chunk.filter((_, n) => failedIds.has(`m${n}`));
          throw new Error(`DeleteMessageBatch failed for ${failed.length}: ${failed.map((f) => f.Code).join(', ')}`);
        }
      });
    }
  }

  async scheduleRetry(messages: Message[]): Promise<void> {
    const delay = this.settings.retryDelaySeconds;
    if (delay === null || messages.length === 0) return;
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      await this.withRetries(`ChangeMessageVisibilityBatch of ${chunk.length}`, async () => {
        const out = await this.options.client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.options.queueUrl,
            Entries: chunk.map((m, n) => ({ Id: `m${n}`, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: delay })),
          }),
        );
        // A failure here only means the message waits out the full visibility timeout.
        if ((out.Failed ?? []).length > 0)
          this.log.warn(`${this.settings.tag} ChangeMessageVisibility failed`, out.Failed);
      });
    }
  }

  /** The DLQ safety net: moves messages received more than maxReceiveCount times; returns the others. */
  async divertExhausted(messages: Message[]): Promise<Message[]> {
    const { dlqUrl, maxReceiveCount } = this.options;
    if (dlqUrl === undefined || maxReceiveCount === undefined) return messages;
    const keep: Message[] = [];
    for (const message of messages) {
      if (Number(message.Attributes?.ApproximateReceiveCount ?? 0) <= maxReceiveCount) {
        keep.push(message);
        continue;
      }
      const moved = await this.withRetries(`moving ${message.MessageId} to the DLQ`, () =>
        this.sendToDlq(dlqUrl, message),
      );
      if (!moved) continue; // Left in the queue: it comes back and we try again.
      this.stats.movedToDlq++;
      this.log.warn(
        `${this.settings.tag} message ${message.MessageId} exceeded maxReceiveCount ${maxReceiveCount}: moved to the DLQ`,
      );
      await this.withRetries(`DeleteMessage of ${message.MessageId}`, async () => {
        await this.options.client.send(
          new DeleteMessageCommand({ QueueUrl: this.options.queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
      });
    }
    return keep;
  }

  private async sendToDlq(dlqUrl: string, message: Message): Promise<void> {
    const attributes: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
      attributes[name] = {
        DataType: value.DataType,
        ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
        ...(value.BinaryValue === undefined ? {} : { BinaryValue: value.BinaryValue }),
      };
    }
    await this.options.client.send(
      new SendMessageCommand({
        QueueUrl: dlqUrl,
        MessageBody: message.Body ?? '',
        ...(Object.keys(attributes).length === 0 ? {} : { MessageAttributes: attributes }),
        // A FIFO queue's DLQ is FIFO too: keep the message's group and deduplication id.
        ...(message.Attributes?.MessageGroupId === undefined
          ? {}
          : {
              MessageGroupId: message.Attributes.MessageGroupId,
              MessageDeduplicationId: message.Attributes.MessageDeduplicationId ?? message.MessageId,
            }),
      }),
    );
  }
}

/** Invokes the handler with a batch as Lambda would, and reads its answer (or its error or timeout). */
async function invokeWith(options: PollerOptions, settings: MappingSettings, messages: Message[]): Promise<Outcome> {
  const { timeoutSeconds } = settings;
  const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, options.queueArn, settings.region)) };
  const context = createLambdaContext({
    functionName: options.functionName,
    timeoutSeconds,
    region: settings.region,
    ...(settings.accountId === undefined ? {} : { accountId: settings.accountId }),
    ...(options.memoryMB === undefined ? {} : { memoryMB: options.memoryMB }),
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = Symbol('timeout');
  try {
    const result = await Promise.race([
      Promise.resolve().then(() => options.handler(event, context)),
      new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), timeoutSeconds * 1000);
      }),
    ]);
    if (result === timedOut) {
      return { kind: 'error', reason: `Task timed out after ${timeoutSeconds.toFixed(2)} seconds` };
    }
    return readBatchResponse(result, new Set(messages.map((m) => m.MessageId ?? '')));
  } catch (error) {
    return { kind: 'error', reason: `the handler threw ${errorText(error)}`, error };
  } finally {
    clearTimeout(timer);
  }
}

class SqsPoller implements Poller {
  readonly stats: PollerStats = {
    receives: 0,
    received: 0,
    invocations: 0,
    succeeded: 0,
    failed: 0,
    invocationErrors: 0,
    movedToDlq: 0,
    sqsErrors: 0,
    inFlight: 0,
  };
  private readonly settings: MappingSettings;
  private readonly log: PollerLog;
  private readonly queue: MappingQueue;
  private readonly pauses = new Pauses();
  private readonly loops: Promise<void>[];
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(private readonly options: PollerOptions) {
    this.settings = mappingSettings(options);
    this.log = options.log ?? console;
    this.queue = new MappingQueue(options, this.settings, this.stats, this.log);
    this.loops = Array.from({ length: this.settings.concurrency }, () => this.loop());
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.pauses.wakeAll();
      this.queue.abortReceives();
      await Promise.all(this.loops);
    })();
    return this.stopped;
  }

  /** One batch: a long poll, then, with a batching window, more receives until the batch is full or time is up. */
  private async collectBatch(): Promise<Message[]> {
    const { batchSize, windowMs, waitTimeSeconds, tag } = this.settings;
    const batch = await this.queue.receive(Math.min(10, batchSize), waitTimeSeconds, true);
    if (batch.length === 0 || windowMs === 0) return batch;
    const windowEnd = Date.now() + windowMs;
    while (batch.length < batchSize && !this.stopping) {
      const left = windowEnd - Date.now();
      if (left <= 0) break;
      try {
        // Not abortable: once we hold messages we invoke with them rather than strand them invisible.
        const more = await this.queue.receive(Math.min(10, batchSize - batch.length), 0, false);
        if (more.length > 0) batch.push(...more);
        else await this.pauses.sleep(Math.min(left, 20));
      } catch (err) {
        this.stats.sqsErrors++;
        this.log.warn(`${tag} ReceiveMessage failed while batching; invoking with ${batch.length} message(s)`, err);
        break;
      }
    }
    return batch;
  }

  private async handleBatch(received: Message[]): Promise<void> {
    const messages = await this.queue.divertExhausted(received);
    if (messages.length === 0) return;
    this.stats.invocations++;
    const outcome = await invokeWith(this.options, this.settings, messages);
    let failed: Message[];
    if (outcome.kind === 'error') {
      this.stats.invocationErrors++;
      this.log.error(
        `${this.settings.tag} invocation failed, all ${messages.length} message(s) will be retried: ${outcome.reason}`,
        ...(outcome.error === undefined ? [] : [outcome.error]),
      );
      failed = messages;
    } else {
      failed = messages.filter((m) => outcome.failed.has(m.MessageId ?? ''));
      const succeeded = messages.filter((m) => !outcome.failed.has(m.MessageId ?? ''));
      await this.queue.delete(succeeded);
      this.stats.succeeded += succeeded.length;
    }
    this.stats.failed += failed.length;
    await this.queue.scheduleRetry(failed);
  }

  private async loop(): Promise<void> {
    let backoffMs = 0;
    while (!this.stopping) {
      let batch: Message[];
      try {
        batch = await this.collectBatch();
        backoffMs = 0;
      } catch (err) {
        if (this.stopping) break;
        this.stats.sqsErrors++;
        backoffMs = Math.min(backoffMs === 0 ? 100 : backoffMs * 2, 5000);
        this.log.warn(`${this.settings.tag} ReceiveMessage failed (${errorText(err)}); retrying in ${backoffMs} ms`);
        await this.pauses.sleep(backoffMs);
        continue;
      }
      if (batch.length === 0) continue;
      // Handled even when stopping: the messages are ours now, and abandoning them would hide them for the
      // visibility timeout.
      this.stats.inFlight++;
      try {
        await this.handleBatch(batch);
      } catch (err) {
        this.log.error(`${this.settings.tag} unexpected error handling a batch`, err);
      } finally {
        this.stats.inFlight--;
      }
    }
  }
}

/** Starts polling `options.queueUrl` as Lambda's event source mapping would; throws on settings Lambda refuses. */
export function startPoller(options: PollerOptions): Poller {
  return new SqsPoller(options);
}
