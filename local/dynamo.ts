/**
 * Local DynamoDB: dynalite (a wire-compatible DynamoDB on LevelDB, in memory or on disk) in its own child process,
 * patched to AWS's documented rules; table creation from the manifest; and a TTL sweeper standing in for DynamoDB's
 * Time To Live.
 *
 * Why a child process: dynalite runs requests on the thread that hosts it, and some inputs make it throw outside any
 * handler (a map nested 5,000 levels deep overflows its stack). In the runtime's own process that killed the whole
 * local stack. In the child (local/dynamo-server.mjs) a request that breaks dynalite gets DynamoDB's 500
 * InternalServerError and the next requests are served; the runtime's event loop no longer runs DynamoDB at all.
 *
 * What dynalite lacks, and what we do about it:
 * - AWS rules it does not enforce are checked before it sees a request (local/dynamo-rules.mjs): nesting at most 32
 *   levels, no empty attribute names. It already refuses items over 400 KB, numbers over 38 digits and duplicate keys
 *   in batches, as AWS does.
 * - ReturnValuesOnConditionCheckFailure: ALL_OLD returns the existing item with ConditionalCheckFailedException
 *   (patched into dynalite by local/dynamo-server.mjs).
 * - TTL: dynalite has no UpdateTimeToLive and never expires items (DescribeTimeToLive always says DISABLED).
 *   `startTtlSweeper` deletes expired items periodically. In AWS, TTL deletes expired items "typically within a few
 *   days" (up to ~48 h), so functions must never rely on timely deletion: every read of a TTL'd item must also check
 *   `ttl` itself. The sweeper only keeps the local table from growing.
 * - TransactWriteItems / TransactGetItems: not supported by dynalite, and deliberately not emulated here.
 *
 * AWS's own DynamoDB Local is not used: its licence is the vendor's own terms, not open source.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
import { urlHost } from './http-util.ts';
import { createMeter, type Meter, type MeterRecord } from './meter.ts';

export type DynamoLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface StartDynamoOptions {
  /** LevelDB directory for a persistent table; omit for an in-memory store that vanishes on close. */
  dataDir?: string;
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0: an ephemeral port. */
  port?: number;
  /** Region of the returned client (dynalite ignores it). Defaults to AWS_REGION or us-east-1. */
  region?: string;
  /**
   * Meter requests and capacity units for the benchmark (local/meter.ts); requests whose user agent contains
   * `skipUserAgent` are not counted. @default off
   */
  meter?: { skipUserAgent?: string };
  /** Where the child's errors go (a request that broke dynalite, an unexpected exit). @default console */
  log?: DynamoLog;
}

export interface LocalDynamo {
  /** `http://host:port`, for `AWS_ENDPOINT_URL_DYNAMODB`. */
  endpoint: string;
  /** A client for the local runtime's own use (table setup, sweeper). Functions build their own. */
  client: DynamoDBClient;
  /** The meter, when started with `meter`. */
  meter: Meter | undefined;
  /** Which DynamoDB this is, for the runtime's start-up log. */
  description: string;
  /** The child process running dynalite. */
  pid: number;
  close(): Promise<void>;
}

/** The user agent of the local runtime's own DynamoDB client (not the functions'): local/meter.ts skips it. */
export const RUNTIME_USER_AGENT = 'tenantcast-local-runtime';

/** Fixed credentials for local stand-ins: they check none, but the SDK insists on having some. */
export const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

const SERVER_SCRIPT = fileURLToPath(new URL('./dynamo-server.mjs', import.meta.url));

type ChildMessage =
  | { type: 'ready'; port: number; version: string; pid: number }
  | { type: 'failed'; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }
  | { type: 'meter'; record: MeterRecord }
  | { type: 'flushed'; id: number };

const consoleLog: DynamoLog = (level, message, fields) =>
  console[level === 'info' ? 'log' : level](`[dynamo] ${message}`, fields ?? '');

/** Forks local/dynamo-server.mjs: plain Node, no loader flags or NODE_OPTIONS inherited (they only slow it down). */
function forkServer(config: object): ChildProcess {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return fork(SERVER_SCRIPT, [JSON.stringify(config)], {
    execArgv: [],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function whenReady(child: ChildProcess): Promise<{ port: number; version: string }> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage) => {
      if (message.type === 'ready') done(() => resolve(message));
      if (message.type === 'failed')
        done(() => reject(new Error(`local DynamoDB failed to start: ${message.message}`)));
    };
    const onExit = (code: number | null) => done(() => reject(new Error(`local DynamoDB exited at start (${code})`)));
    const done = (then: () => void) => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', reject);
      then();
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', reject);
  });
}

