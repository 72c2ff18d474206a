import { describe, expect, it } from '@jest/globals';
import { BadRequestError } from '../errors.ts';
import type { EntitySpec } from './model.ts';
import {
  entityOf,
  fieldSchema,
  parseCreate,
  parseIfMatch,
  parseListQuery,
  parseUpdate,
  parseUrlValue,
} from './validation.ts';

const task: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: { type: 'uuid', nullable: false, hasDefault: true },
    title: { type: 'text', nullable: false },
    priority: { type: 'int', nullable: true },
    tags: { type: 'text[]', nullable: true },
    due: { type: 'date', nullable: true },
    done: { type: 'boolean', nullable: false, hasDefault: true },
    meta: { type: 'jsonb', nullable: true },
  },
};

describe('entity request validation', () => {
  it('reports an unknown entity as not found', () => {
    expect(() => entityOf({ entities: { task } }, 'nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });

  it('rejects an unknown field by name', () => {
    expect(() => parseCreate(task, 'task', { title: 'x', foo: 1 })).toThrow("unknown field 'foo' on entity 'task'");
  });

  it('rejects a field name that is an SQL fragment as an unknown field', () => {
    expect(() => parseCreate(task, 'task', { 'title"; DROP TABLE task; --': 'x' })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });

  it('refuses a primary key longer than a change event carries (256 characters), whose change could never be published', () => {
    const doc: EntitySpec = { primaryKey: 'slug', fields: { slug: { type: 'text', nullable: false } } };
    expect(parseCreate(doc, 'doc', { slug: 'k'.repeat(256) })).toEqual({ slug: 'k'.repeat(256) });
    expect(() => parseCreate(doc, 'doc', { slug: 'k'.repeat(257) })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST', message: expect.stringMatching(/primary key: at most 256/) }),
    );
  });

  it('names the field whose value has the wrong type', () => {
    expect(() => parseCreate(task, 'task', { title: 'x', priority: 'high' })).toThrow(/field 'priority'/);
    expect(() => parseCreate(task, 'task', { title: 'x', due: '2024-13-45x' })).toThrow(/field 'due'/);
  });

  it("says what is wrong in zod's English words, as the API always has", () => {
    expect(() => parseCreate(task, 'task', { title: 'x', priority: 1.5 })).toThrow(
      "invalid value for field 'priority' of entity 'task': Invalid input: expected int, received number",
    );
    expect(() => parseCreate(task, 'task', { title: 'x', priority: 2 ** 31 })).toThrow(
      "invalid value for field 'priority' of entity 'task': Too big: expected number to be <=2147483647",
    );
    expect(() => parseCreate(task, 'task', { title: 'x', done: 'yes' })).toThrow(
      "invalid value for field 'done' of entity 'task': Invalid input: expected boolean, received string",
    );
    expect(() => parseCreate(task, 'task', { title: 'x'.repeat(65_537) })).toThrow(
      "invalid value for field 'title' of entity 'task': Too big: expected string to have <=65536 characters",
    );
  });

  it('refuses a NUL character in a text, text[] or jsonb value (PostgreSQL cannot store it) naming the field', () => {
    const nul = 'a\u0000b';
    expect(() => parseCreate(task, 'task', { title: nul })).toThrow(/field 'title'.*NUL/);
    expect(() => parseCreate(task, 'task', { title: 'x', tags: ['ok', nul] })).toThrow(/field 'tags'.*NUL/);
    expect(() => parseUpdate(task, 'task', { meta: { deep: [{ v: nul }] } })).toThrow(/field 'meta'.*NUL/);
    expect(() => parseUpdate(task, 'task', { meta: { [nul]: 1 } })).toThrow(/field 'meta'.*NUL/);
    expect(() => parseListQuery(task, 'task', { title: nul })).toThrow(/field 'title'.*NUL/);
    expect(parseCreate(task, 'task', { title: 'no nul here', meta: { a: ['b'] } })).toMatchObject({
      title: 'no nul here',
    });
  });

  it('requires non-null fields without a default on create', () => {
    expect(() => parseCreate(task, 'task', { priority: 1 })).toThrow(/field 'title'/);
    expect(parseCreate(task, 'task', { title: 'a', tags: ['x'] })).toEqual({ title: 'a', tags: ['x'] });
  });

  it('refuses to change the primary key or to update nothing', () => {
    expect(() => parseUpdate(task, 'task', { id: '00000000-0000-0000-0000-000000000000' })).toThrow(/primary key/);
    expect(() => parseUpdate(task, 'task', {})).toThrow(/no fields/);
  });

  it('types query filters by their field and bounds the page size', () => {
    expect(parseListQuery(task, 'task', { limit: '10', priority: '3', done: 'true' })).toEqual({
      limit: 10,
      filters: { priority: 3, done: true },
    });
    expect(() => parseListQuery(task, 'task', { priority: '1 OR 1=1' })).toThrow(/field 'priority'/);
    expect(() => parseListQuery(task, 'task', { limit: '100000' })).toThrow(/limit/);
    expect(() => parseListQuery(task, 'task', { tags: 'x' })).toThrow(/cannot be used in a URL/);
  });

  it('reads If-Match as a version, quoted or not', () => {
    expect(parseIfMatch('3')).toBe(3);
    expect(parseIfMatch('"4"')).toBe(4);
    expect(parseIfMatch(undefined)).toBeUndefined();
    expect(() => parseIfMatch('abc')).toThrow(/If-Match/);
  });
});

describe('a numeric field', () => {
  it("takes a number, or a plain decimal string (the Data API's DECIMAL takes no exponent), and nothing else", () => {
    const numeric = fieldSchema('numeric');
    for (const ok of [12.5, -3, '12345678901234567891', '-0.25']) expect(numeric.safeParse(ok).success).toBe(true);
    for (const bad of ['6.022e23', '1e', 'e5', '0x10', 'NaN', '', ' 1'])
      expect(numeric.safeParse(bad).success).toBe(false);
  });
});

describe('a bigint field', () => {
  const entity: EntitySpec = {
    primaryKey: 'id',
    fields: { id: { type: 'int', pgType: 'bigint', nullable: false } },
  };
  it('takes an integer or a string of digits in its range, and refuses anything else as BAD_REQUEST', () => {
    expect(parseCreate(entity, 'big', { id: '-9223372036854775808' })).toEqual({ id: '-9223372036854775808' });
    expect(parseCreate(entity, 'big', { id: 3_000_000_000 })).toEqual({ id: 3_000_000_000 });
    for (const id of ['9223372036854775808', '0 OR 1=1', '1.5', '']) {
      expect(() => parseCreate(entity, 'big', { id })).toThrow(BadRequestError);
    }
    expect(() => parseUrlValue(entity, 'big', 'id', '0 OR 1=1')).toThrow(BadRequestError);
  });

  it('takes in a URL the key as the API wrote it in JSON, exponent and all', () => {
    const numeric: EntitySpec = { primaryKey: 'id', fields: { id: { type: 'numeric', nullable: false } } };
    expect(parseUrlValue(numeric, 'n', 'id', '1e-7')).toBe(1e-7);
    expect(parseUrlValue(numeric, 'n', 'id', '1.5e-10')).toBe(1.5e-10);
    // A key a double cannot hold exactly stays its exact decimal text: it names its own row, not its neighbour's.
    expect(parseUrlValue(numeric, 'n', 'id', '1.0000000000000001')).toBe('1.0000000000000001');
    expect(parseUrlValue(numeric, 'n', 'id', '10000000000000001e-16')).toBe('1.0000000000000001');
    expect(parseUrlValue(numeric, 'n', 'id', '4503599627370497.5')).toBe('4503599627370497.5');
    expect(() => parseUrlValue(entity, 'big', 'id', '1.0000000000000001')).toThrow(BadRequestError);
    expect(parseUrlValue(numeric, 'n', 'id', '0.12345678901234567890')).toBe('0.12345678901234567890');
    expect(parseUrlValue(entity, 'big', 'id', '3e9')).toBe(3_000_000_000);
    expect(() => parseUrlValue(numeric, 'n', 'id', '1e-7 OR 1=1')).toThrow(BadRequestError);
    // Not written out into a gigabyte of zeros: refused as any other key that is no number.
    expect(() => parseUrlValue(numeric, 'n', 'id', '1e999999999')).toThrow(BadRequestError);
  });
});
