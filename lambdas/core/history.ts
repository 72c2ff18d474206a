/**
 * Per-group sequence numbers, message history and delivery progress in the table (docs/delivery.md, docs/data-model.md):
 *
 * | item      | pk                       | sk                          | attributes                         |
 * |-----------|--------------------------|-----------------------------|------------------------------------|
 * | counter   | `T#<tenant>#G#<group>#S` | `SEQ`                       | seq (high-water mark), splitUntil  |
 * | history   | `T#<tenant>#G#<group>#H` | seq, zero-padded to 12      | seq, messageId, body, ttl          |
 * | progress  | `T#<tenant>#G#<group>#P` | `R#<first>#<last>`, `J#<id>`| first, last, done (string set), ttl|
 * | ahead     | `T#<tenant>#G#<group>#P` | `A#<lane>#<through>#<unit>` | through, done (string set), ttl    |
 * | held      | `T#<tenant>#G#<group>#P` | `L#<lane>#HELD`             | held (string set), ttl             |
 *
 * Seqs are dense: a seq is taken by a conditional put of its history item, so two writers can never share one and
 * no seq is skipped. No transactions (dynalite has none); the crash points and why each is safe are in
 * docs/delivery.md.
 *
 * A history item keeps the message as JSON text (`body`), not as a DynamoDB map: any JSON the protocol accepts is
 * storable that way, whatever DynamoDB's map rules (nesting, empty names, number precision) would say. Items written
 * before this layout hold a map in `message`; `messageOf` reads both.
 */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type DeliveryMessage, type SequencedMessage, toMessageFrame } from './delivery.ts';
import { isConditionalCheckFailed } from './errors.ts';

export interface GroupHistoryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** How long delivered messages stay replayable. @default 86400 */
  readonly retentionSeconds?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface GroupState {
  /** Highest seq given out so far (0 for a new group). */
  readonly seq: number;
  /** Epoch ms until which the group keeps using the split (fan-out) path, so its order cannot change. */
  readonly splitUntil: number;
  /** Fan-out lanes of the current split period (a connection's lane must not change while pages may be queued). */
  readonly lanes: number | undefined;
}

/**
 * What a fan-out lane delivered past its pages, read from the log (docs/delivery.md, "Pack from the log"): every
 * connection in `done` got every message of the group through `through`, so later pages skip those seqs for it.
 */
export interface AheadRecord {
  readonly through: number;
  readonly done: ReadonlySet<string>;
}

export type HistoryRead =
  | { readonly kind: 'ok'; readonly seq: number; readonly messages: SequencedMessage[] }
  | { readonly kind: 'expired'; readonly seq: number }
  /** More than the read's `max` messages follow `since`: none are returned. */
  | { readonly kind: 'tooLong'; readonly seq: number };

/** Connections that got seqs `first`..`last` of a group (one record per delivered run, written as it goes). */
export interface ProgressRecord {
  readonly first: number;
  readonly last: number;
  readonly done: ReadonlySet<string>;
  /**
   * Every recipient of the fan-out page body with this fingerprint got it (`addProgress` with `complete`); `done`
   * then lists only who was recorded before, by an attempt that left someone out.
   */
  readonly complete: string | undefined;
}

const PROGRESS_TTL_SECONDS = 24 * 3600;
/** History items read from the tail to find a redelivered run's seqs. */
const TAIL_ITEMS = 30;

/** The history item of a message at `seq`: the message as JSON text, its id beside it (for conditions). */
function historyItem(message: DeliveryMessage, seq: number, ttl: number): Record<string, unknown> {
  return {
    pk: `${base(message.tenantId, message.group)}#H`,
    sk: pad(seq),
    type: 'history',
    seq,
    messageId: message.id,
    body: JSON.stringify(message),
    ttl,
  };
}

