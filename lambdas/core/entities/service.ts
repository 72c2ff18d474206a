/**
 * The entity API's operations: schema, list, get, create, update, delete, change log. Pure core: the Data API, the
 * tenant catalog and the changes queue are ports. Every write and its change-log row commit in one Data API
 * transaction; the change event is published after the commit, and the row marked published. If publishing fails
 * the write still succeeds: the outbox relay (./outbox.ts) publishes what was left unpublished.
 */

import { MAX_CLAIMS_BYTES } from '../auth.ts';
import type { DataApi, DatabaseRef, Row, Transaction } from '../data-api.ts';
import { ConflictError, ForbiddenError, NotFoundError, TooLargeError } from '../errors.ts';
import { awsLimits } from '../limits.ts';
import {
  applicableRule,
  assertCanRead,
  assertCanWrite,
  canRead,
  type RowRestriction,
  rowRestriction,
  rowVisible,
  ruleFor,
  ruleOf,
} from './access.ts';
import { decodeChangesCursor, decodeCursor, encodeChangesCursor, encodeCursor } from './cursor.ts';
import type { ChangeEvent } from './events.ts';
import {
  type CallerSchema,
  type EntityCaller,
  type EntityRules,
  type EntitySpec,
  type FieldSpec,
  fieldNames,
  type SchemaSnapshot,
  VERSION_COLUMN,
} from './model.ts';
import {
  type ChangeOp,
  changesStatement,
  deleteStatement,
  getStatement,
  insertChangeStatement,
  insertStatement,
  LATER_CHANGES_MAX,
  lastVersionStatement,
  listStatement,
  markPublishedStatement,
  parseLater,
  ROW_JSON_BYTES,
  updateStatement,
  type WriteChecks,
} from './sql.ts';
import { entityOf, parseChangesQuery, parseCreate, parseListQuery, parseUpdate, parseUrlValue } from './validation.ts';
import { assertChecksHeld, writeChecks } from './write-checks.ts';

/** A change-log diff: per field, its value before and after. */
type Diff = Record<string, [unknown, unknown]>;
/**
 * A change-log entry's diff is given whole up to this much text; a bigger one gives only its fields of at most
 * `CHANGE_VALUE_BYTES` and names the others in `omitted`: so any one entry fits the Data API's 64 KB per row, beside
 * its row filter's pair, the page's `later` (LATER_BYTES) and `current` on its first row (until 2026-12-04 diffs of up
 * to 256 KB were given whole, which AWS cannot return).
 */
const CHANGE_DIFF_BYTES = 32 * 1024;
const CHANGE_VALUE_BYTES = 4096;
/**
 * A row filter's value longer than this is unknown when a version is judged (it matches no claim): a token's claims
 * are at most `MAX_CLAIMS_BYTES` (2 KB) of JSON, so no caller could hold it anyway.
 */
export const IMAGE_VALUE_BYTES = MAX_CLAIMS_BYTES + 2;
/** Reads of the change log one request makes to fill a page past versions the caller may not see… */
const CHANGES_READS = 10;
/** …each of at least this many versions. */
const CHANGES_SCAN = 100;
/**
 * Most bytes a change-log page's entries may take as the function's response carries them (JSON in the JSON `body`,
 * quotes escaped): Lambda returns at most 6 MB from a synchronous invocation (`lambdaSyncPayloadBytes`), and API
 * Gateway answers 500 for a bigger one. 1 MiB is left for the rest of the response. Until 2026-12-04 a page of 500
 * versions of 30 KB diffs was a 7 MB answer, given locally and impossible in AWS (found by an AWS-fidelity review).
 */
export const CHANGES_RESPONSE_BYTES = awsLimits.lambdaSyncPayloadBytes.value - 1024 * 1024;

/** The bytes of an entry as a response's body carries it: its JSON, escaped once more inside the body string. */
function responseBytes(entry: ChangeEntry): number {
  return Buffer.byteLength(JSON.stringify(JSON.stringify(entry)), 'utf8') - 1;
}

