/**
 * Connection caps at `$connect` (docs/security.md, "Connection caps"), O(1) per handshake: one counter item per
 * tenant and per user of it, raised by a conditional `ADD` at `$connect` and lowered once when the connection's
 * `META` item is deleted (Registry.removeConnection).
 *
 * | item                  | pk                        | sk             | gsi2pk          | gsi2sk                      |
 * |-----------------------|---------------------------|----------------|-----------------|-----------------------------|
 * | tenant counter        | `T#<tenant>`              | `CONNS`        |                 |                             |
 * | user counter          | `T#<tenant>#U#<user>`     | `CONNS`        |                 |                             |
 * | tenant recount mark   | `T#<tenant>`              | `CONNS#CHECK`  | `CONNS#RECOUNT` | `<checkedAt, 13 digits>#<tenant>` |
 *
 * Self-healing, because AWS loses some `$disconnect`s (a counter then exceeds the truth):
 *   - a refused handshake recounts the refusing counter exactly (index gsi1) when it was last checked more than
 *     `recountAfterMs` ago, and admits if the exact count has room: drift never locks a user or a tenant out for
 *     longer than that;
 *   - the reaper recounts a few tenants per run, the least recently checked first ({@link ConnectionCounters.due});
 *   - every counter carries `ttl` = its last change + a connection's maximum lifetime: when DynamoDB removes it, every
 *     connection it counted has ended.
 * The recount mark is a separate item so that the per-handshake `ADD` never writes to an index.
 *
 * Written by hand: no kept library keeps bounded counters in DynamoDB.
 */
import { createHash } from 'node:crypto';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { limits } from '../manifest.ts';
import { isConditionalCheckFailed } from './errors.ts';

export interface ConnectionCaps {
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
}

export interface ConnectionCountersOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /**
   * The exact number of live connections of a tenant, or of one user of it (TenantConnections.count). Needed by
   * recounts; without it (as in Registry, which only releases) a refused handshake does not recount.
   */
  readonly count?: (tenantId: string, userId?: string) => Promise<number>;
  /** A refused handshake recounts a counter last checked longer ago than this. @default 60_000 */
  readonly recountAfterMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

const COUNTER_SK = 'CONNS';
const MARK_SK = 'CONNS#CHECK';
const MARK_INDEX_PK = 'CONNS#RECOUNT';
/** Seconds after its last change when a counter can no longer count a live connection (as Registry.expiryOf). */
const COUNTER_LIFETIME_SECONDS = limits.maxConnectionSeconds + 5 * 60;

/**
 * A user id as a part of a key: percent-encoded (no `#` of its own), or, when that would not fit DynamoDB's 2,048-byte
 * partition key beside a tenant id and the key's other parts (256 characters of `€` encode to 2,304: until
 * 2026-12-04 every request of such a user failed with a 500; found by an attacking pass), `%h` and a SHA-256 hash,
 * which no percent-encoding can spell (`%` there is always followed by two hex digits). Every id that fitted before
 * keeps its key. Ids are well-formed text (auth.ts, callerFromClaims).
 */
export function userKeyPart(userId: string): string {
  const encoded = encodeURIComponent(userId);
  return encoded.length <= 1900 ? encoded : `%h${createHash('sha256').update(userId).digest('base64url')}`;
}

export const counterKeys = {
  tenant: (tenantId: string) => ({ pk: `T#${tenantId}`, sk: COUNTER_SK }),
  user: (tenantId: string, userId: string) => ({ pk: `T#${tenantId}#U#${userKeyPart(userId)}`, sk: COUNTER_SK }),
};

type Key = { pk: string; sk: string };

/** A number attribute of an item, plain (`3`, from the document client) or marshalled (`{N: "3"}`, from an error). */
export function numberAttribute(item: Record<string, unknown> | undefined, name: string): number | undefined {
  const value = item?.[name];
  if (typeof value === 'number') return value;
  const marshalled = (value as { N?: unknown } | undefined)?.N;
  return typeof marshalled === 'string' && marshalled !== '' && Number.isFinite(Number(marshalled))
    ? Number(marshalled)
    : undefined;
}

export class ConnectionCounters {
  private readonly now: () => number;
  private readonly recountAfterMs: number;

  constructor(private readonly options: ConnectionCountersOptions) {
    this.now = options.now ?? Date.now;
    this.recountAfterMs = options.recountAfterMs ?? 60_000;
  }

  /**
   * Counts a new connection of `userId` against both caps: undefined when admitted (both counters raised), else why
   * not (neither counter raised). The user's counter goes first: it is the likelier cap.
   */
  async acquire(tenantId: string, userId: string, caps: ConnectionCaps): Promise<string | undefined> {
    const user = await this.raise(counterKeys.user(tenantId, userId), caps.maxConnectionsPerUser, () =>
      this.recount(tenantId, userId),
    );
    if (user.refusedAt !== undefined) {
      return `user has ${user.refusedAt} open connections; the limit is ${caps.maxConnectionsPerUser}`;
    }
    let tenant: { refusedAt?: number; created: boolean };
    try {
      tenant = await this.raise(counterKeys.tenant(tenantId), caps.maxConnections, () => this.recount(tenantId));
    } catch (err) {
      await this.lower(counterKeys.user(tenantId, userId));
      throw err;
    }
    if (tenant.refusedAt !== undefined) {
      await this.lower(counterKeys.user(tenantId, userId));
      return `tenant has ${tenant.refusedAt} open connections; the limit is ${caps.maxConnections}`;
    }
    if (tenant.created) await this.mark(tenantId, 0);
    return undefined;
  }

