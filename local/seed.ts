/** The tenants `npm start` seeds: two companies with the same role vocabulary. */
import type { RoleRules } from '../lambdas/core/permissions.ts';
import type { TenantConfig } from '../lambdas/core/tenants.ts';

export const defaultRoleRules: RoleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
  viewer: { subscribe: ['*'], publish: [] },
};

export const seedTenants: readonly TenantConfig[] = [
  { tenantId: 'acme', roleRules: defaultRoleRules },
  { tenantId: 'globex', roleRules: defaultRoleRules },
];
