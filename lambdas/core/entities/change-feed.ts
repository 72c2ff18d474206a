/**
 * The live change feed's producer: change events `{tenantId, entity, key, version}` in, one delivery message per
 * change out (group `entity:<name>`), each with the audience its row allows (./access.ts), for the ordered delivery
 * engine to filter members by. Events are grouped per tenant and entity, and each group is read with one query.
 */
import { createHash } from 'node:crypto';
import { limits } from '../../manifest.ts';
import type { Audience } from '../audience.ts';
import type { Row } from '../data-api.ts';
import { DELIVERY_MESSAGE_BYTES, type DeliveryMessage, oversizeDeliveryMessage } from '../delivery.ts';
import { TenantcastError } from '../errors.ts';
import { isPermanent } from '../poison.ts';
import { publishDataProblem } from '../publish-data.ts';
import { applicableRule, audienceFor, ruleFor } from './access.ts';
import type { ChangeEvent } from './events.ts';
import { type EntityDeps, IMAGE_VALUE_BYTES, rowBefore } from './service.ts';
import { feedStatement, parseLater } from './sql.ts';
import { entityOf } from './validation.ts';

export interface ChangeFeedDeps {
  readonly data: EntityDeps['data'];
  readonly tenantData: EntityDeps['tenantData'];
  /** Puts messages on the delivery queue (in the order given). */
  readonly enqueue: (messages: readonly DeliveryMessage[]) => Promise<void>;
  readonly now: () => number;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
  /**
   * A change that can never be delivered (its message would pass the delivery queue's size): the event is set aside
   * (the handler puts its record in the dead-letter queue) and the batch goes on without it.
   */
  readonly setAside: (event: ChangeEvent, reason: string) => Promise<void>;
}

/**
 * Feeds each unit (one tenant's entity: one query). A unit that fails for a reason no retry changes (a request AWS
 * refuses as such, lambdas/core/poison.ts) is fed again change by change, so one change that can never succeed does
 * not hold back the others, and a change that fails so alone is set aside at once. `feed` gets the set-aside to use
 * (for a change it finds undeliverable): each change is set aside once, however often its unit is fed. Returns the
 * changes to retry (their unit, or they alone, failed for a reason that may pass); `failed` hears of every failure.
 */
