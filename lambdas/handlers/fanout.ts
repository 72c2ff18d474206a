/** Fan-out: delivers one page of a large group's run (from the fan-out queue, FIFO per group lane). */
import type { SQSRecord } from 'aws-lambda';
import { deliverFanoutJob } from '../core/broadcast.ts';
import { FanoutJob } from '../core/delivery.ts';
import { queues } from '../manifest.ts';
import { createBroadcastDeps } from '../shared/broadcast-deps.ts';
import { fifoBatchHandler } from '../shared/fifo-batch-handler.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetrics, createTracer, DeliveryMetrics } from '../shared/metrics.ts';
import { createUsage } from '../shared/usage-meter.ts';

const logger = createLogger();
const metrics = createMetrics();
/** Per-tenant lines of each page (their own instance, so they never carry the invocation's metrics). */
const tenantMetrics = createMetrics();
const tracer = createTracer();
const deps = createBroadcastDeps(logger);
const usage = createUsage(logger);

async function deliverPage(record: SQSRecord): Promise<void> {
  const job = FanoutJob.parse(JSON.parse(record.body));
  const jobId = record.attributes.MessageDeduplicationId ?? record.messageId;
  const redelivered = Number(record.attributes.ApproximateReceiveCount) > 1;
  const observed = new DeliveryMetrics(tenantMetrics, job.tenantId);
  try {
    const result = await deliverFanoutJob(job, jobId, redelivered, { ...deps, observe: observed.observe });
    logger.info('page delivered', { tenantId: job.tenantId, group: job.group, jobId, ...result });
    usage.add(job.tenantId, 'deliveriesOut', result.delivered);
    await usage.flush();
  } finally {
    observed.flush();
  }
}

export const handler = fifoBatchHandler({
  logger,
  metrics,
  tracer,
  maxReceiveCount: queues.fanout.maxReceiveCount,
  recordHandlerFor: () => deliverPage,
});
