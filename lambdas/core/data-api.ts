/**
 * The tenant databases, through the RDS Data API only (`@aws-sdk/client-rds-data`). A small typed port used by
 * functions and by the onboarding CLI:
 *
 * - `execute(db, sql, params, { transactionId })` runs one statement with named parameters (`:name`) and returns
 *   rows as plain objects, converted by column type (see `fromField`);
 * - `batchExecute(db, sql, paramSets)` runs one statement once per parameter set;
 * - `transaction(db, fn)` wraps `fn` in BeginTransaction / CommitTransaction, rolling back when `fn` throws;
 * - `executePaged(db, sql, params, { limit })` runs a keyset-paged SELECT whose SQL takes `:limit`, halving the
 *   limit when the Data API answers that the result is over its 1 MiB response limit.
 *
 * Parameters: a plain JS value is sent as the Data API field that fits it (string, long, double, boolean, null,
 * blob). A value whose column type is known is wrapped with `typed(value, pgType)` so it gets the Data API type
 * hint (UUID, TIMESTAMP, DATE, TIME, DECIMAL, JSON) — without it the Data API sends a string as `varchar`, and
 * PostgreSQL refuses `uuid = varchar`. The Data API does not accept `arrayValue` parameters for PostgreSQL (the
 * documentation: "Array parameters are not supported"), so arrays travel as JSON text and the SQL converts them:
 * `placeholder(name, pgType)` gives `:name` or, for an array type, the expression that turns the JSON text into
 * the array. Build SQL with `placeholder` and parameters with `typed` from the same introspected type.
 *
 * Written by hand: Powertools has no Data API helper, and the SDK's client speaks only the raw `Field` shapes.
 */
import {
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  type ColumnMetadata,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  type Field,
  type RDSDataClient,
  RollbackTransactionCommand,
  type SqlParameter,
} from '@aws-sdk/client-rds-data';
import { BadRequestError, TenantcastError, TooLargeError } from './errors.ts';

/** Where a tenant's data lives: the Aurora cluster, the secret the Data API connects with, and the database. */
export interface DatabaseRef {
  readonly clusterArn: string;
  readonly secretArn: string;
  readonly databaseName: string;
}

/** A parameter value with its column's introspected PostgreSQL type (`uuid`, `numeric`, `text[]`, `timestamptz`, ...). */
export interface TypedValue {
  readonly [typedBrand]: true;
  readonly value: unknown;
  readonly pgType: string;
}
const typedBrand = Symbol('tenantcast.typed');

/** A value for a named parameter: a plain value, or `typed(value, pgType)` when the column type is known. */
export type ParamValue = string | number | bigint | boolean | null | undefined | Date | Uint8Array | TypedValue;
export type Params = Readonly<Record<string, ParamValue>>;
export type Row = Record<string, unknown>;

export interface ExecuteOptions {
  readonly transactionId?: string;
}

export interface ExecuteResult {
  /** Rows of a SELECT or of `... RETURNING`; empty otherwise. */
  readonly rows: Row[];
  /** Rows inserted, updated or deleted. */
  readonly updated: number;
}

/** A transaction in progress: statements run inside it. */
export interface Transaction {
  readonly id: string;
  execute(sql: string, params?: Params): Promise<ExecuteResult>;
  batchExecute(sql: string, paramSets: readonly Params[]): Promise<{ readonly updated: number }>;
}

/** The port other code depends on (functions, the CLI, tests with a fake). */
export interface DataApi {
  execute(db: DatabaseRef, sql: string, params?: Params, options?: ExecuteOptions): Promise<ExecuteResult>;
  batchExecute(
    db: DatabaseRef,
    sql: string,
    paramSets: readonly Params[],
    options?: ExecuteOptions,
  ): Promise<{ readonly updated: number }>;
  transaction<T>(db: DatabaseRef, fn: (tx: Transaction) => Promise<T>): Promise<T>;
  executePaged(db: DatabaseRef, sql: string, params: Params, options: PagedOptions): Promise<PagedResult>;
}

export interface PagedOptions extends ExecuteOptions {
  /** Rows asked for; passed as `:limit`. */
  readonly limit: number;
  /** Smallest limit tried before giving up with TOO_LARGE. @default 1 */
  readonly minLimit?: number;
}

export interface PagedResult extends ExecuteResult {
  /** The limit that fit under the response limit (the caller's keyset paging continues with it). */
  readonly limit: number;
}

