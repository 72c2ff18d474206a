import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { table as manifestTable } from '../lambdas/manifest.ts';
import { ensureTable, type LocalDynamo, startDynamo, startTtlSweeper } from './dynamo.ts';

const NOW_MS = Date.UTC(2030, 0, 1);
const NOW_S = NOW_MS / 1000;

let dynamo: LocalDynamo;
let tableSeq = 0;
const newTableName = () => `t${++tableSeq}-${Date.now()}`;

beforeAll(async () => {
  dynamo = await startDynamo();
});
afterAll(async () => {
  await dynamo.close();
});

async function putAll(client: DynamoDBClient, tableName: string, items: Record<string, AttributeValue>[]) {
  for (let i = 0; i < items.length; i += 25) {
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: { [tableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
  }
}

async function allKeys(client: DynamoDBClient, tableName: string): Promise<string[]> {
  const out = await client.send(new ScanCommand({ TableName: tableName }));
  return (out.Items ?? []).map((i) => `${i.pk?.S}|${i.sk?.S}`).sort();
}

describe('startDynamo', () => {
  it('listens on an ephemeral 127.0.0.1 port', () => {
    expect(dynamo.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(dynamo.endpoint).not.toMatch(/:0$/);
  });

  it('runs dynalite in a child process of its own, off the runtime’s event loop', () => {
    expect(dynamo.pid).toBeGreaterThan(0);
    expect(dynamo.pid).not.toBe(process.pid);
    expect(dynamo.description).toMatch(
      /^dynalite 4\.0\.0 in a child process \(pid \d+\), AWS validation rules patched/,
    );
  });

  it('persists to dataDir across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tenantcast-dynamo-'));
    try {
      const first = await startDynamo({ dataDir: dir });
      await ensureTable(first.client, 'persisted');
      await first.client.send(
        new PutItemCommand({ TableName: 'persisted', Item: { pk: { S: 'a' }, sk: { S: 'b' }, n: { N: '1' } } }),
      );
      await first.close();
      const second = await startDynamo({ dataDir: dir });
      try {
        await ensureTable(second.client, 'persisted');
        const got = await second.client.send(
          new GetItemCommand({ TableName: 'persisted', Key: { pk: { S: 'a' }, sk: { S: 'b' } } }),
        );
        expect(got.Item?.n).toEqual({ N: '1' });
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ensureTable', () => {
  it('creates the table from the manifest spec, ACTIVE at once', async () => {
    const name = newTableName();
    const created = await ensureTable(dynamo.client, name);
    expect(created.TableStatus).toBe('ACTIVE');
    const table = (await dynamo.client.send(new DescribeTableCommand({ TableName: name }))).Table;
    expect(table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table?.KeySchema).toEqual([
      { AttributeName: manifestTable.partitionKey, KeyType: 'HASH' },
      { AttributeName: manifestTable.sortKey, KeyType: 'RANGE' },
    ]);
    expect(table?.AttributeDefinitions?.map((a) => `${a.AttributeName}:${a.AttributeType}`).sort()).toEqual(
      ['gsi1pk:S', 'gsi1sk:S', 'gsi2pk:S', 'gsi2sk:S', 'pk:S', 'sk:S'].sort(),
    );
    expect(table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual(['gsi1', 'gsi2']);
    const gsi = table?.GlobalSecondaryIndexes?.find((i) => i.IndexName === 'gsi1');
    expect(gsi?.IndexName).toBe('gsi1');
    expect(gsi?.IndexStatus).toBe('ACTIVE');
    expect(gsi?.Projection?.ProjectionType).toBe('ALL');
    expect(gsi?.KeySchema).toEqual([
      { AttributeName: 'gsi1pk', KeyType: 'HASH' },
      { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
    ]);
    // The index is usable straight away.
    await dynamo.client.send(
      new PutItemCommand({
        TableName: name,
        Item: { pk: { S: 'p' }, sk: { S: 's' }, gsi1pk: { S: 'g' }, gsi1sk: { S: '1' }, extra: { S: 'x' } },
      }),
    );
    const q = await dynamo.client.send(
      new QueryCommand({
        TableName: name,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :g',
        ExpressionAttributeValues: { ':g': { S: 'g' } },
      }),
    );
    expect(q.Items?.[0]?.extra).toEqual({ S: 'x' });
  });

  it('is idempotent and keeps existing data', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    await dynamo.client.send(new PutItemCommand({ TableName: name, Item: { pk: { S: 'a' }, sk: { S: 'b' } } }));
    const again = await ensureTable(dynamo.client, name);
    expect(again.TableStatus).toBe('ACTIVE');
    await Promise.all([ensureTable(dynamo.client, name), ensureTable(dynamo.client, name)]);
    expect(await allKeys(dynamo.client, name)).toEqual(['a|b']);
  });

  it('dynalite has no TTL (why the sweeper exists)', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    const ttl = await dynamo.client.send(new DescribeTimeToLiveCommand({ TableName: name }));
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toBe('DISABLED');
  });
});

describe('startTtlSweeper', () => {
  it('deletes expired items, keeps live ones and items without a numeric ttl', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    await putAll(dynamo.client, name, [
      { pk: { S: 'expired' }, sk: { S: '1' }, ttl: { N: String(NOW_S - 1) } },
      { pk: { S: 'expired' }, sk: { S: '2' }, ttl: { N: String(NOW_S - 3600) } },
      { pk: { S: 'live' }, sk: { S: 'future' }, ttl: { N: String(NOW_S + 60) } },
      { pk: { S: 'live' }, sk: { S: 'now' }, ttl: { N: String(NOW_S) } },
      { pk: { S: 'live' }, sk: { S: 'no-ttl' } },
      { pk: { S: 'live' }, sk: { S: 'string-ttl' }, ttl: { S: String(NOW_S - 60) } },
      // More than five years old: DynamoDB TTL ignores it.
      { pk: { S: 'live' }, sk: { S: 'ancient' }, ttl: { N: String(NOW_S - 6 * 365 * 24 * 3600) } },
    ]);
    const sweeper = startTtlSweeper({ client: dynamo.client, tableName: name, now: () => NOW_MS, intervalMs: 60_000 });
    try {
      expect(await sweeper.sweepOnce()).toBe(2);
      expect(await allKeys(dynamo.client, name)).toEqual([
        'live|ancient',
        'live|future',
        'live|no-ttl',
        'live|now',
        'live|string-ttl',
      ]);
      expect(await sweeper.sweepOnce()).toBe(0);
    } finally {
      await sweeper.stop();
    }
  });

  it('paginates the scan and batches deletes over many pages', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    const items: Record<string, AttributeValue>[] = [];
    for (let i = 0; i < 60; i++) {
      items.push({
        pk: { S: `p${i % 7}` },
        sk: { S: `s${i}` },
        ttl: { N: String(i % 3 === 0 ? NOW_S + 10 : NOW_S - 10) },
      });
    }
    await putAll(dynamo.client, name, items);
    const sends = jest.spyOn(dynamo.client, 'send');
    const sweeper = startTtlSweeper({ client: dynamo.client, tableName: name, now: () => NOW_MS, pageSize: 7 });
    try {
      expect(await sweeper.sweepOnce()).toBe(40);
      const scans = sends.mock.calls.filter(([command]) => command instanceof ScanCommand);
      expect(scans.length).toBeGreaterThanOrEqual(Math.ceil(60 / 7));
      expect(await allKeys(dynamo.client, name)).toHaveLength(20);
    } finally {
      sends.mockRestore();
      await sweeper.stop();
    }
  });

  it('retries UnprocessedItems (which dynalite never returns, but DynamoDB may)', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    await putAll(dynamo.client, name, [
      { pk: { S: 'a' }, sk: { S: '1' }, ttl: { N: String(NOW_S - 1) } },
      { pk: { S: 'a' }, sk: { S: '2' }, ttl: { N: String(NOW_S - 1) } },
    ]);
    const send = dynamo.client.send.bind(dynamo.client) as (command: unknown) => Promise<unknown>;
    let batchWrites = 0;
    const spy = jest.spyOn(dynamo.client, 'send').mockImplementation((async (command: unknown) => {
      if (command instanceof BatchWriteItemCommand && ++batchWrites === 1) {
        // Process all but the last request and hand that one back as unprocessed.
        const requests = command.input.RequestItems?.[name] ?? [];
        await send(new BatchWriteItemCommand({ RequestItems: { [name]: requests.slice(0, -1) } }));
        return { UnprocessedItems: { [name]: requests.slice(-1) } };
      }
      return send(command);
    }) as never);
    const sweeper = startTtlSweeper({ client: dynamo.client, tableName: name, now: () => NOW_MS });
    try {
      expect(await sweeper.sweepOnce()).toBe(2);
      expect(batchWrites).toBe(2);
    } finally {
      spy.mockRestore();
      await sweeper.stop();
    }
    expect(await allKeys(dynamo.client, name)).toEqual([]);
  });

  it('sweeps only when asked with intervalMs null (no timer)', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    await putAll(dynamo.client, name, [{ pk: { S: 'a' }, sk: { S: '1' }, ttl: { N: String(NOW_S - 1) } }]);
    const timers = jest.spyOn(globalThis, 'setInterval');
    const sweeper = startTtlSweeper({ client: dynamo.client, tableName: name, now: () => NOW_MS, intervalMs: null });
    try {
      expect(timers).not.toHaveBeenCalled();
      expect(await allKeys(dynamo.client, name)).toEqual(['a|1']);
      expect(await sweeper.sweepOnce()).toBe(1);
      expect(await allKeys(dynamo.client, name)).toEqual([]);
    } finally {
      timers.mockRestore();
      await sweeper.stop();
    }
  });

  it('sweeps on its timer, survives errors, and stop() stops it', async () => {
    const name = newTableName();
    await ensureTable(dynamo.client, name);
    let clock = NOW_MS;
    const errors: unknown[] = [];
    const sweeper = startTtlSweeper({
      client: dynamo.client,
      tableName: name,
      now: () => clock,
      intervalMs: 20,
      log: { error: (...args: unknown[]) => errors.push(args) },
    });
    const missing = startTtlSweeper({
      client: dynamo.client,
      tableName: 'no-such-table',
      intervalMs: 20,
      log: { error: (...args: unknown[]) => errors.push(args) },
    });
    try {
      await putAll(dynamo.client, name, [{ pk: { S: 'a' }, sk: { S: '1' }, ttl: { N: String(NOW_S + 5) } }]);
      clock = NOW_MS + 10_000;
      await waitFor(async () => (await allKeys(dynamo.client, name)).length === 0);
      await waitFor(async () => errors.length > 0);
      await sweeper.stop();
      await missing.stop();
      await putAll(dynamo.client, name, [{ pk: { S: 'b' }, sk: { S: '1' }, ttl: { N: String(NOW_S) } }]);
      const errorsAtStop = errors.length;
      await new Promise((r) => setTimeout(r, 100));
      expect(await allKeys(dynamo.client, name)).toEqual(['b|1']);
      expect(errors.length).toBe(errorsAtStop);
    } finally {
      await sweeper.stop();
      await missing.stop();
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
