import { describe, expect, it } from '@jest/globals';
import {
  changedFields,
  columnsOf,
  describeDiff,
  editableFields,
  FieldInputError,
  formatCell,
  fromInputText,
  inputKindOf,
  labelOf,
  newKeyFor,
  referenceText,
  shortId,
  toInputText,
} from './fields.ts';
import type { EntitySpec } from './schema.ts';

const acmeTask: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: { type: 'uuid', nullable: false },
    title: { type: 'text', nullable: false },
    status: { type: 'text', nullable: true },
    assignee_id: { type: 'text', nullable: true },
    due_date: { type: 'date', nullable: true },
    estimate_hours: { type: 'int', nullable: true },
  },
};
const globexTask: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: { type: 'int', nullable: false },
    summary: { type: 'text', nullable: false },
    priority: { type: 'int', nullable: true },
    tags: { type: 'text[]', nullable: true },
    done: { type: 'boolean', nullable: true },
  },
};

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('columns and labels', () => {
  it('turns column names into labels', () => {
    expect(['assignee_id', 'due_date', 'title', 'startsAt', 'estimate_hours'].map(labelOf)).toEqual([
      'Assignee',
      'Due date',
      'Title',
      'Starts at',
      'Estimate hours',
    ]);
  });

  it('hides a UUID primary key but shows a numeric one', () => {
    expect(columnsOf(acmeTask).map((c) => c.name)).toEqual([
      'title',
      'status',
      'assignee_id',
      'due_date',
      'estimate_hours',
    ]);
    expect(columnsOf(globexTask).map((c) => c.name)).toEqual(['id', 'summary', 'priority', 'tags', 'done']);
  });

  it('never offers the primary key for editing', () => {
    expect(editableFields(globexTask).map((c) => c.name)).toEqual(['summary', 'priority', 'tags', 'done']);
  });
});

describe('cells', () => {
  it('formats each field type for reading', () => {
    expect(formatCell(null, 'text')).toBe('');
    expect(formatCell(true, 'boolean')).toBe('yes');
    expect(formatCell(false, 'boolean')).toBe('no');
    expect(formatCell(['finance', 'q3'], 'text[]')).toBe('finance, q3');
    expect(formatCell({ a: 1 }, 'jsonb')).toBe('{"a":1}');
    expect(formatCell('2025-03-01T09:00:00+00:00', 'timestamptz')).toBe('2025-03-01 09:00 UTC');
    expect(formatCell('25000.00', 'numeric')).toBe('25000.00');
  });
});

describe('form inputs', () => {
  it('picks an input kind per type', () => {
    expect(
      ['int', 'numeric', 'boolean', 'date', 'jsonb', 'text', 'text[]'].map((t) => inputKindOf(t as never)),
    ).toEqual(['number', 'number', 'checkbox', 'date', 'textarea', 'text', 'text']);
  });

  it('round-trips values through their input text', () => {
    const cases = [
      { type: 'text', value: 'Ship it' },
      { type: 'int', value: 12 },
      { type: 'numeric', value: '8000.50' },
      { type: 'boolean', value: true },
      { type: 'boolean', value: false },
      { type: 'date', value: '2025-02-20' },
      { type: 'text[]', value: ['a', 'b c'] },
      { type: 'jsonb', value: { nested: [1, 2] } },
    ] as const;
    for (const { type, value } of cases) {
      const field = { type, nullable: true };
      expect({ type, value: fromInputText('f', toInputText(value, type), field) }).toEqual({ type, value });
    }
  });

  it('reads an empty input as null for a nullable field and refuses it for a required non-text one', () => {
    expect(fromInputText('due_date', '  ', { type: 'date', nullable: true })).toBeNull();
    expect(fromInputText('title', '', { type: 'text', nullable: false })).toBe('');
    expect(() => fromInputText('priority', '', { type: 'int', nullable: false })).toThrow('Priority: is required');
    // A field the database fills by default (opened_at DEFAULT now()) is left out of the body instead.
    expect(fromInputText('opened_at', '', { type: 'timestamptz', nullable: false, hasDefault: true })).toBeUndefined();
  });

  it('refuses text that is not of the field type, with a BAD_REQUEST code', () => {
    const notWhole = () => fromInputText('estimate_hours', '2.5', { type: 'int', nullable: true });
    expect(notWhole).toThrow(FieldInputError);
    expect(notWhole).toThrow("Estimate hours: '2.5' is not a whole number");
    expect(thrownBy(() => fromInputText('meta', '{oops', { type: 'jsonb', nullable: true }))).toMatchObject({
      code: 'BAD_REQUEST',
      field: 'meta',
      message: 'Meta: is not valid JSON',
    });
    expect(() => fromInputText('budget', '12,5', { type: 'numeric', nullable: true })).toThrow('is not a number');
  });
});

describe('edits', () => {
  it('sends only the fields that changed, never the primary key', () => {
    const row = { id: 'k', title: 'Old', status: 'open', estimate_hours: 6, due_date: null, _version: 2 };
    const edited = { id: 'other', title: 'New', status: 'open', estimate_hours: 6, due_date: null };
    expect(changedFields(acmeTask, row, edited)).toEqual({ title: 'New' });
  });

  it('compares arrays by value and numerics by number', () => {
    const spec: EntitySpec = {
      primaryKey: 'id',
      fields: {
        id: { type: 'int', nullable: false },
        tags: { type: 'text[]', nullable: true },
        n: { type: 'numeric', nullable: true },
      },
    };
    const row = { id: 1, tags: ['a', 'b'], n: '10.50' };
    expect(changedFields(spec, row, { tags: ['a', 'b'], n: '10.5' })).toEqual({});
    expect(changedFields(spec, row, { tags: ['a'], n: '11' })).toEqual({ tags: ['a'], n: '11' });
  });

  it('describes a change-log diff line by line', () => {
    expect(describeDiff({ title: ['Old', 'New'], due_date: [null, '2025-02-20'] })).toEqual([
      'Title: "Old" → "New"',
      'Due date: ∅ → "2025-02-20"',
    ]);
  });

  it('makes a key for a new row only when the key is a UUID', () => {
    expect(newKeyFor(acmeTask, () => 'u-1')).toEqual({ id: 'u-1' });
    expect(newKeyFor(globexTask, () => 'u-1')).toEqual({});
  });
});

describe('reference cells', () => {
  const launch = '7b0e3a52-4d0f-4a51-9b2a-0c4f1c9e0a01';
  const spring = '7b0e3a52-4d0f-4a51-9b2a-0c4f1c9e0a02';

  it("show the referenced row's name, or its title", () => {
    expect(referenceText(launch, { id: launch, name: 'Product launch' })).toBe('Product launch');
    expect(referenceText(launch, { id: launch, title: 'Write the brief' })).toBe('Write the brief');
  });

  it('tell apart ids that share their first characters when no label is known', () => {
    expect(referenceText(launch, undefined)).not.toBe(referenceText(spring, undefined));
    expect(shortId(launch)).toBe('7b0e3a52…0a01');
    expect(shortId('c-1')).toBe('c-1');
  });
});
