/**
 * The handler shape every SQS FIFO consumer shares: Powertools logger and metrics middleware, the records-in
 * count, a partial batch response that fails only the failing record's message group, the DLQ-send count, and
 * poison isolation: a record that can never succeed (lambdas/core/poison.ts) is logged at error level with its ids,
 * sent to the queue's dead-letter queue (`DEAD_LETTER_QUEUE_URL`) with its reason, and counts as processed, so the
 * records behind it in its group go on in order instead of waiting for the redrive (docs/limits.md).
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { isPermanent, reasonOf } from '../core/poison.ts';
import { countDlqSends, countInput, countSetAside, failedOnLastReceive, metricNames } from './metrics.ts';
import { createSetAside, type SetAside } from './set-aside.ts';

export interface FifoBatchHandlerProps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The queue's maxReceiveCount (from the manifest): a record failing its last receive is counted as sent to the DLQ. */
  readonly maxReceiveCount: number;
  /** The record handler for one batch (called once per invocation, so it may plan over the whole batch first). */
  readonly recordHandlerFor: (event: SQSEvent, context: Context) => (record: SQSRecord) => Promise<void>;
  /** Where poison records go. @default the queue's dead-letter queue, from `DEAD_LETTER_QUEUE_URL` */
  readonly setAside?: SetAside;
  /**
   * Awaited once the batch's records are processed, before anything else: work the record handler started ahead of a
   * record's turn (the broadcaster's replay requests started together), resolving to each such record's result (by SQS
   * message id: its error, or undefined when it succeeded). A record the processor skipped behind a failure of its
   * group is then settled with its result as if its turn had come: done (deleted), set aside when its failure is
   * permanent, else logged and returned to the queue. @default nothing
   */
  readonly settle?: () => Promise<ReadonlyMap<string, unknown>>;
  /**
   * Runs once the batch's records are processed (whether or not some failed), before the response: usage metering's
   * one write per tenant and invocation (docs/security.md, "Usage metering"). @default nothing
   */
  readonly afterBatch?: () => Promise<void>;
  /**
   * Told of the records that failed on their last receive (SQS now dead-letters them), whether their handler failed
   * or they were skipped behind a failing record of their group, before the response. @default nothing
   */
  readonly onLastReceive?: (records: readonly SQSRecord[]) => Promise<void>;
}

/** A middy handler consuming an SQS FIFO batch record by record (skipGroupOnError; never throws on a full failure). */
export function fifoBatchHandler(props: FifoBatchHandlerProps) {
  const { logger, metrics, maxReceiveCount, recordHandlerFor } = props;
  const processor = new SqsFifoPartialProcessorAsync();
  const setAside = props.setAside ?? createSetAside();
  /** The record handler, with permanent failures set aside instead of thrown (a failed set-aside is retried). */
  const isolating =
    (handle: (record: SQSRecord) => Promise<void>) =>
    async (record: SQSRecord): Promise<void> => {
      try {
        await handle(record);
      } catch (err) {
        if (!isPermanent(err)) throw err;
        const reason = reasonOf(err);
        const ids = {
          sqsMessageId: record.messageId,
          messageGroupId: record.attributes.MessageGroupId,
          tenantId: record.messageAttributes.tenantId?.stringValue,
          messageId: record.messageAttributes.messageId?.stringValue,
          reason,
        };
        try {
          await setAside(record, reason);
        } catch (asideErr) {
          // Logged as what happened: the record was not set aside, it stays where it is and is retried.
          logger.error('poison record could not be set aside', {
            ...ids,
            error: err as Error,
            asideError: asideErr as Error,
          });
          throw asideErr;
        }
        logger.error('poison record set aside', { ...ids, error: err as Error });
        countSetAside(metrics);
      }
    };
  /**
   * The failures to answer once the records the processor skipped but whose work finished ahead of their turn are
   * settled with its result (`settle`); until 2026-12-05 they all went back to the queue, so one failing for good was
   * never set aside (its retry found nothing left to do) and a transient failure was not logged.
   */
  const settleSkipped = async (
    event: SQSEvent,
    response: SQSBatchResponse,
    handled: ReadonlySet<string>,
    finishedAhead: ReadonlyMap<string, unknown>,
  ): Promise<SQSBatchResponse['batchItemFailures']> => {
    // Most batches started nothing ahead, or had no failure: nothing to settle.
    if (finishedAhead.size === 0 || response.batchItemFailures.length === 0) return response.batchItemFailures;
    const byId = new Map(event.Records.map((r) => [r.messageId, r]));
    const failures: SQSBatchResponse['batchItemFailures'] = [];
    for (const failure of response.batchItemFailures) {
      const record = byId.get(failure.itemIdentifier);
      if (record === undefined || handled.has(record.messageId) || !finishedAhead.has(record.messageId)) {
        failures.push(failure);
        continue;
      }
      const result = finishedAhead.get(record.messageId);
      try {
        await isolating(async () => {
          if (result !== undefined) throw result;
        })(record);
      } catch (err) {
        // Back with its group's records, or to the dead-letter queue on its last receive (`onLastReceive`).
        logger.warn('record failed ahead of its turn; it is not deleted', {
          sqsMessageId: record.messageId,
          messageGroupId: record.attributes.MessageGroupId,
          tenantId: record.messageAttributes.tenantId?.stringValue,
          error: err as Error,
        });
        failures.push(failure);
      }
    }
    return failures;
  };
  // No Tracer: every FIFO consumer runs per message, where the X-Ray SDK's hooks cost most (lambdas/shared/tracer.ts).
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics))
    .use(countInput<SQSEvent>(metrics, metricNames.recordsIn, (event) => event.Records.length))
    .handler(async (event, context) => {
      try {
        const handle = recordHandlerFor(event, context);
        const handled = new Set<string>();
        const response = await processPartialResponse(
          event,
          isolating(async (record) => {
            handled.add(record.messageId);
            await handle(record);
          }),
          processor,
          { context, skipGroupOnError: true, throwOnFullBatchFailure: false },
        );
        const finishedAhead = (await props.settle?.()) ?? new Map<string, unknown>();
        response.batchItemFailures = await settleSkipped(event, response, handled, finishedAhead);
        const last = failedOnLastReceive(event, response, maxReceiveCount);
        countDlqSends(metrics, last);
        // Its failure must not cost the batch its response (the records delivered would come back).
        if (props.onLastReceive !== undefined && last.length > 0) {
          await props
            .onLastReceive(last)
            .catch((err: unknown) =>
              logger.error('last-receive handling failed', { error: err as Error, records: last.length }),
            );
        }
        return response;
      } finally {
        await props.afterBatch?.();
      }
    });
}
