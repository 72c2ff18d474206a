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

/**
 * A registered connection younger than this is counted without asking API Gateway: its `$connect` may not have
 * returned yet (API Gateway waits up to 29 s for an integration), and until then GetConnection does not know it.
 */
const HANDSHAKE_GRACE_MS = 60_000;

/** What tells a registered connection API Gateway still has from one whose `$disconnect` was lost. */
export interface GoneConnectionDeps {
  /** GetConnection: false when API Gateway no longer has the connection (410). */
  readonly isConnected: (connectionId: string) => Promise<boolean>;
  /** Removes a connection API Gateway no longer has: its items and its counted place (`Registry.removeConnection`). */
  readonly forget: (connectionId: string) => Promise<void>;
}

/**
 * The live connections of one user, for the recount of a counter that refuses them (connection-counters.ts): the
 * registered ones API Gateway still has. `$disconnect` is best effort in AWS: a lost one leaves its connection
 * registered until the record's ttl (2 h 5 min), and counted, that phantom kept the user locked out as long (until
 * 2026-12-03). So each registered connection is asked about (GetConnection: at most the user's cap of them) and a gone
 * one is forgotten. One that cannot be asked (the API failing) or is still in its handshake counts as live: the
 * recount never admits over the cap. A tenant's count stays the records' (thousands of calls per refusal would be too
 * many); its phantoms go with delivery's 410s, the reaper and the ttl.
 */
export async function liveUserCount(
  tenantId: string,
  userId: string,
  deps: GoneConnectionDeps & { readonly connections: Pick<TenantConnections, 'list'>; readonly now?: () => number },
): Promise<number> {
  const listed = await deps.connections.list(tenantId, userId);
  const settled = (deps.now ?? Date.now)() - HANDSHAKE_GRACE_MS;
  const answers = await settleConcurrently(listed, 8, async ({ connectionId, connectedAt }) => {
    if (connectedAt > settled || (await deps.isConnected(connectionId))) return true;
    await deps.forget(connectionId);
    return false;
  });
  return answers.filter((answer) => answer.status === 'rejected' || answer.value).length;
}

export interface DisconnectDeps extends Pick<GoneConnectionDeps, 'forget'> {
  readonly connections: Pick<TenantConnections, 'list'>;
  /** DeleteConnection; false when the connection was already gone. */
  readonly close: (connectionId: string) => Promise<boolean>;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
}

/** When a disconnect stops closing connections: `deadline` on the clock `now` (epoch ms). */
export interface DisconnectBudget {
  readonly deadline: number;
  readonly now: () => number;
}

/**
 * Closes every connection of a tenant, or of one user of it. The tenant is always the caller's (from the token):
 * there is no parameter through which another tenant could be named. `$disconnect` removes their items; a connection
 * API Gateway no longer has (its `$disconnect` was lost) gets no `$disconnect`, so it is forgotten here. With a
 * `budget`, no connection is closed past its deadline: they are counted as `remaining`, for the caller to ask again
 * (the HTTP API answers within 30 s, whatever the function does after).
 */
export async function disconnectAll(
  tenantId: string,
  userId: string | undefined,
  deps: DisconnectDeps,
  budget?: DisconnectBudget,
): Promise<{ disconnected: number; failed: number; remaining: number }> {
  const targets = await deps.connections.list(tenantId, userId);
  let disconnected = 0;
  let failed = 0;
  let remaining = 0;
  // Bounded parallelism: a big tenant must not open thousands of requests to the Management API at once.
  const results = await settleConcurrently(targets, 16, async (t) => {
    if (budget !== undefined && budget.now() >= budget.deadline) return false;
    if (!(await deps.close(t.connectionId))) await deps.forget(t.connectionId);
    return true;
  });
  for (const [i, result] of results.entries()) {
    if (result.status === 'rejected') {
      failed++;
      deps.onError?.(result.reason, { connectionId: targets[i]?.connectionId });
    } else if (result.value) disconnected++;
    else remaining++;
  }
  return { disconnected, failed, remaining };
}
