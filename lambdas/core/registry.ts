/**
 * The connection registry in DynamoDB (one table; layout in docs/data-model.md):
 *
 * | item                  | pk                        | sk            | gsi1pk       | gsi1sk               |
 * |-----------------------|---------------------------|---------------|--------------|----------------------|
 * | connection            | `C#<connectionId>`        | `META`        | `T#<tenant>` | `U#<user>#C#<conn>`  |
 * | connection → group    | `C#<connectionId>`        | `G#<group>`   |              |                      |
 * | groups left (removed) | `C#<connectionId>`        | `LEFT`        |              |                      |
 * | group → connection    | `T#<tenant>#G#<group>`    | `C#<conn>`    |              |                      |
 * | membership version    | `T#<tenant>#G#<group>#V`  | `VERSION`     |              |                      |
 * | tenant configuration  | `T#<tenant>`              | `CONFIG`      |              |                      |
 *
 * "All connections of group G in tenant T" is one paginated Query on `T#T#G#G`; "all groups of connection C"
 * (and the connection itself) is one Query on `C#C`. No transactions (dynalite has none): a subscription is two
 * idempotent puts, connection side first, so whatever a crash leaves behind is found and removed with the
 * connection, and every item carries the connection's expiry in `ttl` so DynamoDB TTL removes what
 * `$disconnect` (best-effort in AWS) missed. Readers ignore items whose `ttl` has passed, since TTL deletion lags.
 *
 * The membership version (`v`) of a group goes up after every change to its member items (subscribe, unsubscribe,
 * end of a replay wait, removal of a connection), before the change is acknowledged. A reader that read the version,
 * then the members, may use that list for as long as the version stays the same (lambdas/core/member-cache.ts): a
 * message published after a subscribe or unsubscribe was answered is sequenced after the version moved. It lives
 * in its own partition, so a burst of subscriptions does not contend with the group's counter item.
 */
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DeleteCommand,
  type DeleteCommandInput,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { limits } from '../manifest.ts';
import { ConnectionCounters } from './connection-counters.ts';
import { isConditionalCheckFailed } from './errors.ts';
import { expiryKeys } from './expiry.ts';
import type { Caller } from './permissions.ts';
import { queryPages } from './query-pages.ts';

export interface ConnectionRecord extends Caller {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly ttl: number;
}

export interface Member {
  readonly connectionId: string;
  readonly userId: string;
  /** The member's roles and token claims when it subscribed, for audience filters (docs/delivery.md). */
  readonly roles: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
  /** Set while a `subscribe` with `since` waits for its replay: live delivery skips the member until then. */
  readonly replayFrom?: number;
  /** With `replayFrom`: since when it waits (epoch ms): when that subscribe was received, if known, or when delivery put a member whose client did not read on the wait (`deferToReplay`). */
  readonly replayAt?: number;
  /** When the membership item expires (epoch seconds; the connection's 2-hour cap plus a margin). */
  readonly ttl?: number;
}

export interface SubscribeOptions {
  /** The client's `since`: the member waits for its replay before live delivery (docs/delivery.md). */
  readonly since?: number;
  /**
   * When API Gateway received the frame (`requestTimeEpoch`, ms): kept on both items as `at`, so an unsubscribe of
   * the same connection and group received before it cannot delete them (see `unsubscribe`).
   */
  readonly at?: number;
}

/** A member item as delivery reads it. */
function memberOf(item: Record<string, unknown>): Member {
  return {
    connectionId: String(item.connectionId),
    userId: String(item.userId),
    roles: Array.isArray(item.roles) ? item.roles.map(String) : [],
    claims: typeof item.claims === 'object' && item.claims !== null ? (item.claims as Record<string, unknown>) : {},
    ...(typeof item.replayFrom === 'number' && { replayFrom: item.replayFrom }),
    ...(typeof item.replayFrom === 'number' &&
      typeof (item.lagAt ?? item.at) === 'number' && { replayAt: Number(item.lagAt ?? item.at) }),
    ...(typeof item.ttl === 'number' && { ttl: item.ttl }),
  };
}

/** A membership item's `at` is older than the unsubscribe's (or it has none, from before `at`): it may go. */
const SUBSCRIBED_BEFORE = 'attribute_not_exists(#at) OR #at < :at';

export interface RegistryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: () => number;
  /**
   * How long after a remembering removal (`removeConnection` with `remember`) the reaper announces the presence
   * `leave`s its `$disconnect` has not, s: the `LEFT` item is indexed in the reaper's minute bucket of then.
   * @default LEFT_ANNOUNCE_AFTER_SECONDS
   */
  readonly leftAnnounceAfterSeconds?: number;
}

