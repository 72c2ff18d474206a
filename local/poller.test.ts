import { createHash } from 'node:crypto';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { type Poller, type PollerOptions, readBatchResponse, startPoller } from './poller.ts';
import { ensureQueues, type LocalSqs, type QueueInfo, startSqs } from './sqs.ts';

let sqs: LocalSqs;
let seq = 0;
const pollers: Poller[] = [];

beforeAll(async () => {
  sqs = await startSqs();
});
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});
afterAll(async () => {
  await sqs.close();
});

const spec = { visibilityTimeoutSeconds: 30, maxReceiveCount: 3, retentionSeconds: 3600, dlqRetentionSeconds: 3600 };

async function newQueue(overrides: Partial<typeof spec> = {}): Promise<QueueInfo> {
  const [queue] = Object.values(
    await ensureQueues(sqs.client, { [`p${++seq}x${Date.now()}`]: { ...spec, ...overrides } }),
  );
  if (queue === undefined) throw new Error('no queue');
  return queue;
}

interface Logged {
  level: 'warn' | 'error';
  message: string;
}

function poll(
  queue: QueueInfo,
  handler: PollerOptions['handler'],
  overrides: Partial<PollerOptions> = {},
): { poller: Poller; logs: Logged[] } {
  const logs: Logged[] = [];
  const poller = startPoller({
    client: sqs.client,
    queueUrl: queue.url,
    queueArn: queue.arn,
    dlqUrl: queue.dlqUrl,
    maxReceiveCount: queue.spec.maxReceiveCount,
    batchSize: 10,
    maxBatchingWindowSeconds: 0,
    visibilityTimeoutSeconds: queue.spec.visibilityTimeoutSeconds,
    functionName: 'test-fn',
    retryDelaySeconds: 0,
    handler,
    log: {
      warn: (message: string) => logs.push({ level: 'warn', message }),
      error: (message: string) => logs.push({ level: 'error', message }),
    },
    ...overrides,
  });
  pollers.push(poller);
  return { poller, logs };
}

async function sendBatch(queue: QueueInfo, bodies: string[]): Promise<string[]> {
  const out = await sqs.client.send(
    new SendMessageBatchCommand({
      QueueUrl: queue.url,
      Entries: bodies.map((body, i) => ({ Id: `e${i}`, MessageBody: body })),
    }),
  );
  return bodies.map((_, i) => out.Successful?.find((s) => s.Id === `e${i}`)?.MessageId ?? '');
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function queueCounts(url: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.client.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible),
  };
}

async function drain(url: string): Promise<Message[]> {
  const out = await sqs.client.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return out.Messages ?? [];
}

