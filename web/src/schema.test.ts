import { describe, expect, it } from '@jest/globals';
import { type EntitySpec, mayWrite } from './schema.ts';

describe('mayWrite', () => {
  const spec: EntitySpec = { primaryKey: 'id', fields: { id: { type: 'uuid', nullable: false } } };

  it('hides write controls from a user whose roles cannot write the entity', () => {
    expect(mayWrite({ ...spec, canRead: true, canWrite: false })).toBe(false);
    expect(mayWrite({ ...spec, canRead: true, canWrite: true })).toBe(true);
  });

  it('hides them once a write was refused with FORBIDDEN when the API does not say', () => {
    expect(mayWrite(spec)).toBe(true);
    expect(mayWrite(spec, true)).toBe(false);
  });
});
