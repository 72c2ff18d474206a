/** Message routes (subscribe, unsubscribe, publish, ping, refresh, presence, $default): one frame in, one frame back. */
import { randomUUID } from 'node:crypto';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { callerFromAuthorizer } from '../core/auth.ts';
import { ConnectionChecks } from '../core/connection-checks.ts';
import { deliverySendParams, isReplayRequest } from '../core/delivery.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { RateLimitedError, UnauthorizedError } from '../core/errors.ts';
import { ExpiryStore, verifyRefreshToken } from '../core/expiry.ts';
import { GroupHistory } from '../core/history.ts';
import { type PresenceDeps, sharedPresence } from '../core/presence.ts';
import { DynamoRateLimiter, effectiveLimits, rateKeys } from '../core/rate-limit.ts';
import { handleFrame, type RouteDeps } from '../core/routes.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { meteredOnArrival } from '../core/usage.ts';
import { limits as productLimits } from '../manifest.ts';
import { clientConfig, createDocumentClient } from '../shared/aws.ts';
import { createConnectionsApi } from '../shared/connections-api.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, createMetrics, MetricUnit, metricNames } from '../shared/metrics.ts';
import { createRegistry } from '../shared/registry.ts';
import { createUsage } from '../shared/usage-meter.ts';
import { claimNamesFromEnv, createJwtVerifier } from '../shared/verifier.ts';
import type { WebSocketEvent, WebSocketResult } from '../shared/websocket-event.ts';

const logger = createLogger();
const metrics = createMetrics();
const documentClient = createDocumentClient();
const sqs = new SQSClient(clientConfig);
const tableName = requireEnv('TABLE_NAME');
const queueUrl = requireEnv('DELIVERY_QUEUE_URL');

const history = new GroupHistory({ client: documentClient, tableName });
const tenants = new TenantDirectory({
  client: documentClient,
  tableName,
  cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
});
const limiter = new DynamoRateLimiter({ client: documentClient, tableName });
const expiry = new ExpiryStore({ client: documentClient, tableName });
const usage = createUsage(logger);
// Refresh tokens are verified like the authorizer verifies the first one (same issuer, audience, JWKS).
const verifier = createJwtVerifier();
const claimNames = claimNamesFromEnv();

/** The tenant's limits; an unconfigured tenant's frames are limited with the defaults (and refused FORBIDDEN). */
async function limitsOf(tenantId: string) {
  try {
    return effectiveLimits((await tenants.get(tenantId)).limits);
  } catch {
    return effectiveLimits(undefined);
  }
}

const registry = createRegistry(documentClient, tableName);
const connections = createConnectionsApi();
const presenceDeps: PresenceDeps = {
  registry,
  isConnected: (connectionId) => connections.isConnected(connectionId),
  // Each connection checked with GetConnection at most once per 10 s per container (docs/security.md).
  checks: new ConnectionChecks({ ttlMs: 10_000 }),
  post: (connectionId, data) => connections.post(connectionId, data),
  onError: (err, context) => logger.warn('presence call failed', { ...context, error: err as Error }),
};

const deps: RouteDeps = {
  registry,
  hasRoomFor: (connectionId, group) =>
    registry.hasRoomFor(connectionId, group, productLimits.subscriptionsPerConnection),
  atCapSince: (connectionId, now) => registry.atCapSince(connectionId, now),
  tenants,
  enqueue: async (message, meta) => {
    // FIFO: ordered per tenant and group, deduplicated by message id (lambdas/core/delivery.ts).
    const params = deliverySendParams(queueUrl, message, `replay-${meta.connectionId}-${randomUUID()}`);
    await sqs.send(
      new SendMessageCommand({
        ...params,
        MessageAttributes: {
          ...params.MessageAttributes,
          connectionId: { DataType: 'String', StringValue: meta.connectionId },
        },
      }),
    );
    if (!isReplayRequest(message)) {
      // The message id joins the correlation ids of this invocation's lines (docs/operations.md).
      logger.appendKeys({ messageId: message.id });
      logger.debug('enqueued', { group: message.group });
      metrics.addMetric(metricNames.messagesIn, MetricUnit.Count, 1);
    }
  },
  groupSeq: async (tenantId, group) => (await history.state(tenantId, group)).seq,
  newId: randomUUID,
  now: Date.now,
  onError: (err, context) => logger.error('frame failed', { ...context, error: err as Error }),
  admit: async (kind, caller, connectionId) => {
    const limits = await limitsOf(caller.tenantId);
    const { key, spec, why } = {
      message: {
        key: rateKeys.connection(connectionId),
        spec: limits.message,
        why: 'too many frames on this connection',
      },
      publish: {
        key: rateKeys.tenantPublish(caller.tenantId),
        spec: limits.publish,
        why: 'too many publishes in this tenant',
      },
      presence: {
        key: rateKeys.connectionPresence(connectionId),
        spec: limits.presence,
        why: 'too many presence requests on this connection',
      },
    }[kind];
    const decision = await limiter.take(key, spec);
    if (!decision.allowed) throw new RateLimitedError(why, decision.retryAfterMs);
  },
  refresh: async (connectionId, caller, token) => {
    const exp = await verifyRefreshToken(token, caller, { verifier, claimNames });
    if (!(await expiry.extend(connectionId, caller, exp))) throw new UnauthorizedError('connection is closed');
  },
  // Presence answers are shared for 1 s per tenant and group in this container (docs/protocol.md, "Presence").
  presence: { ...presenceDeps, live: sharedPresence(presenceDeps, 1000) },
};

export const handler = middy<WebSocketEvent, WebSocketResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(countInput(metrics, metricNames.framesIn))
  .handler(async (event) => {
    const { connectionId, connectedAt, authorizer, routeKey, requestTimeEpoch } = event.requestContext;
    const caller = callerFromAuthorizer(authorizer);
    logger.appendKeys({ connectionId, tenantId: caller?.tenantId, routeKey });
    if (caller !== undefined) metrics.addMetadata('tenantId', caller.tenantId);
    const frame = await handleFrame(
      { body: event.body, connectionId, connectedAt, receivedAt: requestTimeEpoch, caller },
      deps,
    );
    if (frame.type === 'error') {
      logger.info('frame rejected', { code: frame.code, reason: frame.message });
      metrics.addMetric(metricNames.framesRejected, MetricUnit.Count, 1);
      if (frame.code === 'RATE_LIMITED') metrics.addMetric(metricNames.rateLimited, MetricUnit.Count, 1);
    }
    // An accepted publish is metered by the broadcaster as it sequences it, in the write it makes for the run
    // anyway (lambdas/core/usage.ts, meteredOnArrival): no usage write of its own here.
    if (caller !== undefined && meteredOnArrival(frame)) {
      usage.add(caller.tenantId, 'messagesIn');
      await usage.flush();
    }
    return { statusCode: 200, body: JSON.stringify(frame) };
  });
