/**
 * SQL for the entity API. Identifiers come only from the tenant's introspected schema snapshot (and the fixed
 * change-log names), always double-quoted; every value is a named Data API parameter with its column's type.
 * Rows are read back as `to_jsonb(t.*)::text`, so a row reaches the API exactly as PostgreSQL renders it in JSON,
 * whatever the Data API's own type mapping, but for numbers a JSON number cannot carry exactly (`rowJson`).
 */
import { type Params, placeholder, typed } from '../data-api.ts';
import { BadRequestError } from '../errors.ts';
import { aws } from '../limits.ts';
import { CHANGE_LOG_TABLE } from '../schema.ts';
import type { RowRestriction } from './access.ts';
import { type EntitySpec, type FieldType, fieldNames } from './model.ts';

/** The change log (the outbox): one row per committed change, in the tenant's database (lambdas/core/schema.ts). */
export const changeLog = { table: CHANGE_LOG_TABLE } as const;

/** PostgreSQL type of each field type (for casts and Data API type hints). */
export const pgTypeOf: Readonly<Record<FieldType, string>> = {
  text: 'text',
  int: 'integer',
  numeric: 'numeric',
  uuid: 'uuid',
  date: 'date',
  timestamptz: 'timestamptz',
  boolean: 'boolean',
  'text[]': 'text[]',
  jsonb: 'jsonb',
};

/** `"name"`, with embedded quotes doubled. Callers pass only snapshot names; this keeps even those inert. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.length > 63 || name.includes('\u0000')) {
    throw new BadRequestError(`invalid identifier '${name.slice(0, 64)}'`);
  }
  return `"${name.replaceAll('"', '""')}"`;
}

export interface Statement {
  readonly sql: string;
  readonly params: Params;
}

/** Collects parameters with generated names (`p0`, `p1`, ...) and returns their SQL placeholders. */
export class ParamBuilder {
  readonly params: Record<string, Params[string]> = {};
  private next = 0;

  /** A value of an entity field, typed by the field. */
  field(entity: EntitySpec, name: string, value: unknown): string {
    const spec = entity.fields[name];
    if (spec === undefined) throw new BadRequestError(`unknown field '${name}'`);
    return this.typedValue(value, spec.pgType ?? pgTypeOf[spec.type]);
  }

  /** A value with a PostgreSQL type. The cast makes untyped text parameters (`varchar`) compare with the column. */
  typedValue(value: unknown, pgType: string): string {
    const name = `p${this.next++}`;
    // A timestamp goes as text for the cast below to read: the Data API's TIMESTAMP hint takes milliseconds at most
    // (`YYYY-MM-DD HH:MM:SS[.FFF]`, in UTC), so it cut microseconds and shifted a `timestamp`'s local time by its
    // offset (until 2026-12-04; found by an attacking pass). PostgreSQL's own parse keeps both.
    this.params[name] = /^timestamp/.test(pgType) && typeof value === 'string' ? value : typed(value, pgType);
    const expr = placeholder(name, pgType);
    return pgType.endsWith('[]') ? expr : `CAST(${expr} AS ${pgType})`;
  }

  /** A plain value (text, number, boolean). */
  value(value: string | number | boolean | null): string {
    const name = `p${this.next++}`;
    this.params[name] = value;
    return `:${name}`;
  }
}

/**
 * The most of a row's JSON text the API reads or writes: the Data API returns at most 64 KB per result row
 * (lambdas/core/limits.ts, `dataApiRowBytes`; "Packet for query is too large" above it), and beside the row a result
 * holds its version, or for a row too big to read its size and key. Until 2026-12-04 the API took rows of up to its
 * 256 KB body, which AWS then could not return: a create or update of such a row failed (and rolled back) with a 500,
 * and one written by other means could not be read, nor a list paged past it.
 */
export const ROW_JSON_BYTES = aws.dataApiRowBytes - 1024;

/** The row `t` as JSON text, `r.j`, computed once per row (a lateral subquery after the table). */
const rowText = (entity: EntitySpec) => `CROSS JOIN LATERAL (SELECT ${rowJson(entity)}::text AS j) r`;