/** What the tenant catalog knows about a tenant's data. */
export interface TenantData {
  readonly db: DatabaseRef;
  readonly schema: SchemaSnapshot;
  readonly rules: EntityRules;
}

export interface EntityDeps {
  readonly data: DataApi;
  /** The tenant's database, schema snapshot and entity rules (FORBIDDEN for an unknown tenant). */
  readonly tenantData: (tenantId: string) => Promise<TenantData>;
  /** Sends change events to the changes queue. */
  readonly publish: (events: readonly ChangeEvent[]) => Promise<void>;
  /** Told when publishing after a commit failed (the relay will publish later). */
  readonly onPublishError?: (err: unknown, events: readonly ChangeEvent[]) => void;
}

export interface ChangeEntry {
  readonly version: number;
  readonly op: ChangeOp;
  readonly changedBy: string;
  readonly changedAt: string;
  readonly diff: Record<string, [unknown, unknown]>;
  /**
   * The row came into the caller's row filter with this version: the values it replaced belong to a row the caller
   * could not see, so each is given as null.
   */
  readonly beforeHidden?: true;
  /** Fields the version changed whose values are too big for the change log's answer (read the row instead). */
  readonly omitted?: readonly string[];
}

/** The row as the API returns it (`_version` included). */
export type EntityRow = Record<string, unknown>;

/**
 * A result row `{row: <json text>, version?}` as the API's row, `_version` included when the query has it. A row
 * too big to read (`row_bytes`, over ROW_JSON_BYTES) is TOO_LARGE, `what` naming it.
 */
function parseRow(row: Row | undefined, what: () => string): EntityRow | undefined {
  const text = row?.row;
  if (text === null || text === undefined) {
    if (row?.row_bytes === null || row?.row_bytes === undefined) return undefined;
    throw new TooLargeError(
      `${what()} is ${Number(row.row_bytes)} bytes of JSON, over the ${ROW_JSON_BYTES} the Data API returns per row (docs/limits.md)`,
    );
  }
  const parsed = typeof text === 'string' ? (JSON.parse(text) as EntityRow) : { ...(text as EntityRow) };
  if (row?.version !== undefined && row.version !== null) parsed[VERSION_COLUMN] = Number(row.version);
  return parsed;
}

/**
 * A list's item: the row, or for one too big to read (written by other means than this API), its key, version and
 * `_rowOmitted`, so the list goes on past it.
 */
function listItem(row: Row, entity: EntitySpec): EntityRow {
  if (typeof row.row_key !== 'string') return parseRow(row, () => 'a row') as EntityRow;
  return {
    [entity.primaryKey]: JSON.parse(row.row_key) as unknown,
    [VERSION_COLUMN]: Number(row.version),
    _rowOmitted: true,
  };
}

function versionOf(row: EntityRow): number {
  const v = row[VERSION_COLUMN];
  if (typeof v !== 'number') throw new Error('row read without its version');
  return v;
}

/** `{field: [before, after]}` for every field that differs (JSON comparison). */
export function diffRows(
  entity: EntitySpec,
  before: EntityRow | undefined,
  after: EntityRow | undefined,
): Record<string, [unknown, unknown]> {
  const diff: Record<string, [unknown, unknown]> = {};
  for (const name of fieldNames(entity)) {
    const a = before?.[name] ?? null;
    const b = after?.[name] ?? null;
    if (JSON.stringify(a) !== JSON.stringify(b)) diff[name] = [a, b];
  }
  return diff;
}

interface Resolved {
  readonly tenant: TenantData;
  readonly entity: EntitySpec;
  readonly restriction: RowRestriction | undefined;
  /** Whether the caller may read the entity: a writer who may not gets back only the key and version it wrote. */
  readonly readable: boolean;
}

export class EntityService {
  constructor(private readonly deps: EntityDeps) {}

