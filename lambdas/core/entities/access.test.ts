import { describe, expect, it } from '@jest/globals';
import { claimValues } from '../audience.ts';
import {
  ANY_ENTITY,
  applicableRule,
  assertMayFollow,
  assertMayListFollowers,
  audienceFor,
  canRead,
  canWrite,
  rowFilterProblem,
  rowRestriction,
  rowVisible,
  ruleFingerprint,
  ruleFor,
} from './access.ts';
import { type EntityCaller, type EntityRule, type EntitySpec, type FieldType, toEntitySchema } from './model.ts';

const ownerRule: EntityRule = {
  readRoles: ['admin', 'member'],
  writeRoles: ['admin', 'member'],
  rowFilter: { column: 'owner', equalsClaim: 'sub' },
  bypassRoles: ['admin'],
};
const caller = (roles: string[], claims: Record<string, unknown> = {}): EntityCaller => ({
  tenantId: 'globex',
  userId: 'bob',
  roles,
  claims: { sub: 'bob', ...claims },
});

describe('entity access rules', () => {
  it('let a role in readRoles read and a role in writeRoles write, and nobody else', () => {
    const rule: EntityRule = { readRoles: ['viewer'], writeRoles: ['editor'], bypassRoles: [] };
    expect(canRead(rule, caller(['viewer']))).toBe(true);
    expect(canWrite(rule, caller(['viewer']))).toBe(false);
    expect(canWrite(rule, caller(['editor']))).toBe(true);
    expect(canRead(rule, caller(['editor']))).toBe(false);
  });

  it("apply the tenant's '*' rule to an entity without a rule of its own, and refuse when there is neither", () => {
    const adminOnly: EntityRule = { readRoles: ['admin'], writeRoles: ['admin'], bypassRoles: [] };
    expect(ruleFor({ '*': adminOnly, task: ownerRule }, 'report')).toBe(adminOnly);
    expect(ruleFor({ '*': adminOnly, task: ownerRule }, 'task')).toBe(ownerRule);
    expect(() => ruleFor({ task: ownerRule }, 'report')).toThrow("no access rules for entity 'report'");
  });

  it('restrict a member to rows whose owner is their own sub', () => {
    const restriction = rowRestriction(ownerRule, caller(['member']));
    expect(restriction).toEqual({ column: 'owner', anyOf: ['bob'] });
    expect(rowVisible(restriction, { owner: 'bob' })).toBe(true);
    expect(rowVisible(restriction, { owner: 'alice' })).toBe(false);
    expect(rowVisible(restriction, { owner: null })).toBe(false);
  });

  it('let a bypass role see every row', () => {
    expect(rowRestriction(ownerRule, caller(['admin']))).toBeUndefined();
  });

  it('match inClaim filters against every value of an array claim, and a string claim as one value', () => {
    const rule: EntityRule = { ...ownerRule, rowFilter: { column: 'team_id', inClaim: 'teams' } };
    expect(rowRestriction(rule, caller(['member'], { teams: ['t1', 't2'] }))?.anyOf).toEqual(['t1', 't2']);
    expect(rowRestriction(rule, caller(['member'], { teams: '[t1 t2]' }))?.anyOf).toEqual(['[t1 t2]']);
    expect(rowRestriction(rule, caller(['member']))?.anyOf).toEqual([]);
  });

  it('never read a bracketed string claim as an array: a sub of "[bob]" is not bob', () => {
    expect(rowRestriction(ownerRule, caller(['member'], { sub: '[bob]' }))).toEqual({
      column: 'owner',
      anyOf: ['[bob]'],
    });
  });

  it('read claims as strings whatever their JSON type', () => {
    expect(claimValues({ n: 7, b: true, o: { x: 1 } }, 'n')).toEqual(['7']);
    expect(claimValues({ n: 7, b: true }, 'b')).toEqual(['true']);
    expect(claimValues({ o: { x: 1 } }, 'o')).toEqual([]);
    expect(claimValues({}, 'missing')).toEqual([]);
  });

  it('leave only the bypass roles when the row filter column cannot be compared exactly (a bigint)', () => {
    const rule: EntityRule = {
      readRoles: ['member', 'admin'],
      writeRoles: ['member', 'admin'],
      bypassRoles: ['admin'],
      rowFilter: { column: 'team', inClaim: 'teams' },
    };
    const entity = (type: FieldType, pgType: string) => ({
      primaryKey: 'id',
      fields: { id: { type: 'uuid' as const, nullable: false }, team: { type, pgType, nullable: false } },
    });
    // 1234567890123456789 comes back from JSON as 1234567890123456800: the feed and the change log would compare that.
    const applied = applicableRule(rule, entity('int', 'bigint'));
    expect(applied).toEqual({ readRoles: ['admin'], writeRoles: ['admin'], bypassRoles: [] });
    expect(canRead(applied, caller(['member'], { teams: ['1234567890123456800'] }))).toBe(false);
    expect(audienceFor(applied, { team: 1234567890123456800 })).toEqual({
      roles: ['admin'],
      rules: ruleFingerprint(applied),
    });
    expect(canRead(applied, caller(['admin']))).toBe(true);
    expect(applicableRule(rule, entity('int', 'integer'))).toBe(rule);
    expect(applicableRule(rule, entity('text', 'text'))).toBe(rule);
    expect(applicableRule(rule, entity('numeric', 'numeric'))).not.toBe(rule);
    expect(applicableRule(rule, entity('timestamptz', 'timestamp with time zone'))).not.toBe(rule);
  });

  it('let a member follow a live feed only as GET would let it read: not under a row filter its column cannot carry', () => {
    const rules = {
      doc: {
        readRoles: ['member', 'admin'],
        writeRoles: ['admin'],
        bypassRoles: ['admin'],
        rowFilter: { column: 'team', inClaim: 'teams' },
      },
    };
    const schema = (udtName: string, type: string) => ({
      entities: {
        doc: {
          primaryKey: 'id',
          fields: {
            id: { type: 'uuid', udtName: 'uuid', nullable: false, hasDefault: true },
            team: { type, udtName, nullable: false, hasDefault: false },
          },
        },
      },
    });
    const member = caller(['member'], { teams: ['1'] });
    expect(() => assertMayFollow(rules, member, 'entity:doc', schema('int4', 'integer'))).not.toThrow();
    // The column widened to bigint (ALTER, then refresh-schema): GET answers 403, and so does the feed.
    expect(() => assertMayFollow(rules, member, 'entity:doc', schema('int8', 'bigint'))).toThrow(
      "not allowed to read entity 'doc'",
    );
    expect(() => assertMayFollow(rules, caller(['admin']), 'entity:doc', schema('int8', 'bigint'))).not.toThrow();
    expect(() => assertMayFollow(rules, member, 'chat:general', schema('int8', 'bigint'))).not.toThrow();
  });

  it("list an entity feed's followers only to callers who read every row: no row filter, or a bypass role", () => {
    const schema = {
      entities: {
        doc: {
          primaryKey: 'id',
          fields: {
            id: { type: 'uuid', udtName: 'uuid', nullable: false, hasDefault: true },
            owner: { type: 'text', udtName: 'text', nullable: false, hasDefault: false },
          },
        },
      },
    };
    const filtered = { doc: ownerRule };
    expect(() => assertMayListFollowers(filtered, caller(['member']), 'entity:doc', schema)).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN' }),
    );
    // The same member may follow the feed (its own rows' changes) and read its rows over HTTP.
    expect(() => assertMayFollow(filtered, caller(['member']), 'entity:doc', schema)).not.toThrow();
    expect(() => assertMayListFollowers(filtered, caller(['admin']), 'entity:doc', schema)).not.toThrow();
    const open = { doc: { ...ownerRule, rowFilter: undefined } };
    expect(() => assertMayListFollowers(open, caller(['member']), 'entity:doc', schema)).not.toThrow();
    expect(() => assertMayListFollowers(filtered, caller(['member']), 'chat:general', schema)).not.toThrow();
  });

  it('refuse the feeds of a tenant with no schema (real-time only) FORBIDDEN, as GET answers 403, even to an admin', () => {
    const everything = { [ANY_ENTITY]: { readRoles: ['admin'], writeRoles: ['admin'], bypassRoles: ['admin'] } };
    expect(() => assertMayFollow(everything, caller(['admin']), 'entity:task', undefined)).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN' }),
    );
    expect(() => assertMayFollow(everything, caller(['admin']), 'chat:general', undefined)).not.toThrow();
  });

  it('answer a feed of an entity the schema does not have NOT_FOUND, as GET answers 404, whatever the roles', () => {
    const schema = { entities: {} };
    for (const roles of [['member'], ['admin']]) {
      expect(() => assertMayFollow({}, caller(roles), 'entity:task', schema)).toThrow(
        expect.objectContaining({ code: 'NOT_FOUND', message: "unknown entity 'task'" }),
      );
    }
  });

  it('give a change the read roles as its audience, narrowed to the row owner under a row filter', () => {
    const open: EntityRule = { readRoles: ['member'], writeRoles: [], bypassRoles: [] };
    expect(audienceFor(open, { owner: 'x' })).toEqual({ roles: ['member'], rules: ruleFingerprint(open) });
    expect(audienceFor(ownerRule, { owner: 'bob' })).toEqual({
      roles: ['admin', 'member'],
      bypassRoles: ['admin'],
      claim: { name: 'sub', anyOf: ['bob'], firstValue: true },
      rules: ruleFingerprint(ownerRule),
    });
  });

  it('fingerprint what decides who reads a row: read and bypass roles and the row filter, in any order', () => {
    const same = ruleFingerprint(ownerRule);
    expect(ruleFingerprint({ ...ownerRule, readRoles: ['member', 'admin'] })).toBe(same);
    // Writing gives no reads: a change of the write roles keeps the history's audiences.
    expect(ruleFingerprint({ ...ownerRule, writeRoles: ['admin'] })).toBe(same);
    const changed = [
      { ...ownerRule, readRoles: ['admin'] },
      { ...ownerRule, bypassRoles: ['admin', 'auditor'] },
      { ...ownerRule, rowFilter: undefined },
      { ...ownerRule, rowFilter: { column: 'team', equalsClaim: 'sub' } },
      { ...ownerRule, rowFilter: { column: 'owner', inClaim: 'sub' } },
      { ...ownerRule, rowFilter: { column: 'owner', equalsClaim: 'email' } },
    ].map(ruleFingerprint);
    expect(new Set([same, ...changed]).size).toBe(changed.length + 1);
  });
});

describe('a row filter on a column of a snapshot introspected before domains were resolved', () => {
  const snapshot = (udtName: string, extra: { enum?: boolean } = {}) =>
    toEntitySchema({
      entities: {
        doc: {
          primaryKey: 'id',
          fields: {
            id: { type: 'text', udtName: 'text', nullable: false, hasDefault: false, pgType: 'text' },
            team: { type: udtName, udtName, nullable: false, hasDefault: false, pgType: udtName, ...extra },
          },
        },
      },
    }).entities.doc as EntitySpec;

  it('applies on text, varchar and enums, and on a domain (taken for text then) only once the schema is refreshed', () => {
    expect(rowFilterProblem(snapshot('text'), 'team')).toBeUndefined();
    expect(rowFilterProblem(snapshot('varchar'), 'team')).toBeUndefined();
    expect(rowFilterProblem(snapshot('mood', { enum: true }), 'team')).toBeUndefined();
    expect(rowFilterProblem(snapshot('snowflake'), 'team')).toMatch(/snowflake, not known as text.*refresh-schema/);
  });
});
