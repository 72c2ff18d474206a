/**
 * Token lifetime of connections (docs/security.md, "Token lifetime"): a connection never outlives its token.
 *
 * The connection's `META` item holds the token's `exp` and, in index gsi2, a minute bucket of it
 * (`gsi2pk = EXP#<floor(exp / 60)>`, `gsi2sk = C#<connectionId>`). The scheduled reaper walks the buckets from its
 * cursor up to now, and for each connection whose `exp` has passed sends `{"type":"error","code":"UNAUTHORIZED",
 * "message":"token expired"}`, closes it (DeleteConnection) and removes its registry items. A `refresh` frame with
 * a new token of the same user and tenant moves the connection to its new bucket.
 */

import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import { limits } from '../manifest.ts';
import { claimValues } from './audience.ts';
import { type ClaimNames, ClaimsError, callerFromToken } from './auth.ts';
import { isVerifierUnavailable, type TokenVerifier } from './authorize.ts';
import { settleConcurrently } from './concurrency.ts';
import { ForbiddenError, isConditionalCheckFailed, UnauthorizedError } from './errors.ts';
import type { Caller } from './permissions.ts';
import { errorFrame } from './protocol.ts';

export const EXPIRY_BUCKET_SECONDS = 60;
/** Buckets the reaper looks back when it has no cursor yet: the longest a connection can live, plus a margin. */
const MAX_LOOKBACK_BUCKETS = Math.ceil(limits.maxConnectionSeconds / EXPIRY_BUCKET_SECONDS) + 10;

export const bucketOf = (expSeconds: number) => Math.floor(expSeconds / EXPIRY_BUCKET_SECONDS);

/** The gsi2 keys of a connection whose token expires at `exp` (epoch seconds). */
export function expiryKeys(connectionId: string, exp: number): { gsi2pk: string; gsi2sk: string } {
  return { gsi2pk: `EXP#${bucketOf(exp)}`, gsi2sk: `C#${connectionId}` };
}

/** The frame a connection gets just before it is closed for an expired token. */
export const tokenExpiredFrame = () => JSON.stringify(errorFrame(undefined, 'UNAUTHORIZED', 'token expired'));

// ---- refresh ----

export interface RefreshDeps {
  readonly verifier: TokenVerifier;
  readonly claimNames: ClaimNames;
}

/**
 * Verifies a refresh token for a connection of `caller`: UNAUTHORIZED if it does not verify, FORBIDDEN if it is
 * another user's or tenant's (or has no usable claims), or grants other roles or claims than the connection has. Returns its `exp` (epoch seconds; 0 when it has none).
 * The token is never part of an error message.
 */
export async function verifyRefreshToken(token: string, caller: Caller, deps: RefreshDeps): Promise<number> {
  let payload: JwtPayload;
  try {
    payload = await deps.verifier.verify(token);
  } catch (err) {
    // The JWKS could not be read: the connection's token is not at fault (INTERNAL, retry later).
    if (isVerifierUnavailable(err)) throw err;
    throw new UnauthorizedError('token not valid');
  }
  let next: Caller;
  try {
    next = callerFromToken(payload, deps.claimNames);
  } catch (err) {
    if (err instanceof ClaimsError) throw new ForbiddenError('token has no usable tenant or user claim');
    throw err;
  }
  if (next.tenantId !== caller.tenantId || next.userId !== caller.userId) {
    throw new ForbiddenError('token is for another user or tenant than the connection');
  }
  // The connection keeps the roles and claims it connected with (API Gateway fixes the authorizer context), so a
  // token that grants other rights cannot extend it: the client opens a new connection with it instead (a rollover).
  // Until 2026-12-03 it was taken, and a claim the identity provider had removed kept working on the live feed
  // for the connection's life, while HTTP with the same token refused it.
  if (rightsOf(next, deps.claimNames) !== rightsOf(caller, deps.claimNames)) {
    throw new ForbiddenError('token grants other roles or claims than the connection: open a new connection with it');
  }
  return typeof payload.exp === 'number' ? payload.exp : 0;
}

/**
 * Claims an identity provider sets anew on each token it issues, opaque and never a right: left out when a refresh
 * compares rights (OpenID Connect's hashes and nonce; Entra's token ids and `aio`). A session id (`sid`) stays: it is
 * the same across one session's tokens, and a row filter may read it.
 */
const PER_TOKEN_CLAIMS = new Set(['at_hash', 'c_hash', 's_hash', 'nonce', 'uti', 'rh', 'aio']);

