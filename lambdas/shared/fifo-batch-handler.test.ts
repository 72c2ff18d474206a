import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from '@jest/globals';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { PoisonRecordError } from '../core/poison.ts';
import { fifoBatchHandler } from './fifo-batch-handler.ts';

function record(messageId: string, group: string, receives = 1): SQSRecord {
  return {
    messageId,
    receiptHandle: messageId,
    body: '{}',
    attributes: {
      ApproximateReceiveCount: String(receives),
      SentTimestamp: '0',
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: '0',
      MessageGroupId: group,
      MessageDeduplicationId: messageId,
      SequenceNumber: '1',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:test.fifo',
    awsRegion: 'us-east-1',
  };
}

const context = {
  functionName: 'test',
  awsRequestId: 'request',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

/** A handler (maxReceiveCount 5) whose record `live` fails transiently, telling `onLastReceive`. */
const liveFailing = (onLastReceive: (records: readonly SQSRecord[]) => Promise<void>) =>
  fifoBatchHandler({
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'test', serviceName: 'test' }),
    maxReceiveCount: 5,
    setAside: async () => undefined,
    recordHandlerFor: () => async (r) => {
      if (r.messageId === 'live') throw new Error('ThrottlingException');
    },
    onLastReceive,
  });

describe('the FIFO batch handler', () => {
  it('runs afterBatch once per invocation, after every record, also when a record failed', async () => {
    const steps: string[] = [];
    const handler = fifoBatchHandler({
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'test', serviceName: 'test' }),
      maxReceiveCount: 3,
      setAside: async () => undefined,
      recordHandlerFor: () => async (r) => {
        steps.push(r.messageId);
        if (r.messageId === 'b1') throw new Error('transient');
      },
      afterBatch: async () => {
        steps.push('afterBatch');
      },
    });
    const event: SQSEvent = { Records: [record('a1', 'a'), record('b1', 'b'), record('c1', 'c')] };
    const response = await handler(event, context);
    expect(steps).toEqual(['a1', 'b1', 'c1', 'afterBatch']);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'b1' }]);
  });

  it('tells onLastReceive of the records failing on their last receive, those skipped behind a failure too', async () => {
    const told: string[][] = [];
    const handler = (receives: number) =>
      liveFailing(async (records) => {
        told.push(records.map((r) => r.messageId));
      })(
        { Records: [record('live', 'g', receives), record('replay', 'g', receives), record('other', 'h', receives)] },
        context,
      );
    expect((await handler(4)).batchItemFailures).toHaveLength(2);
    expect(told).toEqual([]);
    // The replay request behind the failing message was never handled: it is told of all the same (until review the
    // broadcaster ended a replay's wait only from the replay's own handler).
    expect((await handler(5)).batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['live', 'replay']);
    expect(told).toEqual([['live', 'replay']]);
  });

  it('answers its partial response even when onLastReceive fails', async () => {
    const handler = liveFailing(async () => {
      throw new Error('DynamoDB down');
    });
    const response = await handler({ Records: [record('live', 'g', 5), record('other', 'h', 5)] }, context);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['live']);
  });
  describe('with records whose work finished ahead of their turn (settle)', () => {
    /**
     * Group g: `head` fails transiently, so the processor skips `ok`, `poison` and `busy`, whose work (replays started
     * together with `head`) has finished all the same: `ok` succeeded, `poison` failed for good, `busy` was throttled.
     */
    async function skippedBehindAFailure() {
      const setAside: string[] = [];
      const logged: { level: string; message: string }[] = [];
      const logger = new Logger({ logLevel: 'SILENT' });
      for (const level of ['warn', 'error'] as const) {
        logger[level] = ((message: string) => {
          logged.push({ level, message });
        }) as never;
      }
      const handler = fifoBatchHandler({
        logger,
        metrics: new Metrics({ namespace: 'test', serviceName: 'test' }),
        maxReceiveCount: 5,
        setAside: async (r) => {
          setAside.push(r.messageId);
        },
        recordHandlerFor: () => async (r) => {
          if (r.messageId === 'head') throw new Error('ThrottlingException');
        },
        settle: async () =>
          new Map<string, unknown>([
            ['ok', undefined],
            ['poison', new PoisonRecordError('replay failed for good')],
            ['busy', new Error('ThrottlingException')],
          ]),
      });
      const groups = ['head', 'ok', 'poison', 'busy', 'after'].map((id) => record(id, 'g'));
      const response = await handler({ Records: [...groups, record('other', 'h')] }, context);
      return { failures: response.batchItemFailures.map((f) => f.itemIdentifier), setAside, logged };
    }

    it('deletes the one that succeeded and sets aside the one that failed for good, instead of returning them', async () => {
      const { failures, setAside, logged } = await skippedBehindAFailure();
      expect(failures).toEqual(['head', 'busy', 'after']);
      expect(setAside).toEqual(['poison']);
      expect(logged).toContainEqual({ level: 'error', message: 'poison record set aside' });
    });

    it('returns the one that failed transiently to the queue, logged', async () => {
      const { failures, logged } = await skippedBehindAFailure();
      expect(failures).toContain('busy');
      expect(logged).toContainEqual({
        level: 'warn',
        message: 'record failed ahead of its turn; it is not deleted',
      });
    });
  });
});
