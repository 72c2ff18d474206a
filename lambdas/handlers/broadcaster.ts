/** Broadcaster: takes published messages off the delivery queue and posts them to every connection of the group. */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DeliveryMessage } from '../core/delivery.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { type FanoutDeps, fanOut } from '../core/fanout.ts';
import { Registry } from '../core/registry.ts';
import { createDocumentClient } from '../shared/aws.ts';
import { createLogger } from '../shared/logger.ts';

const logger = createLogger();
const connections = new ApiGatewayManagementApiClient({ endpoint: requireEnv('CONNECTIONS_ENDPOINT') });
const processor = new BatchProcessor(EventType.SQS);

const deps: FanoutDeps = {
  registry: new Registry({ client: createDocumentClient(), tableName: requireEnv('TABLE_NAME') }),
  post: async (connectionId, data) => {
    await connections.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
  },
  isGone: (err) =>
    (err as { name?: string }).name === 'GoneException' ||
    (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410,
  concurrency: numberEnv('DELIVERY_CONCURRENCY', 32),
  log: (message, details) => logger.info(message, details),
};

async function deliverRecord(record: SQSRecord): Promise<void> {
  let message: DeliveryMessage;
  try {
    message = DeliveryMessage.parse(JSON.parse(record.body));
  } catch (err) {
    // Poison message: fails every time, so SQS moves it to the DLQ after maxReceiveCount receives.
    logger.error('undeliverable message', { sqsMessageId: record.messageId, error: err as Error });
    throw err;
  }
  const result = await fanOut(message, deps);
  logger.info('delivered', { messageId: message.id, tenantId: message.tenantId, group: message.group, ...result });
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event, context) => processPartialResponse(event, deliverRecord, processor, { context }));
