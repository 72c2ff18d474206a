/**
 * Distributed rate limits (docs/security.md, "Rate limits"): one token bucket per key (a connection, a tenant's
 * publishes, a user's HTTP requests), kept in DynamoDB so every function instance shares it.
 *
 * The bucket is stored as GCRA (the generic cell rate algorithm): a single number per key, the "theoretical arrival
 * time" `tat` (epoch ms). A request at `now` is admitted when `tat <= now + (burst - 1) * interval`, and moves `tat`
 * to `max(tat, now) + interval` (interval = 1000 / perSecond). That is exactly a token bucket of `burst` tokens
 * refilled at `perSecond`, in one attribute, so taking `n` tokens is one conditional UpdateItem:
 *   - busy bucket (`now <= tat <= limit`): `SET tat = tat + n * interval`, condition `tat BETWEEN :now AND :limit`;
 *   - idle bucket (no item, or `tat < now`): `SET tat = :now + n * interval`, condition `attribute_not_exists(tat) OR tat < :now`.
 * Which one to try is guessed from the `tat` this sandbox saw last (a lower bound of the real one: `tat` only grows);
 * a failed condition returns the bucket as it is (`ReturnValuesOnConditionCheckFailure`), so a wrong guess costs one
 * more write and never a read.
 *
 * Write units per request (docs/security.md): a sandbox leases several tokens at once when a key is hot in it and
 * spends them from memory on later requests for that key (lambdas/core/rate-lease.ts: at most a tenth of the burst,
 * expiring after 1 s, and only while half the burst stays in the bucket), so a busy key costs about one write per
 * lease, not per request; a cold key or a bucket under pressure costs one write per admitted request, exactly as
 * plain GCRA. A refusal costs nothing when the remembered `tat` already proves it (a flood is answered from memory
 * until the next token can exist), else one failed conditional write, whose answer then proves the next ones.
 * The price of leases: a token is spent up to 1 s after the bucket issued it, so over any interval of T seconds at
 * most `burst + perSecond * T + E` requests are admitted, E <= min(perSecond * 1 s, sum over live sandboxes of
 * (largest lease - 1)); E is 0 for a burst under 20 (never leased from) and from any moment no sandbox holds tokens.
 *
 * Written by hand: Powertools has no distributed rate limiter (its idempotency utility is not one), and fixed-window
 * counters (one `ADD` per request, TTL'd per window) would let twice the rate through at a window boundary and
 * cannot express a burst separately from the rate. The trade-off is recorded in docs/security.md.
 */
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { numberAttribute, userKeyPart } from './connection-counters.ts';
import { isConditionalCheckFailed } from './errors.ts';
import {
  type KeyMemory,
  LEASE_MS,
  leaseReserve,
  maxLease,
  nextLeaseSize,
  recordLease,
  spendHeld,
} from './rate-lease.ts';
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
  userHttp: (tenantId: string, userId: string) => `T#${tenantId}#U#${userKeyPart(userId)}#HTTP`,
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
  /** Most keys this sandbox remembers (their `tat` and leased tokens). @default 10_000 */
  readonly maxHints?: number;
  /** How long leased tokens may be spent (lambdas/core/rate-lease.ts). @default LEASE_MS (1 s) */
  readonly leaseMs?: number;
}

/**
 * Writes one take may try when its condition fails although the bucket it sees has room: other sandboxes moved the
 * bucket between its read of the clock and its write (a fast bucket, e.g. 10,000/s, flips between idle and busy
 * within a millisecond). Three were too few: the benchmark's first burst of 100 publishes, spread over 8 sandboxes,
 * had one refused RATE_LIMITED with the tenant's bucket nearly full.
 */
const CONTENTION_ROUNDS = 10;

/** A lease's write: the new `tat`, or the stored one (undefined: no bucket yet) when the condition failed. */
type LeaseOutcome = { readonly leased: true; readonly tat: number } | { readonly leased: false; readonly tat?: number };

/**
 * GCRA buckets in the main table: `pk = RL#<key>`, `sk = RL`, `tat` (epoch ms), `ttl`. Each instance (a Lambda
 * sandbox) leases tokens from them and remembers what it saw (lambdas/core/rate-lease.ts).
 */
export class DynamoRateLimiter implements RateLimiter {
  private readonly now: () => number;
  private readonly memory = new Map<string, KeyMemory>();
  private readonly maxHints: number;
  private readonly leaseMs: number;

  constructor(private readonly options: DynamoRateLimiterOptions) {
    this.now = options.now ?? Date.now;
    this.maxHints = options.maxHints ?? 10_000;
    this.leaseMs = options.leaseMs ?? LEASE_MS;
  }