/**
 * A caller's rights as canonical JSON: its roles as a set, and each claim (but the per-token ones and the user,
 * compared already) as audiences and row filters read it (`claimValues`: `"t1"` and `["t1"]` alike, `5` and `"5"`
 * alike, repeats once, order kept for `equalsClaim`'s first value); a claim that gives no value grants nothing.
 */
function rightsOf(caller: Caller, names: ClaimNames): string {
  const claims = caller.claims ?? {};
  const read = Object.keys(claims)
    .filter((key) => key !== names.user && !PER_TOKEN_CLAIMS.has(key))
    .sort()
    .map((key) => [key, [...new Set(claimValues(claims, key))]] as const)
    .filter(([, values]) => values.length > 0);
  return JSON.stringify([[...new Set(caller.roles)].sort(), read]);
}

// ---- the store ----

export interface DueConnection {
  readonly connectionId: string;
  readonly exp: number;
  /**
   * A `LEFT` item, not a connection: delivery (a 410) or a `presence` request removed the connection, and its
   * `$disconnect` had not announced its `leave`s by `exp` (lambdas/core/registry.ts, `rememberGroups`).
   */
  readonly announceLeaves?: true;
}

export interface ExpiryStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
}

const CURSOR_KEY = { pk: 'REAPER', sk: 'CURSOR' } as const;

export class ExpiryStore {
  constructor(private readonly options: ExpiryStoreOptions) {}

