import { describe, expect, it } from '@jest/globals';
import {
  assertField,
  type EntitySchema,
  nextSnapshot,
  normalizeType,
  quoteIdent,
  type SchemaSnapshot,
  schemaHash,
  splitSqlStatements,
} from './schema.ts';

const task: EntitySchema = {
  primaryKey: 'id',
  fields: {
    id: { type: 'uuid', pgType: 'uuid', udtName: 'uuid', nullable: false, hasDefault: false },
    title: { type: 'text', pgType: 'text', udtName: 'text', nullable: false, hasDefault: false },
  },
};
const snapshot: SchemaSnapshot = nextSnapshot({ entities: { task }, skipped: {} }, undefined, new Date(0));

describe('a schema snapshot', () => {
  it('starts at version 1 and changes version only when the schema changes', () => {
    expect(snapshot.version).toBe(1);
    expect(nextSnapshot({ entities: { task }, skipped: {} }, snapshot)).toBe(snapshot);
    const wider = {
      ...task,
      fields: {
        ...task.fields,
        done: { type: 'boolean', pgType: 'boolean', udtName: 'bool', nullable: true, hasDefault: true },
      },
    };
    const next = nextSnapshot({ entities: { task: wider }, skipped: {} }, snapshot);
    expect(next.version).toBe(2);
    expect(next.hash).not.toBe(snapshot.hash);
  });

  it('hashes the same schema the same whatever the key order', () => {
    const [[idName, id], [titleName, title]] = Object.entries(task.fields) as [[string, unknown], [string, unknown]];
    const reordered = { fields: { [titleName]: title, [idName]: id }, primaryKey: 'id' } as EntitySchema;
    expect(schemaHash({ task: reordered })).toBe(schemaHash({ task }));
  });
});

describe('field and identifier checks', () => {
  it('reject an unknown field before any SQL is built', () => {
    expect(() => assertField(snapshot, 'task', 'foo')).toThrow("unknown field 'foo' on entity 'task'");
    expect(() => assertField(snapshot, 'task', 'foo')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    expect(assertField(snapshot, 'task', 'title').type).toBe('text');
  });

  it('reject an unknown entity, including names inherited from Object', () => {
    expect(() => assertField(snapshot, 'constructor', 'id')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => assertField(snapshot, 'task', 'toString')).toThrow(/unknown field/);
  });

  it('quote only names that are in the snapshot', () => {
    expect(quoteIdent(snapshot, 'task')).toBe('"task"');
    expect(quoteIdent(snapshot, 'task', 'title')).toBe('"title"');
    expect(() => quoteIdent(snapshot, 'task', 'title"; drop table task; --')).toThrow(/unknown field/);
  });
});

describe('types', () => {
  it('are normalised from PostgreSQL internal names', () => {
    expect(['int4', 'int8', '_text', 'timestamptz', 'bool', 'varchar', 'uuid'].map(normalizeType)).toEqual([
      'int',
      'bigint',
      'text[]',
      'timestamptz',
      'boolean',
      'text',
      'uuid',
    ]);
  });
});

describe('an SQL script', () => {
  it('splits at top-level semicolons only', () => {
    const script = `CREATE TABLE a (x text DEFAULT 'a;b'); -- one; still a comment
      CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
      /* ; */ ;`;
    expect(splitSqlStatements(script)).toEqual([
      "CREATE TABLE a (x text DEFAULT 'a;b')",
      expect.stringContaining('$$ SELECT 1; $$ LANGUAGE sql'),
    ]);
  });

  it('keeps whole a tagged dollar quote, an escape string and an SQL-standard function body', () => {
    const script = `CREATE FUNCTION g() RETURNS int AS $fn1$ SELECT 1; $fn1$ LANGUAGE sql;
      INSERT INTO t VALUES (E'it\\'s; fine', e'a\\\\'); SELECT $1;
      CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql
      BEGIN ATOMIC
        SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
        SELECT 2;
      END;
      CREATE TABLE after_it (id int);`;
    const statements = splitSqlStatements(script);
    expect(statements).toHaveLength(5);
    expect(statements[0]).toContain('$fn1$ SELECT 1; $fn1$ LANGUAGE sql');
    expect(statements[1]).toBe("INSERT INTO t VALUES (E'it\\'s; fine', e'a\\\\')");
    expect(statements[2]).toBe('SELECT $1');
    expect(statements[3]).toMatch(/^CREATE FUNCTION h[\s\S]*SELECT 2;\s*END$/);
    expect(statements[4]).toBe('CREATE TABLE after_it (id int)');
  });
});
