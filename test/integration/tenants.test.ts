/**
 * Tenant onboarding end to end: the tenants CLI against the local runtime started in-process (its endpoints file),
 * the seeded tenants on two clusters, and a third tenant onboarded without a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RdsDataApi } from '../../lambdas/core/data-api.ts';
import { UNFIT_NAME } from '../../lambdas/core/schema.ts';
import { type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { localDataPorts } from '../../local/tenant-data.ts';
import { runTenantsCli } from '../../scripts/tenants-cli.ts';

let runtime: LocalRuntime;
let dir: string;
let endpointsFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tenantcast-cli-'));
  endpointsFile = join(dir, 'endpoints.json');
  runtime = await startLocal({
    memoryDatabases: true,
    port: 0,
    log: () => undefined,
    onFunctionLog: () => undefined,
    endpointsFile,
  });
}, 180_000); // starting takes over a minute on this machine when it is loaded

afterAll(async () => {
  await runtime?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTenantsCli([...argv, '--endpoints', endpointsFile], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    cwd: join(import.meta.dirname, '..', '..'),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Makes a tenant's catalog items look as they were written before the catalog was indexed. */
async function dropIndexKeys(tenantId: string) {
  const documentClient = DynamoDBDocumentClient.from(runtime.dynamo.client);
  for (const sk of ['CONFIG', 'SCHEMA']) {
    await documentClient.send(
      new UpdateCommand({
        TableName: runtime.tableName,
        Key: { pk: `T#${tenantId}`, sk },
        UpdateExpression: 'REMOVE gsi2pk, gsi2sk',
      }),
    );
  }
}

const dataApi = () => localDataPorts(runtime.dataApi.endpoint, 'us-east-1').dataApi as RdsDataApi;

describe('the seeded tenants', () => {
  it('live on two different clusters with their own schemas and rules', async () => {
    const acme = await runtime.tenants.get('acme');
    const globex = await runtime.tenants.get('globex');
    expect(acme.database?.clusterId).not.toBe(globex.database?.clusterId);
    expect(Object.keys(acme.schema?.entities ?? {}).sort()).toEqual(['campaign', 'task']);
    expect(acme.schema?.entities.task?.fields.campaign_id).toMatchObject({
      type: 'uuid',
      references: { entity: 'campaign', field: 'id' },
    });
    expect(globex.schema?.entities.task?.fields.tags).toMatchObject({ type: 'text[]' });
    expect(globex.entityRules?.task?.rowFilter).toEqual({ column: 'owner', equalsClaim: 'sub' });
    expect(acme.entityRules?.campaign?.writeRoles).toContain('marketing');
    expect(acme.roleRules.marketing).toBeDefined();
  });

  it('keep the service default limits, like any tenant (the benchmark raises its own tenants)', async () => {
    for (const tenantId of ['acme', 'globex']) expect((await runtime.tenants.get(tenantId)).limits).toBeUndefined();
  });

  it('have rows, and no change-log table among their entities', async () => {
    const globex = await runtime.tenants.get('globex');
    const db = globex.database;
    if (db === undefined) throw new Error('globex has no database');
    const { rows } = await dataApi().execute(
      db,
      'SELECT owner, count(*)::int AS n FROM task GROUP BY owner ORDER BY owner',
    );
    expect(rows).toEqual([
      { owner: 'alice', n: 2 },
      { owner: 'bob', n: 1 },
    ]);
    expect(Object.keys(globex.schema?.entities ?? {})).not.toContain('tenantcast_change_log');
  });

  it("cannot be reached with another tenant's secret", async () => {
    const acme = (await runtime.tenants.get('acme')).database;
    if (acme === undefined) throw new Error('acme has no database');
    const created = await cli('create', 'intruder', '--schema', 'examples/initech.sql', '--cluster', acme.clusterId);
    expect(created.code).toBe(0);
    const intruder = (await runtime.tenants.get('intruder')).database;
    if (intruder === undefined) throw new Error('intruder has no database');
    await expect(dataApi().execute({ ...acme, secretArn: intruder.secretArn }, 'SELECT 1')).rejects.toMatchObject({
      code: 'INTERNAL',
      detail: expect.stringContaining('permission denied for database "tenant_acme"'),
    });
  });
});

