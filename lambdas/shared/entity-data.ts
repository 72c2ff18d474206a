/** The tenant directory and the tenant databases (RDS Data API), as the entity functions read them from the environment. */
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { RdsDataApi } from '../core/data-api.ts';
import { tenantDataFrom } from '../core/entities/tenant-data.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { clientConfig, createDocumentClient } from './aws.ts';

/** The tenant directory on `TABLE_NAME`, cached for `TENANT_CACHE_TTL_SECONDS` (default 60). */
export function createTenantDirectory(): TenantDirectory {
  return new TenantDirectory({
    client: createDocumentClient(),
    tableName: requireEnv('TABLE_NAME'),
    cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
  });
}

/** The Data API client and each tenant's database (from its directory entry). */
export function createEntityData(tenants: TenantDirectory) {
  return { data: new RdsDataApi(new RDSDataClient(clientConfig)), tenantData: tenantDataFrom(tenants) };
}