  async schema(caller: EntityCaller): Promise<CallerSchema> {
    const tenant = await this.deps.tenantData(caller.tenantId);
    const entities: Record<string, CallerSchema['entities'][string]> = {};
    for (const [name, spec] of Object.entries(tenant.schema.entities)) {
      const own = ruleOf(tenant.rules, name);
      const rule = own === undefined ? undefined : applicableRule(own, spec);
      const canRead = rule !== undefined && caller.roles.some((r) => rule.readRoles.includes(r));
      const canWrite = rule !== undefined && caller.roles.some((r) => rule.writeRoles.includes(r));
      if (!canRead && !canWrite) continue;
      const fields: EntitySpec['fields'] = Object.fromEntries(
        fieldNames(spec).map((f) => {
          const field = spec.fields[f] as FieldSpec;
          // `hasDefault`: a create may leave the field out (a form must not demand it; until 2026-12-03 it was not
          // told, and the demo could not create a ticket without `opened_at`, which defaults to now()).
          return [
            f,
            { type: field.type, nullable: field.nullable, ...(field.hasDefault === true && { hasDefault: true }) },
          ];
        }),
      );
      entities[name] = { primaryKey: spec.primaryKey, fields, canRead, canWrite };
    }
    return { entities };
  }

  private async resolve(caller: EntityCaller, entityName: string, mode: 'read' | 'write'): Promise<Resolved> {
    const tenant = await this.deps.tenantData(caller.tenantId);
    const entity = entityOf(tenant.schema, entityName);
    const rule = applicableRule(ruleFor(tenant.rules, entityName), entity);
    if (mode === 'read') assertCanRead(rule, caller, entityName);
    else assertCanWrite(rule, caller, entityName);
    return { tenant, entity, restriction: rowRestriction(rule, caller), readable: canRead(rule, caller) };
  }

