/**
 * Local SQS: local-aws-sqs (an in-memory, wire-compatible SQS speaking both the JSON and the Query protocol), queue
 * creation from the manifest, and a request counter.
 *
 * local-aws-sqs supports every action we use (Send/Receive/Delete(+Batch), ChangeMessageVisibility(+Batch),
 * Get/SetQueueAttributes, RedrivePolicy with DLQ moves, message attributes, ApproximateReceiveCount, delays). It
 * differs from SQS in these ways that matter to us, which `patchQueue` (local/sqs-queue.ts) fixes around it, on its
 * public Queue objects, without touching its files. ReceiveMessage is ours: it picks messages from our own index of
 * the queue and receives each through local-aws-sqs's visibility change, which counts the receive and arms its timer
 * (visible again, or moved to the DLQ).
 * 1. Long polling waits for a *full* batch: ReceiveMessage(WaitTimeSeconds: 20, MaxNumberOfMessages: 10) with one
 *    message queued answers after 20 s. SQS answers as soon as any message is available. Fixed.
 * 2. Every ReceiveMessage takes at least 40 ms (its internal poll), even short polls. Ours answers at once when
 *    messages are there, and within ~10 ms of one arriving during a long poll.
 * 3. ChangeMessageVisibility increments ApproximateReceiveCount (SQS counts receives only), which would send
 *    messages to the DLQ early. Fixed: the count is restored after the change.
 * 4. ApproximateNumberOfMessages counts in-flight messages too (SQS counts visible ones only). Fixed.
 * 5. ReceiveMessage ignores `MessageSystemAttributeNames` (only the deprecated `AttributeNames` works). Fixed.
 * 6. FIFO queues hand out later messages of a message group while earlier ones are in flight. SQS locks a group
 *    while any of its messages is in flight (which keeps a group in order across consumers), and returns as many
 *    messages of one group as it can. Fixed. Which group comes first is SQS's too: the group of the oldest
 *    receivable message, as SQS finds available groups by scanning the queue from its oldest message (until
 *    2026-12-03 groups here took turns in a fixed order, which starved every other fan-out lane; local/sqs-index.ts).
 * 7. The in-flight quota counts *visible* messages (and is 20,000 for FIFO queues): once that many are queued, every
 *    receive fails with `OverLimit` and delivery stops for good. SQS counts messages received and not yet deleted or
 *    visible again, up to 120,000 for standard and FIFO queues alike; at that quota a standard queue answers a short
 *    poll with `OverLimit` and a long poll with nothing, a FIFO queue answers nothing. Fixed
 *    (`StartSqsOptions.maxInFlight` lowers the quota for tests).
 * 8. After a FIFO group's head moves to the DLQ, SQS makes the rest of the group receivable. Our index forgets
 *    messages local-aws-sqs moved there (as it does deleted and expired ones), so the group is released (before,
 *    only when the garbage collector dropped the moved message).
 * 9. Sending to a FIFO queue scans every queued message for a duplicate, so queueing a backlog is quadratic
 *    (50,000 messages: tens of seconds). We look duplicates up in our index and store a message without one as
 *    local-aws-sqs would (its `createRecord` and `newRecord`, with our own increasing sequence numbers). Its delete
 *    still shifts its array of messages, a cost that grows with the backlog.
 * 10. Any character is taken, where SQS refuses a message holding one outside its set (InvalidMessageContents).
 *    Fixed: refused the same way (`invalidContents`).
 * 11. Deduplication looks among queued messages only: a message sent again after the first was deleted is delivered
 *    again, where SQS takes and drops any duplicate for 5 minutes after the first's send. Fixed (local/sqs-index.ts).
 * Also, where SQS moves a message to the DLQ on the receive that would exceed maxReceiveCount, local-aws-sqs moves it
 * when its last visibility timeout expires; the observable result (received maxReceiveCount times, then in the DLQ)
 * is the same. Not reproduced: a FIFO queue finds available groups among its first 120,000 messages only (a larger
 * backlog in one group blocks groups behind it).
 * Messages live in memory only: they are lost when the process exits.
 *
 * Fault injection: `failSends(queueName | true)` makes sends to a queue answer 503 `ServiceUnavailable`, as SQS does
 * when unreachable (the outbox tests: docs/delivery.md, "Local fault injection").
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createRequestHandler } from 'local-aws-sqs';
import { aws } from '../lambdas/core/limits.ts';
import { queues as manifestQueues, type QueueSpec } from '../lambdas/manifest.ts';
import { listen, readAll, urlHost } from './http-util.ts';
import { patchQueue, type QueuePatchContext, SQS_MAX_IN_FLIGHT, type StandInQueue } from './sqs-queue.ts';

export interface StartSqsOptions {
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0: an ephemeral port. */
  port?: number;
  /** Region in queue ARNs and of the returned client. Defaults to AWS_REGION or us-east-1. */
  region?: string;
  /** Account id in queue URLs and ARNs. Defaults to local-aws-sqs's 123456789012. */
  accountId?: string;
  /** In-flight quota per queue. Defaults to SQS's 120,000; lower it only to test what happens at the quota. */
  maxInFlight?: number;
}

