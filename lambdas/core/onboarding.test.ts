import { describe, expect, it } from '@jest/globals';
import {
  databaseNameOf,
  defaultEntityRules,
  entityRuleProblems,
  Onboarding,
  parseRulesFile,
  skippedLines,
} from './onboarding.ts';
import type { SchemaSnapshot } from './schema.ts';

const schema = {
  version: 1,
  hash: 'h',
  introspectedAt: '2026-01-01T00:00:00Z',
  entities: {
    ticket: {
      primaryKey: 'id',
      fields: { id: { type: 'uuid', pgType: 'uuid', udtName: 'uuid', nullable: false, hasDefault: true } },
    },
  },
  skipped: { ticket_watcher: 'composite primary key' },
} as unknown as SchemaSnapshot;

describe('entity rules checked against a schema', () => {
  it('find nothing wrong with the default rules or with rules for existing entities and columns', () => {
    expect(entityRuleProblems(defaultEntityRules, schema)).toEqual([]);
    expect(
      entityRuleProblems(
        {
          ticket: {
            readRoles: ['member'],
            writeRoles: [],
            bypassRoles: [],
            rowFilter: { column: 'id', equalsClaim: 'sub' },
          },
        },
        schema,
      ),
    ).toEqual([]);
  });

  it('name a rule for a missing entity, a skipped table with its reason, a missing filter column and a filtered *', () => {
    const rule = { readRoles: ['admin'], writeRoles: [], bypassRoles: [] };
    expect(
      entityRuleProblems(
        {
          tiket: rule,
          ticket_watcher: rule,
          ticket: { ...rule, rowFilter: { column: 'owner', equalsClaim: 'sub' } },
          '*': { ...rule, rowFilter: { column: 'owner', equalsClaim: 'sub' } },
        },
        schema,
      ),
    ).toEqual([
      "no entity 'tiket' (entities: ticket)",
      "'ticket_watcher' is not an entity (composite primary key)",
      "entity 'ticket' row filter: no column 'owner'",
      "the '*' rule cannot have a row filter",
    ]);
  });

  it('find a row filter on a column whose JSON value is not its text (bigint, numeric, timestamp, array, JSON)', () => {
    const column = (type: string, pgType: string, udtName: string) => ({
      type,
      pgType,
      udtName,
      nullable: true,
      hasDefault: false,
    });
    const typed = {
      ...schema,
      entities: {
        account: {
          primaryKey: 'id',
          fields: {
            id: column('uuid', 'uuid', 'uuid'),
            team: column('bigint', 'bigint', 'int8'),
            seat: column('int', 'integer', 'int4'),
            price: column('numeric', 'numeric(12,2)', 'numeric'),
            owner: column('text', 'text', 'text'),
            code: column('text', 'character(3)', 'bpchar'),
          },
        },
      },
    } as unknown as SchemaSnapshot;
    const filtered = (column: string) => ({
      account: { readRoles: ['member'], writeRoles: [], bypassRoles: [], rowFilter: { column, inClaim: 'teams' } },
    });
    expect(entityRuleProblems(filtered('team'), typed)).toEqual([
      "entity 'account' row filter: column 'team' is bigint: a row filter needs text, uuid, boolean, integer or smallint",
    ]);
    expect(entityRuleProblems(filtered('price'), typed)).toHaveLength(1);
    expect(entityRuleProblems(filtered('seat'), typed)).toEqual([]);
    expect(entityRuleProblems(filtered('owner'), typed)).toEqual([]);
    // char(3): 'ab ' in JSON, 'ab' as SQL text.
    expect(entityRuleProblems(filtered('code'), typed)).toEqual([
      "entity 'account' row filter: column 'code' is char(n): a row filter needs text, uuid, boolean, integer or smallint",
    ]);
    expect(entityRuleProblems(filtered('id'), typed)).toEqual([]);
  });
});

