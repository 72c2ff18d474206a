import { describe, expect, it } from '@jest/globals';
import { EntityTable } from './entity-table.ts';
import type { ChangeEvent, EntitySpec } from './schema.ts';

const acmeTask: EntitySpec = {
  primaryKey: 'id',
  fields: { id: { type: 'uuid', nullable: false }, title: { type: 'text', nullable: false } },
};
const globexTask: EntitySpec = {
  primaryKey: 'id',
  fields: { id: { type: 'int', nullable: false }, summary: { type: 'text', nullable: false } },
};

const change = (key: string | number, version: number, title: string | null, op?: ChangeEvent['op']): ChangeEvent => ({
  op: op ?? (title === null ? 'delete' : version === 1 ? 'insert' : 'update'),
  entity: 'task',
  key,
  version,
  row: title === null ? null : { id: key, title },
  changedBy: 'alice',
  changedAt: '2025-01-01T00:00:00Z',
});

describe('an entity table', () => {
  it('shows a loaded list in primary-key order, numeric keys numerically', () => {
    const table = new EntityTable(globexTask);
    table.load([
      { id: 10, summary: 'ten', _version: 0 },
      { id: 2, summary: 'two', _version: 0 },
      { id: 1, summary: 'one', _version: 3 },
    ]);
    expect(table.rows().map((r) => r.id)).toEqual([1, 2, 10]);
    expect(table.get('10')).toMatchObject({ summary: 'ten' });
  });

  it('forgets every row when cleared, those that arrived live too, and takes a later change of one as new', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'A', _version: 4 }]);
    table.apply(change('b', 1, 'B'));
    table.clear();
    expect(table.rows()).toEqual([]);
    table.load([]);
    expect(table.rows()).toEqual([]);
    expect(table.apply(change('a', 1, 'A again'))).toBe(true);
  });

  it('applies a newer change and records its version on the row', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'old', _version: 1 }]);
    expect(table.apply(change('a', 2, 'new'))).toBe(true);
    expect(table.get('a')).toEqual({ id: 'a', title: 'new', _version: 2 });
  });

  it('ignores a duplicate or a late, older change', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'v3', _version: 3 }]);
    expect(table.apply(change('a', 3, 'v3 again'))).toBe(false);
    expect(table.apply(change('a', 2, 'v2'))).toBe(false);
    expect(table.get('a')?.title).toBe('v3');
  });

  it('adds a row inserted by someone else and removes a deleted one', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'A', _version: 1 }]);
    table.apply(change('b', 1, 'B'));
    table.apply(change('a', 2, null));
    expect(table.rows().map((r) => r.id)).toEqual(['b']);
  });

  it('does not bring a deleted row back when an older update arrives after the delete', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'A', _version: 1 }]);
    table.apply(change('a', 3, null));
    expect(table.apply(change('a', 2, 'resurrected'))).toBe(false);
    expect(table.upsert({ id: 'a', title: 'stale answer', _version: 2 })).toBe(false);
    expect(table.size).toBe(0);
  });

  it("removes a row its own delete answered for, and the live feed's delete of the same version changes nothing", () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'A', _version: 2 }]);
    expect(table.remove('a', 3)).toBe(true);
    expect(table.size).toBe(0);
    expect(table.apply(change('a', 3, null))).toBe(false);
    expect(table.upsert({ id: 'a', title: 'stale answer', _version: 2 })).toBe(false);
    // Created again by someone else: versions continue the key's sequence.
    expect(table.apply(change('a', 4, 'A again', 'insert'))).toBe(true);
    expect(table.remove('a', 4)).toBe(false);
    expect(table.get('a')?.title).toBe('A again');
  });

  it('keeps on reload what arrived live while the list was in flight', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'A', _version: 1 }]);
    table.apply(change('a', 2, 'A2'));
    table.apply(change('c', 1, 'C'));
    table.apply(change('b', 5, null));
    // A list read before those three changes committed.
    table.load([
      { id: 'a', title: 'A', _version: 1 },
      { id: 'b', title: 'B', _version: 4 },
    ]);
    expect(table.rows()).toEqual([
      { id: 'a', title: 'A2', _version: 2 },
      { id: 'c', title: 'C', _version: 1 },
    ]);
  });

  it('lets a later reload drop rows that are gone', () => {
    const table = new EntityTable(acmeTask);
    table.apply(change('c', 1, 'C'));
    table.load([]);
    expect(table.rows()).toEqual([{ id: 'c', title: 'C', _version: 1 }]);
    table.load([]);
    expect(table.size).toBe(0);
  });

  it('takes the list as the truth on reload, even at lower versions, after a stack restarted without its data', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'edited', _version: 2 }]);
    // The restarted stack has the seed row again, at version 0, and versions start over.
    table.load([{ id: 'a', title: 'reseeded', _version: 0 }]);
    expect(table.get('a')).toEqual({ id: 'a', title: 'reseeded', _version: 0 });
    expect(table.apply(change('a', 1, 'edited again'))).toBe(true);
    expect(table.get('a')).toMatchObject({ title: 'edited again', _version: 1 });
    expect(table.upsert({ id: 'a', title: 'saved', _version: 2 })).toBe(true);
  });

  it('takes a write answer that is newer and refuses one the live feed already overtook', () => {
    const table = new EntityTable(acmeTask);
    table.load([{ id: 'a', title: 'A', _version: 0 }]);
    expect(table.upsert({ id: 'a', title: 'mine', _version: 1 })).toBe(true);
    table.apply(change('a', 2, 'theirs'));
    expect(table.upsert({ id: 'a', title: 'mine', _version: 1 })).toBe(false);
    expect(table.get('a')?.title).toBe('theirs');
  });

  it('keeps the row it has for a change announced without its row, until the caller upserts the one it read', () => {
    const table = new EntityTable(acmeTask);
    table.apply(change('k', 1, 'small'));
    expect(table.apply({ ...change('k', 2, null, 'update'), rowOmitted: true })).toBe(true);
    expect(table.get('k')).toMatchObject({ title: 'small' });
    expect(table.upsert({ id: 'k', title: 'big', _version: 2 })).toBe(true);
    expect(table.get('k')).toMatchObject({ title: 'big', _version: 2 });
  });
});