export interface LocalSqs {
  /** `http://host:port`, for `AWS_ENDPOINT_URL_SQS`. Queue URLs are under it. */
  endpoint: string;
  /** A client for the local runtime's own use (queue setup, pollers). Functions build their own. */
  client: SQSClient;
  /**
   * Requests served, by action (`SendMessage`, `ReceiveMessage`, ...), from every client. Counted from the JSON
   * protocol's X-Amz-Target header (what SDK v3 uses); Query-protocol requests count as `Query`.
   */
  requestCounts(): Record<string, number>;
  resetRequestCounts(): void;
  /**
   * Fault injection: `SendMessage` and `SendMessageBatch` to the queue named `queue` (its SQS name, e.g.
   * `tenantcast-local-changes`; `true`: every queue) answer HTTP 503 `ServiceUnavailable`, as SQS does when it is
   * unreachable or overloaded. The SDK retries them (standard retry mode) and then throws. Nothing is enqueued.
   * Returns a function that removes this fault; `restoreSends()` removes all.
   */
  failSends(queue: string | true): () => void;
  restoreSends(): void;
  /** Sends refused by `failSends` so far (every attempt counts, retries included). */
  refusedSends(): number;
  close(): Promise<void>;
}

/** Fixed credentials for local stand-ins: they check none, but the SDK insists on having some. */
const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

interface RequestState {
  /** The client went away (e.g. an aborted long poll): take no messages for it. */
  gone: boolean;
}
const currentRequest = new AsyncLocalStorage<RequestState>();

