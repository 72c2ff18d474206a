import { describe, expect, it } from '@jest/globals';
import { ForbiddenError } from '../errors.ts';
import { ruleFingerprint } from './access.ts';
import { feedRulesFrom } from './feed-rules.ts';
import type { EntityRule, EntitySpec } from './model.ts';

const task: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: { type: 'text', nullable: false },
    owner: { type: 'text', nullable: false },
    score: { type: 'int', pgType: 'bigint', nullable: true },
  },
};
const ownerRule: EntityRule = {
  readRoles: ['member', 'admin'],
  writeRoles: ['member'],
  rowFilter: { column: 'owner', equalsClaim: 'sub' },
  bypassRoles: ['admin'],
};
const tenant = (rules: Record<string, EntityRule>) => async () => ({ schema: { entities: { task } }, rules });

describe("the rules an entity's live feed is judged under now", () => {
  it('are the fingerprint of the rule GET applies to the entity', async () => {
    expect(await feedRulesFrom(tenant({ task: ownerRule }))('acme', 'task')).toBe(ruleFingerprint(ownerRule));
    expect(await feedRulesFrom(tenant({ '*': ownerRule }))('acme', 'task')).toBe(ruleFingerprint(ownerRule));
  });

  it('count a row filter the column cannot carry as the bypass-only rule GET applies', async () => {
    const onScore: EntityRule = { ...ownerRule, rowFilter: { column: 'score', inClaim: 'teams' } };
    const rules = await feedRulesFrom(tenant({ task: onScore }))('acme', 'task');
    expect(rules).toBe(ruleFingerprint({ readRoles: ['admin'], writeRoles: [], bypassRoles: [] }));
  });

  it('are none when nobody reads the entity: no rule, no such entity, no database', async () => {
    expect(await feedRulesFrom(tenant({ note: ownerRule }))('acme', 'task')).toBeUndefined();
    expect(await feedRulesFrom(tenant({ task: ownerRule }))('acme', 'nosuch')).toBeUndefined();
    const closed = async () => {
      throw new ForbiddenError("tenant 'acme' has no database");
    };
    expect(await feedRulesFrom(closed)('acme', 'task')).toBeUndefined();
  });

  it('fail on any other error, so the replay is retried rather than judged', async () => {
    const down = async () => {
      throw Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
    };
    await expect(feedRulesFrom(down)('acme', 'task')).rejects.toThrow('throttled');
  });
});
