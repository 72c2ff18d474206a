/**
 * Request validation built from the tenant's schema snapshot: zod schemas per field type, strict objects (an
 * unknown field is a BAD_REQUEST naming it), typed query filters. Nothing that is not a snapshot field name gets
 * past here, so the SQL builder only ever sees introspected identifiers.
 */
import { limits } from '../../manifest.ts';
import { expandExponent, plainDecimal } from '../data-api.ts';
import { BadRequestError, NotFoundError } from '../errors.ts';
import * as z from '../zod.ts';
import { MAX_KEY_LENGTH } from './events.ts';
import {
  type EntitySpec,
  type FieldSpec,
  type FieldType,
  fieldNames,
  type SchemaSnapshot,
  VERSION_COLUMN,
} from './model.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const INT_MIN = -2_147_483_648;
const INT_MAX = 2_147_483_647;

/**
 * PostgreSQL text cannot hold U+0000 (and jsonb refuses `\u0000`): such a value would fail in the database as a
 * 500, so it is refused here as BAD_REQUEST naming the field.
 */
const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';
const hasNul = (value: string) => value.includes('\u0000');
const noNul = (value: string) => !hasNul(value);
/** Whether a JSON value has a NUL in any string or key, at any depth. */
function jsonHasNul(value: unknown): boolean {
  if (typeof value === 'string') return hasNul(value);
  if (Array.isArray(value)) return value.some(jsonHasNul);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).some(([k, v]) => hasNul(k) || jsonHasNul(v));
  }
  return false;
}

/**
 * What no field schema can check without running out of stack or after precision is gone: nesting deeper than
 * `limits.entityBodyDepth`, and, but in a floating point column (whose double is exactly what JSON carries), a number
 * beyond ±(2^53 - 1), which JSON.parse may have rounded already (a numeric or a jsonb value was stored rounded until
 * 2026-12-03; send such a value as a string). Iterative, like publish-data.ts.
 */
function bodyShapeProblem(entity: EntitySpec, body: Readonly<Record<string, unknown>>): string | undefined {
  const stack: [unknown, number, boolean][] = Object.entries(body).map(([name, value]) => {
    const pgType = Object.hasOwn(entity.fields, name) ? entity.fields[name]?.pgType : undefined;
    return [value, 1, pgType !== 'real' && pgType !== 'double precision'];
  });
  while (stack.length > 0) {
    const [value, depth, exact] = stack.pop() as [unknown, number, boolean];
    if (typeof value === 'number') {
      if (exact && Math.abs(value) > Number.MAX_SAFE_INTEGER) {
        return `body contains the number ${value}, beyond ±(2^53 - 1), which JSON cannot carry exactly: send it as a string`;
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth + 1 > limits.entityBodyDepth) return `body is nested more than ${limits.entityBodyDepth} levels deep`;
    for (const item of Array.isArray(value) ? value : Object.values(value)) stack.push([item, depth + 1, exact]);
  }
  return undefined;
}

/** A body as JSON object, checked for what the field schemas cannot check (`bodyShapeProblem`). */
function assertBodyObject(entity: EntitySpec, body: unknown): asserts body is Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('body must be a JSON object');
  }
  const problem = bodyShapeProblem(entity, body as Record<string, unknown>);
  if (problem !== undefined) throw new BadRequestError(problem);
}

/** The JSON value a field accepts in a body. */
export function fieldSchema(type: FieldType): z.ZodMiniType {
  switch (type) {
    case 'text':
      return z.string().check(z.maxLength(65_536), z.refine(noNul, NUL_MESSAGE));
    case 'int':
      return z.number().check(z.int(), z.gte(INT_MIN), z.lte(INT_MAX));
    case 'numeric':
      // zod 4's number() refuses Infinity and NaN (classic's .finite() was a no-op).
      // A string is a plain decimal, as the Data API's DECIMAL hint takes it (no exponent).
      return z.union([z.number(), z.string().check(z.regex(/^-?\d+(\.\d+)?$/))]);
    case 'uuid':
      return z.string().check(z.regex(UUID, 'expected a UUID'));
    case 'date':
      return z.string().check(
        z.regex(DATE, 'expected a date YYYY-MM-DD'),
        z.refine((v) => !Number.isNaN(Date.parse(v)), 'invalid date'),
      );
    case 'timestamptz':
      return z.iso.datetime({ offset: true });
    case 'boolean':
      return z.boolean();
    case 'text[]':
      // Elements as an array reads back: text, or a number or boolean of an `int[]`, `numeric[]`, `bool[]` column, or
      // null; PostgreSQL casts each to the column's element type.
      return z
        .array(
          z.nullable(
            z.union([
              z.string().check(z.maxLength(65_536), z.refine(noNul, NUL_MESSAGE)),
              z.number().check(z.refine(Number.isFinite, 'expected a finite number')),
              z.boolean(),
            ]),
          ),
        )
        .check(z.maxLength(1000));
    case 'jsonb':
      return z.json().check(z.refine((v) => !jsonHasNul(v), NUL_MESSAGE));
  }
}