/** The message of a history item, in either layout (`body` JSON text, or an older item's `message` map). */
function messageOf(item: Record<string, unknown>): DeliveryMessage {
  return typeof item.body === 'string' ? (JSON.parse(item.body) as DeliveryMessage) : (item.message as DeliveryMessage);
}
/** Items the first page of a byte-bounded read asks for, before it knows their size. */
const FIRST_PAGE_ITEMS = 100;
const pad = (seq: number) => String(seq).padStart(12, '0');
const base = (tenantId: string, group: string) => `T#${tenantId}#G#${group}`;
/** A fan-out lane's connections held back (`heldInLane`), beside the group's progress records. */
const laneHoldKey = (tenantId: string, group: string, lane: number) => ({
  pk: `${base(tenantId, group)}#P`,
  sk: `L#${lane}#HELD`,
});

export class GroupHistory {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly retentionSeconds: number;
  private readonly now: () => number;

  constructor(options: GroupHistoryOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.retentionSeconds = options.retentionSeconds ?? 86_400;
    this.now = options.now ?? Date.now;
  }

  async state(tenantId: string, group: string): Promise<GroupState> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: `${base(tenantId, group)}#S`, sk: 'SEQ' },
        ConsistentRead: true,
      }),
    );
    const lanes = out.Item?.lanes;
    return {
      seq: Number(out.Item?.seq ?? 0),
      splitUntil: Number(out.Item?.splitUntil ?? 0),
      lanes: lanes === undefined ? undefined : Number(lanes),
    };
  }

  /**
   * Gives each message its seq: the one it already has if it was sequenced before (a redelivery), else the next.
   * A message id that comes twice in one run (a publisher that reused an id after SQS's five-minute deduplication
   * window) is sequenced and returned once, for its first occurrence.
   *
   * Where a redelivered message's seq is found: at the tail of the history. The FIFO queue hands a group's messages
   * out in order, one batch at a time, and a failed run comes back before anything behind it, so nothing can have
   * been sequenced after an earlier attempt of the run except the rest of that attempt. So no id → seq record is
   * written (a write unit per message saved), and a first delivery (`redelivered: false`, SQS's receive count 1)
   * looks nothing up at all.
   */
  async assign(
    run: readonly DeliveryMessage[],
    state: GroupState,
    options: { readonly redelivered?: boolean } = {},
  ): Promise<SequencedMessage[]> {
    const messages = run.filter((m, i) => run.findIndex((other) => other.id === m.id) === i);
    const first = messages[0];
    if (first === undefined) return [];
    const { tenantId, group } = first;
    const known =
      options.redelivered === false
        ? new Map<string, number>()
        : await this.tailSeqs(
            tenantId,
            group,
            messages.map((m) => m.id),
          );
    const fresh = messages.filter((m) => !known.has(m.id));
    const taken = fresh.length > 0 && (await this.appendAll(fresh, state.seq + 1));
    const out: SequencedMessage[] = [];
    let last = state.seq;
    for (const message of messages) {
      const seq = known.get(message.id) ?? (taken ? taken.get(message.id) : undefined);
      if (seq !== undefined) {
        out.push({ ...message, seq });
        continue;
      }
      const assigned = await this.append(message, last + 1);
      last = assigned;
      out.push({ ...message, seq: assigned });
    }
    await this.raiseCounter(tenantId, group, Math.max(...out.map((m) => m.seq)));
    return out;
  }

  /**
   * The common case, one round trip: the run's new messages take seqs `from`, `from + 1`, … with conditional puts
   * sent together (the FIFO queue gives a group one broadcaster at a time, so nobody else is taking them). If any
   * seq was taken already (left by a crashed earlier attempt), the puts that did succeed are taken back (deleted
   * only if they still hold our message) and the caller falls back to one seq at a time; returns false then.
   * A crash after the puts leaves the messages at the history's tail, where their redelivery finds them.
   */
  private async appendAll(messages: readonly DeliveryMessage[], from: number): Promise<Map<string, number> | false> {
    const ttl = Math.floor(this.now() / 1000) + this.retentionSeconds;
    const attempts = await Promise.allSettled(
      messages.map((message, i) =>
        this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: historyItem(message, from + i, ttl),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      ),
    );
    const failed = attempts.find((a) => a.status === 'rejected');
    if (failed === undefined) return new Map(messages.map((m, i) => [m.id, from + i]));
    const conflict = isConditionalCheckFailed(failed.reason);
    await Promise.all(
      messages.map((message, i) =>
        attempts[i]?.status !== 'fulfilled'
          ? undefined
          : this.client
              .send(
                new DeleteCommand({
                  TableName: this.tableName,
                  Key: { pk: `${base(message.tenantId, message.group)}#H`, sk: pad(from + i) },
                  ConditionExpression: 'messageId = :id',
                  ExpressionAttributeValues: { ':id': message.id },
                }),
              )
              .catch((err: unknown) => {
                if (!isConditionalCheckFailed(err)) throw err;
              }),
      ),
    );
    if (!conflict) throw failed.reason;
    return false;
  }

  /**
   * Writes messages sequenced by another region (the group's home, docs/multi-region.md) into this region's history
   * at the seqs they came with: history item and counter. No seq is assigned here. Idempotent: the
   * home is the source of truth, so a seq's history item is simply (re)written with the home's message.
   */
  async record(messages: readonly SequencedMessage[]): Promise<void> {
    const first = messages[0];
    if (first === undefined) return;
    const ttl = Math.floor(this.now() / 1000) + this.retentionSeconds;
    for (const { seq, ...message } of messages) {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: historyItem(message, seq, ttl) }));
    }
    await this.raiseCounter(first.tenantId, first.group, Math.max(...messages.map((m) => m.seq)));
  }

  /**
   * History after `since`, deduplicated by id; `expired` if some of it is gone (or `since` is beyond the group);
   * `tooLong` if more than `max` items follow `since` (reading stops after `max + 1` of them), or more than `maxBytes`
   * of what a replay would send (reading stops a page past it).
   */
  async read(
    tenantId: string,
    group: string,
    since: number,
    max = Number.POSITIVE_INFINITY,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<HistoryRead> {
    const nowSeconds = this.now() / 1000;
    const seen = new Set<string>();
    const messages: SequencedMessage[] = [];
    let top = 0;
    // Each item becomes its message as it is read. Its size is its `message` frame's, what a replay would send, not
    // its `audience` (found in review: counting stored bytes reset replays that fit), or a quarter of what is stored
    // if that is more (a repeat, a long audience), so no read takes more than four bounds of stored bytes. An
    // expired item before any message means the history after `since` is gone: the read stops there (Infinity),
    // and says so, rather than reading on (found in review: an expired history read 1,000 items).
    const take = (item: Record<string, unknown>) => {
      if (Number(item.ttl) <= nowSeconds) return messages.length === 0 ? Number.POSITIVE_INFINITY : 0;
      const body = typeof item.body === 'string' ? item.body : JSON.stringify(item.message ?? null);
      const stored = Buffer.byteLength(body, 'utf8') / 4;
      const message = { ...messageOf(item), seq: Number(item.seq) };
      top = Math.max(top, message.seq);
      if (seen.has(message.id)) return stored;
      seen.add(message.id);
      messages.push(message);
      return Math.max(stored, Buffer.byteLength(JSON.stringify(toMessageFrame(message)), 'utf8'));
    };
    const query = {
      pk: `${base(tenantId, group)}#H`,
      condition: 'pk = :pk AND sk > :since',
      values: { ':since': pad(since) },
    };
    const [state, { items, overBytes }] = await Promise.all([
      this.state(tenantId, group),
      this.queryAll(query, max + 1, maxBytes, take),
    ]);
    top = Math.max(top, state.seq);
    // What was read starts where the history does, so a gap shows even in a read cut short.
    if (since > top) return { kind: 'expired', seq: top };
    if (since < top && messages[0]?.seq !== since + 1) return { kind: 'expired', seq: top };
    if (items.length > max || overBytes) return { kind: 'tooLong', seq: state.seq };
    return { kind: 'ok', seq: top, messages };
  }

  /** Keeps the group on the split path until `until`, with `lanes` fan-out lanes (kept while the period lasts). */
  async markSplit(tenantId: string, group: string, until: number, lanes?: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: `${base(tenantId, group)}#S`, sk: 'SEQ' },
        UpdateExpression: lanes === undefined ? 'SET splitUntil = :until' : 'SET splitUntil = :until, lanes = :lanes',
        ExpressionAttributeValues: { ':until': until, ...(lanes !== undefined && { ':lanes': lanes }) },
      }),
    );
  }

  /**
   * Up to `max` messages after seq `after` and at most `through`, in seq order and without a gap (reading stops at
   * the first seq that is missing or expired), each id once. For a fan-out lane reading ahead of its pages
   * (docs/delivery.md), with `through` the group's counter read before: a seq above it may belong to a run still
   * assigning, which can take a put back and give that seq to another message (`appendAll`).
   */
  async readAfter(
    tenantId: string,
    group: string,
    after: number,
    max: number,
    through: number,
  ): Promise<SequencedMessage[]> {
    if (through <= after) return [];
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: {
          ':pk': `${base(tenantId, group)}#H`,
          ':lo': pad(after + 1),
          ':hi': pad(through),
        },
        Limit: max,
        ConsistentRead: true,
      }),
    );
    const nowSeconds = this.now() / 1000;
    const seen = new Set<string>();
    const messages: SequencedMessage[] = [];
    let expected = after + 1;
    for (const item of out.Items ?? []) {
      const seq = Number(item.seq);
      if (seq !== expected || Number(item.ttl) <= nowSeconds) break;
      expected++;
      const message = messageOf(item);
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      messages.push({ ...message, seq });
    }
    return messages;
  }

  /**
   * Records that `connectionIds` got every message through `through`, read ahead by fan-out lane `lane` in the unit
   * whose last page is `unit` (its page id). Each unit has its own record, which holds at most its last page's
   * recipients (one SQS message of ids, well under DynamoDB's 400 KB). Until 2026-12-03 the record was the lane's per
   * seq: every unit of a lane reading ahead to the same seq (a burst to a group of over ~200,000 members, 25,000 per
   * lane) added its readers to one item, which DynamoDB refuses past 400 KB, and the lane's units failed over and over.
   */
  async addAhead(
    tenantId: string,
    group: string,
    lane: number,
    through: number,
    connectionIds: readonly string[],
    unit: string,
  ): Promise<void> {
    if (connectionIds.length === 0) return;
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: `${base(tenantId, group)}#P`, sk: `A#${lane}#${pad(through)}#${unit}` },
        UpdateExpression: 'ADD done :done SET through = :through, #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: {
          ':done': new Set(connectionIds),
          ':through': through,
          ':ttl': Math.floor(this.now() / 1000) + PROGRESS_TTL_SECONDS,
        },
      }),
    );
  }

  /** The read-ahead records of fan-out lane `lane` that reach seq `from` or beyond. */
  async ahead(tenantId: string, group: string, lane: number, from: number): Promise<AheadRecord[]> {
    const { items } = await this.queryAll({
      pk: `${base(tenantId, group)}#P`,
      condition: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      values: { ':lo': `A#${lane}#${pad(from)}`, ':hi': `A#${lane}#~` },
    });
    return items.map((item) => ({
      through: Number(item.through),
      done: new Set(item.done instanceof Set ? [...(item.done as Set<string>)] : []),
    }));
  }

  /**
   * Records that `connectionIds` got seqs `first`..`last` (or, with `jobId`, the whole fan-out job). With `complete`
   * (only for a job), every recipient of the job body whose fingerprint it is got it: the record then holds the
   * fingerprint instead of the ids, one write unit instead of one per ~60 connection ids (a page of 125 members'
   * ids is ~2.2 KB, 3 units). A fingerprint, not a flag: a job id names a run's page, and the same run split again
   * later (a redelivery after SQS's 5-minute deduplication) may give that page other recipients.
   */
  async addProgress(
    tenantId: string,
    group: string,
    range: { first: number; last: number; jobId?: string },
    connectionIds: readonly string[],
    complete?: string,
  ): Promise<void> {
    const whole = complete !== undefined && range.jobId !== undefined;
    if (connectionIds.length === 0) return;
    const sk = range.jobId === undefined ? `R#${pad(range.first)}#${pad(range.last)}` : `J#${range.jobId}`;
    const common = {
      ':first': range.first,
      ':last': range.last,
      ':ttl': Math.floor(this.now() / 1000) + PROGRESS_TTL_SECONDS,
    };
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: `${base(tenantId, group)}#P`, sk },
        ...(whole
          ? {
              UpdateExpression: 'SET #first = :first, #last = :last, #ttl = :ttl, complete = :complete',
              ExpressionAttributeValues: { ...common, ':complete': complete },
            }
          : {
              UpdateExpression: 'ADD done :done SET #first = :first, #last = :last, #ttl = :ttl',
              ExpressionAttributeValues: { ...common, ':done': new Set(connectionIds) },
            }),
        ExpressionAttributeNames: { '#first': 'first', '#last': 'last', '#ttl': 'ttl' },
      }),
    );
  }

  /**
   * The connections fan-out lane `lane` holds back: their client did not take a page, and their member waits for a
   * replay (lambdas/core/lagging.ts). A hint the lane checks against each member's wait (consistent read).
   */
  async heldInLane(tenantId: string, group: string, lane: number): Promise<Set<string>> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: laneHoldKey(tenantId, group, lane), ConsistentRead: true }),
    );
    const held = out.Item?.held;
    return new Set(held instanceof Set ? [...(held as Set<string>)] : []);
  }

  /** Adds `connectionId` to what lane `lane` holds back (`heldInLane`). */
  async holdInLane(tenantId: string, group: string, lane: number, connectionId: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: laneHoldKey(tenantId, group, lane),
        UpdateExpression: 'ADD held :c SET #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: {
          ':c': new Set([connectionId]),
          ':ttl': Math.floor(this.now() / 1000) + PROGRESS_TTL_SECONDS,
        },
      }),
    );
  }

  /** Lane `lane` holds these connections back no longer (their member waits no more). */
  async releaseInLane(tenantId: string, group: string, lane: number, connectionIds: readonly string[]): Promise<void> {
    if (connectionIds.length === 0) return;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: laneHoldKey(tenantId, group, lane),
          UpdateExpression: 'DELETE held :c',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':c': new Set(connectionIds) },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
    }
  }

  /** Progress records of runs that started at or before `last` and ended at or after `first`, or of one job. */
  async progress(
    tenantId: string,
    group: string,
    range: { first: number; last: number; jobId?: string },
  ): Promise<ProgressRecord[]> {
    const pk = `${base(tenantId, group)}#P`;
    const { items } =
      range.jobId === undefined
        ? await this.queryAll({
            pk,
            condition: 'pk = :pk AND sk BETWEEN :lo AND :hi',
            values: { ':lo': 'R#', ':hi': `R#${pad(range.last)}#~` },
          })
        : await this.queryAll({ pk, condition: 'pk = :pk AND sk = :sk', values: { ':sk': `J#${range.jobId}` } });
    return items
      .filter((item) => Number(item.last) >= range.first)
      .map((item) => ({
        first: Number(item.first),
        last: Number(item.last),
        done: new Set(item.done instanceof Set ? [...(item.done as Set<string>)] : []),
        complete: typeof item.complete === 'string' ? item.complete : undefined,
      }));
  }

  /** Seqs of `ids` among the last history items of the group (where a redelivered run's messages are). */
  private async tailSeqs(tenantId: string, group: string, ids: readonly string[]): Promise<Map<string, number>> {
    const wanted = new Set(ids);
    // A run is at most one SQS batch (10); a margin for the rest of an earlier attempt's batch.
    const items = await this.tail(tenantId, group, Math.max(TAIL_ITEMS, 2 * wanted.size));
    const known = new Map<string, number>();
    for (const item of items) {
      const id = String(item.messageId);
      if (wanted.has(id) && !known.has(id)) known.set(id, Number(item.seq));
    }
    return known;
  }

  /** The group's last `limit` history items, newest first. */
  private async tail(tenantId: string, group: string, limit: number): Promise<Record<string, unknown>[]> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `${base(tenantId, group)}#H` },
        ScanIndexForward: false,
        Limit: limit,
        ConsistentRead: true,
      }),
    );
    return out.Items ?? [];
  }

  /** Takes the first free seq from `candidate` on with a conditional put of the history item. */
  private async append(message: DeliveryMessage, candidate: number): Promise<number> {
    const ttl = Math.floor(this.now() / 1000) + this.retentionSeconds;
    let seq = candidate;
    for (;;) {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: historyItem(message, seq, ttl),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        break;
      } catch (err) {
        if (!isConditionalCheckFailed(err)) throw err;
        seq = (await this.lastHistorySeq(message.tenantId, message.group)) + 1;
      }
    }
    return seq;
  }

  private async lastHistorySeq(tenantId: string, group: string): Promise<number> {
    return Number((await this.tail(tenantId, group, 1))[0]?.seq ?? 0);
  }

  private async raiseCounter(tenantId: string, group: string, seq: number): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `${base(tenantId, group)}#S`, sk: 'SEQ' },
          UpdateExpression: 'SET seq = :seq',
          ConditionExpression: 'attribute_not_exists(seq) OR seq < :seq',
          ExpressionAttributeValues: { ':seq': seq },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
    }
  }

  /** Every item the query finds, in key order; at most `max` (whole pages are read, the rest dropped). */
  /**
   * Every item of `query`, up to `max` items. With `maxBytes`, reading stops once the items' sizes (`sizeOf`) pass
   * it (`overBytes`): pages after the first hold only as many items as the bytes left allow at the average
   * size so far, so a read never goes more than a page past the bound (a `since: 0` on 1,000 messages of 15 KB read
   * all 15 MB until 2026-12-05, to answer HISTORY_TOO_LONG; found by an attacking pass).
   */
  private async queryAll(
    query: {
      pk: string;
      condition: string;
      values: Record<string, unknown>;
    },
    max = Number.POSITIVE_INFINITY,
    maxBytes = Number.POSITIVE_INFINITY,
    sizeOf: (item: Record<string, unknown>) => number = () => 0,
  ): Promise<{ items: Record<string, unknown>[]; overBytes: boolean }> {
    const items: Record<string, unknown>[] = [];
    let bytes = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      let limit = max - items.length;
      if (Number.isFinite(maxBytes)) {
        const average = items.length === 0 || bytes === 0 ? undefined : bytes / items.length;
        const fit = average === undefined ? FIRST_PAGE_ITEMS : Math.ceil((maxBytes - bytes) / average) + 1;
        limit = Math.min(limit, fit);
      }
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: query.condition,
          ExpressionAttributeValues: { ':pk': query.pk, ...query.values },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
          ...(Number.isFinite(limit) && { Limit: limit }),
        }),
      );
      for (const item of out.Items ?? []) {
        items.push(item);
        bytes += sizeOf(item);
      }
      if (bytes > maxBytes) return { items, overBytes: true };
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined && items.length < max);
    return { items, overBytes: false };
  }
}
