/**
 * A tenant's schema, learnt by introspection (pg_catalog, through the Data API port) and kept as a versioned
 * snapshot in the tenant catalog. SQL identifiers are only ever built from a snapshot: `quoteIdent` refuses a
 * name the snapshot does not have, and `assertField` rejects an unknown field before any SQL exists.
 *
 * Entities are the tables of schema `public` with a single-column primary key and a name that can name a group
 * (`entity:<name>`, its live feed). Tables whose name starts with `tenantcast_` belong to tenantcast (the change
 * log) and are never entities, nor are the partitions of a partitioned table: their rows are the parent's, and writes
 * through a partition would pass by the parent's versions, change log and feed (until 2026-12-04 they were entities).
 */
import { createHash } from 'node:crypto';
import type { DataApi, DatabaseRef } from './data-api.ts';
import { BadRequestError, NotFoundError } from './errors.ts';
import { GROUP_PATTERN } from './protocol.ts';
import * as z from './zod.ts';

export const RESERVED_TABLE_PREFIX = 'tenantcast_';
/** Why a table whose name cannot name its live feed is not an entity. */
export const UNFIT_NAME =
  'its name cannot name a live feed (entity:<name> is a group: letters, digits and _ . - only, at most 121 characters)';
export const CHANGE_LOG_TABLE = 'tenantcast_change_log';

/**
 * The change log every tenant database has: one row per committed change, written in the same transaction as
 * the change; the outbox relay publishes rows where `published = false` in `seq` order.
 */
export const changeLogDdl = `
CREATE TABLE IF NOT EXISTS ${CHANGE_LOG_TABLE} (
  seq bigserial PRIMARY KEY,
  entity text NOT NULL,
  key text NOT NULL,
  version int NOT NULL,
  op text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  changed_by text NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now(),
  diff jsonb NOT NULL DEFAULT '{}'::jsonb,
  published boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS ${CHANGE_LOG_TABLE}_unpublished ON ${CHANGE_LOG_TABLE} (seq) WHERE NOT published;
CREATE INDEX IF NOT EXISTS ${CHANGE_LOG_TABLE}_entity_key ON ${CHANGE_LOG_TABLE} (entity, key, seq);
`;

export const FieldSchema = z.object({
  /**
   * The type, normalised (`normalizeType`): text, int, bigint, numeric, double, boolean, uuid, date, time,
   * timestamp, timestamptz, json, jsonb, bytea, or `<element>[]` for arrays; other types keep their own name.
   */
  type: z.string(),
  /** PostgreSQL's spelling of the type (`format_type`): `numeric(12,2)`, `timestamp with time zone`, `text[]`. */
  pgType: z.string(),
  /** The base type's internal name: `uuid`, `numeric`, `_text`, `timestamptz`, `int8`. */
  udtName: z.string(),
  nullable: z.boolean(),
  hasDefault: z.boolean(),
  /** An enum type: its JSON value is its text (snapshots before 2026-12-04 do not say). */
  enum: z.optional(z.boolean()),
  /**
   * Single-column foreign key. `onDelete`, `onUpdate`: its actions other than `NO ACTION`/`RESTRICT`, which change
   * referencing rows without the change log (reported by `referenceLines`, lambdas/core/onboarding.ts); `more`: the column has other
   * foreign keys, which the entity API does not check (snapshots before 2026-12-05 say neither).
   */
  references: z.optional(
    z.object({
      entity: z.string(),
      field: z.string(),
      onDelete: z.optional(z.enum(['cascade', 'set null', 'set default'])),
      onUpdate: z.optional(z.enum(['cascade', 'set null', 'set default'])),
      more: z.optional(z.literal(true)),
    }),
  ),
});
export type FieldSchema = z.infer<typeof FieldSchema>;

export const EntitySchema = z.object({
  primaryKey: z.string(),
  fields: z.record(z.string(), FieldSchema),
});
export type EntitySchema = z.infer<typeof EntitySchema>;

export const SchemaSnapshot = z.object({
  /** 1 for the first snapshot, +1 each time a refresh finds a different schema. */
  version: z.number().check(z.int(), z.positive()),
  /** sha256 of the canonical JSON of `entities`. */
  hash: z.string(),
  introspectedAt: z.string(),
  entities: z.record(z.string(), EntitySchema),
  /** Tables that are not entities, and why (no single-column primary key, ...). */
  skipped: z._default(z.record(z.string(), z.string()), {}),
});
export type SchemaSnapshot = z.infer<typeof SchemaSnapshot>;

/**
 * The columns of the tables of schema `public`, a column of a domain type as the domain's base type (through domains
 * over domains): its values travel, compare and cast as the base type's (a domain over bigint comes back as a JSON
 * number), and PostgreSQL still checks the domain's constraints on every write. Until 2026-12-04 a domain was taken
 * for text, so a row filter on a domain over bigint compared rounded JSON numbers in the change log and the live feed,
 * and showed one team's rows to another (found by an attacking pass).
 */