export async function startSqs(options: StartSqsOptions = {}): Promise<LocalSqs> {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const { service, requestHandler } = createRequestHandler({
    port: options.port ?? 0,
    hostname: urlHost(host),
    region,
    ...(options.accountId === undefined ? {} : { accountId: options.accountId }),
    // AWS makes you wait 60 s before re-creating a deleted queue; no use locally.
    emulateQueueCreationLifecycle: false,
  });
  let closing = false;
  const patchContext: QueuePatchContext = {
    closed: () => closing,
    requestGone: () => currentRequest.getStore()?.gone === true,
    maxInFlight: options.maxInFlight ?? SQS_MAX_IN_FLIGHT,
  };
  const counts = new Map<string, number>();
  // failSends: queue names (or `true` for all) whose sends answer 503.
  const failing = new Map<symbol, string | true>();
  let refused = 0;
  const failsFor = (queueUrl: unknown) =>
    [...failing.values()].some(
      (target) => target === true || (typeof queueUrl === 'string' && queueUrl.split('/').at(-1) === target),
    );

  const server = createServer((req, res) => {
    const target = req.headers['x-amz-target'];
    const action = typeof target === 'string' ? (target.split('.').pop() ?? target) : 'Query';
    counts.set(action, (counts.get(action) ?? 0) + 1);
    // Queues created by earlier requests get their fixes before this request can use them.
    for (const queue of service.Queues) patchQueue(queue as unknown as StandInQueue, patchContext);
    const request: RequestState = { gone: false };
    res.once('close', () => {
      if (!res.writableFinished) request.gone = true;
    });
    currentRequest.run(request, () => {
      const isSend = action === 'SendMessage' || action === 'SendMessageBatch';
      const handled =
        action === 'ReceiveMessage'
          ? withAttributeNames(req).then((r) => requestHandler(r, res))
          : isSend && failing.size > 0
            ? refuseIfFailing(req, res, failsFor, () => refused++).then((r) => (r ? requestHandler(r, res) : undefined))
            : requestHandler(req, res);
      handled.catch((err: unknown) => {
        console.error('[local-sqs] request failed', err);
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
    });
  });
  const { port, url: endpoint } = await listen(server, { port: options.port, host, name: 'local-aws-sqs' });
  // local-aws-sqs builds queue URLs from PORT, which it only knows when it listens itself.
  service.PORT = port;
  // No cacheMiddleware (lambdas/shared/aws.ts): the pollers' long polls pass an abort signal per call, which makes
  // the SDK skip and drop its cache on every one of them.
  const client = new SQSClient({ endpoint, region, credentials: localCredentials });

  let closed: Promise<void> | undefined;
  return {
    endpoint,
    client,
    requestCounts: () => Object.fromEntries(counts),
    resetRequestCounts: () => counts.clear(),
    failSends(queue) {
      const key = Symbol('failSends');
      failing.set(key, queue);
      return () => {
        failing.delete(key);
      };
    },
    restoreSends: () => failing.clear(),
    refusedSends: () => refused,
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        closing = true;
        client.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
        // Long polls in progress would hold close() for up to 20 s.
        server.closeAllConnections();
        // Drops all messages and their timers.
        service.resetAll();
      });
      return closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Fixes around local-aws-sqs (see the file comment).

/**
 * Fix 5: ReceiveMessage's `MessageSystemAttributeNames` (what current SDKs send; `AttributeNames` is deprecated) is
 * ignored by local-aws-sqs, so messages would come back without attributes. Copy it into `AttributeNames`.
 */
async function withAttributeNames(req: IncomingMessage): Promise<IncomingMessage> {
  let body = await readAll(req);
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {
      AttributeNames?: unknown;
      MessageSystemAttributeNames?: unknown;
    };
    if (Array.isArray(parsed.MessageSystemAttributeNames)) {
      const names = Array.isArray(parsed.AttributeNames) ? (parsed.AttributeNames as unknown[]) : [];
      parsed.AttributeNames = [...new Set([...names, ...parsed.MessageSystemAttributeNames])];
      body = Buffer.from(JSON.stringify(parsed));
    }
  } catch {
    // Not JSON (Query protocol): pass it on unchanged.
  }
  // local-aws-sqs reads only the headers and the 'data'/'end' events of the request.
  return Object.assign(Readable.from([body], { objectMode: false }), {
    headers: req.headers,
    method: req.method,
    url: req.url,
  }) as unknown as IncomingMessage;
}

/**
 * `failSends`: answers a send to a failing queue with 503 `ServiceUnavailable` in the JSON protocol's error shape
 * (what the SDK parses, and retries as a transient error); resolves with the request to pass on otherwise.
 */
async function refuseIfFailing(
  req: IncomingMessage,
  res: ServerResponse,
  failsFor: (queueUrl: unknown) => boolean,
  onRefused: () => void,
): Promise<IncomingMessage | undefined> {
  const body = await readAll(req);
  let queueUrl: unknown;
  try {
    queueUrl = (JSON.parse(body.toString('utf8')) as { QueueUrl?: unknown }).QueueUrl;
  } catch {
    queueUrl = undefined;
  }
  if (failsFor(queueUrl)) {
    onRefused();
    const text = JSON.stringify({
      __type: 'com.amazonaws.sqs#ServiceUnavailable',
      message: 'Service Unavailable (injected by failSends)',
    });
    res.writeHead(503, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-query-error': 'ServiceUnavailable;Receiver',
      'content-length': String(Buffer.byteLength(text)),
    });
    res.end(text);
    return undefined;
  }
  return Object.assign(Readable.from([body], { objectMode: false }), {
    headers: req.headers,
    method: req.method,
    url: req.url,
  }) as unknown as IncomingMessage;
}

