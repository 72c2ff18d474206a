/**
 * What the local Data API (local/data-api.ts) hears and says: its errors, named parameters bound to PostgreSQL's, and
 * result fields shaped as the RDS Data API shapes them. Pure. Hand-written: no library emulates the Data API.
 */
import type { Results } from '@electric-sql/pglite';
import { ROW_TOO_LARGE } from '../lambdas/core/data-api.ts';
import { aws } from '../lambdas/core/limits.ts';

/** An error as the Data API (or Secrets Manager) answers it: `x-amzn-errortype`, HTTP status and message. */
export class DataApiException extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new DataApiException('BadRequestException', 400, message);

/** A PostgreSQL error as the Data API reports it (DatabaseErrorException with the SQLState). */
export function databaseError(err: unknown): DataApiException {
  if (err instanceof DataApiException) return err;
  const e = err as { message?: string; code?: string; detail?: string };
  const detail = e.detail ? `\n  Detail: ${e.detail}` : '';
  return new DataApiException(
    'DatabaseErrorException',
    400,
    `ERROR: ${e.message ?? String(err)}${detail}; SQLState: ${e.code ?? 'XX000'}`,
  );
}

export interface RequestParameter {
  name: string;
  value?: Record<string, unknown>;
  typeHint?: string;
}

// Text forms kept as PostgreSQL prints them (the Data API returns these as strings).
const RAW_OIDS = [114, 3802, 1114, 1184, 1082, 1083, 1266, 1186];
export const rawParsers = Object.fromEntries(RAW_OIDS.map((oid) => [oid, (x: string) => x]));

const hintCasts: Record<string, string> = {
  UUID: 'uuid',
  TIMESTAMP: 'timestamp',
  DATE: 'date',
  TIME: 'time',
  DECIMAL: 'numeric',
  JSON: 'json',
};

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Replaces `:name` parameters with `$n` (typed casts per the Data API's field kinds), skipping string literals,
 * quoted identifiers, comments, dollar-quoted strings and `::` casts.
 */
export function bindNamedParameters(
  sql: string,
  parameters: readonly RequestParameter[],
): { text: string; values: (string | null)[] } {
  const byName = new Map(parameters.map((p) => [p.name, p]));
  const positions = new Map<string, number>();
  const values: (string | null)[] = [];
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const rest = sql.slice(i);
    const skip =
      /^'(?:[^']|'')*'/.exec(rest) ??
      /^"(?:[^"]|"")*"/.exec(rest) ??
      /^--[^\n]*/.exec(rest) ??
      /^\/\*[\s\S]*?\*\//.exec(rest) ??
      /^(\$[A-Za-z_]*\$)[\s\S]*?\1/.exec(rest) ??
      /^::/.exec(rest);
    if (skip) {
      out += skip[0];
      i += skip[0].length;
      continue;
    }
    const param = c === ':' ? /^:([A-Za-z_][A-Za-z0-9_]*)/.exec(rest) : null;
    if (param) {
      const name = param[1] as string;
      const p = byName.get(name);
      if (p === undefined) throw badRequest(`No value specified for parameter: ${name}`);
      let position = positions.get(name);
      if (position === undefined) {
        const [value, cast] = toPgValue(p);
        values.push(value);
        position = values.length;
        positions.set(name, position);
        out += `$${position}${cast}`;
      } else {
        out += `$${position}${toPgValue(p)[1]}`;
      }
      i += param[0].length;
      continue;
    }
    out += c;
    i++;
  }
  return { text: out, values };
}

function toPgValue(p: RequestParameter): [string | null, string] {
  const v = p.value ?? {};
  if (v.isNull === true) return [null, ''];
  if (typeof v.stringValue === 'string') {
    const cast = p.typeHint === undefined ? '::varchar' : `::${hintCasts[p.typeHint] ?? 'varchar'}`;
    return [v.stringValue, cast];
  }
  if (typeof v.booleanValue === 'boolean') return [String(v.booleanValue), '::boolean'];
  if (typeof v.longValue === 'number') return [String(v.longValue), '::bigint'];
  if (typeof v.doubleValue === 'number') return [String(v.doubleValue), '::float8'];
  if (typeof v.blobValue === 'string') return [`\\x${Buffer.from(v.blobValue, 'base64').toString('hex')}`, '::bytea'];
  if (v.arrayValue !== undefined) throw badRequest('Array parameters are not supported.');
  throw badRequest(`Invalid value for parameter ${p.name}`);
}

