/** Message routes (subscribe, unsubscribe, publish, ping, $default): one frame in, one frame back. */
import { randomUUID } from 'node:crypto';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { callerFromAuthorizer } from '../core/auth.ts';
import { deliverySendParams } from '../core/delivery.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { GroupHistory } from '../core/history.ts';
import { Registry } from '../core/registry.ts';
import { handleFrame, type RouteDeps } from '../core/routes.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createLogger } from '../shared/logger.ts';
import type { WebSocketEvent, WebSocketResult } from '../shared/websocket-event.ts';

const logger = createLogger();
const documentClient = createDocumentClient();
const sqs = new SQSClient({});
const tableName = requireEnv('TABLE_NAME');
const queueUrl = requireEnv('DELIVERY_QUEUE_URL');

const history = new GroupHistory({ client: documentClient, tableName });

const deps: RouteDeps = {
  registry: new Registry({ client: documentClient, tableName }),
  tenants: new TenantDirectory({
    client: documentClient,
    tableName,
    cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
  }),
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
  },
  groupSeq: async (tenantId, group) => (await history.state(tenantId, group)).seq,
  newId: randomUUID,
  now: Date.now,
  onError: (err, context) => logger.error('frame failed', { ...context, error: err as Error }),
};

export const handler = middy<WebSocketEvent, WebSocketResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (event) => {
    const { connectionId, connectedAt, authorizer, routeKey } = event.requestContext;
    const caller = callerFromAuthorizer(authorizer);
    logger.appendKeys({ connectionId, tenantId: caller?.tenantId, routeKey });
    const frame = await handleFrame({ body: event.body, connectionId, connectedAt, caller }, deps);
    if (frame.type === 'error') logger.info('frame rejected', { code: frame.code, reason: frame.message });
    return { statusCode: 200, body: JSON.stringify(frame) };
  });
