/**
 * The connection registry as every function that may remove a connection remembering its groups configures it from
 * its environment (delivery and `presence` requests on a gone connection; `$disconnect` and the reaper when a read
 * its leaves need fails): `LEFT_ANNOUNCE_AFTER_SECONDS` (lambdas/core/registry.ts; tests shorten it).
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