const columnsSql = `
WITH RECURSIVE domains(id, base, typmod) AS (
  SELECT d.oid, d.typbasetype, d.typtypmod FROM pg_catalog.pg_type d WHERE d.typtype = 'd'
  UNION ALL
  SELECT s.id, b.typbasetype, CASE WHEN s.typmod = -1 THEN b.typtypmod ELSE s.typmod END
  FROM domains s JOIN pg_catalog.pg_type b ON b.oid = s.base AND b.typtype = 'd'
),
resolved AS (
  SELECT s.id, s.base, s.typmod FROM domains s JOIN pg_catalog.pg_type b ON b.oid = s.base AND b.typtype <> 'd'
)
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(COALESCE(r.base, a.atttypid), CASE WHEN r.id IS NULL THEN a.atttypmod ELSE r.typmod END) AS data_type,
       t.typname AS udt_name, t.typtype = 'e' AS is_enum, NOT a.attnotnull AS nullable,
       (a.atthasdef OR a.attidentity <> '') AS has_default
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN resolved r ON r.id = a.atttypid
JOIN pg_catalog.pg_type t ON t.oid = COALESCE(r.base, a.atttypid)
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum`;

const keysSql = `
SELECT c.relname AS table_name, con.contype AS kind, a.attname AS column_name, array_length(con.conkey, 1) AS columns,
       rc.relname AS ref_table, ra.attname AS ref_column, con.confdeltype AS on_delete, con.confupdtype AS on_update,
       rn.nspname AS ref_schema
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1]
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_catalog.pg_attribute ra ON ra.attrelid = rc.oid AND ra.attnum = con.confkey[1]
WHERE n.nspname = 'public' AND con.contype IN ('p', 'f')
ORDER BY c.relname, con.conname`;