const INTEGER = /^-?\d{1,19}$/;
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/**
 * A bigint column's value: an integer, or a string of digits in its range (how a value past 2^53 is read back,
 * docs/entities.md). Until 2026-12-03 a bigint took only a 32-bit number, and a value read back could not be
 * written back.
 */
const bigintSchema = z.union([
  z.number().check(z.int()),
  z.string().check(
    z.regex(INTEGER, 'expected an integer'),
    // Checks all run, the regex's failure too: BigInt of anything else would throw (a 500).
    z.refine((v) => !INTEGER.test(v) || (BigInt(v) >= INT8_MIN && BigInt(v) <= INT8_MAX), 'out of the range of bigint'),
  ),
]);

/**
 * A `timestamp without time zone` reads back without an offset (`2024-05-01T10:00:00.5`), so it takes one without
 * (and one with, which PostgreSQL ignores for such a column): until 2026-12-04 a value read could not be written back
 * or filtered by (a Rails `created_at`).
 */
const localTimestampSchema = z.iso.datetime({ offset: true, local: true });

/** The JSON value a field accepts, by its column's type. */
function schemaOf(field: FieldSpec): z.ZodMiniType {
  if (field.pgType === 'bigint') return bigintSchema;
  if (field.pgType === 'timestamp') return localTimestampSchema;
  return fieldSchema(field.type);
}

/** The entity's spec, or NOT_FOUND (an unknown entity is a 404, not a 400). */
export function entityOf(schema: SchemaSnapshot, name: string): EntitySpec {
  const entity = Object.hasOwn(schema.entities, name) ? schema.entities[name] : undefined;
  if (entity === undefined) throw new NotFoundError(`unknown entity '${name}'`);
  return entity;
}

function fieldOf(entity: EntitySpec, entityName: string, name: string): FieldSpec {
  const field = name !== VERSION_COLUMN && Object.hasOwn(entity.fields, name) ? entity.fields[name] : undefined;
  if (field === undefined) throw new BadRequestError(`unknown field '${name}' on entity '${entityName}'`);
  return field;
}

function describeIssue(entityName: string, issue: z.core.$ZodIssue): string {
  const field = issue.path[0];
  if (issue.code === 'unrecognized_keys') {
    return `unknown field '${issue.keys[0] ?? ''}' on entity '${entityName}'`;
  }
  if (field === undefined) return issue.message;
  return `invalid value for field '${String(field)}' of entity '${entityName}': ${issue.message}`;
}

function parseWith<T>(schema: z.ZodMiniType<T>, value: unknown, entityName: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new BadRequestError(issue ? describeIssue(entityName, issue) : 'invalid body');
  }
  return result.data;
}

function bodySchema(entity: EntitySpec, mode: 'create' | 'update'): z.ZodMiniType<Record<string, unknown>> {
  const shape: Record<string, z.ZodMiniType> = {};
  for (const name of fieldNames(entity)) {
    const field = entity.fields[name] as FieldSpec;
    let schema = schemaOf(field);
    if (field.nullable) schema = z.nullable(schema);
    const required = mode === 'create' && !field.nullable && !field.hasDefault;
    shape[name] = required ? schema : z.optional(schema);
  }
  return z.strictObject(shape) as z.ZodMiniType<Record<string, unknown>>;
}

/** A create body: a JSON object of known fields with values of their types; required fields present. */
export function parseCreate(entity: EntitySpec, entityName: string, body: unknown): Record<string, unknown> {
  assertBodyObject(entity, body);
  for (const key of Object.keys(body)) fieldOf(entity, entityName, key);
  const values = parseWith(bodySchema(entity, 'create'), body, entityName);
  const key = values[entity.primaryKey];
  // An empty key names no URL (`/v1/entities/<name>/` has no id): such a row could be created but never read, changed
  // or deleted through the API (until 2026-12-04; found by an attacking pass).
  if (key === '') {
    throw new BadRequestError(
      `field '${entity.primaryKey}' of entity '${entityName}' is the primary key: it cannot be empty`,
    );
  }
  if (key !== undefined && key !== null && String(key).length > MAX_KEY_LENGTH) {
    throw new BadRequestError(
      `field '${entity.primaryKey}' of entity '${entityName}' is the primary key: at most ${MAX_KEY_LENGTH} characters`,
    );
  }
  return values;
}

