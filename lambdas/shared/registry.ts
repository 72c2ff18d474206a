/**
 * The connection registry as the functions that remove connections they find gone (delivery, `presence` requests)
 * configure it from their environment: `LEFT_ANNOUNCE_AFTER_SECONDS` (lambdas/core/registry.ts; tests shorten it).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { numberEnv } from '../core/env.ts';
import { LEFT_ANNOUNCE_AFTER_SECONDS, Registry } from '../core/registry.ts';

export function createRegistry(client: DynamoDBDocumentClient, tableName: string): Registry {
  return new Registry({
    client,
    tableName,
    leftAnnounceAfterSeconds: numberEnv('LEFT_ANNOUNCE_AFTER_SECONDS', LEFT_ANNOUNCE_AFTER_SECONDS),
  });
}