  /** `rawQuery`: `limit`, `cursor` and `<field>=<value>` equality filters, validated against the entity. */
  async list(
    caller: EntityCaller,
    entityName: string,
    rawQuery: Readonly<Record<string, string | undefined>>,
  ): Promise<{ items: EntityRow[]; nextCursor: string | null }> {
    const { tenant, entity, restriction } = await this.resolve(caller, entityName, 'read');
    const query = parseListQuery(entity, entityName, rawQuery);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, entityName);
    if (after !== undefined) parseUrlValue(entity, entityName, entity.primaryKey, String(after));
    const statement = listStatement({
      table: entityName,
      entity,
      filters: query.filters,
      ...(after !== undefined && { after }),
      ...(restriction !== undefined && { restriction }),
    });
    // One row more than the page, to know whether another follows; fewer when big rows pass the Data API's 1 MiB
    // result (until 2026-12-03 a list of three 200 KB rows answered 413 at any limit the client could guess).
    const { rows, limit } = await this.deps.data.executePaged(tenant.db, statement.sql, statement.params, {
      limit: query.limit + 1,
    });
    const items = rows.map((r) => listItem(r, entity));
    // Asked for a single row, it cannot tell whether more follow: a cursor after it, whose page may be empty.
    const page = limit > 1 ? limit - 1 : 1;
    const more = limit > 1 ? items.length > page : items.length === 1;
    if (items.length > page) items.length = page;
    const last = items.at(-1);
    return { items, nextCursor: more && last !== undefined ? encodeCursor(entityName, last[entity.primaryKey]) : null };
  }

  async get(caller: EntityCaller, entityName: string, rawId: string): Promise<EntityRow> {
    const { tenant, entity, restriction } = await this.resolve(caller, entityName, 'read');
    const id = parseUrlValue(entity, entityName, entity.primaryKey, rawId);
    const statement = getStatement(entityName, entity, id, restriction);
    const { rows } = await this.deps.data.execute(tenant.db, statement.sql, statement.params);
    const row = parseRow(rows[0], () => `${entityName} '${rawId}'`);
    if (row === undefined) throw new NotFoundError(`no ${entityName} '${rawId}'`);
    return row;
  }

  /**
   * A page of a key's change log, oldest first: `limit` (default 100) versions after `cursor`, each shown only to
   * whoever could see the row at that version (docs/entities.md, "Change log and row filters"), so a key deleted
   * and created again by someone else keeps its histories apart. Versions the caller may not see are skipped, not
   * given as an empty page. NOT_FOUND when the caller may see none of them, as far as one request reads.
   */
  async changes(
    caller: EntityCaller,
    entityName: string,
    rawId: string,
    rawQuery: Readonly<Record<string, string | undefined>> = {},
  ): Promise<{ items: ChangeEntry[]; nextCursor: string | null }> {
    const { tenant, entity, restriction } = await this.resolve(caller, entityName, 'read');
    const id = parseUrlValue(entity, entityName, entity.primaryKey, rawId);
    const key = String(id);
    const query = parseChangesQuery(rawQuery);
    const first = query.cursor === undefined ? 0 : decodeChangesCursor(query.cursor, entityName, key);
    const items: ChangeEntry[] = [];
    let after = first;
    let more = true;
    let reads = 0;
    let bytes = 0;
    // Hidden versions are read past in pages of at least CHANGES_SCAN, so a small `limit` does not shrink how far.
    for (; more && items.length < query.limit && reads < CHANGES_READS; reads++) {
      const want = Math.max(query.limit - items.length, CHANGES_SCAN);
      const page = await this.changesPage(tenant.db, entityName, entity, id, after, want, restriction);
      const room = query.limit - items.length;
      let taken = 0;
      for (const entry of page.visible.slice(0, room)) {
        const size = responseBytes(entry);
        if (bytes + size > CHANGES_RESPONSE_BYTES) break;
        items.push(entry);
        bytes += size;
        taken++;
      }
      if (taken < page.visible.length) {
        // More than the page takes (by count or bytes): the cursor goes after the last one given, the rest come next.
        after = items.at(-1)?.version ?? after;
        more = true;
        break;
      }
      after = page.last;
      more = page.more;
    }
    // Nothing to show from the start, as far as this request read: NOT_FOUND, as for a key that never existed (an
    // empty page with a cursor would tell that it has a history someone else may see).
    if (items.length === 0 && first === 0) throw new NotFoundError(`no ${entityName} '${rawId}'`);
    return { items, nextCursor: more ? encodeChangesCursor(entityName, key, after) : null };
  }

  /**
   * Up to `want` versions after `after` (fewer if they pass the Data API's 1 MiB result), those the caller sees, the
   * last version read and whether more follow.
   */
  private async changesPage(
    db: DatabaseRef,
    entityName: string,
    entity: EntitySpec,
    id: unknown,
    after: number,
    want: number,
    restriction: RowRestriction | undefined,
  ): Promise<{ visible: ChangeEntry[]; last: number; more: boolean }> {
    const statement = changesStatement(entityName, entity, id, after, {
      diffBytes: CHANGE_DIFF_BYTES,
      valueBytes: CHANGE_VALUE_BYTES,
      imageBytes: IMAGE_VALUE_BYTES,
      ...(restriction !== undefined && { filter: { table: entityName, entity, id, column: restriction.column } }),
    });
    const result = await this.deps.data.executePaged(db, statement.sql, statement.params, { limit: want + 1 });
    // One row more than wanted tells whether more follow; asked for a single row, it cannot tell.
    const size = result.limit > 1 ? result.limit - 1 : 1;
    const more = result.limit > 1 ? result.rows.length > size : result.rows.length === 1;
    const entries: ChangeEntry[] = result.rows.map((r) => ({
      version: Number(r.version),
      op: r.op as ChangeOp,
      changedBy: String(r.changed_by),
      changedAt: String(r.changed_at),
      diff: JSON.parse(String(r.diff)) as Diff,
      ...(typeof r.omitted === 'string' && { omitted: JSON.parse(r.omitted) as string[] }),
    }));
    const items = entries.slice(0, size);
    const last = items.at(-1)?.version ?? after;
    if (restriction === undefined || items.length === 0) return { visible: items, last, more };
    // The row filter's column as each version left it: the current row's, with the later changes undone (read with
    // the page, on its first row). A version is judged through at most LATER_CHANGES_MAX later changes that can move
    // the row, whatever the page's size: past them it is unknown, and not shown.
    const column = restriction.column;
    const head = result.rows[0];
    const later = parseLater(head?.later);
    const oldestFirst = (later ?? []).map(([op, diff]) => ({ op, diff })).reverse();
    const end = later === undefined ? undefined : rowBefore(oldestFirst, parseImage(head?.current));
    // Every row read is undone, the one read past the page too: the page's images come after it.
    const judged = result.rows.map((r, i) => ({
      op: (entries[i] as ChangeEntry).op,
      diff: JSON.parse(String(r.image_diff)) as Diff,
    }));
    const images = versionImages(judged, end);
    const movesAfter: number[] = new Array(judged.length);
    let moves = later?.length ?? LATER_CHANGES_MAX + 1;
    for (let i = judged.length - 1; i >= 0; i--) {
      movesAfter[i] = moves;
      const { op, diff } = judged[i] as { op: ChangeOp; diff: Diff };
      if (op !== 'update' || Object.hasOwn(diff, column)) moves++;
    }
    const visible = items.flatMap((item, i) => {
      const image = images[i] as EntityRow;
      if ((movesAfter[i] as number) > LATER_CHANGES_MAX || !rowVisible(restriction, image)) return [];
      if (item.op !== 'update') return [item];
      // The row before this version: the image with the values the version replaced.
      const replaced = Object.entries((judged[i] as { diff: Diff }).diff).map(([k, [old]]) => [k, old]);
      const previous = { ...image, ...Object.fromEntries(replaced) };
      return rowVisible(restriction, previous) ? [item] : [withBeforeHidden(item)];
    });
    return { visible, last, more };
  }

  async create(caller: EntityCaller, entityName: string, body: unknown): Promise<EntityRow> {
    const { tenant, entity, restriction, readable } = await this.resolve(caller, entityName, 'write');
    const values = parseCreate(entity, entityName, body);
    if (restriction !== undefined) {
      const column = restriction.column;
      if (values[column] === undefined && restriction.anyOf.length === 1) values[column] = restriction.anyOf[0];
      if (!rowVisible(restriction, values)) {
        throw new ForbiddenError(`field '${column}' of entity '${entityName}' must be one of your own values`);
      }
    }
    try {
      const row = await this.write(tenant, entityName, entity, caller, 'insert', async (tx) => {
        const checks = writeChecks(tenant, caller, entity, restriction);
        const inserted = await one(tx, insertStatement(entityName, entity, values, checks), entityName, checks);
        // A key that existed before (deleted, then created again) continues its version sequence, so change ids
        // stay unique; `changes` keeps the histories apart by the row filter.
        const lastVersion = lastVersionStatement(entityName, entity, inserted[entity.primaryKey]);
        const last = await tx.execute(lastVersion.sql, lastVersion.params);
        return { before: undefined, after: inserted, version: Number(last.rows[0]?.version ?? 0) + 1 };
      });
      return readable ? row : keyAndVersion(entity, row);
    } catch (err) {
      throw await this.hiddenConflict(err, tenant, entityName, entity, restriction, values);
    }
  }

  /**
   * A create whose key is taken by a row outside the caller's row filter answers NOT_FOUND, as every other
   * operation on that row does, rather than a CONFLICT that would confirm the row exists. Other errors pass.
   */
  private async hiddenConflict(
    err: unknown,
    tenant: TenantData,
    entityName: string,
    entity: EntitySpec,
    restriction: RowRestriction | undefined,
    values: Readonly<Record<string, unknown>>,
  ): Promise<unknown> {
    const key = values[entity.primaryKey];
    if (!(err instanceof ConflictError || (err as { code?: string }).code === 'CONFLICT')) return err;
    if (restriction === undefined || key === undefined) return err;
    // Which row holds the key, whoever may see it: none means the conflict is on another unique field, whose values,
    // like a client-chosen key, cannot be hidden (docs/entities.md); answering "no <entity> '<key>'" would name the
    // wrong row.
    const get = getStatement(entityName, entity, key, undefined);
    const { rows } = await this.deps.data.execute(tenant.db, get.sql, get.params);
    if (rows[0] === undefined) return err;
    // A holder too big to read cannot be judged: its key is not confirmed.
    const holder = typeof rows[0].row === 'string' ? parseRow(rows[0], () => 'the holder') : undefined;
    if (holder !== undefined && rowVisible(restriction, holder)) return err;
    return new NotFoundError(`no ${entityName} '${String(key)}'`);
  }

  async update(
    caller: EntityCaller,
    entityName: string,
    rawId: string,
    body: unknown,
    ifMatch: number | undefined,
  ): Promise<EntityRow> {
    const { tenant, entity, restriction, readable } = await this.resolve(caller, entityName, 'write');
    const id = parseUrlValue(entity, entityName, entity.primaryKey, rawId);
    const values = parseUpdate(entity, entityName, body);
    if (restriction !== undefined && Object.hasOwn(values, restriction.column) && !rowVisible(restriction, values)) {
      throw new ForbiddenError(
        `field '${restriction.column}' of entity '${entityName}' must be one of your own values`,
      );
    }
    const row = await this.write(tenant, entityName, entity, caller, 'update', async (tx) => {
      const before = await locked(tx, entityName, entity, id, restriction, rawId, ifMatch);
      const checks = writeChecks(tenant, caller, entity, restriction, true);
      const after = await one(tx, updateStatement(entityName, entity, id, values, checks), entityName, checks);
      return { before, after, version: versionOf(before) + 1 };
    });
    return readable ? row : keyAndVersion(entity, row);
  }

  async remove(caller: EntityCaller, entityName: string, rawId: string, ifMatch: number | undefined): Promise<void> {
    const { tenant, entity, restriction } = await this.resolve(caller, entityName, 'write');
    const id = parseUrlValue(entity, entityName, entity.primaryKey, rawId);
    await this.write(tenant, entityName, entity, caller, 'delete', async (tx) => {
      const before = await locked(tx, entityName, entity, id, restriction, rawId, ifMatch);
      const statement = deleteStatement(entityName, entity, id);
      await tx.execute(statement.sql, statement.params);
      return { before, after: undefined, version: versionOf(before) + 1 };
    });
  }

  /** Runs the write and its change-log row in one transaction, then publishes the change event. */
  private async write(
    tenant: TenantData,
    entityName: string,
    entity: EntitySpec,
    caller: EntityCaller,
    op: ChangeOp,
    work: (
      tx: Transaction,
    ) => Promise<{ before: EntityRow | undefined; after: EntityRow | undefined; version: number }>,
  ): Promise<EntityRow> {
    const result = await this.deps.data.transaction(tenant.db, async (tx) => {
      const { before, after, version } = await work(tx);
      const image: EntityRow = { ...(after ?? before), [VERSION_COLUMN]: version };
      const change = {
        entity: entityName,
        id: image[entity.primaryKey],
        version,
        op,
        changedBy: caller.userId,
        diff: diffRows(entity, before, after),
      };
      const statement = insertChangeStatement(entity, change);
      const logged = await tx.execute(statement.sql, statement.params);
      return { row: image, change: { ...change, key: String(logged.rows[0]?.key) } };
    });
    const event: ChangeEvent = {
      tenantId: caller.tenantId,
      entity: entityName,
      key: result.change.key,
      version: result.change.version,
    };
    try {
      await this.deps.publish([event]);
      const mark = markPublishedStatement([event]);
      await this.deps.data.execute(tenant.db, mark.sql, mark.params);
    } catch (err) {
      // Committed but not (known to be) published: the outbox relay sends it. Never fails the request.
      this.deps.onPublishError?.(err, [event]);
    }
    return result.row;
  }
}

