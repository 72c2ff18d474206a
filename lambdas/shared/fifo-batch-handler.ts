/**
 * The handler shape every SQS FIFO consumer shares: Powertools logger/tracer/metrics middleware, the records-in
 * count, a partial batch response that fails only the failing record's message group, and the DLQ-send count.
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { countDlqSends, countInput, metricNames } from './metrics.ts';

export interface FifoBatchHandlerProps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
  /** The queue's maxReceiveCount (from the manifest): a record failing its last receive is counted as sent to the DLQ. */
  readonly maxReceiveCount: number;
  /** The record handler for one batch (called once per invocation, so it may plan over the whole batch first). */
  readonly recordHandlerFor: (event: SQSEvent, context: Context) => (record: SQSRecord) => Promise<void>;
}

/** A middy handler consuming an SQS FIFO batch record by record (skipGroupOnError; never throws on a full failure). */
export function fifoBatchHandler(props: FifoBatchHandlerProps) {
  const { logger, metrics, tracer, maxReceiveCount, recordHandlerFor } = props;
  const processor = new SqsFifoPartialProcessorAsync();
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(logMetrics(metrics))
    .use(countInput<SQSEvent>(metrics, metricNames.recordsIn, (event) => event.Records.length))
    .handler(async (event, context) => {
      const response = await processPartialResponse(event, recordHandlerFor(event, context), processor, {
        context,
        skipGroupOnError: true,
        throwOnFullBatchFailure: false,
      });
      countDlqSends(metrics, event, response, maxReceiveCount);
      return response;
    });
}
