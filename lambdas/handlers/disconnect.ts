/** `$disconnect`: removes the connection and its memberships. Best-effort in AWS; TTL and 410s catch the rest. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { requireEnv } from '../core/env.ts';
import { Registry } from '../core/registry.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createLogger } from '../shared/logger.ts';
import type { WebSocketEvent, WebSocketResult } from '../shared/websocket-event.ts';

const logger = createLogger();
const registry = new Registry({ client: createDocumentClient(), tableName: requireEnv('TABLE_NAME') });

export const handler = middy<WebSocketEvent, WebSocketResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (event) => {
    const { connectionId } = event.requestContext;
    logger.appendKeys({ connectionId });
    const { groups } = await registry.removeConnection(connectionId);
    logger.info('disconnected', { groups });
    return { statusCode: 200 };
  });
