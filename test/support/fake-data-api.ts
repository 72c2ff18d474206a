/**
 * An in-memory stand-in for the Data API port (lambdas/core/data-api.ts), for unit tests of the entity core. It
 * keeps one tenant's rows and change log and understands exactly the statements lambdas/core/entities/sql.ts builds
 * (recognised by their shape, values taken from the named parameters); anything else throws, so a new statement
 * shows up as a failing test. Transactions roll back (restore the state) when their function throws. Row filters
 * (`::text IN (...)`) are applied; `list` filters and cursors are not (the SQL builders have their own tests).
 *
 * `failWhen` makes a matching statement throw, to put a failure at an exact point.
 */
import type { DataApi, DatabaseRef, ExecuteResult, Params, Row, Transaction } from '../../lambdas/core/data-api.ts';
import { isTyped } from '../../lambdas/core/data-api.ts';
import { changeLog, LATER_CHANGES_MAX } from '../../lambdas/core/entities/sql.ts';

export interface ChangeLogRow {
  seq: number;
  entity: string;
  key: string;
  version: number;
  op: string;
  changed_by: string;
  changed_at: string;
  diff: Record<string, [unknown, unknown]>;
  published: boolean;
}

const LOG = `"${changeLog.table}"`;

function plain(value: Params[string]): unknown {
  return isTyped(value) ? value.value : value;
}

/** The values of `:pN` placeholders in the order they appear in `sql`. */
function valuesInOrder(sql: string, params: Params): unknown[] {
  return [...sql.matchAll(/:(p\d+)/g)].map((m) => plain(params[m[1] as string]));
}

/** A write's `RETURNING` checks (sql.ts, `WriteChecks`) on the row written: the row filter's only (no references here). */
function checksOf(sql: string, params: Params, row: Record<string, unknown>): { within?: boolean } {
  if (sql.includes('AS "references"')) throw new Error('fake data api: references are not supported');
  if (sql.includes('COALESCE((FALSE), FALSE) AS "within"')) return { within: false };
  const within = sql.match(/COALESCE\(\(t\."(\w+)"::text IN \(([^)]*)\)\), FALSE\) AS "within"/);
  if (within === null) return {};
  const allowed = [...(within[2] as string).matchAll(/:(p\d+)/g)].map((m) => String(plain(params[m[1] as string])));
  return { within: allowed.includes(String(row[within[1] as string])) };
}

export class FakeDataApi implements DataApi {
  /** Rows by table, then by primary key (as text). */
  tables = new Map<string, Map<string, Record<string, unknown>>>();
  log: ChangeLogRow[] = [];
  /** Every statement run, in order, with whether it ran in a transaction. */
  readonly statements: { sql: string; inTransaction: boolean }[] = [];
  readonly databases: DatabaseRef[] = [];
  private faults: { matches: (sql: string) => boolean; error: Error; times: number }[] = [];
  private clock = Date.parse('2026-01-01T00:00:00Z');

  constructor(private readonly primaryKeys: Readonly<Record<string, string>>) {
    for (const table of Object.keys(primaryKeys)) this.tables.set(table, new Map());
  }

  failWhen(matches: (sql: string) => boolean, error: Error = new Error('database unavailable'), times = 1): void {
    this.faults.push({ matches, error, times });
  }

  /** Adds a change-log row directly (as an earlier write would have). */
  addChange(change: Omit<ChangeLogRow, 'seq' | 'changed_at'>): void {
    this.log.push({ ...change, seq: this.log.length + 1, changed_at: new Date(this.clock).toISOString() });
  }

  async execute(db: DatabaseRef, sql: string, params: Params = {}): Promise<ExecuteResult> {
    this.databases.push(db);
    return this.run(sql, params, false);
  }

  async batchExecute(): Promise<{ readonly updated: number }> {
    throw new Error('fake data api: batchExecute is not used by the entity core');
  }

  async executePaged(): Promise<never> {
    throw new Error('fake data api: executePaged is not used by the entity core');
  }

  async transaction<T>(db: DatabaseRef, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.databases.push(db);
    const saved = { tables: structuredClone(this.tables), log: structuredClone(this.log) };
    const tx: Transaction = {
      id: 'tx-1',
      execute: async (sql, params = {}) => this.run(sql, params, true),
      batchExecute: async () => {
        throw new Error('fake data api: batchExecute is not used by the entity core');
      },
    };
    try {
      return await fn(tx);
    } catch (err) {
      this.tables = saved.tables;
      this.log = saved.log;
      throw err;
    }
  }

