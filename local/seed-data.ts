/**
 * The local tenants' data plane: acme and globex onboarded through the same code as `npm run tenants -- create`
 * (different schemas on purpose, on two different clusters), their entity rules, and a few rows.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataApi } from '../lambdas/core/data-api.ts';
import { placeholder, typed } from '../lambdas/core/data-api.ts';
import type { EntityRules } from '../lambdas/core/entities/model.ts';
import { type ClusterRef, Onboarding, type SecretStore } from '../lambdas/core/onboarding.ts';
import type { TenantDirectory, TenantLimits } from '../lambdas/core/tenants.ts';
import { defaultRoleRules } from './seed.ts';

export const localClusterIds = ['cluster-a', 'cluster-b'] as const;

export interface SeedTenant {
  readonly tenantId: string;
  readonly clusterId: (typeof localClusterIds)[number];
  readonly schemaFile: string;
  readonly entityRules: EntityRules;
  /** Statements (with parameters) that insert the sample rows. */
  readonly rows: readonly { readonly sql: string; readonly params: Parameters<DataApi['execute']>[2] }[];
}

const seedDir = join(import.meta.dirname, 'seed');
const campaignLaunch = '7b0e3a52-4d0f-4a51-9b2a-0c4f1c9e0a01';
const campaignSpring = '7b0e3a52-4d0f-4a51-9b2a-0c4f1c9e0a02';

const acmeCampaign = (id: string, name: string, budget: string, status: string, startsAt: string) => ({
  sql: 'INSERT INTO campaign (id, name, budget, status, starts_at) VALUES (:id, :name, :budget, :status, :starts_at)',
  params: {
    id: typed(id, 'uuid'),
    name,
    budget: typed(budget, 'numeric'),
    status,
    starts_at: typed(startsAt, 'timestamptz'),
  },
});
const acmeTask = (
  id: string,
  title: string,
  status: string,
  assignee: string,
  campaign: string,
  due: string,
  hours: number,
) => ({
  sql: `INSERT INTO task (id, title, status, assignee_id, campaign_id, due_date, estimate_hours)
        VALUES (:id, :title, :status, :assignee_id, :campaign_id, :due_date, :estimate_hours)`,
  params: {
    id: typed(id, 'uuid'),
    title,
    status,
    assignee_id: assignee,
    campaign_id: typed(campaign, 'uuid'),
    due_date: typed(due, 'date'),
    estimate_hours: hours,
  },
});
const globexTask = (summary: string, priority: number, tags: string[], done: boolean, owner: string) => ({
  sql: `INSERT INTO task (summary, priority, tags, done, owner)
        VALUES (:summary, :priority, ${placeholder('tags', 'text[]')}, :done, :owner)`,
  params: { summary, priority, tags: typed(tags, 'text[]'), done, owner },
});

export const seedTenantData: readonly SeedTenant[] = [
  {
    tenantId: 'acme',
    clusterId: 'cluster-a',
    schemaFile: join(seedDir, 'acme.sql'),
    entityRules: {
      task: { readRoles: ['admin', 'member', 'viewer'], writeRoles: ['admin', 'member'], bypassRoles: [] },
      campaign: { readRoles: ['admin', 'marketing'], writeRoles: ['admin', 'marketing'], bypassRoles: [] },
    },
    rows: [
      acmeCampaign(campaignLaunch, 'Product launch', '25000.00', 'active', '2025-03-01T09:00:00Z'),
      acmeCampaign(campaignSpring, 'Spring sale', '8000.50', 'draft', '2025-04-15T08:00:00Z'),
      acmeTask(
        '5c1d6a10-0000-4000-8000-000000000001',
        'Write the press release',
        'open',
        'alice',
        campaignLaunch,
        '2025-02-20',
        6,
      ),
      acmeTask(
        '5c1d6a10-0000-4000-8000-000000000002',
        'Book the venue',
        'done',
        'bob',
        campaignLaunch,
        '2025-02-10',
        3,
      ),
      acmeTask(
        '5c1d6a10-0000-4000-8000-000000000003',
        'Design the banners',
        'open',
        'alice',
        campaignSpring,
        '2025-04-01',
        12,
      ),
    ],
  },
  {
    tenantId: 'globex',
    clusterId: 'cluster-b',
    schemaFile: join(seedDir, 'globex.sql'),
    entityRules: {
      task: {
        readRoles: ['admin', 'member', 'viewer'],
        writeRoles: ['admin', 'member'],
        rowFilter: { column: 'owner', equalsClaim: 'sub' },
        bypassRoles: ['admin'],
      },
    },
    rows: [
      globexTask('Quarterly report', 1, ['finance', 'q3'], false, 'alice'),
      globexTask('Renew certificates', 2, ['ops'], true, 'alice'),
      globexTask('Hire a designer', 3, ['hiring'], false, 'bob'),
    ],
  },
];

export interface SeedDataDeps {
  readonly dataApi: DataApi;
  readonly secrets: SecretStore;
  readonly tenants: TenantDirectory;
  readonly clusters: readonly ClusterRef[];
  /** Limits of the seeded tenants. @default none: the service defaults */
  readonly limits?: TenantLimits;
}

/**
 * Onboards every seed tenant that has no database yet (with its role rules, limits and entity rules), then inserts
 * its rows. Idempotent across restarts: a tenant with a database keeps everything it has (its catalog entry, rules,
 * rows and change log are not touched), so a stack restarted on the same `DATA_DIR` comes back as it was.
 */
export async function seedData(deps: SeedDataDeps): Promise<void> {
  const onboarding = new Onboarding(deps);
  const known = new Map((await deps.tenants.list()).map((t) => [t.tenantId, t]));
  for (const seed of seedTenantData) {
    if (known.get(seed.tenantId)?.database !== undefined) continue;
    const config = await onboarding.createTenant({
      tenantId: seed.tenantId,
      schemaSql: await readFile(seed.schemaFile, 'utf8'),
      clusterId: seed.clusterId,
      roleRules: {
        ...defaultRoleRules,
        ...(seed.tenantId === 'acme' && { marketing: { subscribe: ['*'], publish: [] } }),
      },
      ...(deps.limits !== undefined && { limits: deps.limits }),
      entityRules: seed.entityRules,
    });
    const db = config.database;
    if (db === undefined) continue;
    await deps.dataApi.transaction(db, async (tx) => {
      for (const row of seed.rows) await tx.execute(row.sql, row.params);
    });
  }
}
