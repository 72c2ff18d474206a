/**
 * Local SQS: local-aws-sqs (an in-memory, wire-compatible SQS speaking both the JSON and the Query protocol), queue
 * creation from the manifest, and a request counter.
 *
 * local-aws-sqs supports every action we use (Send/Receive/Delete(+Batch), ChangeMessageVisibility(+Batch),
 * Get/SetQueueAttributes, RedrivePolicy with DLQ moves, message attributes, ApproximateReceiveCount, delays). It
 * differs from SQS in five ways that matter to us, which `patchQueue` fixes around it (on its public Queue objects,
 * without touching its files):
 * 1. Long polling waits for a *full* batch: ReceiveMessage(WaitTimeSeconds: 20, MaxNumberOfMessages: 10) with one
 *    message queued answers after 20 s. SQS answers as soon as any message is available. Fixed: we wait for
 *    messages ourselves, then take at most what is available.
 * 2. Every ReceiveMessage takes at least 40 ms (its internal poll), even short polls. With the fix, a receive returns
 *    within ~10 ms of a message arriving.
 * 3. ChangeMessageVisibility increments ApproximateReceiveCount (SQS counts receives only), which would send
 *    messages to the DLQ early. Fixed: the count is restored after the change.
 * 4. ApproximateNumberOfMessages counts in-flight messages too (SQS counts visible ones only). Fixed.
 * 5. ReceiveMessage ignores `MessageSystemAttributeNames` (only the deprecated `AttributeNames` works). Fixed.
 * Also, where SQS moves a message to the DLQ on the receive that would exceed maxReceiveCount, local-aws-sqs moves it
 * when its last visibility timeout expires; the observable result (received maxReceiveCount times, then in the DLQ)
 * is the same.
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
import { queues as manifestQueues, type QueueSpec } from '../lambdas/manifest.ts';
import { listen, readAll, urlHost } from './http-util.ts';

export interface StartSqsOptions {
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0: an ephemeral port. */
  port?: number;
  /** Region in queue ARNs and of the returned client. Defaults to AWS_REGION or us-east-1. */
  region?: string;
  /** Account id in queue URLs and ARNs. Defaults to local-aws-sqs's 123456789012. */
  accountId?: string;
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
  const state: PatchState = { closed: false };
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
    for (const queue of service.Queues) patchQueue(queue as unknown as StandInQueue, state);
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
        state.closed = true;
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

// Fixes 1-4 wrap methods of local-aws-sqs's Queue objects, which its request handlers call; its internals stay as
// they are. Written against local-aws-sqs 2.0.x.

interface StandInRecord {
  MessageId: string;
  attributes: { ApproximateReceiveCount: string; MessageGroupId?: string };
}
/** What local-aws-sqs keeps per message; `setRecord` returns it for standard queues. */
interface StandInEntry {
  visible: boolean;
  record: StandInRecord;
}
interface ReceiveParams {
  VisibilityTimeout?: number | string;
  WaitTimeSeconds?: number | string;
  MaxNumberOfMessages?: number | string;
}
/** The public surface of local-aws-sqs's Queue that we wrap. */
interface StandInQueue {
  QueueName: string;
  FifoQueue?: boolean;
  ReceiveMessageWaitTimeSeconds: number;
  receive(params: ReceiveParams): Promise<unknown[]>;
  changeVisibility(receiptHandle: string, visibilityTimeout: string): boolean;
  delete(receiptHandle: string): boolean;
  getAttributes(names?: string[]): Record<string, string> | undefined;
  setRecord: (input: unknown, messageId?: string) => unknown;
  [patched]?: true;
}
interface PatchState {
  closed: boolean;
}

const patched = Symbol('tenantcast.patched');
/** Fallback re-check for messages becoming visible on local-aws-sqs's own timers (visibility timeouts, delays). */
const RECHECK_MS = 20;

/** local-aws-sqs receipt handles are base64 of a UUID followed by JSON holding the MessageId. */
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

