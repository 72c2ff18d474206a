/**
 * Local DynamoDB: dynalite (a wire-compatible DynamoDB on LevelDB, in memory or on disk), table creation from the
 * manifest, and a TTL sweeper standing in for DynamoDB's Time To Live.
 *
 * What dynalite lacks, and what we do about it:
 * - TTL: dynalite has no UpdateTimeToLive and never expires items (DescribeTimeToLive always says DISABLED).
 *   `startTtlSweeper` deletes expired items periodically. In AWS, TTL deletes expired items "typically within a few
 *   days" (up to ~48 h), so functions must never rely on timely deletion: every read of a TTL'd item must also check
 *   `ttl` itself. The sweeper only keeps the local table from growing.
 * - TransactWriteItems / TransactGetItems: not supported by dynalite, and deliberately not emulated here.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import {
  type AttributeDefinition,
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type KeySchemaElement,
  ScanCommand,
  type TableDescription,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { table as manifestTable } from '../lambdas/manifest.ts';
import { listen } from './http-util.ts';

/** The subset of dynalite's options we use (dynalite ships no types). */
interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}
type DynaliteFactory = (options?: DynaliteOptions) => Server;

// dynalite is CommonJS without type declarations: load it through require and type the little we use.
const dynalite = createRequire(import.meta.url)('dynalite') as DynaliteFactory;

export interface StartDynamoOptions {
  /** LevelDB directory for a persistent table; omit for an in-memory store that vanishes on close. */
  dataDir?: string;
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0: an ephemeral port. */
  port?: number;
  /** Region of the returned client (dynalite ignores it). Defaults to AWS_REGION or us-east-1. */
  region?: string;
}

export interface LocalDynamo {
  /** `http://host:port`, for `AWS_ENDPOINT_URL_DYNAMODB`. */
  endpoint: string;
  /** A client for the local runtime's own use (table setup, sweeper). Functions build their own. */
  client: DynamoDBClient;
  /** dynalite's HTTP server (the benchmark's meter wraps its request handler: local/meter.ts). */
  server: Server;
  close(): Promise<void>;
}

/** The user agent of the local runtime's own DynamoDB client (not the functions'): local/meter.ts skips it. */
export const RUNTIME_USER_AGENT = 'tenantcast-local-runtime';

/** Fixed credentials for local stand-ins: they check none, but the SDK insists on having some. */
export const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

export async function startDynamo(options: StartDynamoOptions = {}): Promise<LocalDynamo> {
  const host = options.host ?? '127.0.0.1';
  // Zero delays: tables (and indexes) are ACTIVE as soon as CreateTable returns, instead of after dynalite's 500 ms.
  const server = dynalite({
    ...(options.dataDir === undefined ? {} : { path: options.dataDir }),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  const { url: endpoint } = await listen(server, { port: options.port, host, name: 'dynalite' });
  const client = new DynamoDBClient({
    endpoint,
    region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
    credentials: localCredentials,
    // Marks the runtime's own requests (table setup, the TTL sweeper) so the benchmark's meter leaves them out:
    // DynamoDB's own TTL deletes cost nothing.
    customUserAgent: RUNTIME_USER_AGENT,
  });
  let closed: Promise<void> | undefined;
  return {
    endpoint,
    client,
    server,
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        client.destroy();
        // dynalite's close() stops the HTTP server, then closes LevelDB once its pending operations finish.
        server.close((err?: Error) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** The shape of `manifest.table`. Key attributes are strings (S). */
export interface TableSpec {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly timeToLiveAttribute?: string;
  readonly globalSecondaryIndexes?: readonly {
    readonly indexName: string;
    readonly partitionKey: string;
    readonly sortKey?: string;
  }[];
}

function keySchema(partitionKey: string, sortKey: string | undefined): KeySchemaElement[] {
  const schema: KeySchemaElement[] = [{ AttributeName: partitionKey, KeyType: 'HASH' }];
  if (sortKey !== undefined) schema.push({ AttributeName: sortKey, KeyType: 'RANGE' });
  return schema;
}

function isNamed(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function describe(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if (isNamed(err, 'ResourceNotFoundException')) return undefined;
    throw err;
  }
}

function isActive(table: TableDescription | undefined): boolean {
  return (
    table?.TableStatus === 'ACTIVE' && (table.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE')
  );
}

/**
 * Creates the table from the spec (on-demand billing, string keys, GSIs projecting ALL) unless a table of that name
 * exists, then waits until it and its indexes are ACTIVE. An existing table is left as it is, even if it differs from
 * the spec (e.g. an old on-disk `dataDir`). TTL is not enabled: dynalite has no UpdateTimeToLive (see the sweeper).
 */
export async function ensureTable(
  client: DynamoDBClient,
  tableName: string,
  spec: TableSpec = manifestTable,
  options: { timeoutMs?: number } = {},
): Promise<TableDescription> {
  if ((await describe(client, tableName)) === undefined) {
    const gsis = spec.globalSecondaryIndexes ?? [];
    const names = new Set<string>([spec.partitionKey]);
    if (spec.sortKey !== undefined) names.add(spec.sortKey);
    for (const gsi of gsis) {
      names.add(gsi.partitionKey);
      if (gsi.sortKey !== undefined) names.add(gsi.sortKey);
    }
    const attributeDefinitions: AttributeDefinition[] = [...names].map((name) => ({
      AttributeName: name,
      AttributeType: 'S',
    }));
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: attributeDefinitions,
          KeySchema: keySchema(spec.partitionKey, spec.sortKey),
          ...(gsis.length === 0
            ? {}
            : {
                GlobalSecondaryIndexes: gsis.map((gsi) => ({
                  IndexName: gsi.indexName,
                  KeySchema: keySchema(gsi.partitionKey, gsi.sortKey),
                  Projection: { ProjectionType: 'ALL' },
                })),
              }),
        }),
      );
    } catch (err) {
      // Someone else created it between our DescribeTable and CreateTable: fine, wait for it below.
      if (!isNamed(err, 'ResourceInUseException')) throw err;
    }
  }
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const table = await describe(client, tableName);
    if (table !== undefined && isActive(table)) return table;
    if (Date.now() > deadline)
      throw new Error(`table ${tableName} is not ACTIVE after ${options.timeoutMs ?? 10_000} ms`);
    await sleep(10);
  }
}

export interface TtlSweeperLog {
  error(message: string, ...details: unknown[]): void;
}

export interface TtlSweeperOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Number attribute holding the expiry in epoch seconds. Defaults to `ttl`. */
  attribute?: string;
  /** Time between sweeps. Defaults to 30 s. The first sweep runs one interval after start. */
  intervalMs?: number;
  /** Clock in epoch milliseconds (tests move it). */
  now?: () => number;
  /** Scan page size (Limit). Defaults to DynamoDB's own (1 MB pages). */
  pageSize?: number;
  log?: TtlSweeperLog;
}

