/**
 * The tenant catalog: per tenant its role rules and, with the data plane, where its database lives (cluster,
 * database, the secret the Data API connects with), its schema snapshot, entity access rules and limits
 * (docs/tenants.md). Cached per container with a TTL so a busy route reads DynamoDB once a minute, not once a frame.
 *
 * Items (partition `T#<tenant>`): `CONFIG` holds everything but the schema; `SCHEMA` holds the snapshot as JSON
 * text (it can grow towards DynamoDB's 400 KB item limit with large schemas, and changes on its own schedule). One
 * Query on the partition reads both. `put` writes the snapshot first, so a reader never sees a config without it.
 * Both items are also in index gsi2, partition `TENANTS` (`gsi2sk` `C#<tenant>` and `S#<tenant>`), so the catalog is
 * listed with a Query, never a Scan: the outbox relay lists it every minute, and a Scan reads the whole table
 * (connections, history, progress), whose size grows with traffic.
 */
import {
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { EntityRules } from './entities/model.ts';
import { ForbiddenError, isConditionalCheckFailed } from './errors.ts';
import { RoleRules } from './permissions.ts';
import { queryPages } from './query-pages.ts';
import { RateLimitOverrides } from './rate-limit.ts';
import { tenantPk } from './registry.ts';
import { SchemaSnapshot } from './schema.ts';
import { TtlCache } from './ttl-cache.ts';
import * as z from './zod.ts';

/** Where the tenant's data lives. The secret's role can connect only to `databaseName`. */
export const TenantDatabase = z.object({
  /** The cluster's short id (placement: the shard). */
  clusterId: z.string(),
  clusterArn: z.string(),
  secretArn: z.string(),
  databaseName: z.string(),
});
export type TenantDatabase = z.infer<typeof TenantDatabase>;

/** Per-tenant limits; absent keys take the service defaults. */
export const TenantLimits = z.extend(
  z.partial(
    z.object({
      /** Largest page an entity list returns. */
      maxPageSize: z.number().check(z.int(), z.positive()),
      /** Largest request body of an entity write, in bytes. */
      maxWriteBytes: z.number().check(z.int(), z.positive()),
      /** Open WebSocket connections of the tenant. */
      maxConnections: z.number().check(z.int(), z.positive()),
    }),
  ),
  // Rate limits and the per-user connection cap (lambdas/core/rate-limit.ts, docs/security.md).
  RateLimitOverrides.shape,
);
export type TenantLimits = z.infer<typeof TenantLimits>;

export const TenantConfig = z.object({
  tenantId: z.string(),
  roleRules: RoleRules,
  database: z.optional(TenantDatabase),
  schema: z.optional(SchemaSnapshot),
  entityRules: z.optional(EntityRules),
  limits: z.optional(TenantLimits),
  /** Group patterns (`*` = any characters) whose members get presence join/leave events (docs/protocol.md). */
  presenceGroups: z.optional(z.array(z.string())),
});
export type TenantConfig = z.infer<typeof TenantConfig>;

/** Index gsi2's partition of the tenant catalog, and the keys of a tenant's items in it. */
const CATALOG_INDEX_PK = 'TENANTS';
const catalogKeys = (kind: 'C' | 'S', tenantId: string) => ({
  gsi2pk: CATALOG_INDEX_PK,
  gsi2sk: `${kind}#${tenantId}`,
});
const tenantOfPk = (pk: unknown) => String(pk).slice(tenantPk('').length);

export interface TenantDirectoryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default 60_000 */
  readonly cacheTtlMs?: number;
  readonly now?: () => number;
}

/** How long a sandbox remembers that a tenant is not configured. */
const MISS_TTL_MS = 5_000;

export class TenantDirectory {
  private readonly cache: TtlCache<TenantConfig | undefined>;

  constructor(private readonly options: TenantDirectoryOptions) {
    const ttlMs = options.cacheTtlMs ?? 60_000;
    this.cache = new TtlCache((tenantId) => this.load(tenantId), {
      ttlMs,
      // An unknown tenant is asked again after a few seconds, not a minute: a tenant onboarded while its users'
      // pages were already retrying was refused for up to a minute after `tenants create` (until 2026-12-03).
      ttlOf: (config) => (config === undefined ? Math.min(ttlMs, MISS_TTL_MS) : ttlMs),
      ...(options.now && { now: options.now }),
    });
  }

  /** The tenant's configuration; FORBIDDEN if the tenant is unknown (closed by default). */
  async get(tenantId: string): Promise<TenantConfig> {
    const config = await this.cache.get(tenantId);
    if (config === undefined) throw new ForbiddenError(`tenant '${tenantId}' is not configured`);
    return config;
  }

  /**
   * The tenant's configuration as stored now: its own items read strongly consistent, past the cache (onboarding,
   * the CLI). Undefined when the tenant has none.
   */
  async find(tenantId: string): Promise<TenantConfig | undefined> {
    return this.load(tenantId, true);
  }