function patchQueue(queue: StandInQueue, state: PatchState): void {
  if (queue[patched]) return;
  queue[patched] = true;
  const receive = queue.receive.bind(queue);
  const changeVisibility = queue.changeVisibility.bind(queue);
  const deleteMessage = queue.delete.bind(queue);
  const getAttributes = queue.getAttributes.bind(queue);
  const setRecord = queue.setRecord;

  // Messages by id, to fix their receive counts. Weak: local-aws-sqs drops entries itself (retention, DLQ moves).
  const entries = new Map<string, WeakRef<StandInEntry>>();
  let pruneAt = 1024;
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
  /** Visible, undelayed messages: what ApproximateNumberOfMessages means in SQS. */
  const available = () => {
    const a = getAttributes(['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
    // local-aws-sqs counts every undelayed message, in flight or not; in-flight messages are never delayed.
    return Number(a?.ApproximateNumberOfMessages ?? 0) - Number(a?.ApproximateNumberOfMessagesNotVisible ?? 0);
  };

  queue.setRecord = (input, messageId) => {
    const result = setRecord(input, messageId);
    if (isEntry(result)) {
      entries.set(result.record.MessageId, new WeakRef(result));
      if (hiding?.locked.has(result.record.attributes.MessageGroupId ?? '')) {
        result.visible = false;
        hiding.hidden.push(result);
      }
      if (entries.size > pruneAt) {
        for (const [id, ref] of entries) if (ref.deref() === undefined) entries.delete(id);
        pruneAt = Math.max(1024, entries.size * 2);
      }
    }
    // local-aws-sqs marks a new message delayed until a timer of DelaySeconds (usually 0) fires: wake after it.
    setTimeout(wake, 0).unref();
    return result;
  };

  queue.delete = (receiptHandle) => {
    const ok = deleteMessage(receiptHandle);
    const id = messageIdOf(receiptHandle);
    if (id !== undefined) entries.delete(id);
    // A FIFO group may be unlocked now.
    if (queue.FifoQueue) wake();
    return ok;
  };

  // Fix 3: ChangeMessageVisibility must not count as a receive.
  queue.changeVisibility = (receiptHandle, visibilityTimeout) => {
    const id = messageIdOf(receiptHandle);
    const entry = id === undefined ? undefined : entries.get(id)?.deref();
    const count = entry?.record.attributes.ApproximateReceiveCount;
    const ok = changeVisibility(receiptHandle, visibilityTimeout);
    if (entry !== undefined && count !== undefined) entry.record.attributes.ApproximateReceiveCount = count;
    // Wake long polls when the message becomes visible again rather than at the next re-check.
    const seconds = Number(visibilityTimeout);
    if (ok && Number.isFinite(seconds)) setTimeout(wake, seconds * 1000 + 1).unref();
    return ok;
  };

  // Fix 4: ApproximateNumberOfMessages counts visible messages only.
  queue.getAttributes = (names) => {
    const result = getAttributes(names);
    if (result?.ApproximateNumberOfMessages !== undefined) result.ApproximateNumberOfMessages = String(available());
    return result;
  };

  /**
   * Fix 6 (FIFO queues): local-aws-sqs hands out later messages of a message group while earlier ones are in flight.
   * SQS locks a group while any of its messages is in flight, which is what keeps a group in order across
   * consumers. We hide the visible messages of locked groups for the duration of each receive.
   */
  let fifoTurn: Promise<unknown> = Promise.resolve();
  /** Messages hidden by the receive in progress; messages arriving for a locked group meanwhile join them. */
  let hiding: { locked: Set<string>; hidden: StandInEntry[] } | undefined;
  // Receives of a FIFO queue take turns, so two cannot both see a group as unlocked and split it between them.
  const receiveFifo = (params: ReceiveParams): Promise<unknown[]> => {
    const turn = fifoTurn.then(() => receiveFifoNow(params));
    fifoTurn = turn.catch(() => undefined);
    return turn;
  };
  const receiveFifoNow = async (params: ReceiveParams): Promise<unknown[]> => {
    const locked = new Set<string>();
    const live: StandInEntry[] = [];
    for (const ref of entries.values()) {
      const entry = ref.deref();
      if (entry === undefined) continue;
      live.push(entry);
      const group = entry.record.attributes.MessageGroupId;
      if (!entry.visible && group !== undefined) locked.add(group);
    }
    const hidden = live.filter((e) => e.visible && locked.has(e.record.attributes.MessageGroupId ?? ''));
    for (const entry of hidden) entry.visible = false;
    hiding = { locked, hidden };
    try {
      return await receive(params);
    } finally {
      hiding = undefined;
      for (const entry of hidden) entry.visible = true;
    }
  };
  /** Visible messages of unlocked groups (FIFO) or all visible messages. */
  const receivable = () => {
    if (!queue.FifoQueue) return available();
    const locked = new Set<string>();
    let visible = 0;
    const groups: (string | undefined)[] = [];
    for (const ref of entries.values()) {
      const entry = ref.deref();
      if (entry === undefined) continue;
      const group = entry.record.attributes.MessageGroupId;
      if (!entry.visible && group !== undefined) locked.add(group);
      else if (entry.visible) groups.push(group);
    }
    for (const group of groups) if (group === undefined || !locked.has(group)) visible++;
    return Math.min(visible, available());
  };

  // Fixes 1 and 2: return as soon as any message is available, up to MaxNumberOfMessages, or empty at WaitTimeSeconds.
  queue.receive = async (params) => {
    const waitSeconds = Number(params.WaitTimeSeconds ?? queue.ReceiveMessageWaitTimeSeconds ?? 0);
    const max = Number(params.MaxNumberOfMessages ?? 1);
    const deadline = Date.now() + waitSeconds * 1000;
    const request = currentRequest.getStore();
    for (;;) {
      if (state.closed || request?.gone) return [];
      const ready = receivable();
      if (ready > 0) {
        // Asking for no more than is available makes local-aws-sqs answer at its first internal tick (10 ms)
        // instead of after its 40 ms minimum. Another receiver may get there first: then we keep waiting.
        const take = { ...params, WaitTimeSeconds: 0, MaxNumberOfMessages: Math.min(max, ready) };
        const messages = queue.FifoQueue ? await receiveFifo(take) : await receive(take);
        if (messages.length > 0) return messages;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await waitForChange(Math.min(left, RECHECK_MS));
    }
  };
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
    const fifo: Record<string, string> = spec.fifo === true ? { FifoQueue: 'true' } : {};
    const name = `${options.prefix ?? ''}${logicalName}${suffix}`;
    const dlqName = `${options.prefix ?? ''}${logicalName}-dlq${suffix}`;
    const dlq = await upsertQueue(client, dlqName, {
      ...fifo,
      MessageRetentionPeriod: String(spec.dlqRetentionSeconds),
    });
    const main = await upsertQueue(client, name, {
      ...fifo,
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