export async function feedUnits(
  units: Iterable<readonly ChangeEvent[]>,
  ports: {
    readonly feed: (events: readonly ChangeEvent[], setAside: ChangeFeedDeps['setAside']) => Promise<void>;
    readonly setAside: ChangeFeedDeps['setAside'];
    readonly failed: (events: readonly ChangeEvent[], err: unknown) => void;
  },
): Promise<ChangeEvent[]> {
  const setAsideKeys = new Set<string>();
  const setAsideOnce: ChangeFeedDeps['setAside'] = async (event, reason) => {
    const key = JSON.stringify([event.tenantId, event.entity, event.key, event.version]);
    if (setAsideKeys.has(key)) return;
    // Remembered once it is set aside: a set-aside that failed is tried again (or fails the batch, redelivered).
    await ports.setAside(event, reason);
    setAsideKeys.add(key);
  };
  const retry: ChangeEvent[] = [];
  const attempt = async (events: readonly ChangeEvent[]): Promise<void> => {
    try {
      await ports.feed(events, setAsideOnce);
    } catch (err) {
      ports.failed(events, err);
      const [only] = events;
      if (!isPermanent(err)) retry.push(...events);
      else if (events.length > 1 || only === undefined) for (const event of events) await attempt([event]);
      else
        await setAsideOnce(only, `refused for good: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500));
    }
  };
  for (const events of units) await attempt(events);
  return retry;
}

/**
 * Deterministic per change, so a redelivered event produces the same message and the delivery queue dedupes it: its
 * key, version and commit time (`changedAt`, ms, from the change log). The time tells apart a version number used
 * again by a database that forgot its log (restored from a backup, or locally a restart without DATA_DIR): until
 * 2026-12-04 such a change had the id of the one before, which SQS (within 5 minutes) and every client that had seen
 * it (the SDK drops an id it saw) dropped (found by a newcomer's pass: the demo's live edits stopped after a restart).
 */
export function changeMessageId(event: ChangeEvent, changedAt: string): string {
  // The time in base 36 (8 characters until 2059), so a UUID-keyed change's id stays readable (under 64).
  const at = Date.parse(changedAt);
  const plain = `chg:${event.tenantId}:${event.entity}:${event.key}:${event.version}:${Number.isFinite(at) ? at.toString(36) : changedAt}`;
  if (plain.length <= 64) return plain;
  return `chg:${createHash('sha256').update(plain).digest('base64url')}`;
}

/** The audience in the delivery engine's terms (its lists must not be empty); undefined: nobody may see it. */
function deliverable(audience: ReturnType<typeof audienceFor>): Audience | undefined {
  const { rules } = audience;
  const roles = audience.roles ?? [];
  // Nobody may read the entity: the change goes to nobody (a bypass role lifts the row filter, not the read roles).
  if (roles.length === 0) return undefined;
  if (audience.claim === undefined) return { roles, rules };
  const bypass = audience.bypassRoles ?? [];
  // No row value to match (an empty claim list) and no bypass role: nobody may see the row.
  if (audience.claim.anyOf.length === 0 && bypass.length === 0) return undefined;
  return { roles, ...(bypass.length > 0 && { bypassRoles: bypass }), claim: audience.claim, rules };
}

/**
 * The change with its row inline when it meets the rules of published data (at most `limits.changeRowBytes`, nesting,
 * keys, numbers: lambdas/core/publish-data.ts), else announced without it (`row: null, rowOmitted: true`): the
 * subscriber reads the row with `GET /v1/entities/<entity>/<key>` (docs/entities.md, "Live feed"). A row can be far
 * bigger than a frame (API Gateway refuses posts over 128 KB) or hold JSON a message may not.
 */
function withinPublishRules<D extends { row: Record<string, unknown> | null }>(
  data: D,
  ids: { tenantId: string; entity: string; key: string },
  log: ChangeFeedDeps['log'],
): D | (D & { rowOmitted: true }) {
  if (data.row === null) return data;
  const rowBytes = Buffer.byteLength(JSON.stringify(data.row), 'utf8');
  const problem = rowBytes > limits.changeRowBytes ? `row is ${rowBytes} bytes` : publishDataProblem(data)?.message;
  if (problem === undefined) return data;
  log?.('change announced without its row', { ...ids, reason: problem });
  return { ...data, row: null, rowOmitted: true };
}

type ChangeOp = 'insert' | 'update' | 'delete';
/** A change-log diff: per field, its value before and after (the feed reads only its image fields). */
type Diff = Record<string, [unknown, unknown]>;

/**
 * The row as a version left it (the image fields only), which decides who may see the version, as the change log
 * decides it (`versionImages`, ./service.ts): `current` (the row now; undefined once deleted) with the changes after
 * the version undone, newest first. A delete shows its last values. An insert or update whose row is gone without a
 * logged delete is judged by the values it wrote (a field it did not write is unknown, so a row filter on it matches
 * nobody but the bypass roles). Until 2026-12-03 every version was judged by the row as it is now: the new owner of a
 * reassigned row, or whoever created a deleted key again, was sent the earlier versions.
 */
export function imageAt(
  op: ChangeOp,
  diff: Diff,
  current: Record<string, unknown> | undefined,
  later: readonly (readonly [ChangeOp, Diff])[],
): Record<string, unknown> {
  if (op === 'delete') return rowBefore([{ op, diff }], undefined) ?? {};
  const oldestFirst = later.map(([laterOp, laterDiff]) => ({ op: laterOp, diff: laterDiff })).reverse();
  return (
    rowBefore(oldestFirst, current) ??
    Object.fromEntries(Object.entries(diff).map(([field, [, value]]) => [field, value]))
  );
}

/**
 * The feed's rows of `changes`, read together, or one change at a time when together they pass the Data API's
 * 1 MiB result (each is bounded: `feedStatement`); a change that still does not fit alone is set aside.
 */
async function readEach(
  changes: readonly ChangeEvent[],
  read: (changes: readonly ChangeEvent[]) => Promise<Row[]>,
  deps: ChangeFeedDeps,
): Promise<Row[]> {
  const tooLarge = (err: unknown) => err instanceof TenantcastError && err.code === 'TOO_LARGE';
  if (changes.length > 1) {
    try {
      return await read(changes);
    } catch (err) {
      if (!tooLarge(err)) throw err;
    }
  }
  const rows: Row[] = [];
  for (const change of changes) {
    try {
      rows.push(...(await read([change])));
    } catch (err) {
      if (!tooLarge(err)) throw err;
      await deps.setAside(
        change,
        `the change cannot be read within the Data API's 1 MiB result: ${(err as Error).message}`,
      );
    }
  }
  return rows;
}

function groupKey(e: ChangeEvent): string {
  return `${e.tenantId}\u0000${e.entity}`;
}

/** The events of each tenant's entity, each version once. */
function eventsByEntity(events: readonly ChangeEvent[]): Map<string, ChangeEvent[]> {
  const groups = new Map<string, ChangeEvent[]>();
  for (const event of events) {
    const list = groups.get(groupKey(event)) ?? [];
    if (!list.some((e) => e.key === event.key && e.version === event.version)) list.push(event);
    groups.set(groupKey(event), list);
  }
  return groups;
}

/** One tenant's entity, as its changes are read and announced. */
interface EntityFeed {
  readonly tenantId: string;
  readonly entityName: string;
  readonly tenant: Awaited<ReturnType<ChangeFeedDeps['tenantData']>>;
  readonly entity: ReturnType<typeof entityOf>;
  readonly rule: ReturnType<typeof applicableRule>;
}

/** The entity the events are of, or undefined (logged) when its tenant or entity no longer exists. */
async function entityFeedOf(group: readonly ChangeEvent[], deps: ChangeFeedDeps): Promise<EntityFeed | undefined> {
  const { tenantId, entity: entityName } = group[0] as ChangeEvent;
  try {
    const tenant = await deps.tenantData(tenantId);
    const entity = entityOf(tenant.schema, entityName);
    const rule = applicableRule(ruleFor(tenant.rules, entityName), entity);
    return { tenantId, entityName, tenant, entity, rule };
  } catch (err) {
    deps.log?.('change events dropped', {
      tenantId,
      entity: entityName,
      count: group.length,
      reason: (err as Error).message,
    });
    return undefined;
  }
}

