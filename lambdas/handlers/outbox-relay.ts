/** Outbox relay (every minute): publishes committed changes whose change event was never sent. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { type RelayResult, relayUnpublished } from '../core/entities/outbox.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { clientConfig } from '../shared/aws.ts';
import { changesPublisher } from '../shared/changes-queue.ts';
import { createEntityData, createTenantDirectory } from '../shared/entity-data.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, createMetrics, metricNames } from '../shared/metrics.ts';
import { createTracer } from '../shared/tracer.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const tenants = createTenantDirectory();
const deps = {
  ...createEntityData(tenants),
  publish: changesPublisher(new SQSClient(clientConfig), requireEnv('CHANGES_QUEUE_URL')),
  // The catalog's configs from its index (a Query, no schemas), once a minute (docs/data-model.md).
  tenantIds: async () => {
    const onInvalid = (tenantId: string, reason: string) =>
      logger.error('tenant configuration unreadable: its outbox is not relayed', { tenantId, reason });
    const listed = await tenants.list({ schemas: false, onInvalid });
    return listed.filter((t) => t.database !== undefined).map((t) => t.tenantId);
  },
  log: (message: string, details: Record<string, unknown>) => logger.error(message, details),
};

export const handler = middy<ScheduledEvent, RelayResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countInput(metrics, metricNames.scheduledRuns))
  .handler(async (_event, context) => {
    const result = await relayUnpublished(deps, {
      graceSeconds: numberEnv('OUTBOX_GRACE_SECONDS', 5),
      remainingMs: () => context.getRemainingTimeInMillis(),
      startAt: Math.floor(Date.now() / 60_000),
    });
    if (result.published > 0 || result.failedTenants.length > 0 || result.skippedTenants > 0) {
      logger.info('outbox relayed', { ...result });
    }
    return result;
  });
