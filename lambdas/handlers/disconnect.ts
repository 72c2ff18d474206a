/** `$disconnect`: removes the connection and its memberships. Best-effort in AWS; TTL and 410s catch the rest. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { callerFromAuthorizer } from '../core/auth.ts';
import { requireEnv } from '../core/env.ts';
import { Registry } from '../core/registry.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, createMetrics, createTracer, metricNames } from '../shared/metrics.ts';
import { createUsage } from '../shared/usage-meter.ts';
import type { WebSocketEvent, WebSocketResult } from '../shared/websocket-event.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const registry = new Registry({ client: createDocumentClient(), tableName: requireEnv('TABLE_NAME') });
const usage = createUsage(logger);

export const handler = middy<WebSocketEvent, WebSocketResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countInput(metrics, metricNames.connectionsClosed))
  .handler(async (event) => {
    const { connectionId, connectedAt, authorizer } = event.requestContext;
    logger.appendKeys({ connectionId });
    const { groups } = await registry.removeConnection(connectionId);
    logger.info('disconnected', { groups });
    // Connection-minutes (docs/security.md, "Usage metering"): started minutes, counted when the connection ends.
    const caller = callerFromAuthorizer(authorizer);
    if (caller !== undefined && typeof connectedAt === 'number') {
      usage.add(caller.tenantId, 'connectionMinutes', Math.max(1, Math.ceil((Date.now() - connectedAt) / 60_000)));
      await usage.flush();
    }
    return { statusCode: 200 };
  });
