/**
 * Entity HTTP API (API Gateway HTTP API, payload format 2.0, JWT authorizer): routes from the manifest, dispatched
 * with the Powertools event-handler Router, each into the pure core (lambdas/core/entities/http.ts).
 */
import { Router } from '@aws-lambda-powertools/event-handler/http';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { RdsDataApi } from '../core/data-api.ts';
import { type EntityOperation, entityRoutes, handleEntityRequest } from '../core/entities/http.ts';
import { EntityService } from '../core/entities/service.ts';
import { tenantDataFrom } from '../core/entities/tenant-data.ts';
import { requireEnv } from '../core/env.ts';
import { functions, limits } from '../manifest.ts';
import { clientConfig } from '../shared/aws.ts';
import { changesPublisher } from '../shared/changes-queue.ts';
import { createTenantDirectory } from '../shared/entity-data.ts';
import { createHttpRateLimit } from '../shared/http-rate-limit.ts';
import { createLogger } from '../shared/logger.ts';
import { countHttp, createMetrics } from '../shared/metrics.ts';
import { createTracer } from '../shared/tracer.ts';
import { createUsage } from '../shared/usage-meter.ts';
import { claimNamesFromEnv } from '../shared/verifier.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();
const data = new RdsDataApi(new RDSDataClient(clientConfig));
const tenants = createTenantDirectory();
const service = new EntityService({
  data,
  tenantData: tenantDataFrom(tenants),
  publish: changesPublisher(new SQSClient(clientConfig), requireEnv('CHANGES_QUEUE_URL')),
  onPublishError: (err, events) =>
    logger.warn('change committed but not published; the outbox relay will', { error: err as Error, events }),
});
const deps = {
  service,
  claimNames: claimNamesFromEnv(),
  maxBodyBytes: limits.entityBodyBytes,
  onError: (err: unknown) => logger.error('entity request failed', { error: err as Error }),
};

// Per-user HTTP rate limit (docs/security.md): 429 with Retry-After before any route runs.
const rateLimited = createHttpRateLimit();
const usage = createUsage(logger);
const app = new Router();
const spec = functions.find((fn) => fn.name === 'entityApi');
for (const route of spec?.trigger.kind === 'http' ? spec.trigger.routes : []) {
  const operation: EntityOperation | undefined =
    entityRoutes[`${route.method} ${route.path}` as keyof typeof entityRoutes];
  if (operation === undefined) throw new Error(`no entity operation for route ${route.method} ${route.path}`);
  // API Gateway's `{param}` is the Router's `:param`.
  const path = route.path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1') as `/${string}`;
  app.route(
    async ({ event }) => {
      const e = event as APIGatewayProxyEventV2 & {
        requestContext: { authorizer?: { jwt?: { claims?: Record<string, unknown> } } };
      };
      const response = await handleEntityRequest(
        {
          operation,
          pathParameters: e.pathParameters ?? {},
          query: e.queryStringParameters ?? {},
          headers: e.headers ?? {},
          body: e.body,
          isBase64Encoded: e.isBase64Encoded,
          claims: e.requestContext.authorizer?.jwt?.claims,
        },
        deps,
      );
      // A 204 must have no body at all (the Router builds a web Response, which refuses one).
      return response.statusCode === 204 ? new Response(null, { status: 204, headers: response.headers }) : response;
    },
    { method: route.method, path },
  );
}

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countHttp(metrics))
  .handler(async (event, context: Context) => {
    logger.appendKeys({ routeKey: event.routeKey });
    const limited = await rateLimited(event);
    if (limited !== undefined) return limited;
    const response = await app.resolve(event, context);
    // Usage metering (docs/security.md): successful entity reads and writes per tenant.
    const tenantId = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } })
      .authorizer?.jwt?.claims?.[deps.claimNames.tenant];
    if (typeof tenantId === 'string' && (response.statusCode ?? 200) < 400) {
      usage.add(tenantId, event.requestContext.http.method === 'GET' ? 'entityReads' : 'entityWrites');
      await usage.flush();
    }
    return response;
  });