// ---------------------------------------------------------------------------------------------------------------

export interface QueueInfo {
  /** Logical name (manifest key). */
  logicalName: string;
  /** SQS queue name (prefix + logical name). */
  name: string;
  url: string;
  arn: string;
  dlqName: string;
  dlqUrl: string;
  dlqArn: string;
  spec: QueueSpec;
}

export interface EnsureQueuesOptions {
  /** Prefix for queue names, e.g. `tenantcast-local-`. Defaults to none. */
  prefix?: string;
}

function isNamed(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

/** CreateQueue, or SetQueueAttributes when the queue exists with other attributes. Returns url and ARN. */
async function upsertQueue(
  client: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  let url: string | undefined;
  try {
    url = (await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl;
  } catch (err) {
    if (!isNamed(err, 'QueueNameExists', 'QueueAlreadyExists')) throw err;
    url = (await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    if (url !== undefined) await client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  }
  if (url === undefined) throw new Error(`no URL for queue ${name}`);
  const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  const arn = attrs.Attributes?.QueueArn;
  if (arn === undefined) throw new Error(`no ARN for queue ${name}`);
  return { url, arn };
}

/**
 * Creates (or updates) each queue of the manifest and its dead-letter queue `<name>-dlq`: visibility timeout,
 * retention, and a RedrivePolicy sending a message to the DLQ after `maxReceiveCount` receives, which local-aws-sqs
 * enforces. Idempotent.
 */
export async function ensureQueues<const Q extends Readonly<Record<string, QueueSpec>> = typeof manifestQueues>(
  client: SQSClient,
  queues: Q = manifestQueues as unknown as Q,
  options: EnsureQueuesOptions = {},
): Promise<{ [K in keyof Q]: QueueInfo }> {
  const result: Record<string, QueueInfo> = {};
  for (const [logicalName, spec] of Object.entries(queues)) {
    // A FIFO queue's name ends in .fifo, and its DLQ must be FIFO too.
    const suffix = spec.fifo === true ? '.fifo' : '';
    // As the CDK stacks set them (lib/realtime-queue.ts): high-throughput FIFO, 256 KiB messages.
    const fifo: Record<string, string> =
      spec.fifo === true
        ? { FifoQueue: 'true', FifoThroughputLimit: 'perMessageGroupId', DeduplicationScope: 'messageGroup' }
        : {};
    const size = { MaximumMessageSize: String(aws.sqsMessageBytes) };
    const name = `${options.prefix ?? ''}${logicalName}${suffix}`;
    const dlqName = `${options.prefix ?? ''}${logicalName}-dlq${suffix}`;
    const dlq = await upsertQueue(client, dlqName, {
      ...fifo,
      ...size,
      MessageRetentionPeriod: String(spec.dlqRetentionSeconds),
    });
    const main = await upsertQueue(client, name, {
      ...fifo,
      ...size,
      VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(spec.retentionSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: spec.maxReceiveCount }),
    });
    result[logicalName] = {
      logicalName,
      name,
      url: main.url,
      arn: main.arn,
      dlqName,
      dlqUrl: dlq.url,
      dlqArn: dlq.arn,
      spec,
    };
  }
  return result as { [K in keyof Q]: QueueInfo };
}
