/**
 * An in-memory stand-in for the DynamoDB document client, for unit tests of code that takes one as its port
 * (lambdas/core/history.ts, registry.ts). It understands exactly the requests that code sends — key conditions on
 * `pk` (=, >, BETWEEN, = on sk), `begins_with` on gsi1, the conditional puts and the update expressions it uses — and
 * throws on anything else, so a new kind of request shows up as a failing test instead of a silent wrong answer.
 *
 * `failWhen` makes a matching request throw (once, or every time), to put a crash at an exact point.
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';

export type Item = Record<string, unknown>;

/**
 * A deep copy, so callers never share state with the table. Not `structuredClone`: under Jest's VM modules its Sets
 * come from another realm, and `instanceof Set` (which the code under test uses for string sets) would fail.
 */
function clone<T>(value: T): T {
  if (value instanceof Set) return new Set([...value].map(clone)) as T;
  if (Array.isArray(value)) return value.map(clone) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)])) as T;
  }
  return value;
}

export class ConditionalCheckFailed extends Error {
  override readonly name = 'ConditionalCheckFailedException';
  /** With `ReturnValuesOnConditionCheckFailure: ALL_OLD`: the item as it was, marshalled, as AWS returns it. */
  Item?: Record<string, unknown>;
}

/** DynamoDB's wire form of an item's numbers and strings (what a failed condition returns with ALL_OLD). */
function marshalled(item: Item): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(item).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : { S: String(v) }]),
  );
}

/** What DynamoDB answers to a request it refuses outright (here: duplicate keys in a batch). */
export class ValidationException extends Error {
  override readonly name = 'ValidationException';
}

/** DynamoDB refuses a batch that names one key twice (BatchGetItem, BatchWriteItem). */
function assertNoDuplicateKeys(keys: readonly Record<string, unknown>[]): void {
  const seen = new Set(keys.map((k) => FakeTable.key(k.pk as string, k.sk as string)));
  if (seen.size !== keys.length) throw new ValidationException('Provided list of item keys contains duplicates');
}

interface Fault {
  readonly matches: (command: { constructor: { name: string }; input: Record<string, unknown> }) => boolean;
  readonly error: Error;
  times: number;
}

export class FakeTable {
  readonly items = new Map<string, Item>();
  /** Requests by command name (`PutCommand`, ...). */
  readonly calls: { name: string; input: Record<string, unknown> }[] = [];
  private readonly faults: Fault[] = [];

  /** The client to pass as the port. */
  get client(): DynamoDBDocumentClient {
    return { send: (command: unknown) => this.send(command) } as unknown as DynamoDBDocumentClient;
  }

  static key(pk: unknown, sk: unknown): string {
    return `${String(pk)}\u0000${String(sk)}`;
  }

  get(pk: string, sk: string): Item | undefined {
    return this.items.get(FakeTable.key(pk, sk));
  }

  put(item: Item): void {
    this.items.set(FakeTable.key(item.pk, item.sk), { ...item });
  }

  delete(pk: string, sk: string): void {
    this.items.delete(FakeTable.key(pk, sk));
  }

  /** Items of a partition, by sort key in code-unit order (as DynamoDB orders by bytes; not the locale's order). */
  partition(pk: string): Item[] {
    const order = (a: Item, b: Item) => (String(a.sk) < String(b.sk) ? -1 : String(a.sk) > String(b.sk) ? 1 : 0);
    return [...this.items.values()].filter((item) => item.pk === pk).sort(order);
  }

  /** The next `times` requests for which `matches` is true throw `error` instead of running. */
  failWhen(
    matches: (name: string, input: Record<string, unknown>) => boolean,
    error: Error = new Error('injected failure'),
    times = 1,
  ): void {
    this.faults.push({ matches: (c) => matches(c.constructor.name, c.input), error, times });
  }

