/**
 * Usage metering per tenant and day (docs/security.md, "Usage metering"): connections opened, connection-minutes,
 * frames in, deliveries out, entity reads and writes.
 *
 * One item per tenant and UTC day, `pk = T#<tenant>#USAGE`, `sk = <yyyy-mm-dd>`, its counters updated with `ADD`.
 * A function counts in memory during an invocation and flushes once at its end: one UpdateItem per tenant and day
 * per invocation. `ADD` is not idempotent, so a retried invocation may count twice: metering is at-least-once,
 * like delivery.
 */
import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BadRequestError } from './errors.ts';
import type { ServerFrame } from './protocol.ts';

export const usageCounters = [
  'connections',
  'connectionMinutes',
  'messagesIn',
  'deliveriesOut',
  'entityReads',
  'entityWrites',
] as const;
export type UsageCounter = (typeof usageCounters)[number];

export type UsageDay = { readonly day: string } & Readonly<Record<UsageCounter, number>>;

/**
 * Whether the message handler meters a frame it answered as `messagesIn`: every frame but an accepted publish (the
 * only ack carrying a message id). An accepted publish is metered by the broadcaster as it sequences the message,
 * in the one write per invocation it makes for its runs' deliveries anyway (lambdas/handlers/broadcaster.ts), so a
 * published message costs no usage write of its own: docs/security.md, "Usage metering".
 */
export function meteredOnArrival(answer: ServerFrame): boolean {
  return !(answer.type === 'ack' && answer.id !== undefined);
}

/** Kept for 400 days (a year of invoices plus a margin). */
const RETENTION_SECONDS = 400 * 24 * 3600;
/** Longest range one `GET /v1/usage` reads. */
export const MAX_USAGE_DAYS = 366;

export const dayOf = (epochMs: number) => new Date(epochMs).toISOString().slice(0, 10);
const usagePk = (tenantId: string) => `T#${tenantId}#USAGE`;

/** One tenant's counts of one day, not written yet. */
interface PendingUsage {
  readonly tenantId: string;
  readonly day: string;
  readonly counts: Map<UsageCounter, number>;
}

export interface UsageOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Counts in memory; `flush` writes them (one UpdateItem per tenant and day) and starts over. */
export class UsageMeter {
  private readonly pending = new Map<string, PendingUsage>();
  private readonly now: () => number;

  constructor(private readonly options: UsageOptions) {
    this.now = options.now ?? Date.now;
  }

  add(tenantId: string, counter: UsageCounter, amount = 1): void {
    if (!(amount > 0)) return;
    this.addOn(tenantId, dayOf(this.now()), counter, amount);
  }

  /**
   * Writes what was counted, one UpdateItem per tenant and day, all of them whatever one answers: a write that fails
   * (a hot tenant's throttled usage item) keeps its counts for the next flush and is reported after the others were
   * written (until 2026-12-04 it dropped the counts of every tenant after it; found by an attacking pass).
   */
  async flush(): Promise<void> {
    const entries = [...this.pending.values()];
    this.pending.clear();
    const written = await Promise.allSettled(entries.map((entry) => this.write(entry)));
    const failed = written.flatMap((w, i) =>
      w.status === 'rejected' ? [{ entry: entries[i], reason: w.reason }] : [],
    );
    for (const { entry } of failed) {
      if (entry === undefined) continue;
      for (const [counter, amount] of entry.counts) this.addOn(entry.tenantId, entry.day, counter, amount);
    }
    const first = failed[0];
    if (first !== undefined) {
      throw new Error(
        `usage of ${failed.length} of ${entries.length} tenant-days not written (kept for the next flush)`,
        {
          cause: first.reason,
        },
      );
    }
  }

  private addOn(tenantId: string, day: string, counter: UsageCounter, amount: number): void {
    const key = `${tenantId}#${day}`;
    let entry = this.pending.get(key);
    if (entry === undefined) {
      entry = { tenantId, day, counts: new Map() };
      this.pending.set(key, entry);
    }
    entry.counts.set(counter, (entry.counts.get(counter) ?? 0) + amount);
  }

  private async write({ tenantId, day, counts }: PendingUsage): Promise<void> {
    const names: Record<string, string> = { '#ttl': 'ttl' };
    const values: Record<string, unknown> = {
      ':tenant': tenantId,
      ':day': day,
      ':ttl': Math.floor(Date.parse(`${day}T00:00:00Z`) / 1000) + RETENTION_SECONDS,
    };
    const adds: string[] = [];
    for (const [i, [counter, amount]] of [...counts.entries()].entries()) {
      names[`#c${i}`] = counter;
      values[`:c${i}`] = amount;
      adds.push(`#c${i} :c${i}`);
    }
    await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.tableName,
        Key: { pk: usagePk(tenantId), sk: day },
        UpdateExpression: `SET tenantId = :tenant, #day = :day, #ttl = :ttl, #type = :type ADD ${adds.join(', ')}`,
        ExpressionAttributeNames: { ...names, '#day': 'day', '#type': 'type' },
        ExpressionAttributeValues: { ...values, ':type': 'usage' },
      }),
    );
  }
}

/** Reads a tenant's usage, one entry per day that has any, oldest first. */
export class UsageStore {
  constructor(private readonly options: UsageOptions) {}

  async read(tenantId: string, from: string, to: string): Promise<UsageDay[]> {
    const days: UsageDay[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.options.client.send(
        new QueryCommand({
          TableName: this.options.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': usagePk(tenantId), ':from': from, ':to': to },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        const day: Record<string, unknown> = { day: String(item.sk) };
        for (const counter of usageCounters) day[counter] = typeof item[counter] === 'number' ? item[counter] : 0;
        days.push(day as UsageDay);
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return days;
  }
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * `from` and `to` (inclusive, `yyyy-mm-dd`, UTC) of a usage request: `to` defaults to today, `from` to 29 days
 * before `to`. BAD_REQUEST for malformed dates, `from` after `to`, or more than {@link MAX_USAGE_DAYS} days.
 */
export function parseUsageRange(
  query: Readonly<Record<string, string | undefined>>,
  now: number,
): { from: string; to: string } {
  const parse = (name: string, value: string): number => {
    const ms = DAY.test(value) ? Date.parse(`${value}T00:00:00Z`) : Number.NaN;
    if (!Number.isFinite(ms) || dayOf(ms) !== value) throw new BadRequestError(`'${name}' must be a date yyyy-mm-dd`);
    return ms;
  };
  const to = query.to === undefined ? Date.parse(`${dayOf(now)}T00:00:00Z`) : parse('to', query.to);
  const from = query.from === undefined ? to - 29 * 86_400_000 : parse('from', query.from);
  if (from > to) throw new BadRequestError("'from' must not be after 'to'");
  if ((to - from) / 86_400_000 + 1 > MAX_USAGE_DAYS) {
    throw new BadRequestError(`a usage range is at most ${MAX_USAGE_DAYS} days`);
  }
  return { from: dayOf(from), to: dayOf(to) };
}