/**
 * The row a write returns; TOO_LARGE (the transaction rolls back) when it is too big to read back, and what a failed
 * check of `checks` answers (write-checks.ts).
 */
async function one(
  tx: Transaction,
  statement: { sql: string; params: Parameters<Transaction['execute']>[1] },
  entityName: string,
  checks: WriteChecks = {},
): Promise<EntityRow> {
  const { rows } = await tx.execute(statement.sql, statement.params);
  assertChecksHeld(rows[0], checks, entityName);
  const row = parseRow(rows[0], () => `the ${entityName} row as written`);
  if (row === undefined) throw new Error('statement returned no row');
  return row;
}

/** The row, locked, within the caller's restriction; NOT_FOUND if missing, CONFLICT if `If-Match` is stale. */
async function locked(
  tx: Transaction,
  entityName: string,
  entity: EntitySpec,
  id: unknown,
  restriction: RowRestriction | undefined,
  rawId: string,
  ifMatch: number | undefined,
): Promise<EntityRow> {
  const statement = getStatement(entityName, entity, id, restriction, true);
  const { rows } = await tx.execute(statement.sql, statement.params);
  const row = parseRow(rows[0], () => `${entityName} '${rawId}'`);
  if (row === undefined) throw new NotFoundError(`no ${entityName} '${rawId}'`);
  if (ifMatch !== undefined && versionOf(row) !== ifMatch) {
    throw new ConflictError(`${entityName} '${rawId}' is at version ${versionOf(row)}, not ${ifMatch}`);
  }
  return row;
}