  private table(name: string): Map<string, Record<string, unknown>> {
    const table = this.tables.get(name);
    if (table === undefined) throw new Error(`fake data api: no table ${name}`);
    return table;
  }

  private run(sql: string, params: Params, inTransaction: boolean): ExecuteResult {
    this.statements.push({ sql, inTransaction });
    const fault = this.faults.find((f) => f.times > 0 && f.matches(sql));
    if (fault !== undefined) {
      fault.times--;
      throw fault.error;
    }
    const values = valuesInOrder(sql, params);

    const insertRow = sql.match(/^INSERT INTO "(\w+)" AS t \(([^)]*)\) VALUES/);
    if (insertRow) {
      const table = insertRow[1] as string;
      const columns = (insertRow[2] as string).split(', ').map((c) => c.replaceAll('"', ''));
      const row = Object.fromEntries(columns.map((c, i) => [c, values[i]]));
      const key = String(row[this.primaryKeys[table] as string]);
      if (this.table(table).has(key)) throw new Error('duplicate key value violates unique constraint');
      this.table(table).set(key, row);
      return { rows: [{ row: JSON.stringify(row), ...checksOf(sql, params, row) }], updated: 1 };
    }
    if (sql.startsWith(`INSERT INTO ${LOG}`)) {
      const [entity, key, version, op, changedBy, diff] = values;
      this.addChange({
        entity: String(entity),
        key: String(key),
        version: Number(version),
        op: String(op),
        changed_by: String(changedBy),
        diff: (typeof diff === 'string' ? JSON.parse(diff) : diff) as ChangeLogRow['diff'],
        published: false,
      });
      // RETURNING key: the key's text (PostgreSQL's `pk::text`; the fake's keys are text already).
      return { rows: [{ key: String(key) }], updated: 1 };
    }
    if (sql.startsWith('SELECT COALESCE(MAX(version), 0)::int AS version')) {
      const [entity, key] = values;
      const versions = this.log.filter((c) => c.entity === entity && c.key === key).map((c) => c.version);
      return { rows: [{ version: Math.max(0, ...versions) }], updated: 0 };
    }
    const getRow = sql.match(
      /^SELECT CASE WHEN octet_length\(r\.j\) .* FROM "(\w+)" t CROSS JOIN LATERAL .* WHERE t\."(\w+)" = /,
    );
    if (getRow) {
      // getStatement: [the row bound (three times), the key's name, entity name, id, ...row filter values]
      const table = getRow[1] as string;
      const [entity, id, ...allowed] = values.slice(4);
      const row = this.table(table).get(String(id));
      const filter = sql.match(/AND t\."(\w+)"::text IN/);
      const visible = row !== undefined && (filter === null || allowed.includes(String(row[filter[1] as string])));
      if (sql.includes(' AND FALSE')) return { rows: [], updated: 0 };
      return { rows: visible ? [{ row: JSON.stringify(row), version: this.versionOf(entity, id) }] : [], updated: 0 };
    }
    const updateRow = sql.match(/^UPDATE "(\w+)" AS t SET (.*) WHERE t\."(\w+)" = /);
    if (updateRow) {
      const table = updateRow[1] as string;
      const columns = [...(updateRow[2] as string).matchAll(/"(\w+)" = /g)].map((c) => c[1] as string);
      const id = values[columns.length];
      const row = this.table(table).get(String(id));
      if (row === undefined) return { rows: [], updated: 0 };
      columns.forEach((c, i) => {
        row[c] = values[i];
      });
      return { rows: [{ row: JSON.stringify(row), ...checksOf(sql, params, row) }], updated: 1 };
    }
    const deleteRow = sql.match(/^DELETE FROM "(\w+)" AS t WHERE/);
    if (deleteRow) {
      const deleted = this.table(deleteRow[1] as string).delete(String(values[0]));
      return { rows: [], updated: deleted ? 1 : 0 };
    }
    if (sql.startsWith(`UPDATE ${LOG} SET published = true`)) {
      let updated = 0;
      for (let i = 0; i < values.length; i += 3) {
        const [entity, key, version] = values.slice(i, i + 3);
        for (const c of this.log) {
          if (!c.published && c.entity === entity && c.key === key && c.version === Number(version)) {
            c.published = true;
            updated++;
          }
        }
      }
      return { rows: [], updated };
    }
    if (sql.startsWith(`SELECT entity, key, version FROM ${LOG} WHERE NOT published`)) {
      const [graceSeconds, limit] = values;
      const cutoff = this.clock - Number(graceSeconds) * 1000;
      const rows = this.log
        .filter((c) => !c.published && Date.parse(c.changed_at) <= cutoff)
        .slice(0, Number(limit))
        .map((c) => ({ entity: c.entity, key: c.key, version: c.version }));
      return { rows, updated: 0 };
    }
    const feedRows = sql.match(/^SELECT c\.key, c\.version, .* LEFT JOIN "(\w+)" t/);
    if (feedRows) return { rows: this.feed(feedRows[1] as string, sql, params), updated: 0 };
    throw new Error(`fake data api: unsupported statement ${sql.slice(0, 120)}`);
  }

  /** feedStatement (lambdas/core/entities/sql.ts): its parameters found by where they stand in the SQL. */
  private feed(table: string, sql: string, params: Params): Row[] {
    const value = (pattern: RegExp) => plain(params[sql.match(pattern)?.[1] as string]);
    const fields = [
      ...new Set([...sql.matchAll(/CAST\(:(p\d+) AS text\)/g)].map((m) => String(plain(params[m[1] as string])))),
    ];
    const valueBytes = Number(value(/<= :(p\d+) THEN/));
    const rowBytes = Number(value(/octet_length\(to_jsonb\(t\.\*\)::text\) <= :(p\d+)/));
    const filterName = sql.match(/\(l\.diff -> CAST\(:(p\d+) AS text\)\) IS NOT NULL/)?.[1];
    const filter = filterName === undefined ? undefined : String(plain(params[filterName]));
    const entity = value(/WHERE c\.entity = :(p\d+) AND \(/);
    const wanted = new Set(
      [...sql.matchAll(/c\.key = :(p\d+) AND c\.version = CAST\(:(p\d+) AS integer\)/g)].map(
        (m) => `${plain(params[m[1] as string])}\u0000${Number(plain(params[m[2] as string]))}`,
      ),
    );
    const bounded = (source: Record<string, unknown>) =>
      Object.fromEntries(
        fields
          .filter((f) => source[f] !== undefined && source[f] !== null)
          .filter((f) => JSON.stringify(source[f]).length <= valueBytes)
          .map((f) => [f, source[f]]),
      );
    // A diff's pairs keep each side while it is short enough, else null (unknown).
    const side = (value: unknown) => (JSON.stringify(value ?? null).length <= valueBytes ? (value ?? null) : null);
    const pairs = (diff: Record<string, [unknown, unknown]>) =>
      Object.fromEntries(
        fields.filter((f) => diff[f] !== undefined).map((f) => [f, [side(diff[f]?.[0]), side(diff[f]?.[1])]]),
      );
    return this.log
      .map((c, seq) => ({ c, seq }))
      .filter(({ c }) => c.entity === entity && wanted.has(`${c.key}\u0000${c.version}`))
      .map(({ c, seq }) => {
        const current = this.table(table).get(c.key);
        const later = this.log
          .filter((l, i) => i > seq && l.entity === c.entity && l.key === c.key)
          .filter((l) => filter !== undefined && (l.op !== 'update' || l.diff[filter] !== undefined))
          .reverse()
          .slice(0, LATER_CHANGES_MAX + 1)
          .map((l) => [l.op, pairs(l.diff)]);
        return {
          key: c.key,
          version: c.version,
          op: c.op,
          changed_by: c.changed_by,
          changed_at: c.changed_at,
          diff: JSON.stringify(pairs(c.diff)),
          row_exists: current !== undefined,
          row: current !== undefined && JSON.stringify(current).length <= rowBytes ? JSON.stringify(current) : null,
          image: current === undefined ? null : JSON.stringify(bounded(current)),
          later: later.length === 0 ? null : JSON.stringify(later),
        };
      });
  }

  private versionOf(entity: unknown, key: unknown): number {
    return Math.max(0, ...this.log.filter((c) => c.entity === entity && c.key === String(key)).map((c) => c.version));
  }
}
