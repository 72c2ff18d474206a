/** Fan-out: delivers one page of a large group's run (from the fan-out queue, FIFO per group lane). */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { deliverFanoutJob } from '../core/broadcast.ts';
import { FanoutJob } from '../core/delivery.ts';
import { createBroadcastDeps } from '../shared/broadcast-deps.ts';
import { createLogger } from '../shared/logger.ts';

const logger = createLogger();
const processor = new SqsFifoPartialProcessorAsync();
const deps = createBroadcastDeps(logger);

async function deliverPage(record: SQSRecord): Promise<void> {
  const job = FanoutJob.parse(JSON.parse(record.body));
  const jobId = record.attributes.MessageDeduplicationId ?? record.messageId;
  const redelivered = Number(record.attributes.ApproximateReceiveCount) > 1;
  const result = await deliverFanoutJob(job, jobId, redelivered, deps);
  logger.info('page delivered', { tenantId: job.tenantId, group: job.group, jobId, ...result });
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event, context) =>
    processPartialResponse(event, deliverPage, processor, {
      context,
      skipGroupOnError: true,
      throwOnFullBatchFailure: false,
    }),
  );
