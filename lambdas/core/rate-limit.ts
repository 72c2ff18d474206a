/**
 * Distributed rate limits (docs/security.md, "Rate limits"): one token bucket per key (a connection, a tenant's
 * publishes, a user's HTTP requests), kept in DynamoDB so every function instance shares it.
 *
 * The bucket is stored as GCRA (the generic cell rate algorithm): a single number per key, the "theoretical arrival
 * time" `tat` (epoch ms). A request at `now` is admitted when `tat <= now + (burst - 1) * interval`, and moves `tat`
 * to `max(tat, now) + interval` (interval = 1000 / perSecond). That is exactly a token bucket of `burst` tokens
 * refilled at `perSecond`, in one attribute, so admission is one conditional UpdateItem:
 *   - busy bucket (`now <= tat <= limit`): `SET tat = tat + :interval`, condition `tat BETWEEN :now AND :limit`;
 *   - idle bucket (no item, or `tat < now`): `SET tat = :now + :interval`, condition `attribute_not_exists(tat) OR tat < :now`.
 * Which one to try first is guessed from the `tat` this container saw last (a lower bound of the real one: `tat`
 * only grows), so the usual cost is one write per admitted request, two when the guess is wrong. A refused request
 * costs nothing when the local lower bound already proves the refusal (a flood from one connection is answered from
 * memory), else two failed conditional writes and one read (for `retryAfterMs`).
 *
 * Written by hand: Powertools has no distributed rate limiter (its idempotency utility is not one), and fixed-window
 * counters (one `ADD` per request, TTL'd per window) would let twice the rate through at a window boundary and
 * cannot express a burst separately from the rate. The trade-off is recorded in docs/security.md.
 */
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from './zod.ts';

export interface RateSpec {
  /** Sustained rate. */
  readonly perSecond: number;
  /** Requests admitted at once after a quiet period (at least 1). */
  readonly burst: number;
}

export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

/** Per-tenant limits (tenant catalog `limits`, docs/tenants.md); absent keys take {@link defaultLimits}. */
export const RateLimitOverrides = z.partial(
  z.object({
    /** Frames a connection may send per second (sustained) and at once. */
    messagesPerSecond: z.number().check(z.positive()),
    messageBurst: z.number().check(z.int(), z.positive()),
    /** Publishes per second across the whole tenant (WebSocket and HTTP). */
    publishesPerSecond: z.number().check(z.positive()),
    publishBurst: z.number().check(z.int(), z.positive()),
    /** Open WebSocket connections of one user. (`maxConnections`, per tenant, is the catalog's own field.) */
    maxConnectionsPerUser: z.number().check(z.int(), z.positive()),
    /** HTTP API requests of one user per second and at once. */
    httpRequestsPerSecond: z.number().check(z.positive()),
    httpBurst: z.number().check(z.int(), z.positive()),
  }),
);
export type RateLimitOverrides = z.infer<typeof RateLimitOverrides>;

export interface EffectiveLimits {
  readonly message: RateSpec;
  readonly publish: RateSpec;
  readonly http: RateSpec;
  /** `presence` frames of one connection (each may check up to 50 connections: docs/protocol.md, "Presence"). */
  readonly presence: RateSpec;
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
}

/** The service defaults (docs/security.md lists them). */
export const defaultLimits: EffectiveLimits = {
  message: { perSecond: 10, burst: 20 },
  publish: { perSecond: 100, burst: 200 },
  http: { perSecond: 20, burst: 40 },
  presence: { perSecond: 1, burst: 5 },
  maxConnections: 1000,
  maxConnectionsPerUser: 10,
};

/** A tenant's limits: its overrides over the defaults. */
export function effectiveLimits(
  overrides: (RateLimitOverrides & { maxConnections?: number }) | undefined,
): EffectiveLimits {
  const o = overrides ?? {};
  return {
    message: {
      perSecond: o.messagesPerSecond ?? defaultLimits.message.perSecond,
      burst: o.messageBurst ?? defaultLimits.message.burst,
    },
    publish: {
      perSecond: o.publishesPerSecond ?? defaultLimits.publish.perSecond,
      burst: o.publishBurst ?? defaultLimits.publish.burst,
    },
    http: {
      perSecond: o.httpRequestsPerSecond ?? defaultLimits.http.perSecond,
      burst: o.httpBurst ?? defaultLimits.http.burst,
    },
    presence: defaultLimits.presence,
    maxConnections: o.maxConnections ?? defaultLimits.maxConnections,
    maxConnectionsPerUser: o.maxConnectionsPerUser ?? defaultLimits.maxConnectionsPerUser,
  };
}

