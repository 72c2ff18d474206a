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
    person_id: { ...text, references: { entity: 'person', field: 'id' } },
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
const tenant = { schema: { entities: { doc, note, person: doc } }, rules: { doc: ownerRule } };

describe("a write's checks", () => {
  it('judge the row within the filter, and every reference of the row, whatever the body names', () => {
    expect(writeChecks(tenant, alice, note, own)).toEqual({
      within: own,
      references: [
        { column: 'doc_id', table: 'doc', field: 'id', restriction: own, readable: true },
        // No rule lets alice read person: only a null (or, in an update, unchanged) person_id holds.
        { column: 'person_id', table: 'person', field: 'id', restriction: undefined, readable: false },
      ],
    });
  });

  it("leave out the writer's own filter column (its value is the writer's claim) and a table that is no entity", () => {
    const columns = writeChecks(tenant, alice, note, own).references?.map((r) => r.column);
    expect(columns).not.toContain('owner');
    expect(columns).not.toContain('archive_id');
  });

  it('let an update keep what it leaves as it was, and judge the row filter on it too', () => {
    expect(writeChecks(tenant, alice, note, own, true)).toMatchObject({ within: own, update: true });
    expect(writeChecks(tenant, alice, doc, undefined)).toEqual({});
  });

  it('answer a row outside the filter FORBIDDEN and a reference not held BAD_REQUEST, held ones nothing', () => {
    const within = { within: own };
    const referenced = writeChecks(tenant, alice, note, undefined);
    expect(() => assertChecksHeld({ within: false, references: true }, within, 'note')).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN' }),
    );
    expect(() => assertChecksHeld({ references: false }, referenced, 'note')).toThrow(
      expect.objectContaining({
        code: 'BAD_REQUEST',
        message: expect.stringMatching(/^a referenced row does not exist/),
      }),
    );
    expect(() =>
      assertChecksHeld({ within: true, references: true }, { ...within, ...referenced }, 'note'),
    ).not.toThrow();
  });
});
