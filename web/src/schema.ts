/**
 * What the demo knows about a tenant's data: the `GET /v1/schema` answer (docs/entities.md) and the live change
 * feed's message data. Structural copies of the API's shapes, so the browser bundle imports nothing from lambdas/.
 */

export type FieldType = 'text' | 'int' | 'numeric' | 'uuid' | 'date' | 'timestamptz' | 'boolean' | 'text[]' | 'jsonb';

export interface FieldSpec {
  readonly type: FieldType;
  readonly nullable: boolean;
  /** The database fills it when a create leaves it out (`GET /v1/schema`). */
  readonly hasDefault?: boolean;
}

export interface EntitySpec {
  readonly primaryKey: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** What the caller's roles allow (`GET /v1/schema`); absent from an older API. */
  readonly canRead?: boolean;
  readonly canWrite?: boolean;
}

/**
 * Whether to offer write controls (New, Save) for the entity: not when the API says the caller's roles cannot write
 * it, nor once a write of it was refused with FORBIDDEN (an API that does not say `canWrite`).
 */
export const mayWrite = (spec: EntitySpec, refused = false): boolean => spec.canWrite !== false && !refused;

export interface Schema {
  readonly entities: Readonly<Record<string, EntitySpec>>;
}

/** A row as the API returns it: the entity's fields plus `_version`. */
export type Row = Readonly<Record<string, unknown>>;

/** The row's version in API answers (0 for a row never written through the API). */
export const VERSION = '_version';

/** `data` of a message in group `entity:<name>`. */
export interface ChangeEvent {
  readonly op: 'insert' | 'update' | 'delete';
  readonly entity: string;
  readonly key: string | number;
  readonly version: number;
  readonly row: Row | null;
  /** The row was too big (or too odd) to travel in the message: read it with `GET` (docs/entities.md). */
  readonly rowOmitted?: boolean;
  readonly changedBy: string;
  readonly changedAt: string;
}

/** One entry of `GET /v1/entities/<e>/<id>/changes`. */
export interface ChangeLogEntry {
  readonly version: number;
  readonly op: 'insert' | 'update' | 'delete';
  readonly changedBy: string;
  readonly changedAt: string;
  readonly diff: Readonly<Record<string, readonly [unknown, unknown]>>;
}

export const entityGroup = (entity: string): string => `entity:${entity}`;

/** The message data as a change event, or undefined when it is not one (a publish by someone else into the group). */
export function asChangeEvent(data: unknown): ChangeEvent | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const opOk = d.op === 'insert' || d.op === 'update' || d.op === 'delete';
  const keyOk = typeof d.key === 'string' || typeof d.key === 'number';
  const rowOk = d.row === null || d.row === undefined || (typeof d.row === 'object' && !Array.isArray(d.row));
  if (!opOk || !keyOk || typeof d.version !== 'number' || typeof d.entity !== 'string' || !rowOk) return undefined;
  return {
    op: d.op as ChangeEvent['op'],
    entity: d.entity,
    key: d.key as string | number,
    version: d.version,
    row: (d.row ?? null) as Row | null,
    ...(d.rowOmitted === true && d.op !== 'delete' && { rowOmitted: true }),
    changedBy: typeof d.changedBy === 'string' ? d.changedBy : '',
    changedAt: typeof d.changedAt === 'string' ? d.changedAt : '',
  };
}

export function versionOf(row: Row | undefined): number {
  const v = row?.[VERSION];
  return typeof v === 'number' ? v : 0;
}