/** What a writer without a read role gets back from its write: the row's key and version, none of its values. */
function keyAndVersion(entity: EntitySpec, row: EntityRow): EntityRow {
  return { [entity.primaryKey]: row[entity.primaryKey], [VERSION_COLUMN]: row[VERSION_COLUMN] };
}

/** A change-log entry without the values it replaced (each given as null). */
function withBeforeHidden(item: ChangeEntry): ChangeEntry {
  const diff = Object.fromEntries(Object.entries(item.diff).map(([k, [, value]]) => [k, [null, value]]));
  return { ...item, diff: diff as ChangeEntry['diff'], beforeHidden: true };
}

/**
 * The row each change-log entry is about, as the live feed judges it: the row after an insert or update, the row
 * as it was for a delete. Rebuilt backwards from the current row (undefined once deleted) through the diffs, so
 * fields a change did not touch (such as the row filter's column) are known even for rows first written outside
 * the API. An insert starts a history: nothing before it belongs to the same row.
 */
export function versionImages(
  items: readonly Pick<ChangeEntry, 'op' | 'diff'>[],
  current: EntityRow | undefined,
): EntityRow[] {
  return walkBack(items, current).images;
}

/**
 * The row as it was before `items` (oldest first): `current` (undefined once deleted) with each change undone, newest
 * first, as `versionImages` does; undefined when the oldest is an insert (nothing before it is the same row).
 */
export function rowBefore(
  items: readonly Pick<ChangeEntry, 'op' | 'diff'>[],
  current: EntityRow | undefined,
): EntityRow | undefined {
  return walkBack(items, current).before;
}

/** `current` with `items` undone, newest first: each item's image (`versionImages`) and the row before them all. */
function walkBack(
  items: readonly Pick<ChangeEntry, 'op' | 'diff'>[],
  current: EntityRow | undefined,
): { images: EntityRow[]; before: EntityRow | undefined } {
  const images: EntityRow[] = new Array(items.length);
  let after: EntityRow | undefined = current;
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as Pick<ChangeEntry, 'op' | 'diff'>;
    const before: EntityRow = item.op === 'delete' ? {} : { ...after };
    for (const [field, [old]] of Object.entries(item.diff)) before[field] = old;
    images[i] = item.op === 'delete' ? before : { ...after };
    after = item.op === 'insert' ? undefined : before;
  }
  return { images, before: after };
}

function parseImage(text: unknown): EntityRow | undefined {
  return typeof text === 'string' ? (JSON.parse(text) as EntityRow) : undefined;
}