/** Wraps a value with its column's introspected type, so it is sent with the right Data API type hint. */
export function typed(value: unknown, pgType: string): TypedValue {
  return { [typedBrand]: true, value, pgType };
}

export function isTyped(value: unknown): value is TypedValue {
  return typeof value === 'object' && value !== null && typedBrand in value;
}

/** `text[]` / `_text` / `integer[]` → the element type; undefined for a scalar type. */
export function arrayElementType(pgType: string): string | undefined {
  const t = pgType.trim().toLowerCase();
  if (t.endsWith('[]')) return t.slice(0, -2);
  if (t.startsWith('_')) return t.slice(1);
  return undefined;
}

/**
 * The SQL for parameter `name` of a column of type `pgType`: `:name`, or for arrays the conversion from the JSON
 * text the parameter carries (`ARRAY(SELECT json_array_elements_text(CAST(:name AS json)))::text[]`).
 * `name` must be a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`), since it becomes part of the SQL.
 */
export function placeholder(name: string, pgType?: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new BadRequestError(`invalid parameter name '${name}'`);
  const element = pgType === undefined ? undefined : arrayElementType(pgType);
  if (element === undefined) return `:${name}`;
  if (!/^[a-z_][a-z0-9_ ]*$/.test(element)) throw new BadRequestError(`unsupported array type '${pgType}'`);
  return `(CASE WHEN CAST(:${name} AS json) IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text(CAST(:${name} AS json)))::${element}[] END)`;
}

type Hint = SqlParameter['typeHint'];

/** The Data API type hint for a PostgreSQL type, if it needs one. */
export function typeHintOf(pgType: string): Hint {
  const t = pgType.trim().toLowerCase();
  if (t === 'uuid') return 'UUID';
  if (t === 'date') return 'DATE';
  if (t.startsWith('time') && !t.startsWith('timestamp'))
    return t.includes('with time zone') || t === 'timetz' ? undefined : 'TIME';
  if (t.startsWith('timestamp')) return 'TIMESTAMP';
  if (t.startsWith('numeric') || t.startsWith('decimal')) return 'DECIMAL';
  if (t === 'json' || t === 'jsonb') return 'JSON';
  return undefined;
}

/** `YYYY-MM-DD HH:MM:SS[.fff]`, the Data API's TIMESTAMP format, in UTC. */
export function toDataApiTimestamp(value: Date | string): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new BadRequestError(`invalid timestamp '${String(value)}'`);
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

function plainField(value: unknown, name: string): Field {
  if (value === null || value === undefined) return { isNull: true };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (typeof value === 'bigint') return { longValue: Number(value) };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new BadRequestError(`parameter '${name}' is not a finite number`);
    return Number.isSafeInteger(value) ? { longValue: value } : { doubleValue: value };
  }
  if (value instanceof Date) return { stringValue: toDataApiTimestamp(value) };
  if (value instanceof Uint8Array) return { blobValue: value };
  return { stringValue: JSON.stringify(value) };
}

/**
 * A finite number's shortest round-trip text (`String`) with any exponent written out: `1e-7` → `0.0000001`,
 * `1.5e21` → `1500000000000000000000`. Written by hand: `toFixed` stops at 100 digits and rounds, and no kept
 * library formats decimals.
 */
export function plainDecimal(value: number): string {
  return expandExponent(String(value));
}

/** The largest exponent `expandExponent` writes out: past a double's range (about 1e±308), with room. */
const MAX_EXPANDED_EXPONENT = 400;

/**
 * A decimal written with an exponent (`1.5e-10`, `12E3`), written out exactly (`0.00000000015`, `12000`); any other
 * text as it is. Digit by digit, so no precision is lost.
 */
export function expandExponent(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?[eE]([-+]?\d+)$/.exec(text);
  if (match === null) return text;
  const [, sign, whole = '', fraction = '', exponent] = match;
  // An exponent past what a double can mean is not written out (`1e999999999` would be a gigabyte of zeros).
  if (Math.abs(Number(exponent)) > MAX_EXPANDED_EXPONENT) return text;
  const digits = `${whole}${fraction}`;
  const point = whole.length + Number(exponent);
  const out =
    point <= 0
      ? `0.${'0'.repeat(-point)}${digits}`
      : point >= digits.length
        ? `${digits}${'0'.repeat(point - digits.length)}`
        : `${digits.slice(0, point)}.${digits.slice(point)}`;
  // Leading zeros of the whole part go (one stays before a point or alone).
  return `${sign}${out.replace(/^0+(?=\d)/, '')}`;
}