/**
 * The row as JSON text (null when over ROW_JSON_BYTES: then `row_bytes` and `row_key`, the key as JSON, say which and
 * how big), and its version: the highest version the change log has for its key (0 for a row never written through
 * the API). Versions live in the change log only, so entity tables need no extra column. Needs `rowText`.
 */
function rowColumns(entityName: string, entity: EntitySpec, p: ParamBuilder): string {
  const max = p.value(ROW_JSON_BYTES);
  return (
    `CASE WHEN octet_length(r.j) <= ${max} THEN r.j END AS "row",` +
    ` CASE WHEN octet_length(r.j) > ${max} THEN octet_length(r.j) END AS "row_bytes",` +
    ` CASE WHEN octet_length(r.j) > ${max} THEN (r.j::jsonb -> ${p.value(entity.primaryKey)})::text END AS "row_key",` +
    ` (SELECT COALESCE(MAX(c.version), 0) FROM ${quoteIdent(changeLog.table)} c` +
    ` WHERE c.entity = ${p.value(entityName)} AND c.key = t.${quoteIdent(entity.primaryKey)}::text)::int AS "version"`
  );
}
/** The written row as JSON text, null when over ROW_JSON_BYTES (`row_bytes` says how big: the write is refused). */
const returning = (entity: EntitySpec, p: ParamBuilder) => {
  const max = p.value(ROW_JSON_BYTES);
  const text = `${rowJson(entity)}::text`;
  return `RETURNING CASE WHEN octet_length(${text}) <= ${max} THEN ${text} END AS "row", octet_length(${text}) AS "row_bytes"`;
};

/**
 * The row `t` as `jsonb`, as PostgreSQL renders it, but for a numeric or bigint a JSON number cannot carry exactly
 * (past 2^53, more digits than a double holds, beyond a double's range either way), which comes as a string:
 * JSON.parse would round it (until 2026-12-03 12345678901234567891 was read back as 12345678901234567000). Floating
 * point columns need none: a double's JSON is exact. The overrides take their keys from the column aliases
 * (identifiers from the schema), so no value enters the SQL text. Whole rows are `t.*`: a bare `t` would be a column
 * of that name, if the table has one.
 */
function rowJson(entity: EntitySpec): string {
  const wide = fieldNames(entity).filter((name) => {
    const field = entity.fields[name];
    const floating = field?.pgType === 'real' || field?.pgType === 'double precision';
    return (field?.type === 'numeric' && !floating) || field?.pgType === 'bigint';
  });
  // The same for each element of a one-dimensional bigint or numeric array (until 2026-12-04 arrays of them were not
  // writable; read, their elements past 2^53 came rounded).
  const wideArrays = fieldNames(entity).filter((name) =>
    /^(bigint|numeric)\[\]$/.test(entity.fields[name]?.pgType ?? ''),
  );
  if (wide.length === 0 && wideArrays.length === 0) return 'to_jsonb(t.*)';
  const exactJson = (c: string) => {
    // As numeric: abs() of the smallest bigint overflows. The cast to float8 fails past a double's range (overflow or
    // underflow): only values well within it try it.
    const n = `${c}::numeric`;
    const exact = `${c} IS NULL OR ${n} = 0 OR (abs(${n}) < 1e300 AND abs(${n}) > 1e-300 AND ${n}::float8::text::numeric = ${n})`;
    return `CASE WHEN ${exact} THEN to_jsonb(${c}) ELSE to_jsonb(${c}::text) END`;
  };
  const columns = [
    ...wide.map((name) => `${exactJson(`t.${quoteIdent(name)}`)} AS ${quoteIdent(name)}`),
    ...wideArrays.map((name) => {
      const c = `t.${quoteIdent(name)}`;
      const elements = `(SELECT COALESCE(jsonb_agg(${exactJson('u.e')} ORDER BY u.o), '[]'::jsonb) FROM unnest(${c}) WITH ORDINALITY AS u(e, o))`;
      return `CASE WHEN ${c} IS NULL OR array_ndims(${c}) > 1 THEN to_jsonb(${c}) ELSE ${elements} END AS ${quoteIdent(name)}`;
    }),
  ];
  return `(to_jsonb(t.*) || (SELECT to_jsonb(x.*) FROM (SELECT ${columns.join(', ')}) x))`;
}

