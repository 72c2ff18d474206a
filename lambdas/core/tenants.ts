/**
 * Tenant configuration (role rules today; more with the tenant data plane), stored as one item per tenant and
 * cached per container with a TTL so a busy route reads DynamoDB once a minute, not once a frame.
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ForbiddenError } from './errors.ts';
import { RoleRules } from './permissions.ts';
import { tenantPk } from './registry.ts';
import { TtlCache } from './ttl-cache.ts';

export const TenantConfig = z.object({
  tenantId: z.string(),
  roleRules: RoleRules,
});
export type TenantConfig = z.infer<typeof TenantConfig>;

export interface TenantDirectoryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default 60_000 */
  readonly cacheTtlMs?: number;
  readonly now?: () => number;
}

export class TenantDirectory {
  private readonly cache: TtlCache<TenantConfig | undefined>;

  constructor(private readonly options: TenantDirectoryOptions) {
    this.cache = new TtlCache((tenantId) => this.load(tenantId), {
      ttlMs: options.cacheTtlMs ?? 60_000,
      ...(options.now && { now: options.now }),
    });
  }

  /** The tenant's configuration; FORBIDDEN if the tenant is unknown (closed by default). */
  async get(tenantId: string): Promise<TenantConfig> {
    const config = await this.cache.get(tenantId);
    if (config === undefined) throw new ForbiddenError(`tenant '${tenantId}' is not configured`);
    return config;
  }

  async put(config: TenantConfig): Promise<void> {
    const valid = TenantConfig.parse(config);
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.tableName,
        Item: { pk: tenantPk(valid.tenantId), sk: 'CONFIG', type: 'tenant', ...valid },
      }),
    );
    this.cache.invalidate(valid.tenantId);
  }

  private async load(tenantId: string): Promise<TenantConfig | undefined> {
    const out = await this.options.client.send(
      new GetCommand({ TableName: this.options.tableName, Key: { pk: tenantPk(tenantId), sk: 'CONFIG' } }),
    );
    if (out.Item === undefined) return undefined;
    return TenantConfig.parse(out.Item);
  }
}