  /**
   * Sets a connection's token expiry (a refresh). False if the connection is gone or not the caller's.
   * `exp` 0 (a token without expiry) takes the connection out of the index.
   */
  async extend(connectionId: string, caller: Caller, exp: number): Promise<boolean> {
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { pk: `C#${connectionId}`, sk: 'META' },
          ...(exp > 0
            ? {
                UpdateExpression: 'SET #exp = :exp, gsi2pk = :pk2, gsi2sk = :sk2',
                ExpressionAttributeValues: {
                  ':exp': exp,
                  ':pk2': expiryKeys(connectionId, exp).gsi2pk,
                  ':sk2': expiryKeys(connectionId, exp).gsi2sk,
                  ':t': caller.tenantId,
                  ':u': caller.userId,
                },
              }
            : {
                UpdateExpression: 'REMOVE #exp, gsi2pk, gsi2sk',
                ExpressionAttributeValues: { ':t': caller.tenantId, ':u': caller.userId },
              }),
          ConditionExpression: 'attribute_exists(pk) AND tenantId = :t AND userId = :u',
          ExpressionAttributeNames: { '#exp': 'exp' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailed(err)) return false;
      throw err;
    }
  }

  /** Connections indexed in one bucket (the index is eventually consistent: confirm with {@link currentExp}). */
  async inBucket(bucket: number): Promise<DueConnection[]> {
    const due: DueConnection[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.options.client.send(
        new QueryCommand({
          TableName: this.options.tableName,
          IndexName: 'gsi2',
          KeyConditionExpression: 'gsi2pk = :pk',
          ExpressionAttributeValues: { ':pk': `EXP#${bucket}` },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        if (typeof item.connectionId === 'string' && typeof item.exp === 'number') {
          due.push({
            connectionId: item.connectionId,
            exp: item.exp,
            ...(item.sk === 'LEFT' && { announceLeaves: true }),
          });
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return due;
  }

  /** The connection's current token expiry (strongly consistent), or undefined if it is gone. */
  async currentExp(
    connectionId: string,
  ): Promise<{ exp: number; tenantId: string; userId: string; connectedAt: number } | undefined> {
    const out = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: { pk: `C#${connectionId}`, sk: 'META' },
        ConsistentRead: true,
      }),
    );
    const item = out.Item;
    if (item === undefined) return undefined;
    return {
      exp: typeof item.exp === 'number' ? item.exp : 0,
      tenantId: String(item.tenantId),
      userId: String(item.userId),
      connectedAt: Number(item.connectedAt),
    };
  }

  async cursor(): Promise<number | undefined> {
    const out = await this.options.client.send(
      new GetCommand({ TableName: this.options.tableName, Key: CURSOR_KEY, ConsistentRead: true }),
    );
    return typeof out.Item?.bucket === 'number' ? out.Item.bucket : undefined;
  }

  async setCursor(bucket: number): Promise<void> {
    await this.options.client.send(
      new PutCommand({ TableName: this.options.tableName, Item: { ...CURSOR_KEY, type: 'reaper-cursor', bucket } }),
    );
  }
}

// ---- the reaper ----

export interface ReapDeps {
  readonly store: Pick<ExpiryStore, 'inBucket' | 'currentExp' | 'cursor' | 'setCursor'>;
  /**
   * Sends the `token expired` frame, closes the connection and removes its items (announcing presence `leave`s, as
   * `$disconnect` does; the one the close triggers may announce them too); must tolerate a gone connection.
   */
  readonly expire: (
    connection: DueConnection & { tenantId: string; userId: string; connectedAt: number },
  ) => Promise<void>;
  /**
   * Announces the presence `leave`s of a connection removed without its `$disconnect` (a `LEFT` item past its time),
   * unless that `$disconnect` came meanwhile, then forgets the item; resolves true when it announced any, and throws
   * (keeping the item, and the bucket for the next sweep) when it could not. @default none: such items wait for
   * their ttl
   */
  readonly announceLeft?: (connectionId: string) => Promise<boolean>;
  readonly now: () => number;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
}

export interface ReapResult {
  readonly buckets: number;
  readonly checked: number;
  readonly expired: number;
  readonly failed: number;
  /** Connections removed without a `$disconnect` whose presence `leave`s this sweep announced. */
  readonly leavesAnnounced?: number;
}

/**
 * Buckets the cursor stays behind the current minute. A connection is indexed by `$connect` after its authorizer ran,
 * and gsi2 shows it a moment later still, so a token expiring in a minute's last seconds can be indexed after the
 * sweep that passed that minute: with the cursor a minute further back, the next sweep reads that bucket again
 * (until 2026-12-03 such a connection was never reaped and lived to API Gateway's 2-hour cap).
 */
const CURSOR_LAG_BUCKETS = 1;

/** Expired connections of a bucket closed at once. */
export const REAP_CONCURRENCY = 16;

/**
 * One sweep: every bucket after the cursor up to the current minute; connections whose token has expired are closed,
 * and `LEFT` items past their time get their presence `leave`s (`announceLeft`).
 * The cursor advances to the last bucket that ended over `CURSOR_LAG_BUCKETS` minutes ago and had no failure, so a
 * failed close is retried on the next sweep (at-least-once). Buckets before the current minute are wholly expired;
 * the current one is checked connection by connection and never passed by the cursor.
 */
export async function reapExpired(deps: ReapDeps): Promise<ReapResult> {
  const nowSeconds = Math.floor(deps.now() / 1000);
  const current = bucketOf(nowSeconds);
  const cursor = (await deps.store.cursor()) ?? current - MAX_LOOKBACK_BUCKETS;
  const first = Math.max(cursor + 1, current - MAX_LOOKBACK_BUCKETS);
  let checked = 0;
  let expired = 0;
  let failed = 0;
  let leavesAnnounced = 0;
  let nextCursor = cursor;
  let blocked = false;
  for (let bucket = first; bucket <= current; bucket++) {
    let bucketFailed = false;
    const dues = (await deps.store.inBucket(bucket)).filter((due) => due.exp <= nowSeconds);
    checked += dues.length;
    // Several at a time: each is a few round trips (a read, the close, the removal with its presence reads), and a
    // mass expiry (a deploy of short tokens, an identity provider's outage) in a large room one at a time could
    // outlast the sweep's schedule (until 2026-12-04 they went one by one).
    const results = await settleConcurrently(dues, REAP_CONCURRENCY, async (due) => {
      if (due.announceLeaves === true) {
        if (deps.announceLeft !== undefined && (await deps.announceLeft(due.connectionId))) leavesAnnounced++;
        return false;
      }
      const live = await deps.store.currentExp(due.connectionId);
      // Gone, refreshed meanwhile, or never expiring: nothing to do.
      if (live === undefined || live.exp === 0 || live.exp > nowSeconds) return false;
      const { exp, tenantId, userId, connectedAt } = live;
      await deps.expire({ ...due, exp, tenantId, userId, connectedAt });
      return true;
    });
    for (const [i, result] of results.entries()) {
      if (result.status === 'fulfilled') {
        if (result.value) expired++;
        continue;
      }
      failed++;
      bucketFailed = true;
      deps.onError?.(result.reason, {
        connectionId: dues[i]?.connectionId,
        bucket,
        ...(dues[i]?.announceLeaves === true && { announcingLeaves: true }),
      });
    }
    if (bucketFailed) blocked = true;
    if (!blocked && bucket < current - CURSOR_LAG_BUCKETS) nextCursor = bucket;
  }
  if (nextCursor !== cursor) await deps.store.setCursor(nextCursor);
  return { buckets: current - first + 1, checked, expired, failed, ...(leavesAnnounced > 0 && { leavesAnnounced }) };
}
