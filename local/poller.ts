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

export function startPoller(options: PollerOptions): Poller {
  const { client, queueUrl, queueArn, handler, functionName } = options;
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const log = options.log ?? console;
  const batchSize = options.batchSize;
  const windowMs = options.maxBatchingWindowSeconds * 1000;
  const timeoutSeconds = options.timeoutSeconds ?? Math.max(1, Math.floor(options.visibilityTimeoutSeconds / 6));
  const concurrency = options.concurrency ?? 2;
  const retryDelaySeconds = options.retryDelaySeconds === undefined ? 1 : options.retryDelaySeconds;
  const waitTimeSeconds = options.waitTimeSeconds ?? 20;
  const tag = `[sqs-poller ${functionName}]`;
  // The function's ARN in the context uses the queue's account (arn:aws:sqs:region:account:name).
  const accountId = queueArn.split(':')[4] || undefined;

  // Lambda's own limits on an SQS event source mapping.
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

  const stats: PollerStats = {
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
  let stopping = false;
  const receiveAborts = new Set<AbortController>();
  const pauses = new Set<() => void>();

  /** Sleeps, waking early on stop. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pauses.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      pauses.add(done);
    });

  async function receive(max: number, wait: number, abortable: boolean): Promise<Message[]> {
    const abort = abortable ? new AbortController() : undefined;
    if (abort) receiveAborts.add(abort);
    try {
      stats.receives++;
      const out = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
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
      stats.received += messages.length;
      return messages;
    } finally {
      if (abort) receiveAborts.delete(abort);
    }
  }

  /** One batch: a long poll, then, with a batching window, more receives until the batch is full or time is up. */
  async function collectBatch(): Promise<Message[]> {
    const batch = await receive(Math.min(10, batchSize), waitTimeSeconds, true);
    if (batch.length === 0 || windowMs === 0) return batch;
    const windowEnd = Date.now() + windowMs;
    while (batch.length < batchSize && !stopping) {
      const left = windowEnd - Date.now();
      if (left <= 0) break;
      try {
        // Not abortable: once we hold messages we invoke with them rather than strand them invisible.
        const more = await receive(Math.min(10, batchSize - batch.length), 0, false);
        if (more.length > 0) batch.push(...more);
        else await pause(Math.min(left, 20));
      } catch (err) {
        stats.sqsErrors++;
        log.warn(`${tag} ReceiveMessage failed while batching; invoking with ${batch.length} message(s)`, err);
        break;
      }
    }
    return batch;
  }

  /** Runs an SQS call, retrying failures with a short backoff; logs and gives up after a few attempts. */
  async function withRetries(what: string, call: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        return true;
      } catch (err) {
        stats.sqsErrors++;
        if (attempt >= MAX_ATTEMPTS) {
          log.error(`${tag} ${what} failed ${attempt} times; SQS will redeliver`, err);
          return false;
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  async function deleteMessages(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      let chunk = messages.slice(i, i + 10);
      await withRetries(`DeleteMessageBatch of ${chunk.length}`, async () => {
        const out = await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
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

  async function scheduleRetry(messages: Message[]): Promise<void> {
    if (retryDelaySeconds === null || messages.length === 0) return;
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      await withRetries(`ChangeMessageVisibilityBatch of ${chunk.length}`, async () => {
        const out = await client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((m, n) => ({
              Id: `m${n}`,
              ReceiptHandle: m.ReceiptHandle,
              VisibilityTimeout: retryDelaySeconds,
            })),
          }),
        );
        // A failure here only means the message waits out the full visibility timeout.
        if ((out.Failed ?? []).length > 0) log.warn(`${tag} ChangeMessageVisibility failed`, out.Failed);
      });
    }
  }

  /** The DLQ safety net: moves messages received more than maxReceiveCount times; returns the others. */
  async function divertExhausted(messages: Message[]): Promise<Message[]> {
    const { dlqUrl, maxReceiveCount } = options;
    if (dlqUrl === undefined || maxReceiveCount === undefined) return messages;
    const keep: Message[] = [];
    for (const message of messages) {
      if (Number(message.Attributes?.ApproximateReceiveCount ?? 0) <= maxReceiveCount) {
        keep.push(message);
        continue;
      }
      const moved = await withRetries(`moving ${message.MessageId} to the DLQ`, async () => {
        const attributes: Record<string, MessageAttributeValue> = {};
        for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
          attributes[name] = {
            DataType: value.DataType,
            ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
            ...(value.BinaryValue === undefined ? {} : { BinaryValue: value.BinaryValue }),
          };
        }
        await client.send(
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
      });
      if (!moved) continue; // Left in the queue: it comes back and we try again.
      stats.movedToDlq++;
      log.warn(`${tag} message ${message.MessageId} exceeded maxReceiveCount ${maxReceiveCount}: moved to the DLQ`);
      await withRetries(`DeleteMessage of ${message.MessageId}`, async () => {
        await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
      });
    }
    return keep;
  }

  async function invoke(messages: Message[]): Promise<Outcome> {
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, queueArn, region)) };
    const context = createLambdaContext({
      functionName,
      timeoutSeconds,
      region,
      ...(accountId === undefined ? {} : { accountId }),
      ...(options.memoryMB === undefined ? {} : { memoryMB: options.memoryMB }),
    });
    stats.invocations++;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = Symbol('timeout');
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => handler(event, context)),
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

  async function handleBatch(received: Message[]): Promise<void> {
    const messages = await divertExhausted(received);
    if (messages.length === 0) return;
    const outcome = await invoke(messages);
    let failed: Message[];
    if (outcome.kind === 'error') {
      stats.invocationErrors++;
      log.error(
        `${tag} invocation failed, all ${messages.length} message(s) will be retried: ${outcome.reason}`,
        ...(outcome.error === undefined ? [] : [outcome.error]),
      );
      failed = messages;
    } else {
      failed = messages.filter((m) => outcome.failed.has(m.MessageId ?? ''));
      const succeeded = messages.filter((m) => !outcome.failed.has(m.MessageId ?? ''));
      await deleteMessages(succeeded);
      stats.succeeded += succeeded.length;
    }
    stats.failed += failed.length;
    await scheduleRetry(failed);
  }

  async function loop(): Promise<void> {
    let backoffMs = 0;
    while (!stopping) {
      let batch: Message[];
      try {
        batch = await collectBatch();
        backoffMs = 0;
      } catch (err) {
        if (stopping) break;
        stats.sqsErrors++;
        backoffMs = Math.min(backoffMs === 0 ? 100 : backoffMs * 2, 5000);
        log.warn(`${tag} ReceiveMessage failed (${errorText(err)}); retrying in ${backoffMs} ms`);
        await pause(backoffMs);
        continue;
      }
      if (batch.length === 0) continue;
      // Handled even when stopping: the messages are ours now, and abandoning them would hide them for the
      // visibility timeout.
      stats.inFlight++;
      try {
        await handleBatch(batch);
      } catch (err) {
        log.error(`${tag} unexpected error handling a batch`, err);
      } finally {
        stats.inFlight--;
      }
    }
  }

  const loops = Array.from({ length: concurrency }, () => loop());
  let stopping$: Promise<void> | undefined;

  return {
    stats,
    stop() {
      stopping$ ??= (async () => {
        stopping = true;
        for (const wake of [...pauses]) wake();
        for (const abort of receiveAborts) abort.abort();
        await Promise.all(loops);
      })();
      return stopping$;
    },
  };
}