  async put(config: TenantConfig): Promise<void> {
    const { schema, ...valid } = TenantConfig.parse(config);
    if (schema !== undefined) await this.putSchema(valid.tenantId, schema);
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.tableName,
        Item: {
          pk: tenantPk(valid.tenantId),
          sk: 'CONFIG',
          type: 'tenant',
          ...catalogKeys('C', valid.tenantId),
          ...valid,
          ...(schema && { schemaVersion: schema.version }),
        },
      }),
    );
    this.cache.invalidate(valid.tenantId);
  }

  /** Replaces the tenant's schema snapshot (after `refresh-schema`). */
  async putSchema(tenantId: string, schema: SchemaSnapshot): Promise<void> {
    const valid = SchemaSnapshot.parse(schema);
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.tableName,
        Item: {
          pk: tenantPk(tenantId),
          sk: 'SCHEMA',
          type: 'tenant-schema',
          ...catalogKeys('S', tenantId),
          version: valid.version,
          hash: valid.hash,
          snapshot: JSON.stringify(valid),
        },
      }),
    );
    this.cache.invalidate(tenantId);
  }

  /**
   * Every tenant, from index gsi2 (eventually consistent, as a Scan was): one Query of the configs and, unless
   * `schemas` is false, one of the schema snapshots (up to ~400 KB each). For the operator CLI, onboarding and the
   * outbox relay, never a request path.
   */
  async list(
    options: {
      readonly schemas?: boolean;
      /**
       * Given: a tenant whose items do not parse (written by another version during a rollout, or by hand) is left
       * out and named here, and the others are listed (the outbox relay's way: one bad item must not stop every
       * tenant's relay). @default none: such an item fails the listing
       */
      readonly onInvalid?: (tenantId: string, reason: string) => void;
    } = {},
  ): Promise<TenantConfig[]> {
    const [configs, snapshots] = await Promise.all([
      this.catalog('C'),
      options.schemas === false ? [] : this.catalog('S'),
    ]);
    const snapshotOf = new Map(snapshots.map((item) => [tenantOfPk(item.pk), String(item.snapshot)]));
    const listed: TenantConfig[] = [];
    for (const item of configs) {
      const tenantId = tenantOfPk(item.pk);
      try {
        const snapshot = snapshotOf.get(tenantId);
        const schema: unknown = snapshot === undefined ? undefined : JSON.parse(snapshot);
        listed.push(TenantConfig.parse({ ...item, ...(schema !== undefined && { schema }) }));
      } catch (err) {
        if (options.onInvalid === undefined) throw err;
        options.onInvalid(tenantId, err instanceof Error ? err.message.slice(0, 300) : String(err));
      }
    }
    return listed.sort((a, b) => a.tenantId.localeCompare(b.tenantId));
  }

  /**
   * Puts the index keys on catalog items written before `list` read index gsi2 (one Scan of the table, once per
   * table: `npm run tenants -- reindex`, and the local runtime at start). Returns how many items it updated.
   */
  async reindex(): Promise<number> {
    let updated = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.options.client.send(
        new ScanCommand({
          TableName: this.options.tableName,
          FilterExpression:
            '((sk = :config AND #type = :tenant) OR (sk = :schema AND #type = :tenantSchema)) AND attribute_not_exists(gsi2pk)',
          ProjectionExpression: 'pk, sk',
          ExpressionAttributeNames: { '#type': 'type' },
          ExpressionAttributeValues: {
            ':config': 'CONFIG',
            ':tenant': 'tenant',
            ':schema': 'SCHEMA',
            ':tenantSchema': 'tenant-schema',
          },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const { pk, sk } of out.Items ?? []) {
        const keys = catalogKeys(sk === 'CONFIG' ? 'C' : 'S', tenantOfPk(pk));
        try {
          await this.options.client.send(
            new UpdateCommand({
              TableName: this.options.tableName,
              Key: { pk, sk },
              UpdateExpression: 'SET gsi2pk = :pk, gsi2sk = :sk',
              // Never recreates an item deleted since the Scan read it.
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeValues: { ':pk': keys.gsi2pk, ':sk': keys.gsi2sk },
            }),
          );
          updated++;
        } catch (err) {
          if (!isConditionalCheckFailed(err)) throw err;
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return updated;
  }

  /** The catalog's items of one kind (`C` configs, `S` schemas), all pages. */
  private async catalog(kind: 'C' | 'S'): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    for await (const page of queryPages(this.options.client, {
      TableName: this.options.tableName,
      IndexName: 'gsi2',
      KeyConditionExpression: 'gsi2pk = :pk AND begins_with(gsi2sk, :kind)',
      ExpressionAttributeValues: { ':pk': CATALOG_INDEX_PK, ':kind': `${kind}#` },
    })) {
      items.push(...(page.Items ?? []));
    }
    return items;
  }

  private async load(tenantId: string, consistent = false): Promise<TenantConfig | undefined> {
    const out = await this.options.client.send(
      new QueryCommand({
        TableName: this.options.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': tenantPk(tenantId) },
        ...(consistent && { ConsistentRead: true }),
      }),
    );
    const items = out.Items ?? [];
    const config = items.find((item) => item.sk === 'CONFIG');
    if (config === undefined) return undefined;
    const schema = items.find((item) => item.sk === 'SCHEMA');
    return TenantConfig.parse({
      ...config,
      ...(schema !== undefined && { schema: JSON.parse(String(schema.snapshot)) }),
    });
  }
}