export interface TtlSweeper {
  /** One full sweep: scans the whole table and deletes what has expired. Resolves to the number of items deleted. */
  sweepOnce(): Promise<number>;
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/** DynamoDB TTL ignores expiry times more than five years in the past (they are taken for mistakes). */
const TTL_MAX_AGE_SECONDS = 5 * 365 * 24 * 3600;
const BATCH_WRITE_MAX = 25;

/**
 * Mimics DynamoDB TTL: every `intervalMs`, deletes the items whose `attribute` is a Number of epoch seconds in the
 * past (items without it, or with a non-Number value, are kept, as in AWS).
 *
 * Unlike AWS, which re-checks each item as it deletes it, this scans and then deletes with BatchWriteItem (which
 * takes no conditions): an item whose TTL is extended between the two is still deleted. Sweeps are seconds apart and
 * the window is milliseconds, and AWS itself gives no timing guarantee, so functions must cope with both early-looking
 * and late deletions anyway.
 */
export function startTtlSweeper(options: TtlSweeperOptions): TtlSweeper {
  const { client, tableName } = options;
  const attribute = options.attribute ?? 'ttl';
  const now = options.now ?? (() => Date.now());
  const log = options.log ?? console;
  let keyNames: string[] | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  async function deleteKeys(keys: Record<string, AttributeValue>[]): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < keys.length; i += BATCH_WRITE_MAX) {
      let requests: WriteRequest[] = keys.slice(i, i + BATCH_WRITE_MAX).map((Key) => ({ DeleteRequest: { Key } }));
      const chunkSize = requests.length;
      // dynalite never returns UnprocessedItems, but AWS may: retry them with a growing delay.
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > 0) {
          if (attempt > 8)
            throw new Error(`${requests.length} TTL deletes still unprocessed after ${attempt} attempts`);
          await sleep(Math.min(1000, 25 * 2 ** attempt));
        }
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
        requests = out.UnprocessedItems?.[tableName] ?? [];
      }
      deleted += chunkSize;
    }
    return deleted;
  }

  async function sweep(): Promise<number> {
    if (keyNames === undefined) {
      const table = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
      keyNames = (table?.KeySchema ?? []).flatMap((k) => (k.AttributeName === undefined ? [] : [k.AttributeName]));
      if (keyNames.length === 0) throw new Error(`table ${tableName} has no key schema`);
    }
    const names = keyNames;
    const nowSeconds = Math.floor(now() / 1000);
    // Placeholders for every name: `ttl` is a DynamoDB reserved word, and key names might be too.
    const expressionNames: Record<string, string> = { '#ttl': attribute };
    names.forEach((name, i) => {
      expressionNames[`#k${i}`] = name;
    });
    let deleted = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: tableName,
          ProjectionExpression: [...names.map((_, i) => `#k${i}`), '#ttl'].join(', '),
          // A Number comparison: items whose ttl is missing or not a Number never match, as in DynamoDB TTL.
          FilterExpression: '#ttl < :now AND #ttl >= :oldest',
          ExpressionAttributeNames: expressionNames,
          ExpressionAttributeValues: {
            ':now': { N: String(nowSeconds) },
            ':oldest': { N: String(nowSeconds - TTL_MAX_AGE_SECONDS) },
          },
          ExclusiveStartKey: startKey,
          ...(options.pageSize === undefined ? {} : { Limit: options.pageSize }),
        }),
      );
      const keys = (page.Items ?? []).map((item) => {
        const key: Record<string, AttributeValue> = {};
        for (const name of names) {
          const value = item[name];
          if (value !== undefined) key[name] = value;
        }
        return key;
      });
      deleted += await deleteKeys(keys);
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return deleted;
  }

  function sweepOnce(): Promise<number> {
    // One sweep at a time: a timer tick during a manual sweep joins it rather than starting another.
    running ??= sweep().finally(() => {
      running = undefined;
    });
    return running;
  }

  const timer = setInterval(() => {
    if (stopped) return;
    sweepOnce().catch((err: unknown) => {
      log.error(`[ttl-sweeper] ${tableName}: sweep failed`, err);
    });
  }, options.intervalMs ?? 30_000);
  // The sweeper alone must not keep the process alive.
  timer.unref();

  return {
    sweepOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
