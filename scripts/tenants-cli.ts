/**
 * `npm run tenants -- <command>`: onboarding and inspection of tenants (docs/tenants.md).
 *
 *   create <tenantId> --schema <file.sql> [--cluster <id>] [--rules <file.json>]
 *                                                              place, create database + role + secret, apply DDL
 *   set-rules <tenantId> --rules <file.json>                   replace role rules, entity rules, limits and/or presence groups
 *   refresh-schema <tenantId>                                  re-introspect; new snapshot version if it changed
 *   list                                                       tenants per cluster
 *   reindex                                                    index a table's catalog written before it was indexed
 *
 * Target: the local runtime by default (the endpoints file `npm start` writes, `.local/endpoints.json`, or
 * `--endpoints <file>`). `--stage <s> --region <r> [--profile <p>]` targets AWS (scripts/cli-target.ts: the stacks'
 * CloudFormation outputs). Also the `tenants`, `usage` and `connections disconnect` commands of the admin CLI
 * `npx tenantcast` (scripts/tenantcast-cli.ts, docs/cli.md).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RdsDataApi } from '../lambdas/core/data-api.ts';
import { TenantcastError } from '../lambdas/core/errors.ts';
import {
  Onboarding,
  parseRulesFile,
  referenceLines,
  SecretsManagerStore,
  skippedLines,
  type TenantRulesFile,
} from '../lambdas/core/onboarding.ts';
import { Registry } from '../lambdas/core/registry.ts';
import { disconnectAll, TenantConnections } from '../lambdas/core/revocation.ts';
import { TenantDirectory } from '../lambdas/core/tenants.ts';
import { parseUsageRange, UsageStore, usageCounters } from '../lambdas/core/usage.ts';
import { noProgress, type ProgressFactory } from './cli-progress.ts';
import { DEFAULT_ENDPOINTS_FILE, resolveTarget, type TargetOptions } from './cli-target.ts';

export { DEFAULT_ENDPOINTS_FILE };

const helpOf = (prog: string) => `Usage: ${prog} <command> [options]

Commands:
  create <tenantId> --schema <file.sql> [--cluster <id>] [--rules <file.json>]
      Places the tenant on the cluster with the fewest tenants (or --cluster), creates its database and a role that
      can connect only to it, stores the role's secret, applies the DDL and the change log, and records the schema.
      Tables that cannot be entities (no single-column primary key, or a name its live feed entity:<name> cannot
      have) are listed as skipped, with the reason.
      Without --rules: admins read and write every entity, the default role rules and limits (docs/tenants.md).
  set-rules <tenantId> --rules <file.json>
      Replaces the tenant's roleRules, entityRules, limits and/or presenceGroups with the file's (keys left out are
      kept); entity rules that do not fit its schema, and unknown limits, are refused. Example:
      examples/initech.rules.json.
  refresh-schema <tenantId>
      Re-introspects the tenant's database after its schema changed; stores a new snapshot version if it differs.
  list
      Tenants per cluster, with database and schema version.
  reindex
      Once per table after upgrading from a version whose tenant catalog was not indexed (docs/deploy.md): adds the
      index keys \`list\` and the outbox relay read to every tenant item written before (one Scan of the table).
  usage <tenantId> [--from yyyy-mm-dd] [--to yyyy-mm-dd]
      Metered usage per day (connections, connection-minutes, frames in, deliveries out, entity reads and writes);
      the last 30 days by default. docs/security.md. The same as \`tenantcast usage\`.
  disconnect <tenantId> [--user <userId>]
      Closes every open connection of the tenant, or of one user of it (revocation). docs/security.md. The same as
      \`tenantcast connections disconnect\`.

Options:
  --endpoints <file>   the local runtime's endpoints file (default ${DEFAULT_ENDPOINTS_FILE}, written by npm start)
  --stage <stage> --region <region> [--profile <name>]
                       target a deployed stage in AWS instead (the stacks' CloudFormation outputs)
  -h, --help           this help
`;

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly cwd?: string;
  /** How the command is invoked, for the help text. @default 'npm run tenants --' */
  readonly prog?: string;
  /** Progress of long operations (create, disconnect). @default none */
  readonly progress?: ProgressFactory;
  /** Where AWS mode reads stack outputs (tests inject a fake). @default CloudFormation */
  readonly cloudFormation?: TargetOptions['cloudFormation'];
}

/** Renders rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** What every command gets: the parsed arguments, the target's clients, and where to write. */
interface Command {
  readonly io: CliIo;
  readonly help: string;
  readonly progress: NonNullable<CliIo['progress']>;
  readonly values: ReturnType<typeof parse>['values'];
  readonly tenantId: string | undefined;
  readonly target: Awaited<ReturnType<typeof resolveTarget>>;
  readonly documentClient: DynamoDBDocumentClient;
  readonly tenants: TenantDirectory;
  /** Only create and refresh-schema reach the Data API and Secrets Manager, so it is made on use. */
  onboardingWith(log: (m: string) => void): Onboarding;
}

