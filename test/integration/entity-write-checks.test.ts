/**
 * A write judged on the row as stored, in its own statement (lambdas/core/entities/write-checks.ts): the entity
 * service on real SQL (the local Data API's PGlite), with a Data API port that counts statements. Each case was found
 * by an attacking pass or a review (2026-12-05).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DataApi, DatabaseRef, Transaction } from '../../lambdas/core/data-api.ts';
import {
  type EntityCaller,
  type EntityRule,
  type EntityRules,
  toEntitySchema,
} from '../../lambdas/core/entities/model.ts';
import { EntityService } from '../../lambdas/core/entities/service.ts';
import { changeLogDdl, introspect, splitSqlStatements } from '../../lambdas/core/schema.ts';
import { type LocalDataApi, startLocalDataApi } from '../../local/data-api.ts';
import { localDataPorts } from '../../local/tenant-data.ts';

let api: LocalDataApi | undefined;
let db: DatabaseRef;
let raw: DataApi;
const statements: string[] = [];

/** The port with every statement it runs (in a transaction or not) logged in `statements`. */
function counting(inner: DataApi): DataApi {
  return {
    ...inner,
    execute: (d, sql, params, o) => {
      statements.push(sql);
      return inner.execute(d, sql, params, o);
    },
    transaction: (d, fn) =>
      inner.transaction(d, (tx: Transaction) =>
        fn({
          ...tx,
          execute: (sql, params) => {
            statements.push(sql);
            return tx.execute(sql, params);
          },
        }),
      ),
  };
}

const ownerRule: EntityRule = {
  readRoles: ['member', 'admin'],
  writeRoles: ['member', 'admin'],
  rowFilter: { column: 'owner', equalsClaim: 'sub' },
  bypassRoles: ['admin'],
};
const caller = (sub: string, roles = ['member']): EntityCaller => ({
  tenantId: 't',
  userId: sub,
  roles,
  claims: { sub },
});

async function service(rules: EntityRules): Promise<EntityService> {
  const schema = toEntitySchema(await introspect(raw, db));
  return new EntityService({
    data: counting(raw),
    tenantData: async () => ({ db, schema, rules }),
    publish: async () => {},
  });
}

/** `created` (or updated), or the error's code and message. */
const outcome = (write: Promise<unknown>) =>
  write.then(
    () => 'created',
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );

beforeAll(async () => {
  api = await startLocalDataApi({ memoryDatabases: true });
  const cluster = await api.addCluster('write-checks');
  db = { clusterArn: cluster.clusterArn, secretArn: cluster.adminSecretArn, databaseName: 'postgres' };
  raw = localDataPorts(api.endpoint, 'us-east-1').dataApi;
  const ddl = `${changeLogDdl};
    CREATE TABLE doc (id text PRIMARY KEY, owner text, title text);
    CREATE TABLE note (id text PRIMARY KEY, owner text, doc_id text REFERENCES doc (id));
    CREATE TABLE tag (id char(6) PRIMARY KEY, owner text, doc_id text REFERENCES doc (id));
    CREATE SCHEMA archive;
    CREATE TABLE archive.doc (id text PRIMARY KEY);
    CREATE TABLE shelf (id text PRIMARY KEY, owner text, doc_id text REFERENCES archive.doc (id));
    CREATE TABLE watcher (a text, b text, code text UNIQUE, PRIMARY KEY (a, b));
    CREATE TABLE alarm (id text PRIMARY KEY, owner text, watcher_code text REFERENCES watcher (code));
    CREATE TABLE gnote (id text PRIMARY KEY, owner text, ref text,
      doc_id text GENERATED ALWAYS AS (ref) STORED REFERENCES doc (id));
    CREATE TABLE udoc (id uuid PRIMARY KEY, owner text);
    CREATE TABLE unote (id text PRIMARY KEY, owner text, udoc_id uuid REFERENCES udoc (id), body text);
    INSERT INTO doc VALUES ('bobs', 'bob', 'x'), ('alices', 'alice', 'y'), ('null', 'bob', 'z');
    INSERT INTO udoc VALUES ('5c1d6a10-0000-4000-8000-00000000000b', 'bob');
    INSERT INTO unote VALUES ('u1', 'alice', '5c1d6a10-0000-4000-8000-00000000000b', 'set by an admin');
    INSERT INTO archive.doc VALUES ('only-in-archive');
    INSERT INTO watcher VALUES ('a', 'b', 'w1');`;
  for (const sql of splitSqlStatements(ddl)) await raw.execute(db, sql, {});
}, 120_000);
afterAll(async () => {
  await api?.close();
});

