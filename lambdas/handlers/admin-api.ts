/**
 * Admin HTTP API (API Gateway HTTP API, JWT authorizer): `POST /v1/admin/disconnect` and `GET /v1/usage`, for the
 * tenant's `admin` role (lambdas/core/revocation-http.ts).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { errorResponse } from '../core/entities/http.ts';
import { requireEnv } from '../core/env.ts';
import { BadRequestError } from '../core/errors.ts';
import { Registry } from '../core/registry.ts';
import { TenantConnections } from '../core/revocation.ts';
import { adminRoutes, handleAdminRequest } from '../core/revocation-http.ts';
import { UsageStore } from '../core/usage.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createConnectionsApi } from '../shared/connections-api.ts';
import { createHttpRateLimit } from '../shared/http-rate-limit.ts';
import { createLogger } from '../shared/logger.ts';
import { countHttp, createMetrics } from '../shared/metrics.ts';
import { createTracer } from '../shared/tracer.ts';
import { claimNamesFromEnv } from '../shared/verifier.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const client = createDocumentClient();
const tableName = requireEnv('TABLE_NAME');
const api = createConnectionsApi();
const registry = new Registry({ client, tableName });
const rateLimited = createHttpRateLimit();
const deps = {
  connections: new TenantConnections({ client, tableName }),
  close: (connectionId: string) => api.close(connectionId),
  forget: async (connectionId: string) => {
    await registry.removeConnection(connectionId);
  },
  usage: new UsageStore({ client, tableName }),
  claimNames: claimNamesFromEnv(),
  now: Date.now,
  onError: (err: unknown, context: Record<string, unknown>) =>
    logger.error('admin request failed', { ...context, error: err as Error }),
};

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countHttp(metrics))
  .handler(async (event, context) => {
    logger.appendKeys({ routeKey: event.routeKey });
    const operation = adminRoutes[event.routeKey as keyof typeof adminRoutes];
    if (operation === undefined) return errorResponse(new BadRequestError(`no admin route ${event.routeKey}`));
    const limited = await rateLimited(event);
    if (limited !== undefined) return limited;
    const response = await handleAdminRequest(
      {
        operation,
        query: event.queryStringParameters ?? {},
        body: event.body,
        isBase64Encoded: event.isBase64Encoded,
        claims: (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } }).authorizer
          ?.jwt?.claims,
        authorization: event.headers?.authorization,
        timeLeftMs: context.getRemainingTimeInMillis(),
      },
      deps,
    );
    if (operation === 'disconnect' && response.statusCode === 200)
      logger.info('connections revoked', { body: response.body });
    return response;
  });
