import { describe, expect, it } from '@jest/globals';
import type { EntityCaller, EntityRule, EntitySpec } from './model.ts';
import { assertChecksHeld, writeChecks } from './write-checks.ts';

const text = { type: 'text' as const, nullable: true };
const doc: EntitySpec = { primaryKey: 'id', fields: { id: text, owner: text } };
const note: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: text,
    owner: { ...text, references: { entity: 'person', field: 'id' } },
    doc_id: { ...text, references: { entity: 'doc', field: 'id' } },
    archive_id: { ...text, references: { entity: 'archive', field: 'id' } },
  },
};
const ownerRule: EntityRule = {
  readRoles: ['member'],
  writeRoles: ['member'],
  rowFilter: { column: 'owner', equalsClaim: 'sub' },
  bypassRoles: ['admin'],
};
const alice: EntityCaller = { tenantId: 't', userId: 'alice', roles: ['member'], claims: { sub: 'alice' } };
const own = { column: 'owner', anyOf: ['alice'] };
const tenant = (rules: Record<string, EntityRule>) => ({
  schema: { entities: { doc, note, person: doc } },
  rules,
});

describe("a write's checks", () => {
  it('judge a create within the row filter, and the reference it sets within the target’s', () => {
    expect(writeChecks(tenant({ doc: ownerRule }), alice, note, own, { owner: 'alice', doc_id: 'd1' })).toEqual({
      within: own,
      references: [{ column: 'doc_id', table: 'doc', field: 'id', restriction: own }],
    });
  });

  it('leave out a null reference, one an update leaves as it was, and the row filter an update does not touch', () => {
    const checks = writeChecks(tenant({ doc: ownerRule }), alice, note, own, { doc_id: 'd1' }, { doc_id: 'd1' });
    expect(checks).toEqual({});
    expect(writeChecks(tenant({ doc: ownerRule }), alice, note, own, { doc_id: null })).toEqual({ within: own });
  });

  it("leave out the writer's own filter column (its value is the writer's claim) and a table that is no entity", () => {
    // `owner` references person, which alice may not read; `archive` is no entity of the schema.
    const checks = writeChecks(tenant({ doc: ownerRule }), alice, note, own, { owner: 'alice', archive_id: 'a1' });
    expect(checks).toEqual({ within: own });
  });

  it('refuse at once a reference to an entity no rule lets the writer read, as a missing row', () => {
    expect(() => writeChecks(tenant({}), alice, note, own, { doc_id: 'd1' })).toThrow(
      expect.objectContaining({
        code: 'BAD_REQUEST',
        message: expect.stringMatching(/^a referenced row does not exist/),
      }),
    );
  });

  it('answer a row outside the filter FORBIDDEN and a reference not found BAD_REQUEST, held ones nothing', () => {
    const checks = { within: own, references: [] };
    expect(() => assertChecksHeld({ within: false, references: true }, checks, 'note')).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN' }),
    );
    const referenced = { references: [{ column: 'doc_id', table: 'doc', field: 'id', restriction: own }] };
    expect(() => assertChecksHeld({ references: false }, referenced, 'note')).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
    expect(() =>
      assertChecksHeld({ within: true, references: true }, { ...checks, ...referenced }, 'note'),
    ).not.toThrow();
  });
});