/** `WHERE` terms restricting rows to the caller's row filter (compared as text). No permitted value: no row. */
function restrictionTerm(restriction: RowRestriction | undefined, p: ParamBuilder, alias = 't'): string[] {
  if (restriction === undefined) return [];
  if (restriction.anyOf.length === 0) return ['FALSE'];
  const values = restriction.anyOf.map((v) => p.value(v));
  return [`${alias}.${quoteIdent(restriction.column)}::text IN (${values.join(', ')})`];
}

export interface ListStatementInput {
  readonly table: string;
  readonly entity: EntitySpec;
  readonly filters: Readonly<Record<string, unknown>>;
  /** Primary key value after which the page starts (keyset pagination). */
  readonly after?: unknown;
  readonly restriction?: RowRestriction;
}

/**
 * One page ordered by primary key, of `:limit` rows: the caller runs it with `DataApi.executePaged`, which asks for
 * fewer when the rows pass the Data API's 1 MiB result, and asks for one row more than it shows, to know whether
 * another page follows.
 */
export function listStatement(input: ListStatementInput): Statement {
  const p = new ParamBuilder();
  const pk = quoteIdent(input.entity.primaryKey);
  const where: string[] = [];
  for (const [name, value] of Object.entries(input.filters)) {
    where.push(
      value === null
        ? `t.${quoteIdent(name)} IS NULL`
        : `t.${quoteIdent(name)} = ${p.field(input.entity, name, value)}`,
    );
  }
  if (input.after !== undefined) where.push(`t.${pk} > ${p.field(input.entity, input.entity.primaryKey, input.after)}`);
  where.push(...restrictionTerm(input.restriction, p));
  const sql =
    `SELECT ${rowColumns(input.table, input.entity, p)} FROM ${quoteIdent(input.table)} t ${rowText(input.entity)}` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY t.${pk} LIMIT :limit`;
  return { sql, params: p.params };
}

/** The row with this primary key (within the restriction), optionally locked for a write. */
export function getStatement(
  table: string,
  entity: EntitySpec,
  id: unknown,
  restriction: RowRestriction | undefined,
  forUpdate = false,
): Statement {
  const p = new ParamBuilder();
  const columns = rowColumns(table, entity, p);
  const where = [`t.${quoteIdent(entity.primaryKey)} = ${p.field(entity, entity.primaryKey, id)}`];
  where.push(...restrictionTerm(restriction, p));
  const sql = `SELECT ${columns} FROM ${quoteIdent(table)} t ${rowText(entity)} WHERE ${where.join(' AND ')}${forUpdate ? ' FOR UPDATE OF t' : ''}`;
  return { sql, params: p.params };
}

/**
 * What a write's `RETURNING` also judges, on the row as written, in the write's own statement (service.ts): whether
 * it is within the writer's row filter (`"within"`), and whether each of its references names a row the writer may
 * read (`"references"`). On the row as stored, not the values sent (a `varchar(n)` or `char(n)` drops trailing spaces,
 * a `name` cuts at 63 bytes; a generated column, a default or a trigger fills a column the body does not name), and in
 * one statement, so a write refused for a hidden row takes the time one refused by the database's own foreign key check
 * takes (until a review each check was a statement of its own: three round trips told a hidden row from a missing
 * one, and a `char(n)` key, read back padded, was not found again).
 */
export interface WriteChecks {
  readonly within?: RowRestriction;
  readonly references?: readonly WrittenReference[];
  /** An update: a reference it leaves as it was (as stored, compared in SQL) is not judged. */
  readonly update?: boolean;
}

/**
 * A reference of the written row: `column` names a row of `table` by its `field`, which must be within `restriction`,
 * unless `column` is null; none is readable (`readable` false: no rule lets the writer read the target).
 */
export interface WrittenReference {
  readonly column: string;
  readonly table: string;
  readonly field: string;
  readonly restriction: RowRestriction | undefined;
  readonly readable: boolean;
}

/** The `RETURNING` columns of `checks` (none without checks) for a write to `table`, keyed by `primaryKey`. */
function checkColumns(table: string, primaryKey: string, checks: WriteChecks | undefined, p: ParamBuilder): string {
  if (checks === undefined) return '';
  const columns: string[] = [];
  if (checks.within !== undefined) {
    columns.push(`COALESCE((${restrictionTerm(checks.within, p).join(' AND ')}), FALSE) AS "within"`);
  }
  if (checks.references !== undefined && checks.references.length > 0) {
    const each = checks.references.map((ref) => {
      const column = `t.${quoteIdent(ref.column)}`;
      const holds = [`${column} IS NULL`];
      if (checks.update === true) {
        // The statement's subqueries see the table as it was before it: the row's own value before the update.
        const key = quoteIdent(primaryKey);
        holds.push(
          `${column} IS NOT DISTINCT FROM (SELECT o.${quoteIdent(ref.column)} FROM ${quoteIdent(table)} o WHERE o.${key} = t.${key})`,
        );
      }
      if (ref.readable) {
        const matches = (alias: string) =>
          [`${alias}.${quoteIdent(ref.field)} = ${column}`, ...restrictionTerm(ref.restriction, p, alias)].join(
            ' AND ',
          );
        holds.push(`EXISTS (SELECT 1 FROM ${quoteIdent(ref.table)} r WHERE ${matches('r')})`);
        // Nor do they see the row written: a row referencing itself is judged on itself.
        if (ref.table === table) holds.push(`(${matches('t')})`);
      }
      return `(${holds.join(' OR ')})`;
    });
    columns.push(`COALESCE((${each.join(' AND ')}), FALSE) AS "references"`);
  }
  return columns.map((c) => `, ${c}`).join('');
}

export function insertStatement(
  table: string,
  entity: EntitySpec,
  values: Readonly<Record<string, unknown>>,
  checks?: WriteChecks,
): Statement {
  const p = new ParamBuilder();
  const names = Object.keys(values);
  const columns = names.map(quoteIdent).join(', ');
  const exprs = names.map((n) => p.field(entity, n, values[n])).join(', ');
  const returned = `${returning(entity, p)}${checkColumns(table, entity.primaryKey, checks, p)}`;
  const sql =
    names.length === 0
      ? `INSERT INTO ${quoteIdent(table)} AS t DEFAULT VALUES ${returned}`
      : `INSERT INTO ${quoteIdent(table)} AS t (${columns}) VALUES (${exprs}) ${returned}`;
  return { sql, params: p.params };
}

/** Sets the fields of the row with this primary key. */
export function updateStatement(
  table: string,
  entity: EntitySpec,
  id: unknown,
  values: Readonly<Record<string, unknown>>,
  checks?: WriteChecks,
): Statement {
  const p = new ParamBuilder();
  const sets = Object.keys(values).map((n) => `${quoteIdent(n)} = ${p.field(entity, n, values[n])}`);
  const key = `t.${quoteIdent(entity.primaryKey)} = ${p.field(entity, entity.primaryKey, id)}`;
  const sql =
    `UPDATE ${quoteIdent(table)} AS t SET ${sets.join(', ')}` +
    ` WHERE ${key} ${returning(entity, p)}${checkColumns(table, entity.primaryKey, checks, p)}`;
  return { sql, params: p.params };
}

export function deleteStatement(table: string, entity: EntitySpec, id: unknown): Statement {
  const p = new ParamBuilder();
  const sql = `DELETE FROM ${quoteIdent(table)} AS t WHERE t.${quoteIdent(entity.primaryKey)} = ${p.field(entity, entity.primaryKey, id)}`;
  return { sql, params: p.params };
}

export type ChangeOp = 'insert' | 'update' | 'delete';

/**
 * The change log's key of a primary key value: the key column's own text (`pk::text`), which the value cast to the
 * key's full type gives (`1.5` as `numeric(10,2)` is `1.50`, a `char(8)` loses its padding, a uuid is lower case, a
 * timestamptz is PostgreSQL's spelling). Every write and lookup of the change log by key goes through it, so a row's
 * versions stay one history whatever spelling a request or a row's JSON used (until 2026-12-04 the log was keyed by
 * the JSON value's text: such keys lost their versions, `If-Match`, their change log and their feed; found by an
 * attacking pass).
 */
function keyText(entity: EntitySpec, p: ParamBuilder, id: unknown): string {
  const value = p.field(entity, entity.primaryKey, id);
  const field = entity.fields[entity.primaryKey];
  const keyType = field?.keyType;
  if (keyType === undefined) return `(${value})::text`;
  // A value the key's type would cut or round (`abcdefghX` as `char(8)`, `1.505` as `numeric(10,2)`) is no key of it:
  // NULL, which matches no change, rather than another key's history. Compared as the type without its length or
  // scale (a `char(n)` as `bpchar`, so padding does not count).
  const base = field?.padded === true ? 'bpchar' : (field?.pgType ?? 'text');
  const exact = `CAST(${value} AS ${keyType})`;
  return `(CASE WHEN CAST(${exact} AS ${base}) = CAST(${value} AS ${base}) THEN ${exact}::text END)`;
}

export interface ChangeRecord {
  readonly entity: string;
  /** The row's primary key value (its JSON value); the log keys it by `keyText`. */
  readonly id: unknown;
  readonly version: number;
  readonly op: ChangeOp;
  readonly changedBy: string;
  readonly diff: Readonly<Record<string, readonly [unknown, unknown]>>;
}

/** Writes one change to the log, returning the key it was logged under (`keyText`). */
export function insertChangeStatement(spec: EntitySpec, change: ChangeRecord): Statement {
  const p = new ParamBuilder();
  const sql =
    `INSERT INTO ${quoteIdent(changeLog.table)} (entity, key, version, op, changed_by, diff)` +
    ` VALUES (${p.value(change.entity)}, ${keyText(spec, p, change.id)}, ${p.typedValue(change.version, 'integer')},` +
    ` ${p.value(change.op)}, ${p.value(change.changedBy)}, ${p.typedValue(change.diff, 'jsonb')}) RETURNING key`;
  return { sql, params: p.params };
}

/** The highest version the change log has for a key (0 if none): a re-created key continues from it. */
export function lastVersionStatement(entityName: string, entity: EntitySpec, id: unknown): Statement {
  const p = new ParamBuilder();
  const sql = `SELECT COALESCE(MAX(version), 0)::int AS version FROM ${quoteIdent(changeLog.table)} WHERE entity = ${p.value(entityName)} AND key = ${keyText(entity, p, id)}`;
  return { sql, params: p.params };
}

/**
 * `jsonb` of the `fields` of the row JSON `source` (an expression), each only while its value's text is at most
 * `valueBytes` (a parameter): a longer one is left out (unknown), as is a field `source` lacks.
 */
function boundedFields(p: ParamBuilder, source: string, fields: readonly string[], valueBytes: string): string {
  // Field names are parameters too: values always are.
  const pairs = fields.map((field) => {
    const name = `CAST(${p.value(field)} AS text)`;
    return `${name}, CASE WHEN octet_length((${source} -> ${name})::text) <= ${valueBytes} THEN ${source} -> ${name} END`;
  });
  return `jsonb_strip_nulls(jsonb_build_object(${pairs.join(', ')}))`;
}

/**
 * `jsonb` of the `fields` of the change-log diff `source`, each an `[old, new]` pair whose values are kept while
 * their text is at most `valueBytes`, else given as null (unknown: it matches no claim). A field the diff lacks stays
 * out, so undoing the change leaves it as it was. (A pair left out whole, as until 2026-12-03, undid a change of a
 * long value as no change at all, and judged earlier versions by the later owner.)
 */
function boundedPairs(p: ParamBuilder, source: string, fields: readonly string[], valueBytes: string): string {
  const pairs = fields.map((field) => {
    const name = `CAST(${p.value(field)} AS text)`;
    const side = (i: number) =>
      `CASE WHEN octet_length((${source} -> ${name} -> ${i})::text) <= ${valueBytes} THEN ${source} -> ${name} -> ${i} ELSE 'null'::jsonb END`;
    return `${name}, CASE WHEN (${source} -> ${name}) IS NULL THEN NULL ELSE jsonb_build_array(${side(0)}, ${side(1)}) END`;
  });
  return `jsonb_strip_nulls(jsonb_build_object(${pairs.join(', ')}))`;
}

/**
 * Most later changes that can move a row between audiences one version is judged through (`laterChanges`); past it
 * the version's audience is unknown, and only bypass roles see it.
 */
export const LATER_CHANGES_MAX = 50;

/**
 * The most `later` may hold (its entries' JSON text together): with the row, diff and image a feed or change-log row
 * holds beside it, under the Data API's 64 KB per row (ROW_JSON_BYTES). Long row-filter values fill it in a few
 * changes; past it, as past LATER_CHANGES_MAX, the versions before are unknown.
 */
export const LATER_BYTES = 12 * 1024;

/**
 * `jsonb` text: the key's changes after `seq` (an expression) that can move its row between audiences (a delete, an
 * insert, an update of `filterColumn`), newest first, as `[op, pairs]`, at most `LATER_CHANGES_MAX + 1` of them (one
 * more than is used tells that the list is cut), or `false` when they pass LATER_BYTES (`parseLater` reads both as
 * unknown). `entity` and `key` are expressions too.
 */
function laterChanges(
  p: ParamBuilder,
  entity: string,
  key: string,
  seq: string,
  filterColumn: string,
  valueBytes: string,
): string {
  const column = `CAST(${p.value(filterColumn)} AS text)`;
  return (
    `(SELECT CASE WHEN sum(octet_length(x.e::text)) > ${p.value(LATER_BYTES)} THEN 'false'::jsonb` +
    ` ELSE jsonb_agg(x.e ORDER BY x.seq DESC) END` +
    ` FROM (SELECT l.seq, jsonb_build_array(l.op, ${boundedPairs(p, 'l.diff', [filterColumn], valueBytes)}) AS e` +
    ` FROM (SELECT * FROM ${quoteIdent(changeLog.table)} l WHERE l.entity = ${entity} AND l.key = ${key} AND l.seq > ${seq}` +
    ` AND (l.op <> 'update' OR (l.diff -> ${column}) IS NOT NULL) ORDER BY l.seq DESC LIMIT ${LATER_CHANGES_MAX + 1}) l) x)::text`
  );
}

/**
 * `later` as `laterChanges` gives it: the changes, newest first ([] for none), or undefined when they are too many
 * (LATER_CHANGES_MAX) or too big (LATER_BYTES) to judge earlier versions by.
 */
export function parseLater(text: unknown): [ChangeOp, Record<string, [unknown, unknown]>][] | undefined {
  if (typeof text !== 'string') return [];
  const later: unknown = JSON.parse(text);
  return Array.isArray(later) && later.length <= LATER_CHANGES_MAX
    ? (later as [ChangeOp, Record<string, [unknown, unknown]>][])
    : undefined;
}

/** The most of an entry's `omitted` field names (their JSON text) a page gives. */
export const OMITTED_BYTES = 8 * 1024;

/** What one page of a key's change log reads: bounded, so any one entry fits the Data API's 1 MiB result. */
export interface ChangesBounds {
  /** An entry's diff is read whole when its text is at most this long… */
  readonly diffBytes: number;
  /**
   * …else only its fields whose [old, new] text is at most this long, in name order while they add up to at most
   * `diffBytes` (`omitted` names the others).
   */
  readonly valueBytes: number;
  /**
   * A row filter: `image_diff` holds each entry's pair of its column, and the page's first row the row's column now
   * (`current`) and the changes after the page (`later`), each value bounded by `imageBytes`, to judge each version by.
   */
  readonly filter?: {
    readonly table: string;
    readonly entity: EntitySpec;
    readonly id: unknown;
    readonly column: string;
  };
  readonly imageBytes: number;
}

/**
 * A page of a key's change log, versions after `afterVersion` in order, `:limit` of them (run with
 * `DataApi.executePaged`), in one statement, so the page and what judges it are one snapshot. Until 2026-12-03 the
 * log was read whole, diffs and all: after one update of a 200 KB value the answer passed the Data API's 1 MiB
 * result, and the key's log answered 413 for good.
 */
export function changesStatement(
  entity: string,
  spec: EntitySpec,
  id: unknown,
  afterVersion: number,
  bounds: ChangesBounds,
): Statement {
  const p = new ParamBuilder();
  const whole = p.value(bounds.diffBytes);
  const field = p.value(bounds.valueBytes);
  const entityValue = p.value(entity);
  const keyValue = keyText(spec, p, id);
  const filter = bounds.filter;
  const imageBytes = p.value(bounds.imageBytes);
  // A diff over `whole` keeps its fields of at most `field`, in name order while they add up to at most `whole`.
  // An entry's text counts its name too, as JSON writes it (escapes, quotes) with its separators: until review only
  // values were counted, and a table of ~850 columns with 63-character names made an entry over the Data API's 64 KB
  // per row.
  const kept =
    `(SELECT s.k FROM (SELECT d.k, sum(octet_length(to_jsonb(d.k)::text) + octet_length(d.v::text) + 4) OVER (ORDER BY d.k) AS run` +
    ` FROM jsonb_each(c.diff) AS d(k, v) WHERE octet_length(d.v::text) <= ${field}) s WHERE s.run <= ${whole})`;
  // The names left out, in name order while they add up to OMITTED_BYTES: a wider table names no more.
  const omittedNames =
    `(SELECT s.k FROM (SELECT d.k, sum(octet_length(to_jsonb(d.k)::text) + 2) OVER (ORDER BY d.k) AS run` +
    ` FROM jsonb_each(c.diff) AS d(k, v) WHERE d.k NOT IN ${kept}) s WHERE s.run <= ${p.value(OMITTED_BYTES)})`;
  const page =
    `SELECT c.seq, c.version, c.op, c.changed_by,` +
    ` to_char(c.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS changed_at,` +
    ` CASE WHEN octet_length(c.diff::text) <= ${whole} THEN c.diff::text` +
    ` ELSE (SELECT COALESCE(jsonb_object_agg(d.k, d.v), '{}'::jsonb) FROM jsonb_each(c.diff) AS d(k, v) WHERE d.k IN ${kept})::text END AS diff,` +
    ` CASE WHEN octet_length(c.diff::text) <= ${whole} THEN NULL` +
    ` ELSE (SELECT jsonb_agg(d.k ORDER BY d.k) FROM jsonb_each(c.diff) AS d(k, v) WHERE d.k IN ${omittedNames})::text END AS omitted,` +
    ` ${filter === undefined ? 'NULL' : `${boundedPairs(p, 'c.diff', [filter.column], imageBytes)}::text`} AS image_diff` +
    ` FROM ${quoteIdent(changeLog.table)} c WHERE c.entity = ${entityValue} AND c.key = ${keyValue}` +
    ` AND c.version > ${p.typedValue(afterVersion, 'integer')} ORDER BY c.seq LIMIT :limit`;
  // No CTE: its name would hide a tenant's table of that name. The page's first and last seq come from windows.
  const framed = `SELECT g.*, min(g.seq) OVER () AS first_seq, max(g.seq) OVER () AS last_seq FROM (${page}) g`;
  const judging =
    filter === undefined
      ? 'NULL AS later, NULL AS current'
      : `CASE WHEN q.seq = q.first_seq THEN ${laterChanges(p, entityValue, keyValue, 'q.last_seq', filter.column, imageBytes)} END AS later,` +
        ` CASE WHEN q.seq = q.first_seq THEN (SELECT ${boundedFields(p, rowJson(filter.entity), [filter.column], imageBytes)}::text` +
        ` FROM ${quoteIdent(filter.table)} t WHERE t.${quoteIdent(filter.entity.primaryKey)} = ${p.field(filter.entity, filter.entity.primaryKey, filter.id)}) END AS current`;
  const sql = `SELECT q.*, ${judging} FROM (${framed}) q ORDER BY q.seq`;
  return { sql, params: p.params };
}

export function markPublishedStatement(
  changes: readonly { entity: string; key: string; version: number }[],
): Statement {
  const p = new ParamBuilder();
  const terms = changes.map(
    (c) =>
      `(entity = ${p.value(c.entity)} AND key = ${p.value(c.key)} AND version = ${p.typedValue(c.version, 'integer')})`,
  );
  const sql = `UPDATE ${quoteIdent(changeLog.table)} SET published = true WHERE NOT published AND (${terms.join(' OR ')})`;
  return { sql, params: p.params };
}

/** Committed changes not yet published, older than `graceSeconds` (so in-flight writers publish their own). */
export function unpublishedStatement(graceSeconds: number, limit: number): Statement {
  const p = new ParamBuilder();
  const sql =
    `SELECT entity, key, version FROM ${quoteIdent(changeLog.table)}` +
    ` WHERE NOT published AND changed_at <= now() - make_interval(secs => ${p.typedValue(graceSeconds, 'integer')})` +
    ` ORDER BY seq LIMIT ${p.value(limit)}`;
  return { sql, params: p.params };
}

/** What the feed reads of a change: bounded, so a batch of changes always fits the Data API's 1 MiB result. */
export interface FeedBounds {
  /** The row is read whole only when its JSON text is at most this long; else `row` is null (`row_exists` stays). */
  readonly rowBytes: number;
  /** Fields the feed needs whatever the row's size (the primary key, the row filter's column): in `image`. */
  readonly imageFields: readonly string[];
  /** A value of an image field, or of a diff, longer than this is left out (taken as unknown). */
  readonly valueBytes: number;
  /**
   * The row filter's column: `later` lists, newest first, the key's later changes that can move the row between
   * audiences (a delete, an insert, an update of this column), so the feed judges each version by the row as it was
   * then. @default none: no row filter, `later` is null
   */
  readonly filterColumn?: string;
}

/**
 * For the live feed: the change-log entries of these (key, version) pairs of one entity, each with the current row
 * (null once deleted). One query per entity per batch. Nothing unbounded is read: the row only up to
 * `bounds.rowBytes`, beside it the `image` fields of the row, and of the diffs only those fields, each value up to
 * `bounds.valueBytes`. Until 2026-12-03 it read whole rows and diffs: one update of a 200 KB value passed the 1 MiB
 * result, and the change, with every other change of its batch, failed on every retry.
 */
export function feedStatement(
  table: string,
  entityName: string,
  entity: EntitySpec,
  changes: readonly { key: string; version: number }[],
  bounds: FeedBounds,
): Statement {
  const p = new ParamBuilder();
  const pk = `t.${quoteIdent(entity.primaryKey)}`;
  const valueBytes = p.value(bounds.valueBytes);
  const row = rowJson(entity);
  const later =
    bounds.filterColumn === undefined
      ? 'NULL'
      : laterChanges(p, 'c.entity', 'c.key', 'c.seq', bounds.filterColumn, valueBytes);
  const rowBytes = p.value(bounds.rowBytes);
  const pairs = changes.map((c) => `(c.key = ${p.value(c.key)} AND c.version = ${p.typedValue(c.version, 'integer')})`);
  const sql =
    `SELECT c.key, c.version, c.op, c.changed_by,` +
    ` to_char(c.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS changed_at,` +
    ` ${boundedPairs(p, 'c.diff', bounds.imageFields, valueBytes)}::text AS diff,` +
    ` ${pk} IS NOT NULL AS row_exists,` +
    ` CASE WHEN ${pk} IS NOT NULL AND octet_length(${row}::text) <= ${rowBytes} THEN ${row}::text END AS "row",` +
    ` CASE WHEN ${pk} IS NULL THEN NULL ELSE ${boundedFields(p, row, bounds.imageFields, valueBytes)}::text END AS image,` +
    ` ${later} AS later` +
    ` FROM ${quoteIdent(changeLog.table)} c LEFT JOIN ${quoteIdent(table)} t ON ${pk}::text = c.key` +
    ` WHERE c.entity = ${p.value(entityName)} AND (${pairs.join(' OR ')}) ORDER BY c.seq`;
  return { sql, params: p.params };
}
