/**
 * Tenant onboarding (`npm run tenants -- create|refresh-schema|list`, and the local runtime's seeding): places a
 * tenant on a cluster, creates its database and a role that can connect only to it, stores the role's secret,
 * applies the tenant's DDL plus the change log, and records the introspected schema snapshot in the catalog.
 * Everything goes through ports: the Data API, a secret store and the tenant directory, so the same code runs
 * against AWS and against the local runtime.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CreateSecretCommand, DeleteSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { tenantSecretName } from '../manifest.ts';
import type { DataApi, DatabaseRef } from './data-api.ts';
import { ANY_ENTITY, rowFilterProblem } from './entities/access.ts';
import { EntityRules, type EntitySpec, toEntitySchema } from './entities/model.ts';
import { BadRequestError, ForbiddenError } from './errors.ts';
import { RoleRules } from './permissions.ts';
import {
  changeLogDdl,
  introspect,
  nextSnapshot,
  type SchemaSnapshot,
  splitSqlStatements,
  UNFIT_NAME,
} from './schema.ts';
import { type TenantConfig, type TenantDirectory, TenantLimits } from './tenants.ts';
import * as z from './zod.ts';

/** A cluster tenants can be placed on: its ARN and the master user's secret (creates databases and roles). */
export interface ClusterRef {
  readonly id: string;
  readonly clusterArn: string;
  readonly adminSecretArn: string;
}

/** Stores a tenant's database credentials; returns the secret's ARN (what the Data API is given). */
export interface SecretStore {
  create(name: string, value: string, description: string): Promise<string>;
  /** Deletes at once, without a recovery window, so the name can be created again (a failed onboarding's). */
  delete(name: string): Promise<void>;
}

/** The SecretStore over Secrets Manager (configured from the environment, like every SDK client). */
export class SecretsManagerStore implements SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}
  async create(name: string, value: string, description: string): Promise<string> {
    const out = await this.client.send(
      new CreateSecretCommand({ Name: name, SecretString: value, Description: description }),
    );
    if (out.ARN === undefined) throw new Error(`CreateSecret for ${name} returned no ARN`);
    return out.ARN;
  }
  async delete(name: string): Promise<void> {
    await this.client.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
  }
}

export interface OnboardingDeps {
  readonly dataApi: DataApi;
  readonly secrets: SecretStore;
  readonly tenants: TenantDirectory;
  readonly clusters: readonly ClusterRef[];
  /**
   * The deployment stage: tenant secrets are named `tenantcast/<stage>/tenant/<tenantId>` (`tenantSecretName` in
   * lambdas/manifest.ts), the prefix the `tenantData` binding grants read on. @default 'local'
   */
  readonly stage?: string;
  readonly log?: (message: string) => void;
}

export interface CreateTenantInput {
  readonly tenantId: string;
  /** The tenant's DDL (one or more statements). */
  readonly schemaSql: string;
  /** Place on this cluster; default: the cluster with the fewest tenants. */
  readonly clusterId?: string;
  readonly roleRules?: RoleRules;
  readonly entityRules?: EntityRules;
  readonly limits?: TenantLimits;
  readonly presenceGroups?: string[];
}

export const defaultTenantRoleRules: RoleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
  viewer: { subscribe: ['*'], publish: [] },
};

/**
 * The entity rules of a tenant onboarded without any: its admins read and write every entity (`*`), present and
 * future; other roles nothing until rules say so (`--rules`, `set-rules`; docs/tenants.md).
 */
export const defaultEntityRules: EntityRules = {
  [ANY_ENTITY]: { readRoles: ['admin'], writeRoles: ['admin'], bypassRoles: [] },
};

/**
 * A rules file (`create --rules`, `set-rules`): each key given replaces the tenant's; keys left out are kept. Its
 * limits are strict: a misspelt one (`maxConnectionPerUser`) is refused, where the catalog's reader drops it (until
 * 2026-12-04 the file's did too, and the tenant's limits were replaced by none; found by an attacking pass).
 */