  async take(key: string, spec: RateSpec): Promise<RateDecision> {
    const interval = 1000 / spec.perSecond;
    for (let round = 0; round < CONTENTION_ROUNDS; round++) {
      const now = this.now();
      const known = this.memory.get(key);
      // A token this sandbox leased earlier: no write.
      if (spendHeld(known, now)) return { allowed: true };
      // The stored tat is at least the remembered one: if that already refuses, so would the table (no write).
      if (known !== undefined) {
        const local = gcra(known.tat, now, spec);
        if (!local.allowed) return local;
      }
      const size = nextLeaseSize(known, now, spec, this.leaseMs);
      const outcome = await this.lease(key, known, size, now, spec);
      if (outcome.leased) {
        const maxHeld = maxLease(spec, this.leaseMs) - 1;
        this.remember(key, recordLease(this.memory.get(key), size, outcome.tat, now, maxHeld, this.leaseMs));
        return { allowed: true };
      }
      // The condition failed: the table answered with the bucket as it is. Refuse from it, or write again with
      // the form and size it allows.
      const seen = this.memory.get(key);
      this.remember(key, {
        ...(seen ?? { held: 0, until: 0, leased: 0, leasedAt: 0 }),
        tat: Math.max(seen?.tat ?? 0, outcome.tat ?? 0),
      });
      const decision = gcra(outcome.tat, this.now(), spec);
      if (!decision.allowed) return decision;
    }
    // Lost races every round: heavy contention on this key; refusing briefly is the safe answer.
    return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(interval)) };
  }

  /**
   * One conditional write taking `size` tokens: the busy form when the bucket is known to be in use (`tat >= now`),
   * else the idle form. A lease of more than one also leaves {@link leaseReserve} tokens in the bucket.
   */
  private async lease(
    key: string,
    known: KeyMemory | undefined,
    size: number,
    now: number,
    spec: RateSpec,
  ): Promise<LeaseOutcome> {
    const interval = 1000 / spec.perSecond;
    const tolerance = (Math.max(1, spec.burst) - 1) * interval;
    const reserve = size > 1 ? leaseReserve(spec) : 0;
    const busy = known !== undefined && known.tat >= now;
    const ttl = Math.ceil((now + tolerance + interval) / 1000) + 60;
    const Key = { pk: `RL#${key}`, sk: 'RL' };
    try {
      const out = await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key,
          ...(busy
            ? {
                UpdateExpression: 'SET tat = tat + :lease, #ttl = :ttl',
                ConditionExpression: 'tat BETWEEN :now AND :limit',
                ExpressionAttributeValues: {
                  ':lease': size * interval,
                  ':now': now,
                  ':limit': now + tolerance - (size - 1 + reserve) * interval,
                  ':ttl': ttl,
                },
              }
            : {
                UpdateExpression: 'SET tat = :next, #ttl = :ttl',
                ConditionExpression: 'attribute_not_exists(tat) OR tat < :now',
                ExpressionAttributeValues: { ':next': now + size * interval, ':now': now, ':ttl': ttl },
              }),
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ReturnValues: 'UPDATED_NEW',
          // The bucket as it was comes back with a failed condition, at no extra cost: no read to refuse.
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const tat = out.Attributes?.tat;
      return { leased: true, tat: typeof tat === 'number' ? tat : now + size * interval };
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      // AWS returns the item of a failed condition marshalled: the document client does not unmarshall errors.
      const old = (err as { Item?: Record<string, unknown> }).Item;
      if (old !== undefined) return { leased: false, tat: numberAttribute(old, 'tat') };
      // No item came back: the busy form failed on a missing bucket (AWS returns no item then), or the stand-in
      // does not return one. The idle form only fails on an existing bucket: read it.
      if (busy) return { leased: false };
      const read = await this.options.client.send(
        new GetCommand({ TableName: this.options.tableName, Key, ConsistentRead: true }),
      );
      return { leased: false, tat: numberAttribute(read.Item, 'tat') };
    }
  }

  private remember(key: string, memory: KeyMemory): void {
    this.memory.delete(key);
    this.memory.set(key, memory);
    if (this.memory.size > this.maxHints) {
      const oldest = this.memory.keys().next();
      if (!oldest.done) this.memory.delete(oldest.value);
    }
  }
}

// The connection caps (`maxConnections`, `maxConnectionsPerUser`) are enforced by counter items at `$connect`:
// lambdas/core/connection-counters.ts.
