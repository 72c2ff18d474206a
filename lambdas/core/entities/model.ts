/**
 * The shapes the entity API works with: a tenant's schema snapshot (what `GET /v1/schema` returns) and its entity
 * access rules. Both come from the tenant catalog (lambdas/core/tenants.ts); these are the structural views the
 * entity core needs, so it does not depend on how the catalog stores them.
 */
import * as z from '../zod.ts';

/** Column types an entity field can have (introspected from PostgreSQL). */
export const fieldTypes = [
  'text',
  'int',
  'numeric',
  'uuid',
  'date',
  'timestamptz',
  'boolean',
  'text[]',
  'jsonb',
] as const;
export type FieldType = (typeof fieldTypes)[number];

export interface FieldSpec {
  readonly type: FieldType;
  readonly nullable: boolean;
  /** The column has a default (or is generated): a create may omit it. */
  readonly hasDefault?: boolean;
  /** PostgreSQL's own spelling of the column type (`numeric(12,2)`, `bigint`), for casts. @default from `type` */
  readonly pgType?: string;
  /** A blank-padded `char(n)` column: its SQL text drops the padding its JSON value keeps. @default false */
  readonly padded?: boolean;
  /**
   * PostgreSQL's full spelling of the type, length and scale included (`numeric(10,2)`, `character(8)`): a primary key
   * value cast to it gives the key's own text (`pk::text`), which keys the change log (sql.ts, `keyText`).
   * @default `pgType`
   */
  readonly keyType?: string;
  /**
   * A type taken for text without being known as text (not text, varchar, char, citext, name or an enum): a domain in
   * a snapshot introspected before domains were resolved to their base type. A row filter on it applies to no row
   * until the tenant's schema is refreshed. @default false
   */
  readonly opaque?: boolean;
  /**
   * A single-column foreign key: the entity and field it references. A write that sets it must be able to read the
   * row it names (service.ts, `assertReferencesReadable`).
   */
  readonly references?: { readonly entity: string; readonly field: string };
}