/** One named Data API parameter for a value (typed or plain). */
export function toSqlParameter(name: string, value: ParamValue): SqlParameter {
  if (!isTyped(value)) {
    const field = plainField(value, name);
    return value instanceof Date ? { name, value: field, typeHint: 'TIMESTAMP' } : { name, value: field };
  }
  const { pgType } = value;
  const v = value.value;
  if (v === null || v === undefined) return { name, value: { isNull: true } };
  if (arrayElementType(pgType) !== undefined) {
    if (!Array.isArray(v)) throw new BadRequestError(`'${name}' must be an array`);
    return { name, value: { stringValue: JSON.stringify(v) } };
  }
  const hint = typeHintOf(pgType);
  switch (hint) {
    case 'UUID':
    case 'DATE':
    case 'TIME':
      if (typeof v !== 'string') throw new BadRequestError(`'${name}' must be a string`);
      return { name, value: { stringValue: v }, typeHint: hint };
    case 'TIMESTAMP':
      if (typeof v !== 'string' && !(v instanceof Date)) throw new BadRequestError(`'${name}' must be a timestamp`);
      return { name, value: { stringValue: toDataApiTimestamp(v) }, typeHint: hint };
    case 'DECIMAL': {
      if (typeof v !== 'string' && typeof v !== 'number') throw new BadRequestError(`'${name}' must be a number`);
      // A number as plain decimal digits: JavaScript writes 0.0000001 as 1e-7, which DECIMAL does not take.
      const text = typeof v === 'number' ? plainDecimal(v) : v;
      if (!/^-?\d+(\.\d+)?$/.test(text)) throw new BadRequestError(`'${name}' must be a decimal number`);
      return { name, value: { stringValue: text }, typeHint: hint };
    }
    case 'JSON':
      return { name, value: { stringValue: JSON.stringify(v) }, typeHint: hint };
    default:
      return { name, value: plainField(v, name) };
  }
}

export function toSqlParameters(params: Params | undefined): SqlParameter[] {
  return Object.entries(params ?? {}).map(([name, value]) => toSqlParameter(name, value));
}

/** A Data API result field as a JS value, by its column's type name (`typeName` from the result metadata). */
export function fromField(field: Field | undefined, typeName = ''): unknown {
  if (field === undefined || field.isNull) return null;
  const t = typeName.toLowerCase();
  if (field.stringValue !== undefined) {
    if (t === 'json' || t === 'jsonb') return JSON.parse(field.stringValue);
    if (t === 'timestamptz' || t === 'timestamp') {
      // The Data API answers `YYYY-MM-DD HH:MM:SS[.ffffff]`, in UTC for timestamptz.
      const iso = `${field.stringValue.replace(' ', 'T')}${t === 'timestamptz' ? 'Z' : ''}`;
      const date = new Date(iso);
      return t === 'timestamptz' && !Number.isNaN(date.getTime()) ? date.toISOString() : field.stringValue;
    }
    return field.stringValue;
  }
  if (field.booleanValue !== undefined) return field.booleanValue;
  if (field.longValue !== undefined) return field.longValue;
  if (field.doubleValue !== undefined) return field.doubleValue;
  if (field.blobValue !== undefined) return field.blobValue;
  if (field.arrayValue !== undefined) return fromArrayValue(field.arrayValue);
  return null;
}

function fromArrayValue(a: NonNullable<Field['arrayValue']>): unknown[] {
  if (a.stringValues) return a.stringValues;
  if (a.longValues) return a.longValues;
  if (a.doubleValues) return a.doubleValues;
  if (a.booleanValues) return a.booleanValues;
  if (a.arrayValues) return a.arrayValues.map((inner) => (inner === null ? null : fromArrayValue(inner)));
  return [];
}

export function rowsOf(records: Field[][] | undefined, columns: ColumnMetadata[] | undefined): Row[] {
  if (records === undefined) return [];
  const cols = columns ?? [];
  return records.map((record) => {
    const row: Row = {};
    record.forEach((field, i) => {
      const col = cols[i];
      row[col?.label ?? col?.name ?? `column${i}`] = fromField(field, col?.typeName);
    });
    return row;
  });
}

