/**
 * Reaper (every minute): closes connections whose token expired — `token expired` error frame, DeleteConnection,
 * registry clean-up with presence `leave`s (`$disconnect` would do it too, but it is best-effort in AWS) — and
 * announces the `leave`s of connections delivery (a 410) or a `presence` request removed whose `$disconnect` never
 * came; then recounts the connection
 * counters of a few tenants, the least recently checked first (docs/security.md, "Connection caps").
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { ConnectionCounters, recountDue } from '../core/connection-counters.ts';
import { createConnectionRemoval, createLeftAnnouncer } from '../core/connection-removal.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { ExpiryStore, type ReapResult, reapExpired, tokenExpiredFrame } from '../core/expiry.ts';
import { TenantConnections } from '../core/revocation.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createConnectionsApi } from '../shared/connections-api.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, createMetrics, metricNames } from '../shared/metrics.ts';
import { createRegistry } from '../shared/registry.ts';
import { createTracer } from '../shared/tracer.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const documentClient = createDocumentClient();
const tableName = requireEnv('TABLE_NAME');
const store = new ExpiryStore({ client: documentClient, tableName });
const registry = createRegistry(documentClient, tableName);
const connections = createConnectionsApi();
const tenants = new TenantDirectory({
  client: documentClient,
  tableName,
  cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
});
const removal = {
  registry,
  connections,
  tenants,
  onError: (err: unknown, context: Record<string, unknown>) =>
    logger.warn('presence leave failed', { ...context, error: err as Error }),
};
const removeConnection = createConnectionRemoval(removal);
const announceLeft = createLeftAnnouncer(removal);
const tenantConnections = new TenantConnections({ client: documentClient, tableName });
const counters = new ConnectionCounters({
  client: documentClient,
  tableName,
  count: (tenantId, userId) => tenantConnections.count(tenantId, userId),
});
/** Tenants recounted per run: each costs one read of its connection items; all cycle through, oldest first. */
const RECOUNTS_PER_RUN = 10;

export const handler = middy<ScheduledEvent, ReapResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countInput(metrics, metricNames.scheduledRuns))
  .handler(async () => {
    const result = await reapExpired({
      store,
      now: Date.now,
      expire: async ({ connectionId, tenantId, userId }) => {
        await connections.post(connectionId, tokenExpiredFrame());
        await connections.close(connectionId);
        // After the close, so a failed close leaves the connection for the next sweep to find (by its META). The
        // `$disconnect` the close triggers may run beside this and announce the same leave: events are idempotent.
        await removeConnection({ tenantId, userId, connectionId });
        logger.info('connection closed: token expired', { connectionId, tenantId });
      },
      announceLeft,
      onError: (err, context) =>
        logger.error(
          context.announcingLeaves === true
            ? 'announcing the leaves of a removed connection failed'
            : 'expiring a connection failed',
          { ...context, error: err as Error },
        ),
    });
    if (result.expired > 0 || result.failed > 0 || (result.leavesAnnounced ?? 0) > 0)
      logger.info('reaped', { ...result });
    const recount = await recountDue(counters, RECOUNTS_PER_RUN, (err, context) =>
      logger.error('recounting connections failed', { ...context, error: err as Error }),
    );
    if (recount.failed > 0) logger.info('recounted connection counters', { ...recount });
    return result;
  });