export const TenantRulesFile = z.strictObject({
  roleRules: z.optional(RoleRules),
  entityRules: z.optional(EntityRules),
  limits: z.optional(z.strictObject(TenantLimits.shape)),
  /** Group patterns whose members get presence join/leave events (docs/protocol.md, "Presence"). */
  presenceGroups: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(256))).check(z.maxLength(100))),
});
export type TenantRulesFile = z.infer<typeof TenantRulesFile>;

/** Parses a rules file's JSON text; BAD_REQUEST naming what is wrong. */
export function parseRulesFile(text: string): TenantRulesFile {
  let json: unknown;
  let proto = false;
  try {
    // A key JSON.parse keeps but an object built from it would not: a role or entity named `__proto__` would be dropped
    // on the way in (the rules left empty: every right gone). Refused anywhere in the file.
    json = JSON.parse(text, (key, value) => {
      if (key === '__proto__') proto = true;
      return value;
    });
  } catch (err) {
    throw new BadRequestError(`the rules file is not JSON: ${(err as Error).message}`);
  }
  if (proto) throw new BadRequestError("the rules file is not valid: the key '__proto__' is not allowed");
  const parsed = TenantRulesFile.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new BadRequestError(`the rules file is not valid: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/**
 * What is wrong with entity rules for this schema: a rule for an entity the schema does not have (a typo, or a
 * skipped table), a row filter on a column the entity lacks, a row filter under `*` (its column would have to be in
 * every entity). Empty when nothing is.
 */
export function entityRuleProblems(rules: EntityRules, schema: SchemaSnapshot | undefined): string[] {
  const problems: string[] = [];
  const entities = schema?.entities ?? {};
  for (const [name, rule] of Object.entries(rules)) {
    if (name === ANY_ENTITY) {
      if (rule.rowFilter !== undefined) problems.push(`the '${ANY_ENTITY}' rule cannot have a row filter`);
      continue;
    }
    const entity = Object.hasOwn(entities, name) ? entities[name] : undefined;
    if (entity === undefined) {
      const skipped = schema?.skipped?.[name];
      problems.push(
        skipped === undefined
          ? `no entity '${name}' (entities: ${Object.keys(entities).join(', ') || 'none'})`
          : `'${name}' is not an entity (${skipped})`,
      );
    } else if (rule.rowFilter !== undefined) {
      const problem = rowFilterProblem(entitySpecOf(entity), rule.rowFilter.column);
      if (problem !== undefined) problems.push(`entity '${name}' row filter: ${problem}`);
    }
  }
  return problems;
}

/** An introspected entity as the entity API sees it (its field types and casts). */
function entitySpecOf(entity: Parameters<typeof toEntitySchema>[0]['entities'][string]): EntitySpec {
  return toEntitySchema({ entities: { entity } }).entities.entity as EntitySpec;
}

/** One line per table that is not an entity, with the reason: what `create` and `refresh-schema` print. */
export function skippedLines(schema: SchemaSnapshot | undefined): string[] {
  return Object.entries(schema?.skipped ?? {}).map(([table, why]) =>
    why === UNFIT_NAME
      ? `skipped table ${table}: ${why}`
      : `skipped table ${table}: ${why} (an entity needs a single-column primary key; the API cannot address its rows)`,
  );
}

/**
 * One warning per foreign key the entity API cannot keep to its rules (docs/entities.md, "Access rules"): an
 * `ON DELETE` or `ON UPDATE` action that changes referencing rows with no change-log entry and no live message, and a column's
 * second foreign key, whose target the API does not check a writer may read. What `create` and `refresh-schema` print.
 */
export function referenceLines(schema: SchemaSnapshot | undefined): string[] {
  return Object.entries(schema?.entities ?? {}).flatMap(([table, entity]) =>
    Object.entries(entity.fields).flatMap(([column, field]) => {
      const ref = field.references;
      if (ref === undefined) return [];
      const where = `${table}.${column} references ${ref.entity}.${ref.field}`;
      const action = (on: 'DELETE' | 'UPDATE', what: string | undefined, write: string) =>
        what === undefined
          ? []
          : [
              `warning: ${where} ON ${on} ${what.toUpperCase()}: ${write} of ${ref.entity} changes ${table} rows with no change-log entry and no live message; declare it without (NO ACTION) and change ${table} through the API`,
            ];
      return [
        ...action('DELETE', ref.onDelete, 'a delete'),
        ...action('UPDATE', ref.onUpdate, `an update of ${ref.field}`),
        ...(ref.more === true
          ? [
              `warning: ${table}.${column} has more than one foreign key: a writer's read rights are checked on ${ref.entity} only`,
            ]
          : []),
      ];
    }),
  );
}

