/**
 * The live connections of a tenant, or of one user of it, through index gsi1 (`gsi1pk = T#<tenant>`,
 * `gsi1sk = U#<user>#C#<connectionId>`): counted exactly to recount the connection-cap counters
 * (lambdas/core/connection-counters.ts; never per handshake: O(tenant connections) reads), listed for revocation
 * (`POST /v1/admin/disconnect`, the tenants CLI). docs/security.md. Items past their `ttl` are not counted.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { settleConcurrently } from './concurrency.ts';
import { queryPages } from './query-pages.ts';
import { tenantPk } from './registry.ts';

export interface LiveConnection {
  readonly connectionId: string;
  readonly userId: string;
  readonly connectedAt: number;
}

export interface TenantConnectionsOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: () => number;
}

export class TenantConnections {
  private readonly now: () => number;

  constructor(private readonly options: TenantConnectionsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Live connections of the tenant, or of one user of it. */
  async list(tenantId: string, userId?: string): Promise<LiveConnection[]> {
    const found: LiveConnection[] = [];
    const pages = queryPages(this.options.client, {
      TableName: this.options.tableName,
      IndexName: 'gsi1',
      ...this.condition(tenantId, userId),
    });
    for await (const out of pages) {
      for (const item of out.Items ?? []) {
        if (userId !== undefined && item.userId !== userId) continue;
        found.push({
          connectionId: String(item.connectionId),
          userId: String(item.userId),
          connectedAt: Number(item.connectedAt),
        });
      }
    }
    return found;
  }

  /** How many live connections the tenant (or one user of it) has (`Select: COUNT`, paginated). */
  async count(tenantId: string, userId?: string): Promise<number> {
    let total = 0;
    const pages = queryPages(this.options.client, {
      TableName: this.options.tableName,
      IndexName: 'gsi1',
      ...this.condition(tenantId, userId),
      Select: 'COUNT',
    });
    for await (const out of pages) total += out.Count ?? 0;
    return total;
  }

  private condition(tenantId: string, userId: string | undefined) {
    return {
      KeyConditionExpression: userId === undefined ? 'gsi1pk = :pk' : 'gsi1pk = :pk AND begins_with(gsi1sk, :user)',
      // Items past their ttl are gone for readers even before DynamoDB TTL deletes them. The sort key's prefix
      // `U#<user>#` also matches a user whose id continues it (`alice` and `alice#1234`): the user id must be exact.
      FilterExpression: userId === undefined ? '#ttl > :now' : '#ttl > :now AND #user = :userId',
      ExpressionAttributeNames: { '#ttl': 'ttl', ...(userId !== undefined && { '#user': 'userId' }) },
      ExpressionAttributeValues: {
        ':pk': tenantPk(tenantId),
        ':now': Math.floor(this.now() / 1000),
        ...(userId !== undefined && { ':user': `U#${userId}#`, ':userId': userId }),
      },
    };
  }
}

export interface DisconnectDeps {
  readonly connections: Pick<TenantConnections, 'list'>;
  /** DeleteConnection; must tolerate a connection that is already gone. */
  readonly close: (connectionId: string) => Promise<void>;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
}

/**
 * Closes every connection of a tenant, or of one user of it. The tenant is always the caller's (from the token):
 * there is no parameter through which another tenant could be named. `$disconnect` removes their items.
 */
export async function disconnectAll(
  tenantId: string,
  userId: string | undefined,
  deps: DisconnectDeps,
): Promise<{ disconnected: number; failed: number }> {
  const targets = await deps.connections.list(tenantId, userId);
  let disconnected = 0;
  let failed = 0;
  // Bounded parallelism: a big tenant must not open thousands of requests to the Management API at once.
  const results = await settleConcurrently(targets, 16, (t) => deps.close(t.connectionId));
  for (const [i, result] of results.entries()) {
    if (result.status === 'fulfilled') disconnected++;
    else {
      failed++;
      deps.onError?.(result.reason, { connectionId: targets[i]?.connectionId });
    }
  }
  return { disconnected, failed };
}
