/**
 * The outbox relay: the change log is the outbox. A write publishes its change event right after its commit and
 * marks the row published; if that failed (queue unreachable, function cut off), the row stays unpublished and
 * the relay sends it here, oldest first. Events are idempotent downstream (deterministic message ids), so a row
 * published twice (the writer's mark lost, or a race with the relay) is delivered once.
 */
import type { ChangeEvent } from './events.ts';
import type { EntityDeps } from './service.ts';
import { markPublishedStatement, unpublishedStatement } from './sql.ts';

export interface OutboxRelayDeps {
  readonly data: EntityDeps['data'];
  readonly tenantData: EntityDeps['tenantData'];
  readonly publish: EntityDeps['publish'];
  /** Every tenant with a database. */
  readonly tenantIds: () => Promise<readonly string[]>;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

export interface RelayOptions {
  /** Leave changes younger than this to their writer. @default 5 */
  readonly graceSeconds?: number;
  /** Rows per query. @default 100 */
  readonly pageSize?: number;
  /** Pages per tenant per run. @default 10 */
  readonly maxPages?: number;
  /** The invocation's time left (ms): no tenant is started with less than `reserveMs` of it. @default unlimited */
  readonly remainingMs?: () => number;
  /** @default 10_000 */
  readonly reserveMs?: number;
  /**
   * Which tenant of the list a run starts with (taken modulo its length; the handler passes the minute), so the
   * tenants a run had no time for come first in a later one. @default 0
   */
  readonly startAt?: number;
}

export interface RelayResult {
  readonly published: number;
  /** Tenants whose relay failed (logged); the next run retries them. */
  readonly failedTenants: readonly string[];
  /** Tenants this run had no time left for (the run's start rotates, so a later run starts with them). */
  readonly skippedTenants: number;
}

export async function relayUnpublished(deps: OutboxRelayDeps, options: RelayOptions = {}): Promise<RelayResult> {
  const graceSeconds = options.graceSeconds ?? 5;
  const pageSize = options.pageSize ?? 100;
  const maxPages = options.maxPages ?? 10;
  let published = 0;
  const failedTenants: string[] = [];
  const all = await deps.tenantIds();
  // Rotated, and bounded by the time left: with many tenants, or slow databases (a paused cluster answers only after
  // it resumes), a run in a fixed order that ran out of time never reached the same tail (until 2026-12-03).
  const first = all.length === 0 ? 0 : (((options.startAt ?? 0) % all.length) + all.length) % all.length;
  const order = [...all.slice(first), ...all.slice(0, first)];
  const reserveMs = options.reserveMs ?? 10_000;
  let skippedTenants = 0;
  for (const [index, tenantId] of order.entries()) {
    if (options.remainingMs !== undefined && options.remainingMs() < reserveMs) {
      skippedTenants = order.length - index;
      deps.log?.('outbox relay out of time', { skippedTenants, next: tenantId });
      break;
    }
    try {
      const tenant = await deps.tenantData(tenantId);
      for (let page = 0; page < maxPages; page++) {
        const query = unpublishedStatement(graceSeconds, pageSize);
        const { rows } = await deps.data.execute(tenant.db, query.sql, query.params);
        if (rows.length === 0) break;
        const events: ChangeEvent[] = rows.map((r) => ({
          tenantId,
          entity: String(r.entity),
          key: String(r.key),
          version: Number(r.version),
        }));
        await deps.publish(events);
        const mark = markPublishedStatement(events);
        await deps.data.execute(tenant.db, mark.sql, mark.params);
        published += events.length;
        if (rows.length < pageSize) break;
      }
    } catch (err) {
      failedTenants.push(tenantId);
      deps.log?.('outbox relay failed for tenant', { tenantId, error: (err as Error).message });
    }
  }
  return { published, failedTenants, skippedTenants };
}
