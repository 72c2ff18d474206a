/** The tenants `npm start` seeds: two companies with the same role vocabulary. */
import type { RoleRules } from '../lambdas/core/permissions.ts';
import type { TenantConfig } from '../lambdas/core/tenants.ts';

export const defaultRoleRules: RoleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
  viewer: { subscribe: ['*'], publish: [] },
};

/**
 * Raised limits, far past the service defaults (lambdas/core/rate-limit.ts): the benchmark's own tenants (bench/run.ts)
 * and the integration tests' seeded tenants (`seedLimits`, test/support/local-stack.ts) get them. `npm start` seeds
 * acme and globex with the defaults, like any tenant created with the CLI (docs/security.md).
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
  { tenantId: 'acme', roleRules: defaultRoleRules },
  { tenantId: 'globex', roleRules: defaultRoleRules },
];