/** An update body: a non-empty JSON object of known fields (not the primary key). */
export function parseUpdate(entity: EntitySpec, entityName: string, body: unknown): Record<string, unknown> {
  assertBodyObject(entity, body);
  for (const key of Object.keys(body)) fieldOf(entity, entityName, key);
  if (Object.hasOwn(body, entity.primaryKey)) {
    throw new BadRequestError(
      `field '${entity.primaryKey}' of entity '${entityName}' is the primary key and cannot change`,
    );
  }
  const values = parseWith(bodySchema(entity, 'update'), body, entityName);
  if (Object.keys(values).length === 0) throw new BadRequestError('body has no fields to update');
  return values;
}

/** A value from a URL (path id or `?field=value` filter), converted to the field's JSON type. */
export function parseUrlValue(entity: EntitySpec, entityName: string, name: string, raw: string): unknown {
  const field = fieldOf(entity, entityName, name);
  let value: unknown = raw;
  switch (field.type) {
    case 'int':
    case 'numeric': {
      // A key the API gave as a JSON number is written with an exponent when JavaScript writes it so (0.0000001 is
      // `1e-7`, which a client puts in the URL as such): written out exactly first. Until 2026-12-04 such a key was
      // created and then refused (400) on every read, update, delete and change-log request.
      const plain = expandExponent(raw);
      // A number only when it is exactly what was written (`1.0000000000000001` is not 1: until review it was read as
      // 1 and named another row); else the exact decimal text, which a numeric takes and an int refuses.
      const exact = /^-?\d+(\.\d+)?$/.test(plain) && plainDecimal(Number(plain)) === plain;
      value = exact ? Number(plain) : /^-?\d+(\.\d+)?$/.test(plain) ? plain : raw;
      if (field.type === 'int' && typeof value === 'number' && !Number.isSafeInteger(value)) value = plain;
      break;
    }
    case 'boolean':
      value = raw === 'true' ? true : raw === 'false' ? false : raw;
      break;
    case 'text[]':
    case 'jsonb':
      throw new BadRequestError(`field '${name}' of entity '${entityName}' (${field.type}) cannot be used in a URL`);
    default:
      break;
  }
  return parseWith(z.object({ [name]: schemaOf(field) }), { [name]: value }, entityName)[name];
}

export interface ListQuery {
  readonly limit: number;
  readonly cursor?: string;
  readonly filters: Readonly<Record<string, unknown>>;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

/** `?limit=&cursor=&<field>=<value>`: equality filters on known scalar fields, typed. */
export function parseListQuery(
  entity: EntitySpec,
  entityName: string,
  query: Readonly<Record<string, string | undefined>>,
): ListQuery {
  let limit = DEFAULT_LIMIT;
  let cursor: string | undefined;
  const filters: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    if (key === 'limit') {
      limit = parseLimit(raw);
    } else if (key === 'cursor') {
      cursor = raw;
    } else {
      filters[key] = parseUrlValue(entity, entityName, key, raw);
    }
  }
  return { limit, ...(cursor !== undefined && { cursor }), filters };
}

/** Versions per page of a key's change log (`GET …/changes`): at most `MAX_LIMIT`, this many by default. */
export const DEFAULT_CHANGES_LIMIT = 100;

/** `limit` and `cursor` of `GET …/changes` (the cursor is decoded by the caller, which knows the key). */
export function parseChangesQuery(query: Readonly<Record<string, string | undefined>>): {
  readonly limit: number;
  readonly cursor?: string;
} {
  let limit = DEFAULT_CHANGES_LIMIT;
  let cursor: string | undefined;
  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    if (key === 'limit') limit = parseLimit(raw);
    else if (key === 'cursor') cursor = raw;
    else
      throw new BadRequestError(
        `unknown query parameter '${key.slice(0, 64)}' (the change log takes limit and cursor)`,
      );
  }
  return { limit, ...(cursor !== undefined && { cursor }) };
}

function parseLimit(raw: string): number {
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIMIT) {
    throw new BadRequestError(`limit must be an integer from 1 to ${MAX_LIMIT} (got '${raw.slice(0, 32)}')`);
  }
  return Number(raw);
}

/** `If-Match: <version>` (quotes and a weak prefix tolerated, as HTTP clients send ETags). */
export function parseIfMatch(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(raw);
  if (!match) throw new BadRequestError(`If-Match must be a version number (got '${raw.slice(0, 32)}')`);
  return Number(match[1]);
}