/** A Data API or database failure, as a typed error. `sqlState` is PostgreSQL's code when the database raised it. */
export class DataApiError extends TenantcastError {
  override readonly name = 'DataApiError';
  constructor(
    code: TenantcastError['code'],
    message: string,
    /** The Data API exception name (`DatabaseErrorException`, ...). */
    readonly awsError: string,
    readonly sqlState?: string,
    /** The database's own message, for logs only (it may name internals). */
    readonly detail?: string,
    readonly retryable = false,
  ) {
    super(code, message);
  }
}

/** The Data API's answer when a result exceeds its 1 MiB response limit. */
export const RESPONSE_TOO_LARGE = 'Database returned more than the allowed response size limit';
/** The Data API's error for a result row over 64 KB (lambdas/core/limits.ts, `dataApiRowBytes`). */
export const ROW_TOO_LARGE = 'Packet for query is too large';

/** A foreign key's violation, as the API words it (and a write's reference to a row its caller may not read). */
export const MISSING_REFERENCE = 'a referenced row does not exist, or the row is still referenced';

const clientSqlStates: Record<string, string> = {
  '23505': 'a row with the same unique value already exists',
  '23503': MISSING_REFERENCE,
  '23502': 'a required field is missing',
  '23514': 'a value violates a check constraint',
  '22001': 'a value is too long for its field',
  '22003': 'a number is out of range',
  '22007': 'invalid date or time',
  '22008': 'date or time out of range',
  '22P02': 'invalid value for the field type',
  '22023': 'invalid parameter value',
  // A value for a column the database generates (`GENERATED ALWAYS AS IDENTITY`, a generated column), and a value
  // too large for its column's index (a long text in a UNIQUE column): until 2026-12-04 both answered 500.
  '428C9': 'a value was given for a column the database generates',
  '54000': 'a value is too large for its column (its index or a database limit)',
};

/**
 * A column or table the snapshot names is gone (dropped or renamed since the schema was introspected): the operator's
 * to fix (`tenants refresh-schema`), so still INTERNAL, saying so.
 */
const driftSqlStates = new Set(['42703', '42P01']);

/** Maps an SDK error (or anything thrown) to a DataApiError. */
export function toDataApiError(err: unknown): TenantcastError {
  if (err instanceof TenantcastError) return err;
  const name = err instanceof Error ? err.name : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes(RESPONSE_TOO_LARGE)) {
    return new DataApiError('TOO_LARGE', 'result is over the 1 MiB response limit', name, undefined, message);
  }
  if (message.includes(ROW_TOO_LARGE)) {
    return new DataApiError(
      'TOO_LARGE',
      'a result row is over the 64 KB the Data API returns per row',
      name,
      undefined,
      message,
    );
  }
  switch (name) {
    case 'DatabaseErrorException': {
      const sqlState = /SQLState: ([0-9A-Z]{5})/.exec(message)?.[1];
      const friendly = sqlState === undefined ? undefined : clientSqlStates[sqlState];
      if (friendly !== undefined) {
        return new DataApiError(sqlState === '23505' ? 'CONFLICT' : 'BAD_REQUEST', friendly, name, sqlState, message);
      }
      if (sqlState !== undefined && driftSqlStates.has(sqlState)) {
        return new DataApiError(
          'INTERNAL',
          "the database's schema changed since it was introspected: refresh the tenant's schema",
          name,
          sqlState,
          message,
        );
      }
      return new DataApiError('INTERNAL', 'database error', name, sqlState, message);
    }
    case 'StatementTimeoutException':
      return new DataApiError('INTERNAL', 'statement timed out', name, undefined, message, true);
    case 'DatabaseResumingException':
    case 'DatabaseUnavailableException':
    case 'ServiceUnavailableError':
    case 'InternalServerErrorException':
      return new DataApiError('INTERNAL', 'database unavailable', name, undefined, message, true);
    case 'DatabaseNotFoundException':
      return new DataApiError('NOT_FOUND', 'database not found', name, undefined, message);
    default:
      // BadRequestException, ForbiddenException, AccessDeniedException, *Secret*Exception,
      // TransactionNotFoundException, ...: configuration or programming errors, never the client's fault.
      return new DataApiError('INTERNAL', 'internal error', name, undefined, message);
  }
}

export interface RdsDataApiOptions {
  /** Retries of a statement outside a transaction when the database is resuming or unavailable. @default 3 */
  readonly retries?: number;
  /** @default exponential, 250 ms × 2^attempt */
  readonly backoffMs?: (attempt: number) => number;
}