const TENANT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** PostgreSQL's longest name (NAMEDATALEN − 1): a longer one is cut silently. */
const MAX_PG_NAME = 63;

/**
 * The database (and role) name of a tenant: `tenant_<id>`, lower case, `-` as `_`. Tenant ids are case-sensitive and
 * may hold `-`, so `Acme` and `acme`, or `a-b` and `a_b`, would share a name, as would two ids of over 56 characters
 * that PostgreSQL cuts alike: an id that is not already such a name, or too long, gets its own hash as a suffix
 * (`tenant_acme_3f0c9a1b`), so no two tenants meet at `CREATE ROLE`.
 */
export function databaseNameOf(tenantId: string): string {
  const plain = `tenant_${tenantId.toLowerCase().replace(/-/g, '_')}`;
  if (plain === `tenant_${tenantId}` && plain.length <= MAX_PG_NAME) return plain;
  const hash = createHash('sha256').update(tenantId).digest('hex').slice(0, 8);
  return `${plain.slice(0, MAX_PG_NAME - hash.length - 1)}_${hash}`;
}

/** The cluster with the fewest tenants (ties: the first in `clusters` order). */
export function placeTenant(clusters: readonly ClusterRef[], tenants: readonly TenantConfig[]): ClusterRef {
  const counts = new Map(clusters.map((c) => [c.id, 0]));
  for (const t of tenants) {
    const id = t.database?.clusterId;
    if (id !== undefined && counts.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  let best: ClusterRef | undefined;
  for (const c of clusters) if (best === undefined || (counts.get(c.id) ?? 0) < (counts.get(best.id) ?? 0)) best = c;
  if (best === undefined) throw new BadRequestError('no clusters to place the tenant on');
  return best;
}

/**
 * A new tenant's configuration: the rules and limits given, else those the catalog has for it already (a real-time
 * tenant gaining a database keeps its role rules, limits and presence groups; until 2026-12-04 it lost its presence
 * events), else the defaults.
 */
function configOf(
  input: CreateTenantInput,
  current: TenantConfig | undefined,
  database: NonNullable<TenantConfig['database']>,
  schema: SchemaSnapshot,
): TenantConfig {
  return {
    tenantId: input.tenantId,
    roleRules: input.roleRules ?? current?.roleRules ?? defaultTenantRoleRules,
    database,
    schema,
    entityRules: input.entityRules ?? current?.entityRules ?? defaultEntityRules,
    ...((input.limits ?? current?.limits) && { limits: input.limits ?? current?.limits }),
    ...((input.presenceGroups ?? current?.presenceGroups) && {
      presenceGroups: input.presenceGroups ?? current?.presenceGroups,
    }),
  };
}

export class Onboarding {
  constructor(private readonly deps: OnboardingDeps) {}

  async createTenant(input: CreateTenantInput): Promise<TenantConfig> {
    const { tenantId } = input;
    if (!TENANT_ID.test(tenantId)) throw new BadRequestError(`tenant id must match ${TENANT_ID} (got '${tenantId}')`);
    const statements = splitSqlStatements(input.schemaSql);
    if (statements.length === 0) throw new BadRequestError('the schema file has no statements');
    const { current, cluster } = await this.placement(input);
    const databaseName = databaseNameOf(tenantId);
    const role = `"${databaseName}"`;
    const admin: DatabaseRef = {
      clusterArn: cluster.clusterArn,
      secretArn: cluster.adminSecretArn,
      databaseName: 'postgres',
    };
    const log = this.deps.log ?? (() => undefined);

    log(`placing ${tenantId} on ${cluster.id} as database ${databaseName}`);
    const secretName = tenantSecretName(this.deps.stage ?? 'local', tenantId);
    const made = { role: false, database: false, secret: false };
    let config: TenantConfig;
    try {
      const db = await this.provision({ tenantId, cluster, admin, role, databaseName, secretName }, made);
      log(`applying ${statements.length} statement(s) and the change log as ${databaseName}`);
      await this.deps.dataApi.transaction(db, async (tx) => {
        for (const sql of [...statements, ...splitSqlStatements(changeLogDdl)]) await tx.execute(sql);
      });
      const schema = await this.snapshot(db, undefined);
      for (const line of [...skippedLines(schema), ...referenceLines(schema)]) log(line);
      config = configOf(input, current, { clusterId: cluster.id, ...db }, schema);
      // The database exists by now: rules that do not fit are reported, not refused (`set-rules` fixes them).
      for (const problem of entityRuleProblems(config.entityRules ?? {}, schema))
        log(`warning: entity rules: ${problem}`);
      await this.deps.tenants.put(config);
    } catch (err) {
      // Undone, so the same command can run again once the schema file is fixed (until 2026-12-04 a failed create left
      // its role, database and secret behind, and every later create of the tenant failed on them).
      await this.undoCreate(admin, role, secretName, made);
      throw err;
    }
    const count = Object.keys(config.schema?.entities ?? {}).length;
    log(`${tenantId}: ${count} ${count === 1 ? 'entity' : 'entities'}, schema version ${config.schema?.version}`);
    return config;
  }

  /**
   * The tenant as stored (read from its own items, strongly consistent) and the cluster it goes on: the one asked for,
   * else the least used (the catalog, an eventually consistent index, only counts tenants per cluster). A tenant of
   * the real-time plane only (no database yet) gains a data plane; one with a database is refused.
   */
  private async placement(
    input: CreateTenantInput,
  ): Promise<{ current: TenantConfig | undefined; cluster: ClusterRef }> {
    const [current, existing] = await Promise.all([
      this.deps.tenants.find(input.tenantId),
      this.deps.tenants.list({ schemas: false }),
    ]);
    if (current?.database !== undefined) throw new BadRequestError(`tenant '${input.tenantId}' exists already`);
    const cluster =
      input.clusterId === undefined
        ? placeTenant(this.deps.clusters, existing)
        : this.deps.clusters.find((c) => c.id === input.clusterId);
    if (cluster === undefined) {
      throw new BadRequestError(
        `unknown cluster '${input.clusterId}' (clusters: ${this.deps.clusters.map((c) => c.id).join(', ')})`,
      );
    }
    return { current, cluster };
  }

  /**
   * The tenant's role (with a fresh password), its database (connectable by that role only) and the secret the Data
   * API connects with; `made` records each step done, for `undoCreate`.
   */
  private async provision(
    at: {
      readonly tenantId: string;
      readonly cluster: ClusterRef;
      readonly admin: DatabaseRef;
      readonly role: string;
      readonly databaseName: string;
      readonly secretName: string;
    },
    made: { role: boolean; database: boolean; secret: boolean },
  ): Promise<DatabaseRef> {
    const { admin, role, databaseName, cluster } = at;
    const password = randomBytes(24).toString('base64url');
    await this.deps.dataApi.execute(admin, `CREATE ROLE ${role} WITH LOGIN PASSWORD '${password}'`);
    made.role = true;
    await this.deps.dataApi.execute(admin, `GRANT ${role} TO CURRENT_USER`);
    await this.deps.dataApi.execute(admin, `CREATE DATABASE ${role} OWNER ${role}`);
    made.database = true;
    await this.deps.dataApi.execute(admin, `REVOKE CONNECT ON DATABASE ${role} FROM PUBLIC`);
    await this.deps.dataApi.execute(admin, `GRANT CONNECT ON DATABASE ${role} TO ${role}`);
    const secretArn = await this.deps.secrets.create(
      at.secretName,
      JSON.stringify({
        username: databaseName,
        password,
        engine: 'postgres',
        dbname: databaseName,
        dbClusterIdentifier: cluster.id,
      }),
      `database credentials of tenant ${at.tenantId}`,
    );
    made.secret = true;
    return { clusterArn: cluster.clusterArn, secretArn, databaseName };
  }

  /**
   * Drops what a failed `createTenant` made (the database, the role, the secret), each only if that attempt made it.
   * Best effort: a step that fails is logged, and the others still run.
   */
  private async undoCreate(
    admin: DatabaseRef,
    role: string,
    secretName: string,
    made: { readonly role: boolean; readonly database: boolean; readonly secret: boolean },
  ): Promise<void> {
    const log = this.deps.log ?? (() => undefined);
    // FORCE: the Data API may still hold a pooled session in the new database. The secret goes last, so a drop that
    // fails leaves the credentials that reach what is left.
    const steps: [boolean, string, () => Promise<unknown>][] = [
      [
        made.database,
        `DROP DATABASE ${role}`,
        () => this.deps.dataApi.execute(admin, `DROP DATABASE ${role} WITH (FORCE)`),
      ],
      [made.role, `DROP ROLE ${role}`, () => this.deps.dataApi.execute(admin, `DROP ROLE ${role}`)],
      [made.secret, `delete secret ${secretName}`, () => this.deps.secrets.delete(secretName)],
    ];
    for (const [due, what, step] of steps) {
      if (!due) continue;
      try {
        await step();
        log(`create failed: undone: ${what}`);
      } catch (err) {
        log(`create failed, and could not undo it: ${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** Re-introspects after the tenant's schema changed; stores a new snapshot version when it differs. */
  async refreshSchema(tenantId: string): Promise<{ readonly schema: SchemaSnapshot; readonly changed: boolean }> {
    const config = await this.configOf(tenantId);
    if (config.database === undefined) throw new BadRequestError(`tenant '${tenantId}' has no database`);
    const schema = await this.snapshot(config.database, config.schema);
    const changed = schema.version !== config.schema?.version;
    if (changed) await this.deps.tenants.putSchema(tenantId, schema);
    return { schema, changed };
  }

  /**
   * Replaces the tenant's role rules, entity rules and/or limits with those given (others are kept). Entity rules
   * that do not fit the tenant's schema are refused, and nothing is changed. Functions see the change once their
   * tenant cache expires (a minute).
   */
  async setRules(tenantId: string, rules: TenantRulesFile): Promise<TenantConfig> {
    const config = await this.configOf(tenantId);
    if (rules.entityRules !== undefined) {
      const problems = entityRuleProblems(rules.entityRules, config.schema);
      if (problems.length > 0) throw new BadRequestError(`entity rules of ${tenantId}: ${problems.join('; ')}`);
    }
    const next: TenantConfig = {
      ...config,
      ...(rules.roleRules !== undefined && { roleRules: rules.roleRules }),
      ...(rules.entityRules !== undefined && { entityRules: rules.entityRules }),
      ...(rules.limits !== undefined && { limits: rules.limits }),
      ...(rules.presenceGroups !== undefined && { presenceGroups: rules.presenceGroups }),
    };
    await this.deps.tenants.put(next);
    return next;
  }

  /** Tenants per cluster (every known cluster listed, even empty). */
  async listByCluster(): Promise<Map<string, TenantConfig[]>> {
    const byCluster = new Map<string, TenantConfig[]>(this.deps.clusters.map((c) => [c.id, []]));
    for (const t of await this.deps.tenants.list()) {
      const id = t.database?.clusterId ?? '(no database)';
      byCluster.set(id, [...(byCluster.get(id) ?? []), t]);
    }
    return byCluster;
  }

  private async configOf(tenantId: string): Promise<TenantConfig> {
    try {
      return await this.deps.tenants.get(tenantId);
    } catch (err) {
      if (err instanceof ForbiddenError) throw new BadRequestError(`unknown tenant '${tenantId}'`);
      throw err;
    }
  }

  /** Introspects the tenant's schema into the next snapshot. Row versions live in the change log (docs/entities.md). */
  private async snapshot(db: DatabaseRef, previous: SchemaSnapshot | undefined): Promise<SchemaSnapshot> {
    return nextSnapshot(await introspect(this.deps.dataApi, db), previous);
  }
}
