/** The tenants `npm start` seeds: two companies with the same role vocabulary. */
import type { RoleRules } from '../lambdas/core/permissions.ts';
import type { TenantConfig } from '../lambdas/core/tenants.ts';

export const defaultRoleRules: RoleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
  viewer: { subscribe: ['*'], publish: [] },
};

/**
 * Raised limits for the seeded development tenants, which the benchmark and the load tests drive far past the
 * service defaults (lambdas/core/rate-limit.ts). A tenant created with the CLI gets the defaults (docs/security.md).
 */
export const devLimits: NonNullable<TenantConfig['limits']> = {
  maxConnections: 100_000,
  maxConnectionsPerUser: 1_000,
  messagesPerSecond: 10_000,
  messageBurst: 20_000,
  publishesPerSecond: 10_000,
  publishBurst: 20_000,
  httpRequestsPerSecond: 10_000,
  httpBurst: 20_000,
};

export const seedTenants: readonly TenantConfig[] = [
  { tenantId: 'acme', roleRules: defaultRoleRules, limits: devLimits },
  { tenantId: 'globex', roleRules: defaultRoleRules, limits: devLimits },
];