const connectionPk = (connectionId: string) => `C#${connectionId}`;
const groupPk = (tenantId: string, group: string) => `T#${tenantId}#G#${group}`;
const memberKey = (tenantId: string, group: string, connectionId: string) => ({
  pk: groupPk(tenantId, group),
  sk: `C#${connectionId}`,
});
const versionKey = (tenantId: string, group: string) => ({ pk: `${groupPk(tenantId, group)}#V`, sk: 'VERSION' });
/**
 * An unsubscribe's mark, `at` its frame's time: in a partition of its own, so neither the cap's Query nor a
 * connection's removal reads it, however many groups a client leaves; it expires by TTL.
 */
const unsubscribedKey = (connectionId: string, group: string) => ({
  pk: `${connectionPk(connectionId)}#UNSUB`,
  sk: `G#${group}`,
});
/**
 * How long an unsubscribe's mark is kept: longer than any subscribe can still be running (Lambda's longest timeout,
 * 15 minutes), so every subscribe received before the unsubscribe finds it.
 */
const UNSUBSCRIBED_MARK_SECONDS = 20 * 60;
/** The item saying since when a connection is at the subscription cap (`Registry.atCapSince`). */
const capKey = (connectionId: string) => ({ pk: `${connectionPk(connectionId)}#CAP`, sk: 'CAP' });
/** The `LEFT` item's sort key (`removeConnection` with `remember`). */
const LEFT_SK = 'LEFT';
/**
 * How long a connection's `LEFT` item is kept, s: its `$disconnect` comes seconds after the connection closed (API
 * Gateway's 410 says it has), so 15 minutes is ample; TTL deletes it after, and readers ignore it once expired.
 */
export const LEFT_KEPT_SECONDS = 15 * 60;
/**
 * How long a `LEFT` item waits for its connection's `$disconnect` before the reaper announces its `leave`s itself, s:
 * API Gateway runs `$disconnect` seconds after a close, but only best effort (a lost one left the user `joined` in
 * every room for good).
 */
export const LEFT_ANNOUNCE_AFTER_SECONDS = 120;

/** A `LEFT` item as the reaper reads it (`Registry.leftConnection`). */
export interface LeftConnection {
  readonly connectionId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly groups: readonly string[];
}
export const tenantPk = (tenantId: string) => `T#${tenantId}`;

/** Seconds after the connection's start when all its items expire: API Gateway's 2-hour cap plus a margin. */
const EXPIRY_MARGIN_SECONDS = 5 * 60;
const BATCH_WRITE_MAX = 25;

export class Registry {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly now: () => number;
  private readonly leftAnnounceAfterSeconds: number;
  /** Releases a removed connection's place under the connection caps. */
  private readonly counters: ConnectionCounters;

  constructor(options: RegistryOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.now = options.now ?? Date.now;
    this.leftAnnounceAfterSeconds = options.leftAnnounceAfterSeconds ?? LEFT_ANNOUNCE_AFTER_SECONDS;
    this.counters = new ConnectionCounters({ client: options.client, tableName: options.tableName, now: this.now });
  }

  /** Epoch seconds at which a connection that started at `connectedAt` (ms) can no longer exist. */
  static expiryOf(connectedAt: number): number {
    return Math.floor(connectedAt / 1000) + limits.maxConnectionSeconds + EXPIRY_MARGIN_SECONDS;
  }