function defined<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('expected a value');
  return value;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('startPoller', () => {
  it('delivers a real SQSEvent and Lambda context, then deletes the message', async () => {
    const queue = await newQueue();
    const events: { event: SQSEvent; context: Context; remaining: number }[] = [];
    const { poller } = poll(
      queue,
      (event, context) => {
        events.push({ event: structuredClone(event), context, remaining: context.getRemainingTimeInMillis() });
      },
      { timeoutSeconds: 5, memoryMB: 1024, region: 'eu-west-1' },
    );
    const sent = await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{"hello":"world"}',
        MessageAttributes: {
          tenant: { DataType: 'String', StringValue: 't1' },
          n: { DataType: 'Number', StringValue: '42' },
          bin: { DataType: 'Binary', BinaryValue: Buffer.from('bytes') },
        },
      }),
    );
    await waitFor(() => poller.stats.succeeded === 1);
    expect(events).toHaveLength(1);
    const { event, context, remaining } = defined(events[0]);
    expect(Object.keys(event)).toEqual(['Records']);
    expect(event.Records).toHaveLength(1);
    const record = defined(event.Records[0]);
    expect(Object.keys(record).sort()).toEqual(
      [
        'messageId',
        'receiptHandle',
        'body',
        'attributes',
        'messageAttributes',
        'md5OfMessageAttributes',
        'md5OfBody',
        'eventSource',
        'eventSourceARN',
        'awsRegion',
      ].sort(),
    );
    expect(record.messageId).toBe(sent.MessageId);
    expect(record.receiptHandle).toEqual(expect.any(String));
    expect(record.body).toBe('{"hello":"world"}');
    expect(record.md5OfBody).toBe(createHash('md5').update('{"hello":"world"}').digest('hex'));
    expect(record.md5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
    expect(record.eventSource).toBe('aws:sqs');
    expect(record.eventSourceARN).toBe(queue.arn);
    expect(record.awsRegion).toBe('eu-west-1');
    expect(record.attributes).toEqual({
      ApproximateReceiveCount: '1',
      SentTimestamp: expect.stringMatching(/^\d{13}$/),
      SenderId: expect.any(String),
      ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d{13}$/),
    });
    expect(record.messageAttributes).toEqual({
      tenant: { stringValue: 't1', stringListValues: [], binaryListValues: [], dataType: 'String' },
      n: { stringValue: '42', stringListValues: [], binaryListValues: [], dataType: 'Number' },
      bin: {
        binaryValue: Buffer.from('bytes').toString('base64'),
        stringListValues: [],
        binaryListValues: [],
        dataType: 'Binary',
      },
    });
    expect(context.functionName).toBe('test-fn');
    expect(context.functionVersion).toBe('$LATEST');
    expect(context.memoryLimitInMB).toBe('1024');
    expect(context.invokedFunctionArn).toBe('arn:aws:lambda:eu-west-1:123456789012:function:test-fn');
    expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(context.logGroupName).toBe('/aws/lambda/test-fn');
    expect(remaining).toBeGreaterThan(4000);
    expect(remaining).toBeLessThanOrEqual(5000);
    await waitFor(async () => (await queueCounts(queue.url)).inFlight === 0);
    expect(await queueCounts(queue.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('hands over what is queued in batches of at most batchSize', async () => {
    const queue = await newQueue();
    await sendBatch(queue, ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    await sendBatch(queue, ['11', '12', '13']);
    const sizes: number[] = [];
    const records: SQSRecord[] = [];
    const { poller } = poll(
      queue,
      (event) => {
        sizes.push(event.Records.length);
        records.push(...event.Records);
      },
      { batchSize: 4, concurrency: 1 },
    );
    await waitFor(() => poller.stats.succeeded === 13);
    // Without message attributes, as Lambda sends it.
    expect(records[0]?.messageAttributes).toEqual({});
    expect(records[0]?.md5OfMessageAttributes).toBeNull();
    expect(new Set(records.map((r) => r.body)).size).toBe(13);
    expect(sizes.every((n) => n <= 4)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(13);
    expect(sizes[0]).toBe(4);
  });

  it('with a batching window, gathers messages sent apart into one invocation', async () => {
    const queue = await newQueue();
    const sizes: number[] = [];
    const { poller } = poll(queue, (event) => void sizes.push(event.Records.length), {
      batchSize: 25,
      maxBatchingWindowSeconds: 1,
      concurrency: 1,
    });
    await sleep(30);
    await sendBatch(queue, ['a', 'b', 'c']);
    await sleep(150);
    await sendBatch(queue, ['d', 'e']);
    await waitFor(() => poller.stats.succeeded === 5);
    expect(sizes).toEqual([5]);
  });

  it('partial batch response: deletes the others, redelivers only the failed item', async () => {
    const queue = await newQueue();
    const ids = await sendBatch(queue, ['ok1', 'fail', 'ok2']);
    const deliveries: { body: string; count: string }[][] = [];
    const { poller } = poll(
      queue,
      (event) => {
        deliveries.push(event.Records.map((r) => ({ body: r.body, count: r.attributes.ApproximateReceiveCount })));
        const failing = event.Records.filter((r) => r.body === 'fail' && r.attributes.ApproximateReceiveCount === '1');
        return { batchItemFailures: failing.map((r) => ({ itemIdentifier: r.messageId })) };
      },
      { concurrency: 1 },
    );
    await waitFor(() => poller.stats.succeeded === 3);
    expect(deliveries).toEqual([
      [
        { body: 'ok1', count: '1' },
        { body: 'fail', count: '1' },
        { body: 'ok2', count: '1' },
      ],
      [{ body: 'fail', count: '2' }],
    ]);
    expect(ids).toHaveLength(3);
    expect(poller.stats).toMatchObject({ succeeded: 3, failed: 1, invocations: 2, invocationErrors: 0 });
    expect(await queueCounts(queue.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('a handler that throws leaves the whole batch for redelivery', async () => {
    const queue = await newQueue();
    await sendBatch(queue, ['a', 'b', 'c']);
    const seen = new Map<string, string[]>();
    let calls = 0;
    const { poller, logs } = poll(
      queue,
      async (event) => {
        for (const r of event.Records)
          seen.set(r.body, [...(seen.get(r.body) ?? []), r.attributes.ApproximateReceiveCount]);
        if (++calls === 1) throw new Error('boom');
      },
      { concurrency: 1 },
    );
    await waitFor(() => poller.stats.succeeded === 3);
    expect(Object.fromEntries(seen)).toEqual({ a: ['1', '2'], b: ['1', '2'], c: ['1', '2'] });
    expect(poller.stats).toMatchObject({ failed: 3, invocationErrors: 1 });
    expect(logs.some((l) => l.level === 'error' && l.message.includes('boom'))).toBe(true);
  });

  it('an itemIdentifier not in the batch fails the whole batch, as in Lambda', async () => {
    const queue = await newQueue();
    await sendBatch(queue, ['a', 'b']);
    let calls = 0;
    const counts: string[] = [];
    const { poller, logs } = poll(
      queue,
      (event) => {
        counts.push(...event.Records.map((r) => `${r.body}${r.attributes.ApproximateReceiveCount}`));
        return ++calls === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-a-message-id' }] } : undefined;
      },
      { concurrency: 1 },
    );
    await waitFor(() => poller.stats.succeeded === 2);
    expect(counts.sort()).toEqual(['a1', 'a2', 'b1', 'b2']);
    expect(logs.some((l) => l.message.includes('invalid batchItemFailures entry'))).toBe(true);
  });

  it('a poison message lands in the DLQ after maxReceiveCount receives; its batch-mates are delivered once', async () => {
    const queue = await newQueue({ maxReceiveCount: 3 });
    await sendBatch(queue, ['good1', 'poison', 'good2']);
    const deliveries: string[] = [];
    const { poller } = poll(
      queue,
      (event) => {
        deliveries.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
        return {
          batchItemFailures: event.Records.filter((r) => r.body === 'poison').map((r) => ({
            itemIdentifier: r.messageId,
          })),
        };
      },
      { concurrency: 1 },
    );
    let dead: Message[] = [];
    await waitFor(async () => {
      dead = await drain(queue.dlqUrl);
      return dead.length > 0;
    });
    expect(dead.map((m) => m.Body)).toEqual(['poison']);
    expect(dead[0]?.Attributes?.DeadLetterQueueSourceArn).toBe(queue.arn);
    expect(deliveries.sort()).toEqual(['good1#1', 'good2#1', 'poison#1', 'poison#2', 'poison#3']);
    // local-aws-sqs enforced the RedrivePolicy itself; the poller's safety net had nothing to do.
    expect(poller.stats.movedToDlq).toBe(0);
    expect(await queueCounts(queue.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('without a RedrivePolicy on the queue, the poller moves exhausted messages to the DLQ itself', async () => {
    const name = `bare${++seq}x${Date.now()}`;
    const url = (await sqs.client.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl ?? '';
    const dlq = await newQueue();
    const bare: QueueInfo = { ...dlq, name, url, arn: `arn:aws:sqs:us-east-1:123456789012:${name}` };
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'poison',
        MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } },
      }),
    );
    let calls = 0;
    const { poller } = poll(
      bare,
      () => {
        calls++;
        throw new Error('always');
      },
      { dlqUrl: dlq.url, maxReceiveCount: 2 },
    );
    await waitFor(() => poller.stats.movedToDlq === 1);
    expect(calls).toBe(2);
    const [dead] = await drain(dlq.url);
    expect(dead?.Body).toBe('poison');
    expect(dead?.MessageAttributes?.k?.StringValue).toBe('v');
    expect(await queueCounts(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('stop() waits for the batch in flight, and nothing is received after it', async () => {
    const queue = await newQueue();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    const { poller } = poll(queue, async () => {
      started++;
      await gate;
    });
    await sendBatch(queue, ['slow']);
    await waitFor(() => started === 1);
    let stopped = false;
    const stopping = poller.stop().then(() => {
      stopped = true;
    });
    await sleep(100);
    expect(stopped).toBe(false);
    expect(poller.stats.inFlight).toBe(1);
    release();
    await stopping;
    expect(poller.stats).toMatchObject({ succeeded: 1, inFlight: 0 });
    expect(await queueCounts(queue.url)).toEqual({ visible: 0, inFlight: 0 });
    await sendBatch(queue, ['after']);
    await sleep(100);
    expect(started).toBe(1);
    expect(await queueCounts(queue.url)).toEqual({ visible: 1, inFlight: 0 });
  });

  it('stop() is prompt when idle (long polls are aborted)', async () => {
    const queue = await newQueue();
    const { poller } = poll(queue, () => undefined, { concurrency: 3 });
    await sleep(50);
    const t0 = Date.now();
    await poller.stop();
    expect(Date.now() - t0).toBeLessThan(200);
  });

  it('fails a batch whose handler outlives the function timeout', async () => {
    const queue = await newQueue({ visibilityTimeoutSeconds: 6 });
    let calls = 0;
    const { poller, logs } = poll(
      queue,
      async () => {
        if (++calls === 1) await sleep(3000);
      },
      { timeoutSeconds: 1 },
    );
    await sendBatch(queue, ['x']);
    await waitFor(() => poller.stats.succeeded === 1);
    expect(calls).toBe(2);
    expect(logs.some((l) => l.message.includes('Task timed out after 1.00 seconds'))).toBe(true);
  });

  it('survives SQS errors: logs, backs off and keeps going', async () => {
    const queue = await newQueue();
    const { poller, logs } = poll({ ...queue, url: `${sqs.endpoint}/123456789012/does-not-exist` }, () => undefined);
    await waitFor(() => poller.stats.sqsErrors >= 2);
    expect(logs.some((l) => l.level === 'warn' && l.message.includes('ReceiveMessage failed'))).toBe(true);
    await poller.stop();
  });

  it('rejects configurations Lambda rejects', () => {
    const base = {
      client: sqs.client,
      queueUrl: 'x',
      queueArn: 'x',
      functionName: 'f',
      handler: () => undefined,
      visibilityTimeoutSeconds: 30,
      maxBatchingWindowSeconds: 0,
      batchSize: 10,
    };
    expect(() => startPoller({ ...base, batchSize: 11 })).toThrow(/maxBatchingWindowSeconds/);
    expect(() => startPoller({ ...base, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => startPoller({ ...base, timeoutSeconds: 31 })).toThrow(/visibility timeout/);
  });

  it('idle delivery latency: SendMessage to handler call', async () => {
    const queue = await newQueue();
    let resolveDelivery: (t: number) => void = () => undefined;
    const { poller } = poll(queue, () => resolveDelivery(performance.now()));
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      await sleep(60); // idle: every loop is in its long poll
      const delivered = new Promise<number>((resolve) => {
        resolveDelivery = resolve;
      });
      const sentAt = performance.now();
      await sqs.client.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: `m${i}` }));
      latencies.push((await delivered) - sentAt);
    }
    await waitFor(() => poller.stats.succeeded === 10);
    latencies.sort((a, b) => a - b);
    const median = latencies[5] ?? Number.NaN;
    const max = latencies[9] ?? Number.NaN;
    console.log(`idle SQS delivery latency over 10 sends: median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
    expect(median).toBeLessThan(100);
    expect(max).toBeLessThan(500);
  });
});

describe('readBatchResponse', () => {
  const ids = new Set(['id1', 'id2']);
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['{}', {}],
    ['batchItemFailures: null', { batchItemFailures: null }],
    ['batchItemFailures: []', { batchItemFailures: [] }],
    ['another object', { statusCode: 200 }],
  ])('complete success for %s', (_, result) => {
    expect(readBatchResponse(result, ids)).toEqual({ kind: 'ok', failed: new Set() });
  });

  it('the listed items for a valid partial response', () => {
    expect(readBatchResponse({ batchItemFailures: [{ itemIdentifier: 'id2' }] }, ids)).toEqual({
      kind: 'ok',
      failed: new Set(['id2']),
    });
  });

  it.each([
    ['a string', 'done'],
    ['an array', [{ itemIdentifier: 'id1' }]],
    ['batchItemFailures not a list', { batchItemFailures: 'id1' }],
    ['an empty itemIdentifier', { batchItemFailures: [{ itemIdentifier: '' }] }],
    ['a null itemIdentifier', { batchItemFailures: [{ itemIdentifier: null }] }],
    ['a misspelt key', { batchItemFailures: [{ itemIdentifer: 'id1' }] }],
    ['an unknown id', { batchItemFailures: [{ itemIdentifier: 'id1' }, { itemIdentifier: 'id3' }] }],
    ['a null entry', { batchItemFailures: [null] }],
    ['an unserializable value', { batchItemFailures: [{ itemIdentifier: 'id1' }], n: 1n }],
  ])('complete failure for %s', (_, result) => {
    expect(readBatchResponse(result, ids).kind).toBe('error');
  });
});