describe('a rules file', () => {
  it('takes role rules, entity rules and limits, with defaults for left-out role lists', () => {
    expect(
      parseRulesFile('{"entityRules":{"ticket":{"readRoles":["viewer"]}},"limits":{"maxConnectionsPerUser":20}}'),
    ).toEqual({
      entityRules: { ticket: { readRoles: ['viewer'], writeRoles: [], bypassRoles: [] } },
      limits: { maxConnectionsPerUser: 20 },
    });
  });

  it('is refused with what is wrong: not JSON, an unknown key, a wrong type', () => {
    expect(() => parseRulesFile('{')).toThrow('the rules file is not JSON');
    expect(() => parseRulesFile('{"entityRule":{}}')).toThrow('the rules file is not valid');
    expect(() => parseRulesFile('{"limits":{"maxConnectionsPerUser":-1}}')).toThrow('limits.maxConnectionsPerUser');
  });
});

it('says which tables are skipped and why', () => {
  expect(skippedLines(schema)).toEqual([
    'skipped table ticket_watcher: composite primary key (an entity needs a single-column primary key; the API cannot address its rows)',
  ]);
});

describe('a tenant’s database name', () => {
  it('is tenant_<id> for an id in lower case without dashes', () => {
    expect(databaseNameOf('acme')).toBe('tenant_acme');
    expect(databaseNameOf('a_b2')).toBe('tenant_a_b2');
  });

  it('differs for ids that lower case, dashes or PostgreSQL’s 63-character cut would make one', () => {
    const ids = ['acme', 'Acme', 'ACME', 'a-b', 'a_b', `${'x'.repeat(60)}1`, `${'x'.repeat(60)}2`, 'x'.repeat(64)];
    const names = ids.map(databaseNameOf);
    expect(new Set(names).size).toBe(ids.length);
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^tenant_[a-z0-9_]+$/);
    }
    expect(databaseNameOf('Acme')).toBe(databaseNameOf('Acme'));
  });
});

describe('a create that fails', () => {
  it('at the catalog write undoes the database, the role and then the secret, and fails with the first error', async () => {
    const done: string[] = [];
    const ok = { rows: [], updated: 0 };
    const dataApi = {
      execute: async (_db: unknown, sql: string) => {
        if (/^(DROP|CREATE) /.test(sql)) done.push(sql.replace(/ WITH LOGIN PASSWORD .*/, ''));
        return ok;
      },
      batchExecute: async () => ({ updated: 0 }),
      transaction: async (_db: unknown, work: (tx: unknown) => Promise<unknown>) => work({ execute: async () => ok }),
      executePaged: async () => ({ ...ok, limit: 1 }),
    };
    const onboarding = new Onboarding({
      dataApi: dataApi as never,
      secrets: {
        create: async (name) => {
          done.push(`create secret ${name}`);
          return 'arn:secret';
        },
        delete: async (name) => {
          done.push(`delete secret ${name}`);
        },
      },
      tenants: {
        find: async () => undefined,
        list: async () => [],
        put: async () => {
          throw Object.assign(new Error('Item size has exceeded the maximum allowed size'), {
            name: 'ValidationException',
          });
        },
      } as never,
      clusters: [{ id: 'c1', clusterArn: 'arn:c1', adminSecretArn: 'arn:admin' }],
    });
    await expect(
      onboarding.createTenant({ tenantId: 'big', schemaSql: 'CREATE TABLE t (id int PRIMARY KEY);' }),
    ).rejects.toThrow('Item size');
    expect(done).toEqual([
      'CREATE ROLE "tenant_big"',
      'CREATE DATABASE "tenant_big" OWNER "tenant_big"',
      'create secret tenantcast/local/tenant/big',
      'DROP DATABASE "tenant_big" WITH (FORCE)',
      'DROP ROLE "tenant_big"',
      'delete secret tenantcast/local/tenant/big',
    ]);
  });
});