/** The change-log rows of `changes`, each with what the feed needs of its row (`feedStatement`). */
async function readFeedRows(feed: EntityFeed, changes: readonly ChangeEvent[], deps: ChangeFeedDeps): Promise<Row[]> {
  const { entityName, entity } = feed;
  const filterColumn = feed.rule.rowFilter?.column;
  const statement = feedStatement(entityName, entityName, entity, changes, {
    // The exact check is `withinPublishRules`'; jsonb's text is a little longer than JSON.stringify's.
    rowBytes: 2 * limits.changeRowBytes,
    imageFields: [...new Set([entity.primaryKey, ...(filterColumn === undefined ? [] : [filterColumn])])],
    valueBytes: IMAGE_VALUE_BYTES,
    ...(filterColumn !== undefined && { filterColumn }),
  });
  return (await deps.data.execute(feed.tenant.db, statement.sql, statement.params)).rows;
}

/**
 * Builds the messages of a batch; events whose tenant, entity or change-log row no longer exists are dropped (and
 * logged). Throws on database failure, so the batch is retried.
 */
export async function produceChangeMessages(
  events: readonly ChangeEvent[],
  deps: ChangeFeedDeps,
): Promise<DeliveryMessage[]> {
  const messages: DeliveryMessage[] = [];
  for (const group of eventsByEntity(events).values()) {
    const feed = await entityFeedOf(group, deps);
    if (feed === undefined) continue;
    const rows = await readEach(group, (changes) => readFeedRows(feed, changes, deps), deps);
    for (const r of rows) {
      const message = await changeMessage(feed, r, deps);
      if (message !== undefined) messages.push(message);
    }
    if (rows.length < group.length) {
      deps.log?.('change events without a change-log row', {
        tenantId: feed.tenantId,
        entity: feed.entityName,
        missing: group.length - rows.length,
      });
    }
  }
  return messages;
}

/**
 * The message of one change-log row, or undefined when no one may receive it, or when it is too big for the delivery
 * queue (set aside).
 */
async function changeMessage(feed: EntityFeed, r: Row, deps: ChangeFeedDeps): Promise<DeliveryMessage | undefined> {
  const { tenantId, entityName, entity, rule } = feed;
  const op = String(r.op) as ChangeOp;
  const exists = r.row_exists === true && op !== 'delete';
  const later = parseLater(r.later);
  const current = exists && typeof r.image === 'string' ? (JSON.parse(r.image) as Record<string, unknown>) : undefined;
  // Past LATER_CHANGES_MAX later changes (or LATER_BYTES of them) the row as the version left it is unknown: only
  // bypass roles see it.
  const image = later === undefined ? {} : imageAt(op, JSON.parse(String(r.diff)) as Diff, current, later);
  // The row as it is now is the version's only while nothing since moved it between audiences; else the
  // subscriber reads it with its own rights (a key deleted and created again by someone else, a reassigned row).
  const full =
    exists && later?.length === 0 && typeof r.row === 'string'
      ? (JSON.parse(r.row) as Record<string, unknown>)
      : undefined;
  const omitted = exists && full === undefined;
  if (omitted) {
    deps.log?.('change announced without its row', {
      tenantId,
      entity: entityName,
      key: String(r.key),
      reason:
        later?.length === 0
          ? `row is over ${2 * limits.changeRowBytes} bytes`
          : 'the row moved between audiences since',
    });
  }
  const audience = deliverable(audienceFor(rule, image));
  if (audience === undefined) return undefined;
  const event: ChangeEvent = { tenantId, entity: entityName, key: String(r.key), version: Number(r.version) };
  const data = {
    op,
    entity: entityName,
    key: image[entity.primaryKey] ?? current?.[entity.primaryKey] ?? event.key,
    version: event.version,
    row: full ?? null,
    changedBy: String(r.changed_by),
    changedAt: String(r.changed_at),
  };
  const message: DeliveryMessage = {
    v: 1,
    id: changeMessageId(event, String(r.changed_at)),
    tenantId,
    group: `entity:${entityName}`,
    data: omitted
      ? { ...data, rowOmitted: true as const }
      : withinPublishRules(data, { tenantId, entity: entityName, key: event.key }, deps.log),
    from: String(r.changed_by),
    ts: deps.now(),
    audience,
  };
  // The row is bounded (`withinPublishRules`), but not the audience's row-filter value or the writer's name: a
  // message the delivery queue refuses failed the whole batch, other tenants' changes with it, on every retry
  // (until 2026-12-03). Such a change is set aside alone; the change log still has it.
  const bytes = oversizeDeliveryMessage(message);
  if (bytes !== undefined) {
    await deps.setAside(event, `change message is ${bytes} bytes, over ${DELIVERY_MESSAGE_BYTES}`);
    return undefined;
  }
  return message;
}