  /** Uncounts one connection that {@link acquire} counted. Never below zero. */
  async release(tenantId: string, userId: string): Promise<void> {
    await this.lower(counterKeys.user(tenantId, userId));
    await this.lower(counterKeys.tenant(tenantId));
  }

  /**
   * Sets a counter to the exact number of live connections (a gsi1 Query: O(connections)), and for a tenant moves
   * its recount mark to now. A handshake between the count and the write can be lost from the counter: the
   * counter then undercounts by the handshakes of those milliseconds until the next recount.
   */
  async recount(tenantId: string, userId?: string): Promise<number> {
    if (this.options.count === undefined) throw new Error('ConnectionCounters.recount needs the count option');
    const exact = await this.options.count(tenantId, userId);
    const now = this.now();
    await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.tableName,
        Key: userId === undefined ? counterKeys.tenant(tenantId) : counterKeys.user(tenantId, userId),
        UpdateExpression: 'SET n = :n, checkedAt = :now, #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':n': exact, ':now': now, ':ttl': this.ttl(now) },
      }),
    );
    if (userId === undefined) await this.mark(tenantId, now);
    return exact;
  }

  /** Up to `max` tenants, the least recently recounted first (one Query on gsi2). */
  async due(max: number): Promise<string[]> {
    const out = await this.options.client.send(
      new QueryCommand({
        TableName: this.options.tableName,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk',
        ExpressionAttributeValues: { ':pk': MARK_INDEX_PK },
        Limit: max,
      }),
    );
    return (out.Items ?? []).map((item) => String(item.tenantId));
  }

  /** The counter's value now (0 when absent); for tests and the admin view. */
  async current(tenantId: string, userId?: string): Promise<number> {
    const out = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: userId === undefined ? counterKeys.tenant(tenantId) : counterKeys.user(tenantId, userId),
        ConsistentRead: true,
      }),
    );
    return typeof out.Item?.n === 'number' ? out.Item.n : 0;
  }

  /**
   * Raises a counter below `cap` by one. When it is at the cap and was last checked long enough ago, recounts it
   * and tries once more. `refusedAt`: the count that refused; `created`: the counter did not exist.
   */
  private async raise(
    key: Key,
    cap: number,
    recount: () => Promise<number>,
  ): Promise<{ refusedAt?: number; created: boolean }> {
    for (let attempt = 0; ; attempt++) {
      const now = this.now();
      try {
        const out = await this.options.client.send(
          new UpdateCommand({
            TableName: this.options.tableName,
            Key: key,
            UpdateExpression: 'ADD n :one SET #ttl = :ttl, checkedAt = if_not_exists(checkedAt, :now)',
            ConditionExpression: 'attribute_not_exists(n) OR n < :cap',
            ExpressionAttributeNames: { '#ttl': 'ttl' },
            ExpressionAttributeValues: { ':one': 1, ':cap': cap, ':ttl': this.ttl(now), ':now': now },
            ReturnValues: 'UPDATED_OLD',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { created: out.Attributes?.checkedAt === undefined };
      } catch (err) {
        if (!isConditionalCheckFailed(err)) throw err;
        // AWS returns the item of a failed condition marshalled (`{n: {N: "3"}}`): the document client does not
        // unmarshall errors. Without it (an old stand-in), read it.
        const old = (err as { Item?: Record<string, unknown> }).Item ?? (await this.read(key));
        const n = numberAttribute(old, 'n') ?? cap;
        const checkedAt = numberAttribute(old, 'checkedAt') ?? 0;
        const mayRecount = this.options.count !== undefined && now - checkedAt >= this.recountAfterMs;
        if (attempt > 0 || !mayRecount) return { refusedAt: n, created: false };
        const exact = await recount();
        if (exact >= cap) return { refusedAt: exact, created: false };
      }
    }
  }

  /** Lowers a counter by one unless it is at zero (a recount may already have left the connection out). */
  private async lower(key: Key): Promise<void> {
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: key,
          UpdateExpression: 'ADD n :minusOne',
          ConditionExpression: 'n > :zero',
          ExpressionAttributeValues: { ':minusOne': -1, ':zero': 0 },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
    }
  }

  /** Enters (or moves) the tenant in the recount order; `checkedAt` 0: a new tenant, recounted first. */
  private async mark(tenantId: string, checkedAt: number): Promise<void> {
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.tableName,
        Item: {
          pk: `T#${tenantId}`,
          sk: MARK_SK,
          type: 'connection-recount',
          tenantId,
          checkedAt,
          gsi2pk: MARK_INDEX_PK,
          gsi2sk: `${String(checkedAt).padStart(13, '0')}#${tenantId}`,
        },
      }),
    );
  }

  private async read(key: Key): Promise<Record<string, unknown> | undefined> {
    const out = await this.options.client.send(
      new GetCommand({ TableName: this.options.tableName, Key: key, ConsistentRead: true }),
    );
    return out.Item;
  }

  private ttl(now: number): number {
    return Math.floor(now / 1000) + COUNTER_LIFETIME_SECONDS;
  }
}

/**
 * The reaper's step: recounts up to `max` tenants, the least recently checked first. Bounded work per run (each
 * recount reads the tenant's connection items once); a failure is reported and the rest go on.
 */
export async function recountDue(
  counters: Pick<ConnectionCounters, 'due' | 'recount'>,
  max: number,
  onError: (err: unknown, context: Record<string, unknown>) => void,
): Promise<{ recounted: number; failed: number }> {
  let recounted = 0;
  let failed = 0;
  for (const tenantId of await counters.due(max)) {
    try {
      await counters.recount(tenantId);
      recounted++;
    } catch (err) {
      failed++;
      onError(err, { tenantId });
    }
  }
  return { recounted, failed };
}