describe('a write’s foreign key', () => {
  it('to a hidden row is refused as one to a missing row, in as many statements (no timing to tell them)', async () => {
    const svc = await service({ doc: ownerRule, note: ownerRule });
    statements.length = 0;
    const hidden = await outcome(svc.create(caller('alice'), 'note', { id: 'n1', doc_id: 'bobs' }));
    const hiddenStatements = statements.length;
    statements.length = 0;
    const missing = await outcome(svc.create(caller('alice'), 'note', { id: 'n2', doc_id: 'nope' }));
    expect(hidden).toBe(missing);
    expect(hidden).toMatch(/^BAD_REQUEST: a referenced row does not exist/);
    // Until a review the hidden row's write ran three statements (the write, then two checks), the missing one's one.
    expect({ hidden: hiddenStatements, missing: statements.length }).toEqual({ hidden: 1, missing: 1 });
    expect(await outcome(svc.create(caller('alice'), 'note', { id: 'n3', doc_id: 'alices' }))).toBe('created');
  });

  it('to a table of another schema, or one that is not an entity, is left to the database', async () => {
    const svc = await service({ doc: ownerRule, shelf: ownerRule, alarm: ownerRule });
    // Until a review archive.doc was taken for public's doc, and a table with a composite key refused every write.
    expect(await outcome(svc.create(caller('alice'), 'shelf', { id: 's1', doc_id: 'only-in-archive' }))).toBe(
      'created',
    );
    expect(await outcome(svc.create(caller('root', ['admin']), 'alarm', { id: 'a1', watcher_code: 'w1' }))).toBe(
      'created',
    );
  });
});

describe('a reference the body does not name as stored', () => {
  it('filled by a generated column is judged as one the body sets', async () => {
    const svc = await service({ doc: ownerRule, gnote: ownerRule });
    const hidden = await outcome(svc.create(caller('alice'), 'gnote', { id: 'g1', ref: 'bobs' }));
    // Until a third attacking pass only the body's columns were judged: 201, and bob's row pinned.
    expect(hidden).toBe(await outcome(svc.create(caller('alice'), 'gnote', { id: 'g2', ref: 'nope' })));
    expect(hidden).toMatch(/^BAD_REQUEST/);
  });

  it("changed by an update from null to a key spelled 'null' is judged, as stored, not as text", async () => {
    const svc = await service({ doc: ownerRule, note: ownerRule });
    expect(await outcome(svc.create(caller('alice'), 'note', { id: 'n-null', doc_id: null }))).toBe('created');
    // Until that pass String(null) === 'null' took it for unchanged: 200, and bob's row pinned.
    expect(await outcome(svc.update(caller('alice'), 'note', 'n-null', { doc_id: 'null' }, undefined))).toMatch(
      /^BAD_REQUEST/,
    );
  });

  it('left as it was by an update, spelled otherwise (an upper-case uuid), is not judged again', async () => {
    const svc = await service({ udoc: ownerRule, unote: ownerRule });
    const upper = '5C1D6A10-0000-4000-8000-00000000000B';
    // An admin set it; alice may not read bob's udoc, but her update leaves the reference as it was.
    const body = { udoc_id: upper, body: 'edited' };
    expect(await outcome(svc.update(caller('alice'), 'unote', 'u1', body, undefined))).toBe('created');
  });
});

describe('an entity keyed by char(n), whose key reads back padded', () => {
  it('takes a create under a row filter that sets a foreign key to a row the caller reads', async () => {
    const svc = await service({ doc: ownerRule, tag: ownerRule });
    // Until a review the checks looked the row up again by its padded key, and found nothing: 403, or 400.
    expect(await outcome(svc.create(caller('alice'), 'tag', { id: 'ab', doc_id: 'alices' }))).toBe('created');
    expect(await outcome(svc.create(caller('alice'), 'tag', { id: 'cd', doc_id: 'bobs' }))).toMatch(/^BAD_REQUEST/);
  });
});
