/** `$connect`: registers the connection (the authorizer has already verified the token). */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { callerFromAuthorizer, header, SUBPROTOCOL } from '../core/auth.ts';
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
    const { connectionId, connectedAt, authorizer } = event.requestContext;
    const caller = callerFromAuthorizer(authorizer);
    if (caller === undefined) {
      logger.error('$connect reached without an authorizer context', { connectionId });
      return { statusCode: 403 };
    }
    logger.appendKeys({ connectionId, tenantId: caller.tenantId });
    await registry.putConnection(caller, connectionId, connectedAt);
    logger.info('connected', { userId: caller.userId });
    // A browser that offered subprotocols closes the socket unless the server selects one.
    const offered = header(event.headers, 'sec-websocket-protocol') ?? '';
    const selectsProtocol = offered.split(',').some((p) => p.trim() === SUBPROTOCOL);
    return { statusCode: 200, ...(selectsProtocol && { headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } }) };
  });