/** The DataApi over the real SDK client (configured from the environment: `AWS_ENDPOINT_URL_RDS_DATA`, region). */
export class RdsDataApi implements DataApi {
  private readonly retries: number;
  private readonly backoffMs: (attempt: number) => number;

  constructor(
    private readonly client: RDSDataClient,
    options: RdsDataApiOptions = {},
  ) {
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? ((attempt) => 250 * 2 ** attempt);
  }

  async execute(db: DatabaseRef, sql: string, params?: Params, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    const out = await this.send(
      () =>
        this.client.send(
          new ExecuteStatementCommand({
            resourceArn: db.clusterArn,
            secretArn: db.secretArn,
            database: db.databaseName,
            sql,
            parameters: toSqlParameters(params),
            includeResultMetadata: true,
            ...(options.transactionId !== undefined && { transactionId: options.transactionId }),
          }),
        ),
      options.transactionId === undefined,
    );
    return { rows: rowsOf(out.records, out.columnMetadata), updated: out.numberOfRecordsUpdated ?? 0 };
  }

  async batchExecute(
    db: DatabaseRef,
    sql: string,
    paramSets: readonly Params[],
    options: ExecuteOptions = {},
  ): Promise<{ readonly updated: number }> {
    if (paramSets.length === 0) return { updated: 0 };
    const out = await this.send(
      () =>
        this.client.send(
          new BatchExecuteStatementCommand({
            resourceArn: db.clusterArn,
            secretArn: db.secretArn,
            database: db.databaseName,
            sql,
            parameterSets: paramSets.map((p) => toSqlParameters(p)),
            ...(options.transactionId !== undefined && { transactionId: options.transactionId }),
          }),
        ),
      options.transactionId === undefined,
    );
    return { updated: out.updateResults?.length ?? paramSets.length };
  }

  async transaction<T>(db: DatabaseRef, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const begun = await this.send(
      () =>
        this.client.send(
          new BeginTransactionCommand({
            resourceArn: db.clusterArn,
            secretArn: db.secretArn,
            database: db.databaseName,
          }),
        ),
      true,
    );
    const id = begun.transactionId;
    if (id === undefined) throw new DataApiError('INTERNAL', 'internal error', 'BeginTransaction', undefined, 'no id');
    const tx: Transaction = {
      id,
      execute: (sql, params) => this.execute(db, sql, params, { transactionId: id }),
      batchExecute: (sql, paramSets) => this.batchExecute(db, sql, paramSets, { transactionId: id }),
    };
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      try {
        await this.client.send(
          new RollbackTransactionCommand({ resourceArn: db.clusterArn, secretArn: db.secretArn, transactionId: id }),
        );
      } catch {
        // The transaction is gone already (or times out on its own); the original error is what matters.
      }
      throw err;
    }
    await this.send(
      () =>
        this.client.send(
          new CommitTransactionCommand({ resourceArn: db.clusterArn, secretArn: db.secretArn, transactionId: id }),
        ),
      false,
    );
    return result;
  }

  async executePaged(db: DatabaseRef, sql: string, params: Params, options: PagedOptions): Promise<PagedResult> {
    const minLimit = Math.max(1, options.minLimit ?? 1);
    let limit = Math.max(minLimit, Math.floor(options.limit));
    for (;;) {
      try {
        const result = await this.execute(db, sql, { ...params, limit }, options);
        return { ...result, limit };
      } catch (err) {
        // Fewer rows make a smaller response, not a smaller row: a row over 64 KB fails at any limit.
        const rowTooLarge = err instanceof DataApiError && err.detail?.includes(ROW_TOO_LARGE) === true;
        const tooLarge = err instanceof TenantcastError && err.code === 'TOO_LARGE' && !rowTooLarge;
        if (!tooLarge || limit <= minLimit) {
          if (tooLarge) throw new TooLargeError(`even ${limit} row(s) are over the 1 MiB response limit`);
          throw err;
        }
        limit = Math.max(minLimit, Math.floor(limit / 2));
      }
    }
  }

  private async send<O>(call: () => Promise<O>, retryable: boolean): Promise<O> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        const mapped = toDataApiError(err);
        const canRetry = retryable && mapped instanceof DataApiError && mapped.retryable && attempt < this.retries;
        if (!canRetry) throw mapped;
        await new Promise((r) => setTimeout(r, this.backoffMs(attempt)));
      }
    }
  }
}