  private async send(command: unknown): Promise<Record<string, unknown>> {
    const c = command as { constructor: { name: string }; input: Record<string, unknown> };
    this.calls.push({ name: c.constructor.name, input: c.input });
    const fault = this.faults.find((f) => f.times > 0 && f.matches(c));
    if (fault !== undefined) {
      fault.times--;
      throw fault.error;
    }
    if (command instanceof GetCommand) {
      const { pk, sk } = command.input.Key as Item;
      const item = this.items.get(FakeTable.key(pk, sk));
      return { Item: item === undefined ? undefined : clone(item) };
    }
    if (command instanceof PutCommand) {
      const item = command.input.Item as Item;
      const condition = command.input.ConditionExpression;
      if (condition !== undefined) {
        if (condition !== 'attribute_not_exists(pk)') throw new Error(`fake table: condition ${condition}`);
        if (this.items.has(FakeTable.key(item.pk, item.sk))) throw new ConditionalCheckFailed('exists');
      }
      this.put(clone(item));
      return {};
    }
    if (command instanceof QueryCommand) return this.query(command.input);
    if (command instanceof UpdateCommand) {
      try {
        return this.update(command.input);
      } catch (err) {
        const existing = this.items.get(FakeTable.key(command.input.Key?.pk, command.input.Key?.sk));
        if (err instanceof ConditionalCheckFailed && existing !== undefined) {
          if (command.input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD') err.Item = marshalled(existing);
        }
        throw err;
      }
    }
    if (command instanceof BatchGetCommand) {
      const responses: Record<string, Item[]> = {};
      for (const [table, request] of Object.entries(command.input.RequestItems ?? {})) {
        assertNoDuplicateKeys(request.Keys ?? []);
        responses[table] = (request.Keys ?? [])
          .map((k) => this.items.get(FakeTable.key(k.pk, k.sk)))
          .filter((item): item is Item => item !== undefined)
          .map((item) => clone(item));
      }
      return { Responses: responses, UnprocessedKeys: {} };
    }
    if (command instanceof BatchWriteCommand) {
      for (const requests of Object.values(command.input.RequestItems ?? {})) {
        assertNoDuplicateKeys(requests.map((r) => (r.PutRequest?.Item ?? r.DeleteRequest?.Key ?? {}) as Item));
        for (const request of requests) {
          if (request.PutRequest?.Item !== undefined) this.put(clone(request.PutRequest.Item as Item));
          else if (request.DeleteRequest?.Key !== undefined) {
            this.delete(String(request.DeleteRequest.Key.pk), String(request.DeleteRequest.Key.sk));
          } else throw new Error('fake table: empty BatchWriteItem request');
        }
      }
      return { UnprocessedItems: {} };
    }
    if (command instanceof DeleteCommand) {
      const { pk, sk } = command.input.Key as Item;
      const condition = command.input.ConditionExpression;
      const existing = this.items.get(FakeTable.key(pk, sk));
      if (condition !== undefined) {
        // The only conditional delete the code sends: "messageId = :id" (a history item still holding our message).
        if (condition !== 'messageId = :id') throw new Error(`fake table: condition ${condition}`);
        const held = existing?.messageId;
        if (held !== command.input.ExpressionAttributeValues?.[':id']) throw new ConditionalCheckFailed('not ours');
      }
      this.delete(String(pk), String(sk));
      return {};
    }
    throw new Error(`fake table: unsupported command ${c.constructor.name}`);
  }

  /** A page of a Query: `Limit` items at most, after `ExclusiveStartKey`, with `LastEvaluatedKey` when cut short. */
  private query(input: QueryCommand['input']): { Items: Item[]; LastEvaluatedKey?: Item } {
    const values = input.ExpressionAttributeValues ?? {};
    const expression = input.KeyConditionExpression ?? '';
    let items: Item[];
    if (input.IndexName === 'gsi1') {
      if (expression !== 'gsi1pk = :pk AND begins_with(gsi1sk, :user)') throw new Error(`fake table: ${expression}`);
      items = [...this.items.values()]
        .filter((i) => i.gsi1pk === values[':pk'] && String(i.gsi1sk ?? '').startsWith(String(values[':user'])))
        .sort((a, b) => String(a.gsi1sk).localeCompare(String(b.gsi1sk)));
    } else {
      const partition = this.partition(String(values[':pk']));
      const sk = (item: Item) => String(item.sk);
      switch (expression) {
        case 'pk = :pk':
          items = partition;
          break;
        case 'pk = :pk AND sk > :since':
          items = partition.filter((i) => sk(i) > String(values[':since']));
          break;
        case 'pk = :pk AND sk = :sk':
          items = partition.filter((i) => sk(i) === String(values[':sk']));
          break;
        case 'pk = :pk AND sk BETWEEN :lo AND :hi':
          items = partition.filter((i) => sk(i) >= String(values[':lo']) && sk(i) <= String(values[':hi']));
          break;
        default:
          throw new Error(`fake table: key condition ${expression}`);
      }
    }
    if (input.ScanIndexForward === false) items = [...items].reverse();
    // The page after the start key's place in sort order, as DynamoDB does (the item there may be gone by now).
    const start = input.ExclusiveStartKey as Item | undefined;
    if (start !== undefined && input.IndexName === undefined) {
      const forward = input.ScanIndexForward !== false;
      items = items.filter((i) => (forward ? String(i.sk) > String(start.sk) : String(i.sk) < String(start.sk)));
    } else if (start !== undefined) {
      const at = items.findIndex((i) => i.pk === start.pk && i.sk === start.sk);
      items = items.slice(at + 1);
    }
    if (input.Limit !== undefined && items.length > input.Limit) {
      items = items.slice(0, input.Limit);
      const last = items.at(-1) as Item;
      return { Items: items.map((item) => clone(item)), LastEvaluatedKey: { pk: last.pk, sk: last.sk } };
    }
    return { Items: items.map((item) => clone(item)) };
  }

  private update(input: UpdateCommand['input']): { Attributes?: Item } {
    const { pk, sk } = input.Key as Item;
    const key = FakeTable.key(pk, sk);
    const current: Item = this.items.get(key) ?? { pk, sk };
    const v = input.ExpressionAttributeValues ?? {};
    switch (input.UpdateExpression) {
      case 'SET seq = :seq': {
        const seq = current.seq;
        if (seq !== undefined && !(Number(seq) < Number(v[':seq']))) throw new ConditionalCheckFailed('seq');
        current.seq = v[':seq'];
        break;
      }
      case 'SET splitUntil = :until':
        current.splitUntil = v[':until'];
        break;
      case 'SET splitUntil = :until, lanes = :lanes':
        Object.assign(current, { splitUntil: v[':until'], lanes: v[':lanes'] });
        break;
      case 'ADD done :done SET through = :through, #ttl = :ttl': {
        const done = current.done instanceof Set ? (current.done as Set<string>) : new Set<string>();
        for (const id of v[':done'] as Set<string>) done.add(id);
        Object.assign(current, { done, through: v[':through'], ttl: v[':ttl'] });
        break;
      }
      case 'ADD done :done SET #first = :first, #last = :last, #ttl = :ttl': {
        const done = current.done instanceof Set ? (current.done as Set<string>) : new Set<string>();
        for (const id of v[':done'] as Set<string>) done.add(id);
        Object.assign(current, { done, first: v[':first'], last: v[':last'], ttl: v[':ttl'] });
        break;
      }
      case 'SET #first = :first, #last = :last, #ttl = :ttl, complete = :complete':
        Object.assign(current, { first: v[':first'], last: v[':last'], ttl: v[':ttl'], complete: v[':complete'] });
        break;
      // A group's membership version (lambdas/core/registry.ts).
      case 'ADD v :one':
        current.v = Number(current.v ?? 0) + Number(v[':one']);
        break;
      case 'REMOVE replayFrom':
        if (!this.items.has(key)) throw new ConditionalCheckFailed('missing');
        delete current.replayFrom;
        break;
      // Rate-limit buckets (lambdas/core/rate-limit.ts): the busy and the idle form of a lease.
      case 'SET tat = tat + :lease, #ttl = :ttl': {
        if (input.ConditionExpression !== 'tat BETWEEN :now AND :limit') throw new Error('fake table: busy lease');
        const tat = current.tat;
        if (typeof tat !== 'number' || tat < Number(v[':now']) || tat > Number(v[':limit'])) {
          throw new ConditionalCheckFailed('busy');
        }
        Object.assign(current, { tat: tat + Number(v[':lease']), ttl: v[':ttl'] });
        this.items.set(key, current);
        return { Attributes: { tat: current.tat, ttl: current.ttl } };
      }
      case 'SET tat = :next, #ttl = :ttl': {
        if (input.ConditionExpression !== 'attribute_not_exists(tat) OR tat < :now') {
          throw new Error('fake table: idle lease');
        }
        if (typeof current.tat === 'number' && !(current.tat < Number(v[':now']))) {
          throw new ConditionalCheckFailed('idle');
        }
        Object.assign(current, { tat: v[':next'], ttl: v[':ttl'] });
        this.items.set(key, current);
        return { Attributes: { tat: current.tat, ttl: current.ttl } };
      }
      default:
        throw new Error(`fake table: update ${input.UpdateExpression}`);
    }
    this.items.set(key, current);
    return {};
  }
}
