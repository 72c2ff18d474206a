/** `$disconnect`: removes the connection and its memberships. Best-effort in AWS; TTL and 410s catch the rest. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { callerFromAuthorizer } from '../core/auth.ts';
import { createConnectionRemoval } from '../core/connection-removal.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createConnectionsApi } from '../shared/connections-api.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, createMetrics, metricNames } from '../shared/metrics.ts';
import { createRegistry } from '../shared/registry.ts';
import { createTracer } from '../shared/tracer.ts';
import { createUsage } from '../shared/usage-meter.ts';
import type { WebSocketEvent, WebSocketResult } from '../shared/websocket-event.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const documentClient = createDocumentClient();
const tableName = requireEnv('TABLE_NAME');
const registry = createRegistry(documentClient, tableName);
const tenants = new TenantDirectory({
  client: documentClient,
  tableName,
  cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
});
const removeConnection = createConnectionRemoval({
  registry,
  connections: createConnectionsApi(),
  tenants,
  onError: (err, context) => logger.warn('presence leave failed', { ...context, error: err as Error }),
});
const usage = createUsage(logger);

export const handler = middy<WebSocketEvent, WebSocketResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countInput(metrics, metricNames.connectionsClosed))
  .handler(async (event) => {
    const { connectionId, connectedAt, authorizer } = event.requestContext;
    logger.appendKeys({ connectionId });
    const caller = callerFromAuthorizer(authorizer);
    // Presence leave events for the user's last connection in groups configured for them (docs/protocol.md).
    const { groups } =
      caller === undefined
        ? await registry.removeConnection(connectionId)
        : await removeConnection({ tenantId: caller.tenantId, userId: caller.userId, connectionId });
    logger.info('disconnected', { groups });
    // Connection-minutes (docs/security.md, "Usage metering"): started minutes, counted when the connection ends.
    if (caller !== undefined && typeof connectedAt === 'number') {
      usage.add(caller.tenantId, 'connectionMinutes', Math.max(1, Math.ceil((Date.now() - connectedAt) / 60_000)));
      await usage.flush();
    }
    return { statusCode: 200 };
  });