/** `pg_constraint.confdeltype` and `confupdtype`: the foreign key actions that change referencing rows. */
const CHANGING_ACTIONS: Record<string, 'cascade' | 'set null' | 'set default' | undefined> = {
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

const typeAliases: Record<string, string> = {
  varchar: 'text',
  bpchar: 'text',
  citext: 'text',
  name: 'text',
  int2: 'int',
  int4: 'int',
  int8: 'bigint',
  float4: 'double',
  float8: 'double',
  bool: 'boolean',
  timetz: 'time',
};

/** A short, stable type name from PostgreSQL's internal one (`int4` → `int`, `_text` → `text[]`). */
export function normalizeType(udtName: string): string {
  if (udtName.startsWith('_')) return `${normalizeType(udtName.slice(1))}[]`;
  return typeAliases[udtName] ?? udtName;
}

export interface Introspected {
  readonly entities: Record<string, EntitySchema>;
  readonly skipped: Record<string, string>;
}

/** Reads the tables of schema `public` (two catalog queries). */
export async function introspect(dataApi: DataApi, db: DatabaseRef): Promise<Introspected> {
  const [columns, keys] = [await dataApi.execute(db, columnsSql), await dataApi.execute(db, keysSql)];
  const tables = new Map<string, Record<string, FieldSchema>>();
  for (const row of columns.rows) {
    const table = String(row.table_name);
    if (table.startsWith(RESERVED_TABLE_PREFIX)) continue;
    const fields = tables.get(table) ?? {};
    fields[String(row.column_name)] = {
      type: normalizeType(String(row.udt_name)),
      pgType: String(row.data_type),
      udtName: String(row.udt_name),
      nullable: row.nullable === true,
      hasDefault: row.has_default === true,
      ...(row.is_enum === true && { enum: true }),
    };
    tables.set(table, fields);
  }
  const primaryKeys = new Map<string, string | null>();
  for (const row of keys.rows) {
    const table = String(row.table_name);
    const fields = tables.get(table);
    if (fields === undefined) continue;
    const single = Number(row.columns) === 1;
    if (row.kind === 'p') primaryKeys.set(table, single ? String(row.column_name) : null);
    else if (
      single &&
      row.ref_table !== null &&
      // A table of another schema is no entity (its name could be a public table's: until a review it was taken
      // for it).
      row.ref_schema === 'public' &&
      !String(row.ref_table).startsWith(RESERVED_TABLE_PREFIX)
    ) {
      const field = fields[String(row.column_name)];
      const onDelete = CHANGING_ACTIONS[String(row.on_delete)];
      const onUpdate = CHANGING_ACTIONS[String(row.on_update)];
      if (field) {
        field.references =
          field.references === undefined
            ? {
                entity: String(row.ref_table),
                field: String(row.ref_column),
                ...(onDelete && { onDelete }),
                ...(onUpdate && { onUpdate }),
              }
            : { ...field.references, more: true };
      }
    }
  }
  const entities: Record<string, EntitySchema> = {};
  const skipped: Record<string, string> = {};
  for (const [table, fields] of [...tables].sort(([a], [b]) => a.localeCompare(b))) {
    const pk = primaryKeys.get(table);
    if (pk === undefined) skipped[table] = 'no primary key';
    else if (pk === null) skipped[table] = 'composite primary key';
    // Its live feed is the group `entity:<name>`, which must be a group name (until 2026-12-04 such a table was an
    // entity whose changes no one could subscribe to, each refused downstream; found by an attacking pass).
    else if (!GROUP_PATTERN.test(`entity:${table}`)) skipped[table] = UNFIT_NAME;
    else entities[table] = { primaryKey: pk, fields };
  }
  return { entities, skipped };
}

/** Canonical JSON (sorted keys), so equal schemas hash equally whatever the catalog's row order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function schemaHash(entities: Record<string, EntitySchema>): string {
  return createHash('sha256').update(canonical(entities)).digest('hex');
}

/** The next snapshot: same version when nothing changed, otherwise the previous version + 1. */
export function nextSnapshot(
  found: Introspected,
  previous: SchemaSnapshot | undefined,
  now = new Date(),
): SchemaSnapshot {
  const hash = schemaHash(found.entities);
  if (previous && previous.hash === hash) return previous;
  return {
    version: (previous?.version ?? 0) + 1,
    hash,
    introspectedAt: now.toISOString(),
    entities: found.entities,
    skipped: found.skipped,
  };
}

/** The entity, or NOT_FOUND. */
export function entityOf(snapshot: SchemaSnapshot, entity: string): EntitySchema {
  const found = Object.hasOwn(snapshot.entities, entity) ? snapshot.entities[entity] : undefined;
  if (found === undefined) throw new NotFoundError(`unknown entity '${entity}'`);
  return found;
}

/** The field's schema, or BAD_REQUEST "unknown field 'foo' on entity 'task'". */
export function assertField(snapshot: SchemaSnapshot, entity: string, field: string): FieldSchema {
  const fields = entityOf(snapshot, entity).fields;
  const found = Object.hasOwn(fields, field) ? fields[field] : undefined;
  if (found === undefined) throw new BadRequestError(`unknown field '${field}' on entity '${entity}'`);
  return found;
}

/**
 * A quoted SQL identifier for an entity (`quoteIdent(s, 'task')`) or one of its fields
 * (`quoteIdent(s, 'task', 'title')`). Only names the snapshot has are quoted; anything else is rejected.
 */
export function quoteIdent(snapshot: SchemaSnapshot, entity: string, field?: string): string {
  if (field === undefined) entityOf(snapshot, entity);
  else assertField(snapshot, entity, field);
  const name = field ?? entity;
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Splits an SQL script into statements at top-level semicolons, for APIs that take one statement per call: not inside
 * quotes (`'…'`, `"…"`, an escape string `E'…\'…'`), comments, dollar quotes (`$$…$$`, `$fn1$…$fn1$`) or an SQL-standard
 * function body (`BEGIN ATOMIC … END`, which holds statements of its own, and `CASE … END`s). Hand-written: psql's own
 * lexer does this, and no kept library splits PostgreSQL scripts; until 2026-12-04 the three last forms were cut
 * apart, and their `create` failed (found by an attacking pass).
 */
export function splitSqlStatements(script: string): string[] {
  const token =
    /'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/|(\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$)[\s\S]*?\1|[A-Za-z_][\w$]*|;|[\s\S]/y;
  const statements: string[] = [];
  let start = 0;
  /** Inside `BEGIN ATOMIC`: how many of it and of `CASE` are open (each closed by an `END`). */
  let depth = 0;
  let previousWord = '';
  token.lastIndex = 0;
  for (let match = token.exec(script); match !== null; match = token.exec(script)) {
    const text = match[0];
    const at = match.index;
    // An escape string: E (or e) right before a quote, not ending a longer word.
    if (/^[Ee]$/.test(text) && script[at + 1] === "'") {
      const escaped = /'(?:[^'\\]|\\[\s\S]|'')*'/y;
      escaped.lastIndex = at + 1;
      if (escaped.exec(script) !== null) token.lastIndex = escaped.lastIndex;
      previousWord = '';
      continue;
    }
    if (/^[A-Za-z_]/.test(text)) {
      const word = text.toUpperCase();
      if (depth === 0 && word === 'ATOMIC' && previousWord === 'BEGIN') depth = 1;
      else if (depth > 0 && (word === 'CASE' || (word === 'ATOMIC' && previousWord === 'BEGIN'))) depth++;
      else if (depth > 0 && word === 'END') depth--;
      previousWord = word;
      continue;
    }
    if (!/^\s/.test(text) && !text.startsWith('--') && !text.startsWith('/*')) previousWord = '';
    if (text === ';' && depth === 0) {
      statements.push(script.slice(start, at));
      start = at + 1;
    }
  }
  statements.push(script.slice(start));
  return statements
    .map((s) => s.trim())
    .filter(
      (s) =>
        s
          .replace(/--[^\n]*/g, '')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .trim() !== '',
    );
}
