/**
 * The change log's SQL against the Data API's 64 KB per result row, on the local Data API (which refuses a bigger
 * row as AWS does): a wide row's diff of many long-named small fields. Found by a review (2026-12-04): the bound on
 * what an entry gives counted its values only, not the field names the kept diff repeats, so such an entry passed
 * 64 KB and the key's change log answered 413 for good.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseRef } from '../../lambdas/core/data-api.ts';
import type { EntitySpec } from '../../lambdas/core/entities/model.ts';
import { changesStatement, getStatement } from '../../lambdas/core/entities/sql.ts';
import { changeLogDdl } from '../../lambdas/core/schema.ts';
import { type LocalDataApi, startLocalDataApi } from '../../local/data-api.ts';
import { localDataPorts } from '../../local/tenant-data.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
let api: LocalDataApi;
let db: DatabaseRef;
let data: ReturnType<typeof localDataPorts>['dataApi'];

const N = 850;
const col = (i: number) => `c${String(i).padStart(3, '0')}_${'x'.repeat(58)}`; // 63 chars
const spec: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: { type: 'text', nullable: false },
    ...Object.fromEntries(Array.from({ length: N }, (_, i) => [col(i), { type: 'boolean' as const, nullable: true }])),
  },
};

beforeAll(async () => {
  api = await startLocalDataApi({ memoryDatabases: true });
  const cluster = await api.addCluster('wide-log');
  db = { clusterArn: cluster.clusterArn, secretArn: cluster.adminSecretArn, databaseName: 'postgres' };
  data = localDataPorts(api.endpoint, 'us-east-1').dataApi;
  await data.execute(db, changeLogDdl, {});
  await data.execute(
    db,
    `CREATE TABLE wide (id text PRIMARY KEY, ${Array.from({ length: N }, (_, i) => `"${col(i)}" boolean`).join(', ')})`,
    {},
  );
}, 120_000);
afterAll(async () => {
  await api?.close();
});

describe('change log of a wide row with long field names', () => {
  it('a row the entity API accepts (under 63 KB) has a change log one can read', async () => {
    // The row as the API would have written it (every column true), its JSON ~62 KB: under ROW_JSON_BYTES.
    await data.execute(
      db,
      `INSERT INTO wide (id, ${Array.from({ length: N }, (_, i) => `"${col(i)}"`).join(', ')}) VALUES ('w1', ${Array.from({ length: N }, () => 'true').join(', ')})`,
      {},
    );
    const got = getStatement('wide', spec, 'w1', undefined);
    const row = await data.execute(db, got.sql, got.params);
    const rowText = String(row.rows[0]?.row);
    // Its create, as `write` logs it: the diff is each field's [old, new], [null, true].
    const diff = {
      id: [null, 'w1'],
      ...Object.fromEntries(Array.from({ length: N }, (_, i) => [col(i), [null, true]])),
    };
    await data.execute(
      db,
      `INSERT INTO tenantcast_change_log (entity, key, version, op, changed_by, diff) VALUES ('wide', 'w1', 1, 'insert', 'alice', CAST(:d AS jsonb))`,
      { d: JSON.stringify(diff) },
    );
    const st = changesStatement('wide', spec, 'w1', 0, { diffBytes: 32 * 1024, valueBytes: 4096, imageBytes: 2050 });
    const outcome = await data.executePaged(db, st.sql, st.params, { limit: 101 }).then(
      (r) => ({ ok: true, diffBytes: Buffer.byteLength(String(r.rows[0]?.diff)) }),
      (e: unknown) => ({ ok: false, error: String((e as Error).message), detail: (e as { detail?: string }).detail }),
    );
    expect(Buffer.byteLength(rowText)).toBeLessThan(64_512);
    expect(outcome).toMatchObject({ ok: true });
    // The whole diff is ~64 KB of JSON; what the entry gives is bounded, names included.
    expect(Buffer.byteLength(JSON.stringify(diff))).toBeGreaterThan(60_000);
    expect((outcome as { diffBytes: number }).diffBytes).toBeLessThanOrEqual(32 * 1024);
  }, 60_000);

  it('bounds an entry by its field names as JSON writes them, quotes escaped', async () => {
    // 600 fields, each name 63 bytes of which 58 are `"` (an identifier PostgreSQL allows quoted): 121 bytes in JSON.
    const name = (i: number) => `q${'"'.repeat(58)}${String(i).padStart(4, '0')}`;
    const quoted: EntitySpec = { primaryKey: 'id', fields: { id: { type: 'text', nullable: false } } };
    const diff = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [name(i), [null, true]]));
    await data.execute(
      db,
      `INSERT INTO tenantcast_change_log (entity, key, version, op, changed_by, diff) VALUES ('quoted', 'q1', 1, 'insert', 'alice', CAST(:d AS jsonb))`,
      { d: JSON.stringify(diff) },
    );
    const st = changesStatement('quoted', quoted, 'q1', 0, {
      diffBytes: 32 * 1024,
      valueBytes: 4096,
      imageBytes: 2050,
    });
    const { rows } = await data.executePaged(db, st.sql, st.params, { limit: 101 });
    expect(Buffer.byteLength(String(rows[0]?.diff))).toBeLessThanOrEqual(32 * 1024);
    expect(Buffer.byteLength(String(rows[0]?.omitted))).toBeLessThanOrEqual(8 * 1024 + 2);
  }, 60_000);
});
