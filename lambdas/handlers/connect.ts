/** `$connect`: checks the connection caps and registers the connection (the authorizer has verified the token). */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { callerFromAuthorizer, expFromAuthorizer, header, SUBPROTOCOL } from '../core/auth.ts';
import { ConnectionCounters } from '../core/connection-counters.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { ForbiddenError } from '../core/errors.ts';
import { effectiveLimits } from '../core/rate-limit.ts';
import { Registry } from '../core/registry.ts';
import { liveUserCount, TenantConnections } from '../core/revocation.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createConnectionsApi } from '../shared/connections-api.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetrics, MetricUnit, metricNames } from '../shared/metrics.ts';
import { createTracer } from '../shared/tracer.ts';
import { createUsage } from '../shared/usage-meter.ts';
import type { WebSocketEvent, WebSocketResult } from '../shared/websocket-event.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const documentClient = createDocumentClient();
const tableName = requireEnv('TABLE_NAME');
const registry = new Registry({ client: documentClient, tableName });
const connections = new TenantConnections({ client: documentClient, tableName });
const api = createConnectionsApi();
// O(1) per handshake: counter items, recounted through `connections` only when they refuse (docs/security.md); a
// user's recount asks API Gateway which of their registered connections it still has.
const counters = new ConnectionCounters({
  client: documentClient,
  tableName,
  count: (tenantId, userId) =>
    userId === undefined
      ? connections.count(tenantId)
      : liveUserCount(tenantId, userId, {
          connections,
          isConnected: (connectionId) => api.isConnected(connectionId),
          forget: async (connectionId) => {
            await registry.removeConnection(connectionId);
          },
        }),
});
const usage = createUsage(logger);
const tenants = new TenantDirectory({
  client: documentClient,
  tableName,
  cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
});

/** The tenant's limits; an unconfigured tenant gets the defaults here (its frames are refused FORBIDDEN later). */
async function limitsOf(tenantId: string) {
  try {
    return effectiveLimits((await tenants.get(tenantId)).limits);
  } catch (err) {
    if (err instanceof ForbiddenError) return effectiveLimits(undefined);
    throw err;
  }
}

export const handler = middy<WebSocketEvent, WebSocketResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .handler(async (event) => {
    const { connectionId, connectedAt, authorizer } = event.requestContext;
    const caller = callerFromAuthorizer(authorizer);
    if (caller === undefined) {
      logger.error('$connect reached without an authorizer context', { connectionId });
      metrics.addMetric(metricNames.connectionsRefused, MetricUnit.Count, 1);
      return { statusCode: 403 };
    }
    logger.appendKeys({ connectionId, tenantId: caller.tenantId });
    metrics.addMetadata('tenantId', caller.tenantId);
    const refused = await counters.acquire(caller.tenantId, caller.userId, await limitsOf(caller.tenantId));
    if (refused !== undefined) {
      logger.info('connection refused: cap', { userId: caller.userId, reason: refused });
      metrics.addMetric(metricNames.connectionsRefused, MetricUnit.Count, 1);
      // API Gateway returns a non-2xx $connect status as the handshake's status.
      return { statusCode: 429, body: `Too Many Requests: ${refused}` };
    }
    try {
      await registry.putConnection(caller, connectionId, connectedAt, {
        exp: expFromAuthorizer(authorizer),
        counted: true,
      });
    } catch (err) {
      // Not registered, so nothing would ever release its place: give it back now (a crash here leaves the
      // counters high until their next recount).
      await counters.release(caller.tenantId, caller.userId);
      throw err;
    }
    usage.add(caller.tenantId, 'connections');
    await usage.flush();
    logger.info('connected', { userId: caller.userId });
    metrics.addMetric(metricNames.connectionsOpened, MetricUnit.Count, 1);
    // A browser that offered subprotocols closes the socket unless the server selects one.
    const offered = header(event.headers, 'sec-websocket-protocol') ?? '';
    const selectsProtocol = offered.split(',').some((p) => p.trim() === SUBPROTOCOL);
    return { statusCode: 200, ...(selectsProtocol && { headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } }) };
  });
