/** The entity view of the tenant catalog: database, schema snapshot (as entity specs) and entity rules. */
import { ForbiddenError } from '../errors.ts';
import type { TenantDirectory } from '../tenants.ts';
import { type SchemaSnapshot, toEntitySchema } from './model.ts';
import type { TenantData } from './service.ts';

/** `tenantData` for the entity ports; FORBIDDEN for a tenant without a database or schema (not onboarded). */
export function tenantDataFrom(directory: Pick<TenantDirectory, 'get'>): (tenantId: string) => Promise<TenantData> {
  const converted = new Map<string, SchemaSnapshot>();
  return async (tenantId) => {
    const config = await directory.get(tenantId);
    if (config.database === undefined || config.schema === undefined) {
      throw new ForbiddenError(`tenant '${tenantId}' has no database`);
    }
    const cacheKey = `${tenantId}\u0000${config.schema.hash}`;
    let schema = converted.get(cacheKey);
    if (schema === undefined) {
      schema = toEntitySchema(config.schema);
      if (converted.size > 1000) converted.clear();
      converted.set(cacheKey, schema);
    }
    const { clusterArn, secretArn, databaseName } = config.database;
    return { db: { clusterArn, secretArn, databaseName }, schema, rules: config.entityRules ?? {} };
  };
}
