import { describe, expect, it } from '@jest/globals';
import type { EntitySpec } from './model.ts';
import {
  getStatement,
  insertStatement,
  listStatement,
  quoteIdent,
  referenceStatement,
  storedReferenceStatement,
} from './sql.ts';

const task: EntitySpec = {
  primaryKey: 'id',
  fields: {
    id: { type: 'int', nullable: false },
    title: { type: 'text', nullable: false },
    owner: { type: 'text', nullable: true },
  },
};

describe('the entity SQL builder', () => {
  it('quotes identifiers and doubles embedded quotes', () => {
    expect(quoteIdent('task')).toBe('"task"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
  });

  it('passes every value as a parameter, never in the SQL text', () => {
    const evil = "x'; DROP TABLE task; --";
    const statement = insertStatement('task', task, { title: evil });
    expect(statement.sql).not.toContain(evil);
    expect(JSON.stringify(statement.params)).toContain('DROP TABLE');
  });

  it('pages by primary key after the cursor, as many rows as `:limit` (executePaged) asks for', () => {
    const statement = listStatement({ table: 'task', entity: task, filters: { title: 'a' }, after: 5 });
    expect(statement.sql).toMatch(/t\."title" = CAST\(:p\d+ AS text\)/);
    expect(statement.sql).toMatch(/t\."id" > CAST\(:p\d+ AS integer\)/);
    expect(statement.sql).toMatch(/ORDER BY t\."id" LIMIT :limit$/);
  });

  it('adds the row filter as a parameterised predicate, and matches nothing without a claim value', () => {
    const own = getStatement('task', task, 1, { column: 'owner', anyOf: ['bob'] });
    expect(own.sql).toMatch(/t\."owner"::text IN \(:p\d+\)/);
    expect(Object.values(own.params)).toContain('bob');
    expect(getStatement('task', task, 1, { column: 'owner', anyOf: [] }).sql).toContain('FALSE');
  });

  it('looks a reference up by its field and value, within the row filter, as parameters', () => {
    const statement = referenceStatement('task', task, 'id', "7' OR 1=1", { column: 'owner', anyOf: ['bob'] });
    expect(statement.sql).toMatch(
      /^SELECT 1 AS found FROM "task" t WHERE t\."id" = CAST\(:p\d+ AS integer\) AND t\."owner"::text IN \(:p\d+\) LIMIT 1$/,
    );
    expect(statement.sql).not.toContain('OR 1=1');
    expect(Object.values(statement.params)).toEqual(expect.arrayContaining(['bob']));
  });

  it("looks a written row's reference up by the value as stored, within the target's row filter", () => {
    const statement = storedReferenceStatement(
      { table: 'comment', entity: task, key: 7, column: 'task_id' },
      { table: 'task', field: 'id' },
      { column: 'owner', anyOf: ['bob'] },
    );
    expect(statement.sql).toMatch(
      /^SELECT 1 AS found FROM "task" t WHERE t\."id" = \(SELECT s\."task_id" FROM "comment" s WHERE s\."id" = CAST\(:p\d+ AS integer\)\) AND t\."owner"::text IN \(:p\d+\) LIMIT 1$/,
    );
  });
});
