/**
 * Publish API (API Gateway HTTP API, payload format 2.0, JWT authorizer): `POST /v1/publish` into the pure core
 * (lambdas/core/publish-api.ts), which puts the message on the delivery queue.
 */
import { randomUUID } from 'node:crypto';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { deliverySendParams } from '../core/delivery.ts';
import { requireEnv } from '../core/env.ts';
import { handlePublishRequest, type PublishDeps } from '../core/publish-api.ts';
import { limits } from '../manifest.ts';
import { clientConfig } from '../shared/aws.ts';
import { createTenantDirectory } from '../shared/entity-data.ts';
import { createHttpRateLimit, createPublishAdmit } from '../shared/http-rate-limit.ts';
import { createLogger } from '../shared/logger.ts';
import { countHttp, createMetrics, MetricUnit, metricNames } from '../shared/metrics.ts';
import { claimNamesFromEnv } from '../shared/verifier.ts';

const logger = createLogger();
const metrics = createMetrics();
const sqs = new SQSClient(clientConfig);
const queueUrl = requireEnv('DELIVERY_QUEUE_URL');
// The user's HTTP bucket, shared with the entity and admin APIs: taken before the request is read.
const rateLimited = createHttpRateLimit();

const deps: PublishDeps = {
  tenants: createTenantDirectory(),
  // FIFO: ordered per tenant and group, deduplicated by message id (lambdas/core/delivery.ts).
  enqueue: async (message) => {
    await sqs.send(new SendMessageCommand(deliverySendParams(queueUrl, message)));
    metrics.addMetric(metricNames.messagesIn, MetricUnit.Count, 1);
  },
  newId: randomUUID,
  now: Date.now,
  claimNames: claimNamesFromEnv(),
  // A publish carries at most 16 KB of data (TOO_LARGE); the body around it may not exceed one frame.
  maxBodyBytes: limits.frameBytes,
  // The tenant's publish bucket, shared with WebSocket publishes (docs/security.md, "Rate limits").
  admit: createPublishAdmit(),
  onError: (err) => logger.error('publish request failed', { error: err as Error }),
};

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(countHttp(metrics))
  .handler(async (event) => {
    const limited = await rateLimited(event);
    if (limited !== undefined) return limited;
    const e = event as APIGatewayProxyEventV2 & {
      requestContext: { authorizer?: { jwt?: { claims?: Record<string, unknown> } } };
    };
    const response = await handlePublishRequest(
      {
        body: e.body,
        isBase64Encoded: e.isBase64Encoded,
        claims: e.requestContext.authorizer?.jwt?.claims,
        authorization: e.headers?.authorization,
      },
      deps,
    );
    if (response.statusCode >= 400) {
      logger.info('publish refused', { statusCode: response.statusCode, body: response.body });
    }
    return response;
  });