/** Rate-limit keys. `#` never occurs in tenant ids or connection ids, so keys of different scopes never collide. */
export const rateKeys = {
  connection: (connectionId: string) => `C#${connectionId}`,
  connectionPresence: (connectionId: string) => `C#${connectionId}#PRESENCE`,
  tenantPublish: (tenantId: string) => `T#${tenantId}#PUB`,
  userHttp: (tenantId: string, userId: string) => `T#${tenantId}#U#${encodeURIComponent(userId)}#HTTP`,
};

/**
 * The GCRA decision for a stored `tat` (undefined: never used). Pure; the store applies it atomically.
 * `next` is the new `tat` when allowed.
 */
export function gcra(
  tat: number | undefined,
  now: number,
  spec: RateSpec,
): { allowed: true; next: number } | { allowed: false; retryAfterMs: number } {
  const interval = 1000 / spec.perSecond;
  const tolerance = (Math.max(1, spec.burst) - 1) * interval;
  const base = tat === undefined || tat < now ? now : tat;
  if (base - now <= tolerance) return { allowed: true, next: base + interval };
  return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(base - tolerance - now)) };
}

export interface RateLimiter {
  take(key: string, spec: RateSpec): Promise<RateDecision>;
}

export interface DynamoRateLimiterOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: () => number;
  /** Most keys whose last `tat` this container remembers. @default 10_000 */
  readonly maxHints?: number;
}

const isConditionFailed = (err: unknown) => (err as { name?: string }).name === 'ConditionalCheckFailedException';

/** GCRA buckets in the main table: `pk = RL#<key>`, `sk = RL`, `tat` (epoch ms), `ttl`. */
export class DynamoRateLimiter implements RateLimiter {
  private readonly now: () => number;
  private readonly hints = new Map<string, number>();
  private readonly maxHints: number;

  constructor(private readonly options: DynamoRateLimiterOptions) {
    this.now = options.now ?? Date.now;
    this.maxHints = options.maxHints ?? 10_000;
  }

  async take(key: string, spec: RateSpec): Promise<RateDecision> {
    const interval = 1000 / spec.perSecond;
    const tolerance = (Math.max(1, spec.burst) - 1) * interval;
    for (let round = 0; round < 3; round++) {
      const now = this.now();
      const hint = this.hints.get(key);
      // The stored tat is at least the hint: if the hint already refuses, so would the table.
      if (hint !== undefined) {
        const local = gcra(hint, now, spec);
        if (!local.allowed) return local;
      }
      const busyFirst = hint !== undefined && hint >= now;
      const attempts = busyFirst ? (['busy', 'idle'] as const) : (['idle', 'busy'] as const);
      for (const attempt of attempts) {
        const next = await this.tryAdvance(key, attempt, now, interval, tolerance);
        if (next !== undefined) {
          this.remember(key, next);
          return { allowed: true };
        }
      }
      // Both conditions failed: the bucket is over its limit (or moved between our two writes). Read it.
      const out = await this.options.client.send(
        new GetCommand({ TableName: this.options.tableName, Key: { pk: `RL#${key}`, sk: 'RL' }, ConsistentRead: true }),
      );
      const tat = typeof out.Item?.tat === 'number' ? out.Item.tat : undefined;
      if (tat !== undefined) this.remember(key, tat);
      const decision = gcra(tat, this.now(), spec);
      if (!decision.allowed) return decision;
    }
    // Three lost races in a row: heavy contention on this key; refusing briefly is the safe answer.
    return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(interval)) };
  }

  /** One conditional write; the new `tat`, or undefined when the condition failed. */
  private async tryAdvance(
    key: string,
    attempt: 'busy' | 'idle',
    now: number,
    interval: number,
    tolerance: number,
  ): Promise<number | undefined> {
    const ttl = Math.ceil((now + tolerance + interval) / 1000) + 60;
    try {
      const out = await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { pk: `RL#${key}`, sk: 'RL' },
          ...(attempt === 'busy'
            ? {
                UpdateExpression: 'SET tat = tat + :interval, #ttl = :ttl',
                ConditionExpression: 'tat BETWEEN :now AND :limit',
                ExpressionAttributeValues: {
                  ':interval': interval,
                  ':now': now,
                  ':limit': now + tolerance,
                  ':ttl': ttl,
                },
              }
            : {
                UpdateExpression: 'SET tat = :next, #ttl = :ttl',
                ConditionExpression: 'attribute_not_exists(tat) OR tat < :now',
                ExpressionAttributeValues: { ':next': now + interval, ':now': now, ':ttl': ttl },
              }),
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const tat = out.Attributes?.tat;
      return typeof tat === 'number' ? tat : now + interval;
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  private remember(key: string, tat: number): void {
    this.hints.delete(key);
    this.hints.set(key, tat);
    if (this.hints.size > this.maxHints) {
      const oldest = this.hints.keys().next();
      if (!oldest.done) this.hints.delete(oldest.value);
    }
  }
}

// The connection caps (`maxConnections`, `maxConnectionsPerUser`) are enforced by counter items at `$connect`:
// lambdas/core/connection-counters.ts.