export function toField(value: unknown, typeName: string): Record<string, unknown> {
  if (value === null || value === undefined) return { isNull: true };
  if (typeName.startsWith('_') && Array.isArray(value)) return { arrayValue: toArrayValue(value) };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (typeof value === 'bigint') return { longValue: Number(value) };
  if (typeof value === 'number') {
    return ['int2', 'int4', 'int8', 'oid'].includes(typeName) ? { longValue: value } : { doubleValue: value };
  }
  if (value instanceof Uint8Array) return { blobValue: Buffer.from(value).toString('base64') };
  if (typeof value === 'string') {
    // timestamptz in UTC without the offset, as the Data API prints it.
    return { stringValue: typeName === 'timestamptz' ? value.replace(/\+00(:00)?$/, '') : value };
  }
  if (value instanceof Date) return { stringValue: value.toISOString().replace('T', ' ').replace('Z', '') };
  return { stringValue: JSON.stringify(value) };
}

function toArrayValue(items: unknown[]): Record<string, unknown> {
  if (items.some(Array.isArray)) return { arrayValues: items.map((x) => toArrayValue(Array.isArray(x) ? x : [x])) };
  if (items.every((x) => typeof x === 'boolean')) return { booleanValues: items };
  if (items.every((x) => typeof x === 'number' && Number.isInteger(x))) return { longValues: items };
  if (items.every((x) => typeof x === 'number')) return { doubleValues: items };
  return { stringValues: items.map((x) => (x === null ? null : x instanceof Date ? x.toISOString() : String(x))) };
}

function jsonValue(value: unknown, typeName: string): unknown {
  if (value === null || value === undefined) return null;
  if (typeName === 'json' || typeName === 'jsonb') return typeof value === 'string' ? JSON.parse(value) : value;
  if (typeName === 'timestamptz' && typeof value === 'string') return value.replace(/\+00(:00)?$/, '');
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}

const jdbcTypes: Record<string, number> = {
  bool: -7,
  int2: 5,
  int4: 4,
  int8: -5,
  float4: 7,
  float8: 8,
  numeric: 2,
  text: 12,
  varchar: 12,
  bpchar: 1,
  date: 91,
  time: 92,
  timestamp: 93,
  timestamptz: 93,
  bytea: -2,
  uuid: 1111,
  json: 1111,
  jsonb: 1111,
};

/**
 * A result row's size as the database sends it: each value's text (JSON text for json and arrays). The Data API
 * refuses a row over 64 KB ("Packet for query is too large", lambdas/core/limits.ts `dataApiRowBytes`); until
 * 2026-12-04 the stand-in did not, and the entity API read and wrote rows of 200 KB locally that AWS refuses.
 */
export function rowBytes(values: readonly unknown[]): number {
  let bytes = 0;
  for (const value of values) {
    if (value === null || value === undefined) continue;
    if (typeof value === 'string') bytes += Buffer.byteLength(value);
    else if (value instanceof Uint8Array) bytes += value.byteLength;
    else if (typeof value === 'object' && !(value instanceof Date)) bytes += Buffer.byteLength(JSON.stringify(value));
    else bytes += String(value).length;
  }
  return bytes;
}

/** The Data API's answer to an ExecuteStatement whose last statement gave `results`. */
export function resultOf(
  typeNameOf: (oid: number) => string,
  results: readonly Results[],
  body: Record<string, unknown>,
  maxRowBytes: number = aws.dataApiRowBytes,
): Record<string, unknown> {
  const last = results[results.length - 1];
  const fields = last?.fields ?? [];
  const typeNames = fields.map((f) => typeNameOf(f.dataTypeID));
  const rows = (last?.rows ?? []) as Record<string, unknown>[];
  for (const row of rows) {
    if (rowBytes(fields.map((f) => row[f.name])) > maxRowBytes) throw badRequest(ROW_TOO_LARGE);
  }
  const updated = last?.affectedRows ?? 0;
  const out: Record<string, unknown> = { numberOfRecordsUpdated: fields.length > 0 ? 0 : updated };
  if (body.formatRecordsAs === 'JSON') {
    out.formattedRecords = JSON.stringify(
      rows.map((row) => Object.fromEntries(fields.map((f, i) => [f.name, jsonValue(row[f.name], typeNames[i] ?? '')]))),
    );
  } else if (fields.length > 0) {
    out.records = rows.map((row) => fields.map((f, i) => toField(row[f.name], typeNames[i] ?? '')));
  }
  if (body.includeResultMetadata === true && fields.length > 0) {
    out.columnMetadata = fields.map((f, i) => ({
      name: f.name,
      label: f.name,
      typeName: typeNames[i],
      type: jdbcTypes[typeNames[i] ?? ''] ?? 1111,
      nullable: 2,
      isAutoIncrement: false,
      isCaseSensitive: true,
      isCurrency: false,
      isSigned: true,
      precision: 0,
      scale: 0,
      schemaName: '',
      tableName: '',
      arrayBaseColumnType: 0,
    }));
  }
  return out;
}