async function create(cmd: Command): Promise<number> {
  const { io, help, progress, values, tenantId, onboardingWith } = cmd;
  if (tenantId === undefined || values.schema === undefined) {
    io.err(`create needs <tenantId> and --schema <file.sql>\n\n${help}`);
    return 2;
  }
  const schemaSql = await readFile(resolve(io.cwd ?? process.cwd(), values.schema), 'utf8');
  const rules = values.rules === undefined ? {} : await readRules(values.rules, io);
  const bar = progress(`creating tenant ${tenantId}`);
  const config = await onboardingWith((m) => {
    bar.tick(1, m);
    io.out(m);
  })
    .createTenant({
      tenantId,
      schemaSql,
      ...(values.cluster !== undefined && { clusterId: values.cluster }),
      ...rules,
    })
    .finally(() => bar.done());
  io.out(`created tenant ${tenantId} on ${config.database?.clusterId} (database ${config.database?.databaseName})`);
  io.out(entitiesTable(config.schema?.entities ?? {}));
  return 0;
}

async function refreshSchema(cmd: Command): Promise<number> {
  const { io, help, tenantId } = cmd;
  const onboarding = cmd.onboardingWith((m) => io.out(m));
  if (tenantId === undefined) {
    io.err(`refresh-schema needs <tenantId>\n\n${help}`);
    return 2;
  }
  const { schema, changed } = await onboarding.refreshSchema(tenantId);
  io.out(`${tenantId}: schema version ${schema.version} (${changed ? 'changed' : 'unchanged'})`);
  for (const line of [...skippedLines(schema), ...referenceLines(schema)]) io.out(line);
  io.out(entitiesTable(schema.entities));
  return 0;
}

async function setRules(cmd: Command): Promise<number> {
  const { io, help, values, tenantId } = cmd;
  const onboarding = cmd.onboardingWith((m) => io.out(m));
  if (tenantId === undefined || values.rules === undefined) {
    io.err(`set-rules needs <tenantId> and --rules <file.json>\n\n${help}`);
    return 2;
  }
  const config = await onboarding.setRules(tenantId, await readRules(values.rules, io));
  io.out(`${tenantId}: rules set (functions apply them within a minute, when their tenant cache expires)`);
  io.out(rulesTable(config.entityRules ?? {}));
  return 0;
}

async function list(cmd: Command): Promise<number> {
  const { io } = cmd;
  const onboarding = cmd.onboardingWith((m) => io.out(m));
  const rows: string[][] = [];
  for (const [cluster, list] of await onboarding.listByCluster()) {
    if (list.length === 0) rows.push([cluster, '-', '-', '-', '-']);
    for (const t of list) {
      rows.push([
        cluster,
        t.tenantId,
        t.database?.databaseName ?? '-',
        t.schema ? String(t.schema.version) : '-',
        t.schema ? Object.keys(t.schema.entities).join(', ') : '-',
      ]);
    }
  }
  io.out(table(['CLUSTER', 'TENANT', 'DATABASE', 'SCHEMA', 'ENTITIES'], rows));
  return 0;
}

async function reindex(cmd: Command): Promise<number> {
  const { io, tenants } = cmd;
  const updated = await tenants.reindex();
  io.out(`${updated} tenant catalog item(s) indexed`);
  return 0;
}

async function usage(cmd: Command): Promise<number> {
  const { io, help, values, tenantId, target, documentClient, tenants } = cmd;
  if (tenantId === undefined) {
    io.err(`usage needs <tenantId>\n\n${help}`);
    return 2;
  }
  if (!(await knownTenant(io, tenants, tenantId))) return 1;
  const { from, to } = parseUsageRange({ from: values.from, to: values.to }, Date.now());
  const days = await new UsageStore({ client: documentClient, tableName: target.tableName }).read(tenantId, from, to);
  io.out(`${tenantId}: usage from ${from} to ${to}`);
  io.out(
    table(
      ['DAY', ...usageCounters],
      days.map((d) => [d.day, ...usageCounters.map((c) => String(d[c]))]),
    ),
  );
  return 0;
}

async function disconnect(cmd: Command): Promise<number> {
  const { io, help, progress, values, tenantId, target, documentClient, tenants } = cmd;
  if (tenantId === undefined) {
    io.err(`disconnect needs <tenantId>\n\n${help}`);
    return 2;
  }
  if (!(await knownTenant(io, tenants, tenantId))) return 1;
  if (target.connectionsEndpoint === undefined) throw new Error('the target has no connections endpoint');
  const { region, credentials } = target.clientConfig('dynamodb');
  const api = new ApiGatewayManagementApiClient({
    region,
    ...(credentials !== undefined && { credentials }),
    endpoint: target.connectionsEndpoint,
  });
  const connections = new TenantConnections({ client: documentClient, tableName: target.tableName });
  const registry = new Registry({ client: documentClient, tableName: target.tableName });
  const bar = progress(`disconnecting ${tenantId}${values.user ? ` user ${values.user}` : ''}`);
  const result = await disconnectAll(tenantId, values.user, {
    connections: {
      list: async (t, u) => {
        const found = await connections.list(t, u);
        bar.setTotal(found.length);
        return found;
      },
    },
    close: async (connectionId) => {
      try {
        await api.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
        return true;
      } catch (err) {
        if ((err as { name?: string }).name !== 'GoneException') throw err;
        return false;
      } finally {
        bar.tick();
      }
    },
    // Gone already (its $disconnect was lost): nothing else will remove its items.
    forget: async (connectionId) => {
      await registry.removeConnection(connectionId);
    },
  }).finally(() => bar.done());
  io.out(
    `${tenantId}${values.user ? ` user ${values.user}` : ''}: ${result.disconnected} disconnected, ${result.failed} failed`,
  );
  return result.failed > 0 ? 1 : 0;
}