export interface EntitySpec {
  readonly primaryKey: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

export interface SchemaSnapshot {
  readonly entities: Readonly<Record<string, EntitySpec>>;
}

/** `GET /v1/schema`: each entity the caller may read or write, with what the caller's roles allow on it. */
export interface CallerSchema {
  readonly entities: Readonly<Record<string, EntitySpec & { readonly canRead: boolean; readonly canWrite: boolean }>>;
}

/** Row filter: a row is visible when its `column` equals the caller's claim, or is one of the claim's values. */
export const RowFilter = z.union([
  z.strictObject({ column: z.string().check(z.minLength(1)), equalsClaim: z.string().check(z.minLength(1)) }),
  z.strictObject({ column: z.string().check(z.minLength(1)), inClaim: z.string().check(z.minLength(1)) }),
]);
export type RowFilter = z.infer<typeof RowFilter>;

/** Access rules of one entity of one tenant. */
export const EntityRule = z.strictObject({
  readRoles: z._default(z.array(z.string()), []),
  writeRoles: z._default(z.array(z.string()), []),
  rowFilter: z.optional(RowFilter),
  /** Roles that see and write every row whatever the row filter says. */
  bypassRoles: z._default(z.array(z.string()), []),
});
export type EntityRule = z.infer<typeof EntityRule>;

export const EntityRules = z.record(z.string(), EntityRule);
export type EntityRules = z.infer<typeof EntityRules>;

/** Who is asking: from the verified token only. `claims` are the token's claims (for row filters). */
export interface EntityCaller {
  readonly tenantId: string;
  readonly userId: string;
  readonly roles: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The row's version in API answers. Versions live in the change log, not in the entity table (docs/entities.md). */
export const VERSION_COLUMN = '_version';

/** Names of the entity's columns the API may read or write, `_version` excluded. */
export function fieldNames(entity: EntitySpec): string[] {
  return Object.keys(entity.fields).filter((name) => name !== VERSION_COLUMN);
}

/**
 * The API's field type for an introspected column (its `udtName`); unknown types are handled as text. Every array is
 * `text[]`: a JSON array whose elements PostgreSQL casts to the column's element type (`int[]` takes `[1, 2]`; until
 * 2026-12-04 only `text[]` and `varchar[]` were arrays, and writing or filtering any other failed with a 500).
 */
export function fieldTypeOf(udtName: string): FieldType {
  if (udtName.startsWith('_') && udtName !== '_json' && udtName !== '_jsonb') return 'text[]';
  switch (udtName) {
    case 'int2':
    case 'int4':
    case 'int8':
      return 'int';
    case 'numeric':
    case 'float4':
    case 'float8':
      return 'numeric';
    case 'uuid':
      return 'uuid';
    case 'date':
      return 'date';
    case 'timestamptz':
    case 'timestamp':
      return 'timestamptz';
    case 'bool':
      return 'boolean';
    case '_text':
    case '_varchar':
      return 'text[]';
    case 'json':
    case 'jsonb':
      return 'jsonb';
    default:
      return 'text';
  }
}

/** Short type names (lambdas/core/schema.ts, `normalizeType`) that are not PostgreSQL's name for the type. */
const CAST_SPELLING: Readonly<Record<string, string>> = {
  float4: 'real',
  float8: 'double precision',
  timetz: 'time with time zone',
};

/**
 * The type a value is cast to in SQL: PostgreSQL's name for the column's type, without a length or precision (a cast to
 * `varchar(20)` would cut a longer value silently where the column refuses it). Any other name (an enum, a domain) is
 * quoted, as every identifier is: it comes from the introspected schema, and a mixed-case one would be folded.
 */
export function castTypeOf(udtName: string, type: string): string {
  // An array: its element type's spelling, then `[]` (a quoted `"int[]"` names no type).
  if (udtName.startsWith('_') && type.endsWith('[]')) return `${castTypeOf(udtName.slice(1), type.slice(0, -2))}[]`;
  const spelled = CAST_SPELLING[udtName];
  if (spelled !== undefined) return spelled;
  return /^[a-z_][a-z0-9_]*$/.test(type) ? type : `"${type.replaceAll('"', '""')}"`;
}

/** PostgreSQL's text types: their JSON value is their `::text`. */
const TEXT_TYPES: ReadonlySet<string> = new Set(['text', 'varchar', 'bpchar', 'citext', 'name']);

/** The entity view of an introspected snapshot (lambdas/core/schema.ts). */
export function toEntitySchema(snapshot: {
  readonly entities: Readonly<
    Record<
      string,
      {
        readonly primaryKey: string;
        readonly fields: Readonly<
          Record<
            string,
            {
              type: string;
              udtName: string;
              nullable: boolean;
              hasDefault: boolean;
              pgType?: string;
              enum?: boolean;
              references?: { readonly entity: string; readonly field: string };
            }
          >
        >;
      }
    >
  >;
}): SchemaSnapshot {
  const entities: Record<string, EntitySpec> = {};
  for (const [name, entity] of Object.entries(snapshot.entities)) {
    const fields: Record<string, FieldSpec> = {};
    for (const [field, spec] of Object.entries(entity.fields)) {
      const type = fieldTypeOf(spec.udtName);
      fields[field] = {
        type,
        nullable: spec.nullable,
        hasDefault: spec.hasDefault,
        // Casts use PostgreSQL's spelling; an array's elements are converted from JSON text by the Data API port.
        pgType: castTypeOf(spec.udtName, spec.type),
        ...(spec.udtName === 'bpchar' && { padded: true }),
        ...(field === entity.primaryKey && spec.pgType !== undefined && { keyType: spec.pgType }),
        ...(type === 'text' && !TEXT_TYPES.has(spec.udtName) && spec.enum !== true && { opaque: true }),
        ...(spec.references !== undefined && {
          references: { entity: spec.references.entity, field: spec.references.field },
        }),
      };
    }
    entities[name] = { primaryKey: entity.primaryKey, fields };
  }
  return { entities };
}
