/**
 * Entity tables of ordinary but awkward shapes against real PostgreSQL (PGlite), found by a reviewing pass
 * (2026-12-03): a table named like the SQL's own names, columns named `t` or `x`, numerics a double cannot hold,
 * floating point beside them, and a change-log entry of a very wide row.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Onboarding } from '../../lambdas/core/onboarding.ts';
import { localDataPorts } from '../../local/tenant-data.ts';
import { httpApi, jsonOf, tokenFor, useQuietRuntime } from '../support/local-stack.ts';

const TENANT = 'shapes';
const runtime = useQuietRuntime(
  {
    sqsRetryDelaySeconds: 0,
    schedules: false,
    functionLogLevel: 'WARN',
    functionEnv: { TENANT_CACHE_TTL_SECONDS: '0' },
  },
  {
    prepare: async (rt) => {
      const ports = localDataPorts(rt.dataApi.endpoint, 'us-east-1');
      const onboarding = new Onboarding({ ...ports, tenants: rt.tenants, clusters: rt.dataApi.clusters() });
      await onboarding.createTenant({
        tenantId: TENANT,
        schemaSql: `CREATE TABLE page (id text PRIMARY KEY, owner text, title text);
          CREATE TABLE amt (id text PRIMARY KEY, owner text, x numeric);
          CREATE TABLE tee (id text PRIMARY KEY, owner text, t text);
          CREATE TABLE tiny (id text PRIMARY KEY, owner text, amount numeric, b bigint);
          CREATE TABLE fl (id text PRIMARY KEY, owner text, d double precision);
          CREATE TABLE wide (id text PRIMARY KEY, owner text, c0 text, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text, c9 text, c10 text, c11 text, c12 text, c13 text, c14 text, c15 text, c16 text, c17 text, c18 text, c19 text, c20 text, c21 text, c22 text, c23 text, c24 text, c25 text, c26 text, c27 text, c28 text, c29 text, c30 text, c31 text, c32 text, c33 text, c34 text, c35 text, c36 text, c37 text, c38 text, c39 text, c40 text, c41 text, c42 text, c43 text, c44 text, c45 text, c46 text, c47 text, c48 text, c49 text, c50 text, c51 text, c52 text, c53 text, c54 text, c55 text, c56 text, c57 text, c58 text, c59 text, c60 text, c61 text, c62 text, c63 text, c64 text, c65 text, c66 text, c67 text, c68 text, c69 text, c70 text, c71 text, c72 text, c73 text, c74 text, c75 text, c76 text, c77 text, c78 text, c79 text, c80 text, c81 text, c82 text, c83 text, c84 text, c85 text, c86 text, c87 text, c88 text, c89 text, c90 text, c91 text, c92 text, c93 text, c94 text, c95 text, c96 text, c97 text, c98 text, c99 text, c100 text, c101 text, c102 text, c103 text, c104 text, c105 text, c106 text, c107 text, c108 text, c109 text, c110 text, c111 text, c112 text, c113 text, c114 text, c115 text, c116 text, c117 text, c118 text, c119 text, c120 text, c121 text, c122 text, c123 text, c124 text, c125 text, c126 text, c127 text, c128 text, c129 text, c130 text, c131 text, c132 text, c133 text, c134 text, c135 text, c136 text, c137 text, c138 text, c139 text, c140 text, c141 text, c142 text, c143 text, c144 text, c145 text, c146 text, c147 text, c148 text, c149 text, c150 text, c151 text, c152 text, c153 text, c154 text, c155 text, c156 text, c157 text, c158 text, c159 text, c160 text, c161 text, c162 text, c163 text, c164 text, c165 text, c166 text, c167 text, c168 text, c169 text, c170 text, c171 text, c172 text, c173 text, c174 text, c175 text, c176 text, c177 text, c178 text, c179 text, c180 text, c181 text, c182 text, c183 text, c184 text, c185 text, c186 text, c187 text, c188 text, c189 text, c190 text, c191 text, c192 text, c193 text, c194 text, c195 text, c196 text, c197 text, c198 text, c199 text, c200 text, c201 text, c202 text, c203 text, c204 text, c205 text, c206 text, c207 text, c208 text, c209 text, c210 text, c211 text, c212 text, c213 text, c214 text, c215 text, c216 text, c217 text, c218 text, c219 text);`,
        limits: { httpRequestsPerSecond: 1000, httpBurst: 1000, publishesPerSecond: 1000, publishBurst: 1000 },
      });
      const ownerRule = {
        readRoles: ['member', 'admin'],
        writeRoles: ['member', 'admin'],
        rowFilter: { column: 'owner', equalsClaim: 'sub' },
        bypassRoles: ['admin'],
      };
      const config = await rt.tenants.get(TENANT);
      const entityRules = Object.fromEntries(['page', 'amt', 'tee', 'tiny', 'fl', 'wide'].map((e) => [e, ownerRule]));
      await rt.tenants.put({ ...config, entityRules });
    },
  },
);

const bob = () => tokenFor(runtime(), TENANT, 'bob', ['member']);
const admin = () => tokenFor(runtime(), TENANT, 'root', ['admin']);
const api = async (token: string, method: string, path: string, body?: unknown) => {
  const answer = await httpApi(runtime(), token, method, path, body);
  return { status: answer.status, text: answer.text, body: jsonOf<Record<string, unknown>>(answer) };
};
const outside = async (sql: string) => {
  const db = (await runtime().tenants.get(TENANT)).database;
  if (db === undefined) throw new Error('no database');
  await localDataPorts(runtime().dataApi.endpoint, 'us-east-1').dataApi.execute(db, sql, {});
};

describe('tables and columns named like the SQL’s own names', () => {
  it('reads the change log of an entity named `page` under a row filter', async () => {
    const id = randomUUID();
    expect((await api(bob(), 'POST', '/v1/entities/page', { id, title: 'b' })).status).toBe(201);
    const log = await api(bob(), 'GET', `/v1/entities/page/${id}/changes`);
    expect(log.status).toBe(200);
    expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([1]);
  }, 30_000);

  it('answers a row with a numeric column named `x`, set or null, as an object', async () => {
    const id = randomUUID();
    expect((await api(bob(), 'POST', '/v1/entities/amt', { id, x: 5 })).body).toMatchObject({ id, x: 5, owner: 'bob' });
    const bare = randomUUID();
    expect((await api(bob(), 'POST', '/v1/entities/amt', { id: bare })).body).toMatchObject({
      id: bare,
      x: null,
      owner: 'bob',
    });
    const log = await api(bob(), 'GET', `/v1/entities/amt/${id}/changes`);
    expect((log.body.items as { version: number }[]).map((i) => i.version)).toEqual([1]);
  }, 30_000);

  it('answers a row with a column named `t` as an object', async () => {
    const id = randomUUID();
    expect((await api(bob(), 'POST', '/v1/entities/tee', { id, t: 'tt' })).body).toMatchObject({
      id,
      t: 'tt',
      owner: 'bob',
    });
    expect((await api(bob(), 'GET', `/v1/entities/tee/${id}`)).body).toMatchObject({ id, t: 'tt' });
  }, 30_000);
});

describe('numbers at a double’s edges', () => {
  it('writes and reads a numeric below a double’s range, as a string', async () => {
    const id = randomUUID();
    const made = await api(bob(), 'POST', '/v1/entities/tiny', { id, amount: `0.${'0'.repeat(399)}1` });
    expect(made.status).toBe(201);
    expect(String(made.body.amount)).toMatch(/^0\.0{399}1$/);
    await outside("INSERT INTO tiny VALUES ('outside', 'bob', 1e-400), ('huge', 'bob', 1e400), ('zero', 'bob', 0)");
    expect((await api(bob(), 'GET', '/v1/entities/tiny')).status).toBe(200);
    expect(String((await api(bob(), 'GET', '/v1/entities/tiny/huge')).body.amount)).toMatch(/^10{400}$/);
    expect((await api(bob(), 'GET', '/v1/entities/tiny/zero')).body.amount).toBe(0);
  }, 30_000);

  it('takes a small fraction JavaScript writes with an exponent (0.0000001 is 1e-7 to it)', async () => {
    const id = randomUUID();
    const made = await api(bob(), 'POST', '/v1/entities/tiny', { id, amount: 0.0000001 });
    expect(made.status).toBe(201);
    expect(made.body.amount).toBe(0.0000001);
  }, 30_000);

  it('takes and gives back a bigint past 32 bits, as a number while exact and as a string past 2^53, the smallest too', async () => {
    const id = randomUUID();
    expect((await api(bob(), 'POST', '/v1/entities/tiny', { id, b: 3_000_000_000 })).body.b).toBe(3_000_000_000);
    const most = await api(bob(), 'PATCH', `/v1/entities/tiny/${id}`, { b: '9223372036854775807' });
    expect(most.body.b).toBe('9223372036854775807');
    expect((await api(bob(), 'PATCH', `/v1/entities/tiny/${id}`, { b: '9223372036854775808' })).status).toBe(400);
    await outside("INSERT INTO tiny (id, owner, b) VALUES ('least', 'bob', -9223372036854775808)");
    expect((await api(bob(), 'GET', '/v1/entities/tiny/least')).body.b).toBe('-9223372036854775808');
    expect((await api(bob(), 'GET', '/v1/entities/tiny')).status).toBe(200);
  }, 30_000);

  it('answers a double precision value as the number it is, however large', async () => {
    const id = randomUUID();
    const made = await api(bob(), 'POST', '/v1/entities/fl', { id, d: 1e300 });
    expect(made.status).toBe(201);
    expect(made.body.d).toBe(1e300);
  }, 30_000);
});

describe('a change-log entry of a very wide row', () => {
  it('is read, shaped to fit, naming what it leaves out (not 413 for good)', async () => {
    const id = 'w1';
    expect((await api(admin(), 'POST', '/v1/entities/wide', { id, owner: 'bob' })).status).toBe(201);
    const quotes = '"'.repeat(1000);
    for (let part = 0; part < 4; part++) {
      const body = Object.fromEntries(Array.from({ length: 55 }, (_, i) => [`c${part * 55 + i}`, quotes]));
      expect((await api(admin(), 'PATCH', `/v1/entities/wide/${id}`, body)).status).toBe(200);
    }
    const all = Object.fromEntries(Array.from({ length: 220 }, (_, i) => [`c${i}`, 'y'.repeat(1000)]));
    expect((await api(admin(), 'PATCH', `/v1/entities/wide/${id}`, all)).status).toBe(200);
    for (const token of [admin(), bob()]) {
      const log = await api(token, 'GET', `/v1/entities/wide/${id}/changes?limit=500`);
      expect(log.status).toBe(200);
      const items = log.body.items as { version: number; diff: Record<string, unknown>; omitted?: string[] }[];
      expect(items.map((i) => i.version)).toEqual([1, 2, 3, 4, 5, 6]);
      const last = items.at(-1);
      expect((last?.omitted?.length ?? 0) + Object.keys(last?.diff ?? {}).length).toBe(220);
      expect(last?.omitted?.length).toBeGreaterThan(0);
    }
  }, 60_000);
});