const commands: Readonly<Record<string, (cmd: Command) => Promise<number>>> = {
  create,
  'refresh-schema': refreshSchema,
  'set-rules': setRules,
  list,
  reindex,
  usage,
  disconnect,
};

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runTenantsCli(argv: readonly string[], io: CliIo): Promise<number> {
  const help = helpOf(io.prog ?? 'npm run tenants --');
  const progress = io.progress ?? noProgress;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${help}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, tenantId] = positionals;
  if (values.help || command === undefined) {
    io.out(help);
    return command === undefined && !values.help ? 2 : 0;
  }
  try {
    const target = await resolveTarget({
      endpoints: values.endpoints,
      stage: values.stage,
      region: values.region,
      profile: values.profile,
      cwd: io.cwd,
      ...(io.cloudFormation !== undefined && { cloudFormation: io.cloudFormation }),
    });
    const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient(target.clientConfig('dynamodb')));
    const tenants = new TenantDirectory({ client: documentClient, tableName: target.tableName, cacheTtlMs: 0 });
    // Lazily: only create and refresh-schema reach the Data API and Secrets Manager.
    const onboardingWith = (log: (m: string) => void) =>
      new Onboarding({
        dataApi: new RdsDataApi(new RDSDataClient(target.clientConfig('rdsData'))),
        secrets: new SecretsManagerStore(new SecretsManagerClient(target.clientConfig('secretsManager'))),
        tenants,
        clusters: target.clusters,
        stage: target.stage,
        log,
      });
    const run = Object.hasOwn(commands, command) ? commands[command] : undefined;
    if (run === undefined) {
      io.err(`unknown command '${command}'\n\n${help}`);
      return 2;
    }
    return await run({ io, help, progress, values, tenantId, target, documentClient, tenants, onboardingWith });
  } catch (err) {
    return failure(io, err);
  }
}

/**
 * Prints a command's failure (with the Data API's detail when there is one, and what to do when nothing answers at
 * the local runtime's endpoints) and returns exit code 1.
 */
export function failure(io: CliIo, err: unknown): number {
  const message =
    err instanceof TenantcastError && 'detail' in err && err.detail
      ? `${err.message}: ${String(err.detail)}`
      : (err as Error).message;
  const refused = (err as { code?: string }).code === 'ECONNREFUSED' || /ECONNREFUSED/.test(message);
  io.err(
    `error: ${message}${refused ? ' (is the local stack running? start it with npm start, or pass --stage)' : ''}`,
  );
  return 1;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      schema: { type: 'string' },
      cluster: { type: 'string' },
      rules: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      user: { type: 'string' },
      endpoints: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function readRules(file: string, io: CliIo): Promise<TenantRulesFile> {
  return readFile(resolve(io.cwd ?? process.cwd(), file), 'utf8').then(parseRulesFile);
}

function rulesTable(rules: Record<string, { readRoles: string[]; writeRoles: string[]; rowFilter?: object }>): string {
  return table(
    ['ENTITY', 'READ', 'WRITE', 'ROW FILTER'],
    Object.entries(rules).map(([name, r]) => [
      name,
      r.readRoles.join(',') || '-',
      r.writeRoles.join(',') || '-',
      r.rowFilter === undefined ? '-' : JSON.stringify(r.rowFilter),
    ]),
  );
}

function entitiesTable(
  entities: Record<string, { primaryKey: string; fields: Record<string, { type: string; nullable: boolean }> }>,
): string {
  return table(
    ['ENTITY', 'PRIMARY KEY', 'FIELDS'],
    Object.entries(entities).map(([name, e]) => [
      name,
      e.primaryKey,
      Object.entries(e.fields)
        .map(([f, s]) => `${f}:${s.type}${s.nullable ? '' : '!'}`)
        .join(' '),
    ]),
  );
}

/**
 * Whether the tenant exists; if not, says so with the tenants there are (a typo would otherwise list no connections,
 * print an empty usage table or disconnect none).
 */
export async function knownTenant(io: CliIo, tenants: TenantDirectory, tenantId: string): Promise<boolean> {
  if ((await tenants.find(tenantId)) !== undefined) return true;
  const names = (await tenants.list({ schemas: false })).map((t) => t.tenantId);
  io.err(`error: unknown tenant '${tenantId}' (tenants: ${names.join(', ') || 'none'})`);
  return false;
}
