import { describe, expect, it } from '@jest/globals';
import type { EntitySpec } from './model.ts';
import { getStatement, insertStatement, listStatement, quoteIdent, updateStatement } from './sql.ts';

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

  it("judges a write's row filter and references in its own RETURNING, on the row as stored", () => {
    const statement = insertStatement(
      'comment',
      task,
      { title: 'x', owner: 'bob' },
      {
        within: { column: 'owner', anyOf: ['bob'] },
        references: [
          {
            column: 'task_id',
            table: 'task',
            field: 'id',
            restriction: { column: 'owner', anyOf: ['bob'] },
            readable: true,
          },
          { column: 'parent_id', table: 'comment', field: 'id', restriction: undefined, readable: true },
          { column: 'audit_id', table: 'audit', field: 'id', restriction: undefined, readable: false },
        ],
      },
    );
    expect(statement.sql).toMatch(
      /RETURNING .* AS "row_bytes", COALESCE\(\(t\."owner"::text IN \(:p\d+\)\), FALSE\) AS "within"/,
    );
    expect(statement.sql).toContain(
      '(t."task_id" IS NULL OR EXISTS (SELECT 1 FROM "task" r WHERE r."id" = t."task_id" AND r."owner"::text IN (',
    );
    // A reference to the written table also matches the row itself, which the statement's subquery cannot see; one to
    // a target the writer may not read holds only when null.
    expect(statement.sql).toContain(
      '(t."parent_id" IS NULL OR EXISTS (SELECT 1 FROM "comment" r WHERE r."id" = t."parent_id") OR (t."id" = t."parent_id"))',
    );
    expect(statement.sql).toMatch(/ AND \(t\."audit_id" IS NULL\)\), FALSE\) AS "references"$/);
    expect(statement.sql).not.toContain("'bob'");
  });

  it("lets an update keep a reference as it was, compared in SQL with the row's value before it", () => {
    const ref = { column: 'owner', table: 'person', field: 'id', restriction: undefined, readable: false };
    expect(updateStatement('task', task, 1, { title: 'x' }, { references: [ref], update: true }).sql).toContain(
      '(t."owner" IS NULL OR t."owner" IS NOT DISTINCT FROM (SELECT o."owner" FROM "task" o WHERE o."id" = t."id"))',
    );
  });

  it('judges nothing more than asked, and an empty claim list as outside the filter', () => {
    expect(updateStatement('task', task, 1, { title: 'x' }).sql).not.toMatch(/"within"|"references"/);
    expect(updateStatement('task', task, 1, { owner: 'x' }, { within: { column: 'owner', anyOf: [] } }).sql).toContain(
      'COALESCE((FALSE), FALSE) AS "within"',
    );
  });
});