describe('the tenants CLI', () => {
  it('indexes a catalog written before the catalog was indexed, once', async () => {
    await dropIndexKeys('globex');
    expect((await runtime.tenants.list()).map((t) => t.tenantId)).not.toContain('globex');

    expect(await cli('reindex')).toMatchObject({ code: 0, out: '2 tenant catalog item(s) indexed' });
    const globex = (await runtime.tenants.list()).find((t) => t.tenantId === 'globex');
    expect(globex?.schema?.entities.task).toBeDefined();
    expect(await cli('reindex')).toMatchObject({ code: 0, out: '0 tenant catalog item(s) indexed' });
  });

  it('explains itself', async () => {
    const { code, out } = await cli('--help');
    expect(code).toBe(0);
    expect(out).toMatch(/create <tenantId> --schema <file.sql> \[--cluster <id>\]/);
  });

  it('onboards a tenant with a new schema on the emptiest cluster, visible in the catalog without a restart', async () => {
    const perCluster = new Map<string, number>();
    for (const t of await runtime.tenants.list()) {
      const id = t.database?.clusterId ?? '';
      perCluster.set(id, (perCluster.get(id) ?? 0) + 1);
    }
    const emptiest = [...perCluster].sort((a, b) => a[1] - b[1])[0]?.[0];

    const created = await cli('create', 'initech', '--schema', 'examples/initech.sql');
    expect(created.err).toBe('');
    expect(created.code).toBe(0);
    const initech = await runtime.tenants.get('initech');
    expect(initech.database?.clusterId).toBe(emptiest);
    expect(Object.keys(initech.schema?.entities ?? {})).toEqual(['ticket']);
    expect(initech.schema?.skipped).toEqual({ ticket_watcher: 'composite primary key' });
    expect(initech.schema?.entities.ticket?.fields.payload).toMatchObject({ type: 'jsonb', nullable: true });
    expect(initech.schema?.entities.ticket?.fields.opened_at).toMatchObject({ type: 'timestamptz', hasDefault: true });

    const listed = await cli('list');
    expect(listed.out).toMatch(/initech\s+tenant_initech\s+1\s+ticket/);
  });

  it('refreshes a snapshot after the tenant schema changed, and keeps the version when nothing changed', async () => {
    const db = (await runtime.tenants.get('initech')).database;
    if (db === undefined) throw new Error('initech has no database');
    expect((await cli('refresh-schema', 'initech')).out).toMatch(/schema version 1 \(unchanged\)/);
    await dataApi().execute(db, 'CREATE TABLE note (id bigserial PRIMARY KEY, body text)');
    const refreshed = await cli('refresh-schema', 'initech');
    expect(refreshed.out).toMatch(/schema version 2 \(changed\)/);
    const schema = (await runtime.tenants.get('initech')).schema;
    expect(Object.keys(schema?.entities ?? {}).sort()).toEqual(['note', 'ticket']);
    // Versions live in the change log, not in a column added to the tenant's tables.
    expect(schema?.entities.note?.fields._version).toBeUndefined();
  });

  it('skips a table whose name cannot name its live feed (entity:<name> is a group), saying why', async () => {
    const db = (await runtime.tenants.get('initech')).database;
    if (db === undefined) throw new Error('initech has no database');
    await dataApi().execute(db, 'CREATE TABLE "café" (id text PRIMARY KEY, name text)');
    await dataApi().execute(db, 'CREATE TABLE "new york" (id text PRIMARY KEY)');
    await dataApi().execute(db, 'CREATE TABLE memo (id text PRIMARY KEY)');
    const refreshed = await cli('refresh-schema', 'initech');
    expect(refreshed.out).toContain(`skipped table café: ${UNFIT_NAME}`);
    expect(refreshed.out).toContain(`skipped table new york: ${UNFIT_NAME}`);
    const schema = (await runtime.tenants.get('initech')).schema;
    expect(Object.keys(schema?.entities ?? {}).sort()).toEqual(['memo', 'note', 'ticket']);
  });

  it('refuses a tenant that exists, an unknown cluster and a missing schema file with a message', async () => {
    expect(await cli('create', 'acme', '--schema', 'examples/initech.sql')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/exists already/),
    });
    expect(await cli('create', 'x1', '--schema', 'examples/initech.sql', '--cluster', 'nope')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/unknown cluster 'nope'/),
    });
    expect(await cli('create', 'x2')).toMatchObject({ code: 2 });
  });

  it('refuses a tenant that exists even while the catalog index does not list it (read from its own items)', async () => {
    await dropIndexKeys('acme');
    expect((await runtime.tenants.list()).map((t) => t.tenantId)).not.toContain('acme');
    expect(await cli('create', 'acme', '--schema', 'examples/initech.sql')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/exists already/),
    });
    expect(await cli('reindex')).toMatchObject({ code: 0, out: '2 tenant catalog item(s) indexed' });
  });
});