export async function startDynamo(options: StartDynamoOptions = {}): Promise<LocalDynamo> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? consoleLog;
  const child = forkServer({ dataDir: options.dataDir, host, port: options.port ?? 0, meter: options.meter });
  const { port, version } = await whenReady(child);
  const endpoint = `http://${urlHost(host)}:${port}`;
  // A round trip over the (ordered) IPC channel: once the child's answer arrives, so have its earlier meter records.
  const flushes = new Map<number, () => void>();
  let lastFlush = 0;
  const settled = () =>
    new Promise<void>((resolve) => {
      if (!child.connected) return resolve();
      const id = ++lastFlush;
      flushes.set(id, resolve);
      child.send({ type: 'flush', id }, (err) => {
        if (!err) return;
        flushes.delete(id);
        resolve();
      });
    });
  const meter = options.meter === undefined ? undefined : createMeter(endpoint, settled);
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'log') log(message.level, message.message, message.fields);
    if (message.type === 'meter') meter?.record(message.record);
    if (message.type === 'flushed') {
      flushes.get(message.id)?.();
      flushes.delete(message.id);
    }
  });
  child.once('exit', () => {
    for (const resolve of flushes.values()) resolve();
    flushes.clear();
  });
  let closed: Promise<void> | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      if (closed === undefined) log('error', 'local DynamoDB exited unexpectedly', { code, signal, pid: child.pid });
      resolve();
    });
  });
  const client = new DynamoDBClient({
    endpoint,
    region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
    credentials: localCredentials,
    // Marks the runtime's own requests (table setup, the TTL sweeper) so the benchmark's meter leaves them out:
    // DynamoDB's own TTL deletes cost nothing.
    customUserAgent: RUNTIME_USER_AGENT,
  });
  return {
    endpoint,
    client,
    meter,
    pid: child.pid ?? 0,
    description:
      `dynalite ${version} in a child process (pid ${child.pid}), AWS validation rules patched (nesting 32, ` +
      'empty names, ALL_OLD on condition failure; batch duplicates, 400 KB items, 38-digit numbers: dynalite’s own)',
    close() {
      closed ??= (async () => {
        client.destroy();
        if (child.exitCode === null && child.signalCode === null) {
          // dynalite closes LevelDB once its pending operations finish, then the child exits.
          child.send({ type: 'close' });
          const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
          await exited;
          clearTimeout(killer);
        }
      })();
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
  /**
   * Time between sweeps. Defaults to 30 s. The first sweep runs one interval after start. `null`: no timer, only
   * `sweepOnce` (the benchmark: a sweep's Scan holds the local DynamoDB, which AWS's background TTL never does).
   */
  intervalMs?: number | null;
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

/** Deletes `keys` in BatchWriteItems of 25, retrying unprocessed items with a growing delay. */
async function deleteKeys(
  client: DynamoDBClient,
  tableName: string,
  keys: Record<string, AttributeValue>[],
): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < keys.length; i += BATCH_WRITE_MAX) {
    let requests: WriteRequest[] = keys.slice(i, i + BATCH_WRITE_MAX).map((Key) => ({ DeleteRequest: { Key } }));
    const chunkSize = requests.length;
    // dynalite never returns UnprocessedItems, but AWS may: retry them with a growing delay.
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > 8) throw new Error(`${requests.length} TTL deletes still unprocessed after ${attempt} attempts`);
        await sleep(Math.min(1000, 25 * 2 ** attempt));
      }
      const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
      requests = out.UnprocessedItems?.[tableName] ?? [];
    }
    deleted += chunkSize;
  }
  return deleted;
}

/** The table's key attribute names (partition, then sort). */
async function keyNamesOf(client: DynamoDBClient, tableName: string): Promise<string[]> {
  const table = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  const names = (table?.KeySchema ?? []).flatMap((k) => (k.AttributeName === undefined ? [] : [k.AttributeName]));
  if (names.length === 0) throw new Error(`table ${tableName} has no key schema`);
  return names;
}

/** The keys of one page of expired items (`ttl` passed, within DynamoDB TTL's five-year window), from `startKey`. */
async function expiredPage(
  options: TtlSweeperOptions,
  names: readonly string[],
  nowSeconds: number,
  startKey: Record<string, AttributeValue> | undefined,
): Promise<{ keys: Record<string, AttributeValue>[]; next: Record<string, AttributeValue> | undefined }> {
  // Placeholders for every name: `ttl` is a DynamoDB reserved word, and key names might be too.
  const expressionNames: Record<string, string> = { '#ttl': options.attribute ?? 'ttl' };
  names.forEach((name, i) => {
    expressionNames[`#k${i}`] = name;
  });
  const page = await options.client.send(
    new ScanCommand({
      TableName: options.tableName,
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
  return { keys, next: page.LastEvaluatedKey };
}

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
  const now = options.now ?? (() => Date.now());
  const log = options.log ?? console;
  let keyNames: string[] | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  async function sweep(): Promise<number> {
    keyNames ??= await keyNamesOf(client, tableName);
    const nowSeconds = Math.floor(now() / 1000);
    let deleted = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await expiredPage(options, keyNames, nowSeconds, startKey);
      deleted += await deleteKeys(client, tableName, page.keys);
      startKey = page.next;
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

  const timer =
    options.intervalMs === null
      ? undefined
      : setInterval(() => {
          if (stopped) return;
          sweepOnce().catch((err: unknown) => {
            log.error(`[ttl-sweeper] ${tableName}: sweep failed`, err);
          });
        }, options.intervalMs ?? 30_000);
  // The sweeper alone must not keep the process alive.
  timer?.unref();

  return {
    sweepOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