  /**
   * `options.exp`: the token's expiry (epoch seconds), indexed in gsi2 for the reaper (lambdas/core/expiry.ts);
   * omitted or 0: a token without expiry. `options.counted`: the connection was counted against the connection caps
   * (ConnectionCounters.acquire); removing it then releases it, exactly once.
   */
  async putConnection(
    caller: Caller,
    connectionId: string,
    connectedAt: number,
    options: { readonly exp?: number; readonly counted?: boolean } = {},
  ): Promise<ConnectionRecord> {
    const record: ConnectionRecord = {
      connectionId,
      tenantId: caller.tenantId,
      userId: caller.userId,
      roles: [...caller.roles],
      connectedAt,
      ttl: Registry.expiryOf(connectedAt),
    };
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: connectionPk(connectionId),
          sk: 'META',
          type: 'connection',
          ...record,
          gsi1pk: tenantPk(caller.tenantId),
          gsi1sk: `U#${caller.userId}#C#${connectionId}`,
          ...(options.exp !== undefined &&
            options.exp > 0 && { exp: options.exp, ...expiryKeys(connectionId, options.exp) }),
          ...(options.counted === true && { counted: true }),
        },
      }),
    );
    return record;
  }

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: connectionPk(connectionId), sk: 'META' } }),
    );
    const item = out.Item;
    if (item === undefined || this.isExpired(item)) return undefined;
    return {
      connectionId: String(item.connectionId),
      tenantId: String(item.tenantId),
      userId: String(item.userId),
      roles: Array.isArray(item.roles) ? item.roles.map(String) : [],
      connectedAt: Number(item.connectedAt),
      ttl: Number(item.ttl),
    };
  }

  /**
   * Records that `connectionId` (whose expiry is `ttl`) is a member of `group`. Idempotent. Returns false when an
   * unsubscribe of the same group received after it (`options.at`) has already run: the membership does not stand.
   */
  async subscribe(
    caller: Caller,
    connectionId: string,
    group: string,
    connectedAt: number,
    options: SubscribeOptions = {},
  ): Promise<boolean> {
    const ttl = Registry.expiryOf(connectedAt);
    const { at } = options;
    // Neither side overwrites one a subscribe received later wrote (the same millisecond may: ties go to subscribing).
    const notNewer =
      at === undefined
        ? {}
        : {
            ConditionExpression: 'attribute_not_exists(#at) OR #at <= :at',
            ExpressionAttributeNames: { '#at': 'at' },
            ExpressionAttributeValues: { ':at': at },
          };
    // Connection side first: if the second write never happens, removing the connection still finds this one.
    const wrote = await this.putIf(
      {
        pk: connectionPk(connectionId),
        sk: `G#${group}`,
        type: 'subscription',
        tenantId: caller.tenantId,
        group,
        ttl,
        ...(at !== undefined && { at }),
      },
      notNewer,
    );
    // Refused: a later subscribe holds the membership, with its own time, replay and announcement.
    if (!wrote) return false;
    const member = {
      ...memberKey(caller.tenantId, group, connectionId),
      type: 'member',
      connectionId,
      userId: caller.userId,
      roles: [...caller.roles],
      claims: caller.claims ?? {},
      ...(options.since !== undefined && { replayFrom: options.since }),
      ttl,
      ...(at !== undefined && { at }),
    };
    if (!(await this.putIf(member, notNewer))) return false;
    const stands = at === undefined || !(await this.dropIfUnsubscribed(caller.tenantId, connectionId, group, at));
    await this.membershipChanged(caller.tenantId, group);
    return stands;
  }

  /** Puts an item if `condition` holds: whether it was written. */
  private async putIf(
    item: Record<string, unknown>,
    condition: Pick<
      DeleteCommandInput,
      'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
    >,
  ): Promise<boolean> {
    try {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ...condition }));
      return true;
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      return false;
    }
  }

  /**
   * A later unsubscribe of the same connection and group can run before this subscribe's writes land (API Gateway runs
   * a connection's frames concurrently): between its two puts, or wholly before them. So once both sides are written,
   * the unsubscribe's mark and the connection side are read back: a mark newer than this subscribe, or a connection
   * side gone, means that unsubscribe won, and both sides just written go (each only if it is still this
   * subscribe's). An unsubscribe leaves its mark before it deletes anything, so every subscribe received before it
   * either finds the mark or wrote before the deletes, which then remove it. The connection's `META` is read back too:
   * `$disconnect` runs beside the connection's last frames, and a subscribe that lands after the removal (`META`
   * gone) drops itself; `removeConnection` looks again after deleting `META` for one that found it still there.
   * Returns whether it dropped them. (Until 2026-12-05 a subscribe in flight when its socket closed left its
   * membership, posted to and counted until its ttl, and announced a presence `join` of a connection already gone.)
   * (Until 2026-12-03 about half of the races between the two puts left a member without its connection side, and
   * until 2026-12-04 an unsubscribe run wholly first left the whole membership: delivered to after the unsubscribe
   * was acknowledged.)
   */
  private async dropIfUnsubscribed(
    tenantId: string,
    connectionId: string,
    group: string,
    at: number,
  ): Promise<boolean> {
    const keys = [
      { pk: connectionPk(connectionId), sk: `G#${group}` },
      unsubscribedKey(connectionId, group),
      { pk: connectionPk(connectionId), sk: 'META' },
    ];
    const [own, mark, meta] = await Promise.all(
      keys.map((Key) => this.client.send(new GetCommand({ TableName: this.tableName, Key, ConsistentRead: true }))),
    );
    if (own?.Item !== undefined && meta?.Item !== undefined && !(Number(mark?.Item?.at) > at)) return false;
    const onlyMine = {
      ConditionExpression: '#at = :at',
      ExpressionAttributeNames: { '#at': 'at' },
      ExpressionAttributeValues: { ':at': at },
    };
    await this.deleteIf(memberKey(tenantId, group, connectionId), onlyMine);
    await this.deleteIf({ pk: connectionPk(connectionId), sk: `G#${group}` }, onlyMine);
    return true;
  }

  /** Updates an item if its condition holds: the item as it is after (undefined when the condition refused it). */
  private async updateIf(
    update: Omit<UpdateCommandInput, 'TableName' | 'ReturnValues'>,
  ): Promise<Record<string, unknown> | undefined> {
    try {
      const out = await this.client.send(
        new UpdateCommand({ TableName: this.tableName, ...update, ReturnValues: 'ALL_NEW' }),
      );
      return out.Attributes ?? {};
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      return undefined;
    }
  }

  /** Deletes an item if `condition` holds: whether the condition refused it, and whether an item was deleted. */
  private async deleteIf(
    key: { pk: string; sk: string },
    condition: Pick<
      DeleteCommandInput,
      'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
    >,
  ): Promise<{ refused: boolean; deleted: boolean }> {
    try {
      const out = await this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: key, ReturnValues: 'ALL_OLD', ...condition }),
      );
      return { refused: false, deleted: out.Attributes !== undefined };
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      return { refused: true, deleted: false };
    }
  }

  /**
   * Where the replay request of a subscribe with `since` stands, by a consistent read of the member item: `waiting`
   * while the membership waits for a replay from that `since`; `taken` when it is live (a later subscribe without
   * `since`, or an earlier attempt of this request completed it) or waits for another `since` (a later subscribe's,
   * whose own request serves it); `gone` when the connection is no member (it unsubscribed or disconnected while the
   * request waited). A later subscribe with the same `since` is served by whichever of the two requests runs first:
   * the replay is the same. (The request carries no more than `since` on purpose: a broadcaster still on a version
   * before a new field would set every such request aside as malformed, during a deploy or after a rollback.) Until
   * 2026-12-04 every request replayed whatever stood: history was posted after an acknowledged unsubscribe, and an
   * older request served a newer subscribe, ending its wait before its own replay.
   */
  async replayState(
    tenantId: string,
    group: string,
    connectionId: string,
    since: number,
  ): Promise<'waiting' | 'taken' | 'gone'> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: memberKey(tenantId, group, connectionId),
        ConsistentRead: true,
        ProjectionExpression: 'replayFrom, #ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
      }),
    );
    const item = out.Item;
    if (item === undefined || this.isExpired(item)) return 'gone';
    return item.replayFrom === since ? 'waiting' : 'taken';
  }

  /**
   * Ends the replay wait of the membership waiting for a replay from `since` (`replayState`), so live delivery
   * includes the member; a wait for another `since` (a later subscribe's) stays, and with `at`, one a later subscribe
   * (with the same `since`) wrote does too. Without `since`, whatever wait the member has. No-op if it left.
   * Idempotent.
   */
  async completeReplay(
    tenantId: string,
    group: string,
    connectionId: string,
    since?: number,
    at?: number,
  ): Promise<void> {
    const condition =
      since === undefined
        ? { ConditionExpression: 'attribute_exists(pk)' }
        : at === undefined
          ? { ConditionExpression: 'replayFrom = :since', ExpressionAttributeValues: { ':since': since } }
          : {
              ConditionExpression: 'replayFrom = :since AND #at = :at',
              ExpressionAttributeNames: { '#at': 'at' },
              ExpressionAttributeValues: { ':since': since, ':at': at },
            };
    const removed = await this.updateIf({
      Key: memberKey(tenantId, group, connectionId),
      UpdateExpression: 'REMOVE replayFrom, lagAt, lagPasses',
      ...condition,
    });
    if (removed !== undefined) await this.membershipChanged(tenantId, group);
  }

  /**
   * Puts a live member whose client does not take its frames (posts still throttled after the run's retries) on a
   * replay wait from `since`, as a subscribe with `since` does: live delivery skips it and a replay request, queued by
   * the caller on the group's stream, brings it what it missed (docs/delivery.md, "A client that stops reading").
   * `lagAt` (epoch ms) dates the wait. `marked`: this call put it on the wait; `waiting`: it already waited for a
   * replay (that one serves it); `absent`: no membership item (it left, or a `user:` group's connection found through
   * its user, which has none).
   */
  async deferToReplay(
    tenantId: string,
    group: string,
    connectionId: string,
    since: number,
    lagAt: number,
  ): Promise<'marked' | 'waiting' | 'absent'> {
    const marked = await this.updateIf({
      Key: memberKey(tenantId, group, connectionId),
      UpdateExpression: 'SET replayFrom = :since, lagAt = :at, lagPasses = :zero',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(replayFrom)',
      ExpressionAttributeValues: { ':since': since, ':at': lagAt, ':zero': 0 },
    });
    if (marked === undefined) {
      return (await this.replayState(tenantId, group, connectionId, since)) === 'gone' ? 'absent' : 'waiting';
    }
    await this.membershipChanged(tenantId, group);
    return 'marked';
  }

  /**
   * Counts one more replay attempt that the member's client did not take (its posts still throttled), while the
   * membership waits for a replay from `since`: how many there have been and since when it lags (`lagAt`, set now if
   * this is the first). Undefined when it no longer waits for that replay.
   */
  async lagPass(
    tenantId: string,
    group: string,
    connectionId: string,
    since: number,
    now: number,
  ): Promise<{ readonly passes: number; readonly lagAt: number } | undefined> {
    const item = await this.updateIf({
      Key: memberKey(tenantId, group, connectionId),
      UpdateExpression: 'SET lagAt = if_not_exists(lagAt, :now) ADD lagPasses :one',
      ConditionExpression: 'replayFrom = :since',
      ExpressionAttributeValues: { ':since': since, ':now': now, ':one': 1 },
    });
    return item === undefined ? undefined : { passes: Number(item.lagPasses ?? 1), lagAt: Number(item.lagAt ?? now) };
  }

  /**
   * Moves the replay wait of a member whose client took part of its replay (`deferToReplay`) from `since` to
   * `through`, and starts its lag again at `lagAt`: whether it still waited from `since`.
   */
  async advanceReplay(
    tenantId: string,
    group: string,
    connectionId: string,
    since: number,
    through: number,
    lagAt: number,
  ): Promise<boolean> {
    const moved = await this.updateIf({
      Key: memberKey(tenantId, group, connectionId),
      UpdateExpression: 'SET replayFrom = :through, lagAt = :at, lagPasses = :zero',
      ConditionExpression: 'replayFrom = :since',
      ExpressionAttributeValues: { ':since': since, ':through': through, ':at': lagAt, ':zero': 0 },
    });
    return moved !== undefined;
  }

  /**
   * Removes one membership (group side first, so delivery stops before the record of it goes). Idempotent.
   * `at`: when API Gateway received the unsubscribe frame. API Gateway runs a connection's frames concurrently, so a
   * subscribe received after it (a client that left and joined again at once) may have written its items first:
   * those items, with a later `at` (or the same millisecond), stay, and false is returned. Without `at` the
   * membership goes whatever wrote it.
   */
  async unsubscribe(tenantId: string, connectionId: string, group: string, at?: number): Promise<boolean> {
    const onlyOlder =
      at === undefined
        ? {}
        : {
            ConditionExpression: SUBSCRIBED_BEFORE,
            ExpressionAttributeNames: { '#at': 'at' },
            ExpressionAttributeValues: { ':at': at },
          };
    const member = memberKey(tenantId, group, connectionId);
    if (at !== undefined) await this.markUnsubscribed(connectionId, group, at);
    // A stretch at the subscription cap ends with any unsubscribe (`atCapSince`).
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: capKey(connectionId) }));
    const removed = await this.deleteIf(member, onlyOlder);
    if (removed.refused) return false;
    // Only a membership that was there changes the group: an unsubscribe of a group never held writes no version item
    // (until 2026-12-04 each made one that never expires; found by an attacking pass).
    if (removed.deleted) await this.membershipChanged(tenantId, group);
    // Refused: a later subscribe wrote its connection-side item meanwhile (after this one's group side went): it stays.
    await this.deleteIf({ pk: connectionPk(connectionId), sk: `G#${group}` }, onlyOlder);
    // Again: an earlier subscribe's group side may have been written after the first delete (`dropIfUnsubscribed`);
    // if so, the membership version goes up once more, so no member list is kept with it.
    if ((await this.deleteIf(member, onlyOlder)).deleted) await this.membershipChanged(tenantId, group);
    return true;
  }

  /** Leaves the unsubscribe's mark for subscribes received before it and still running (`dropIfUnsubscribed`). */
  private async markUnsubscribed(connectionId: string, group: string, at: number): Promise<void> {
    const mark = { ...unsubscribedKey(connectionId, group), type: 'unsubscribed', at };
    // A newer unsubscribe's mark stays.
    await this.putIf(
      { ...mark, ttl: Math.floor(at / 1000) + UNSUBSCRIBED_MARK_SECONDS },
      {
        ConditionExpression: 'attribute_not_exists(#at) OR #at < :at',
        ExpressionAttributeNames: { '#at': 'at' },
        ExpressionAttributeValues: { ':at': at },
      },
    );
  }

  /**
   * The group's membership version: it goes up after every change to the group's members, so a member list read
   * after it is current while it stays the same (one consistent GetItem).
   */
  async membershipVersion(tenantId: string, group: string): Promise<number> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: versionKey(tenantId, group), ConsistentRead: true }),
    );
    return Number(out.Item?.v ?? 0);
  }

  /** Raises the group's membership version (after the change, before it is acknowledged). */
  private async membershipChanged(tenantId: string, group: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: versionKey(tenantId, group),
        UpdateExpression: 'ADD v :one',
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
  }

  /**
   * Pages of the live members of a group (one Query per page). `consistent`: a strongly consistent read, which sees
   * every change acknowledged before it (a list kept under a membership version must; twice the read units).
   */
  async *members(
    tenantId: string,
    group: string,
    options: { readonly pageSize?: number; readonly consistent?: boolean } = {},
  ): AsyncGenerator<Member[]> {
    const pages = queryPages(this.client, {
      TableName: this.tableName,
      ...(options.consistent === true && { ConsistentRead: true }),
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': groupPk(tenantId, group) },
      ProjectionExpression: 'connectionId, userId, #roles, claims, replayFrom, lagAt, #at, #ttl',
      ExpressionAttributeNames: { '#ttl': 'ttl', '#roles': 'roles', '#at': 'at' },
      Limit: options.pageSize ?? 500,
    });
    for await (const out of pages) {
      const page = (out.Items ?? []).filter((item) => !this.isExpired(item)).map(memberOf);
      if (page.length > 0) yield page;
    }
  }

  /** One member of a group, read consistently; undefined when the connection is no member (or it expired). */
  async member(tenantId: string, group: string, connectionId: string): Promise<Member | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: memberKey(tenantId, group, connectionId),
        ConsistentRead: true,
      }),
    );
    return out.Item === undefined || this.isExpired(out.Item) ? undefined : memberOf(out.Item);
  }

  /**
   * Every live connection of one user of a tenant, as members (roles from the connection item; no claims): a Query
   * on index gsi1 (`gsi1pk = T#<tenant>`, `begins_with(gsi1sk, 'U#<user>#')`). Delivery to a `user:<id>` group
   * reaches these (docs/delivery.md, "User groups").
   */
  async connectionsOfUser(tenantId: string, userId: string): Promise<Member[]> {
    const members: Member[] = [];
    const pages = queryPages(this.client, {
      TableName: this.tableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :user)',
      ExpressionAttributeValues: { ':pk': tenantPk(tenantId), ':user': `U#${userId}#` },
    });
    for await (const out of pages) {
      for (const item of out.Items ?? []) {
        if (this.isExpired(item) || item.userId !== userId) continue;
        members.push({
          connectionId: String(item.connectionId),
          userId,
          roles: Array.isArray(item.roles) ? item.roles.map(String) : [],
          claims: {},
        });
      }
    }
    return members;
  }

  /**
   * When the connection's current stretch at the subscription cap began (epoch ms): its first subscribe refused at the
   * cap since its last unsubscribe (every unsubscribe deletes the item, `C#<connection>#CAP`, and only an unsubscribe
   * brings a connection under the cap). Written only when a subscribe finds no room: one UpdateItem.
   */
  async atCapSince(connectionId: string, now: number): Promise<number> {
    const out = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: capKey(connectionId),
        UpdateExpression: 'SET since = if_not_exists(since, :now), #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':now': now, ':ttl': Registry.expiryOf(now) },
        ReturnValues: 'ALL_NEW',
      }),
    );
    const since = Number(out.Attributes?.since);
    return Number.isFinite(since) ? since : now;
  }

  /**
   * Whether `connectionId` may subscribe to `group` with at most `max` subscriptions: it has fewer (one Query of at
   * most `max` keys), or it is subscribed to `group` already (a subscribe again changes nothing). Concurrent
   * subscribes of one connection can pass it together, by at most the frames in flight.
   */
  async hasRoomFor(connectionId: string, group: string, max: number): Promise<boolean> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :g)',
        ExpressionAttributeValues: { ':pk': connectionPk(connectionId), ':g': 'G#' },
        ProjectionExpression: 'sk',
        Select: 'SPECIFIC_ATTRIBUTES',
        Limit: max,
      }),
    );
    if ((out.Items?.length ?? 0) < max) return true;
    const held = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: connectionPk(connectionId), sk: `G#${group}` } }),
    );
    return held.Item !== undefined;
  }

  /** The groups a connection is subscribed to (one Query, paginated). */
  async groupsOf(connectionId: string): Promise<string[]> {
    const items = await this.connectionItems(connectionId);
    return items.filter((item) => String(item.sk).startsWith('G#')).map((item) => String(item.group));
  }

  /**
   * Removes a connection and every membership it has. Used by `$disconnect` and when delivery finds the
   * connection gone (410). Safe to run twice or concurrently.
   *
   * With `remember` (a remover that is not the connection's `$disconnect`: delivery's 410, a `presence` request's
   * check), the groups it was in are first added to a `LEFT` item kept for `LEFT_KEPT_SECONDS`, which this removal
   * leaves in place: the `$disconnect` that follows finds no membership left, and announces its presence `leave` from
   * that (`groupsLeft`; lambdas/core/connection-removal.ts). Added before the memberships go, so a `$disconnect` that
   * finds a membership already gone finds it in the item; added to (a string set), never replaced, so two removals at
   * once (two runs meeting the 410) each add what they saw, and the memberships the second look finds are added too;
   * and the first look is consistent, so a membership acknowledged just before is among them (until review an
   * overwrite by a removal that read between another's deletes, or a membership only the second look found, lost its
   * group's `leave`). One write per look that finds a membership.
   */
  async removeConnection(
    connectionId: string,
    options: { readonly remember?: boolean } = {},
  ): Promise<{ groups: number }> {
    const remember = options.remember === true;
    // A removal that remembers keeps the item (its own, or one an earlier such removal wrote); any other deletes it.
    const removable = async (items: readonly Record<string, unknown>[]) => {
      if (!remember) return items;
      await this.rememberGroups(connectionId, items);
      return items.filter((item) => item.sk !== LEFT_SK);
    };
    let groups = await this.removeItems(
      connectionId,
      await removable(await this.connectionItems(connectionId, remember)),
    );
    // META alone, returning what it was: of concurrent or repeated removals exactly one sees it, and only that one
    // releases the connection's place under the caps. A crash between the two leaves the counters high until
    // their next recount, never low.
    const meta = await this.client.send(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { pk: connectionPk(connectionId), sk: 'META' },
        ReturnValues: 'ALL_OLD',
      }),
    );
    if (meta.Attributes?.counted === true) {
      await this.counters.release(String(meta.Attributes.tenantId), String(meta.Attributes.userId));
    }
    // A subscribe that ran beside this one reads `META` back after its writes (`dropIfUnsubscribed`): one that still
    // found it wrote before the delete above, maybe after the first look. A second (consistent) look finds it.
    const late = await removable(await this.connectionItems(connectionId, true));
    if (late.length > 0) groups += await this.removeItems(connectionId, late);
    return { groups };
  }

  /**
   * Adds the groups among a connection's `items` to its `LEFT` item (`removeConnection` with `remember`). With its
   * user (from `META`, when this look still found it), the item is indexed for the reaper in the minute bucket
   * `leftAnnounceAfterSeconds` ahead (gsi2, as token expiries are: lambdas/core/expiry.ts), the first removal's.
   */
  private async rememberGroups(connectionId: string, items: readonly Record<string, unknown>[]): Promise<void> {
    const memberships = items.filter((item) => String(item.sk).startsWith('G#'));
    const first = memberships[0];
    if (first === undefined) return;
    const nowSeconds = Math.floor(this.now() / 1000);
    const set = ['tenantId = :tenant', '#ttl = :ttl'];
    const names: Record<string, string> = { '#groups': 'groups', '#ttl': 'ttl' };
    const values: Record<string, unknown> = {
      ':groups': new Set(memberships.map((item) => String(item.group))),
      ':tenant': String(first.tenantId),
      ':ttl': nowSeconds + LEFT_KEPT_SECONDS,
    };
    const userId = items.find((item) => item.sk === 'META')?.userId;
    if (typeof userId === 'string') {
      // The first removal's time stands: a later one adds its groups only.
      const announceAt = nowSeconds + this.leftAnnounceAfterSeconds;
      const { gsi2pk, gsi2sk } = expiryKeys(connectionId, announceAt);
      set.push(
        'userId = :user',
        'connectionId = :conn',
        '#exp = if_not_exists(#exp, :exp)',
        'gsi2pk = if_not_exists(gsi2pk, :pk)',
        'gsi2sk = if_not_exists(gsi2sk, :sk)',
      );
      names['#exp'] = 'exp';
      Object.assign(values, {
        ':user': userId,
        ':conn': connectionId,
        ':exp': announceAt,
        ':pk': gsi2pk,
        ':sk': gsi2sk,
      });
    }
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: connectionPk(connectionId), sk: LEFT_SK },
        UpdateExpression: `ADD #groups :groups SET ${set.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  /** The connection's `LEFT` item, read consistently; undefined once its ttl passed. */
  private async leftItem(connectionId: string): Promise<Record<string, unknown> | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: connectionPk(connectionId), sk: LEFT_SK },
        ConsistentRead: true,
      }),
    );
    const item = out.Item;
    return item === undefined || this.isExpired(item) || !(item.groups instanceof Set) ? undefined : item;
  }

  /**
   * The connection's `LEFT` item for the reaper (which checks that its `$disconnect` has not taken it), with its
   * user; undefined without one.
   */
  async leftConnection(connectionId: string): Promise<LeftConnection | undefined> {
    const item = await this.leftItem(connectionId);
    if (item === undefined || typeof item.userId !== 'string') return undefined;
    return {
      connectionId,
      tenantId: String(item.tenantId),
      userId: item.userId,
      groups: [...(item.groups as Set<unknown>)].map(String),
    };
  }

  /**
   * The groups of `tenantId` a remover other than `$disconnect` took the connection out of (`removeConnection` with
   * `remember`); none once the item expired. For its `$disconnect`'s presence `leave`s.
   */
  async groupsLeft(connectionId: string, tenantId: string): Promise<string[]> {
    const item = await this.leftItem(connectionId);
    if (item === undefined || item.tenantId !== tenantId) return [];
    return [...(item.groups as Set<unknown>)].map(String);
  }

  /** Deletes the connection's `LEFT` item (the reaper, once it announced its `leave`s). */
  async forgetLeft(connectionId: string): Promise<void> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: { pk: connectionPk(connectionId), sk: LEFT_SK } }),
    );
  }

  /** Deletes the memberships among a connection's `items` (both sides) and its other items but `META`. */
  private async removeItems(connectionId: string, items: readonly Record<string, unknown>[]): Promise<number> {
    const deletes: NonNullable<BatchWriteCommandInput['RequestItems']>[string] = [];
    const memberships: [string, string][] = [];
    for (const item of items) {
      const sk = String(item.sk);
      if (sk.startsWith('G#')) {
        memberships.push([String(item.tenantId), String(item.group)]);
        deletes.push({
          DeleteRequest: { Key: { pk: groupPk(String(item.tenantId), String(item.group)), sk: `C#${connectionId}` } },
        });
      }
    }
    const groups = memberships.length;
    // Group side first, then the connection's own items (META is the caller's, last: a retry still finds everything).
    await this.batchWrite(deletes);
    // Best effort: a raise that fails here (a throttled version item in a reconnect storm) must not fail the removal
    // or the delivery that found the connection gone. A list kept without it posts to the gone connection, whose 410
    // removes it again, for at most the cache's maximum age (lambdas/core/member-cache.ts).
    await Promise.all(
      memberships.map(([tenantId, group]) => this.membershipChanged(tenantId, group).catch(() => undefined)),
    );
    const own = items
      .filter((item) => item.sk !== 'META')
      .map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } }));
    await this.batchWrite(own);
    return groups;
  }

  private async connectionItems(connectionId: string, consistent = false): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': connectionPk(connectionId) },
          ExclusiveStartKey: startKey,
          ...(consistent && { ConsistentRead: true }),
        }),
      );
      items.push(...(out.Items ?? []));
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  private isExpired(item: Record<string, unknown>): boolean {
    const ttl = Number(item.ttl);
    return Number.isFinite(ttl) && ttl * 1000 <= this.now();
  }

  /** BatchWriteItem in chunks of 25, retrying unprocessed items with a short backoff. */
  private async batchWrite(requests: NonNullable<BatchWriteCommandInput['RequestItems']>[string]): Promise<void> {
    for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
      let pending = requests.slice(i, i + BATCH_WRITE_MAX);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) {
          if (attempt > 8)
            throw new Error(`BatchWriteItem left ${pending.length} items unprocessed after ${attempt} attempts`);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 25 * 2 ** attempt));
        }
        const out = await this.client.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } }));
        pending = out.UnprocessedItems?.[this.tableName] ?? [];
      }
    }
  }
}
