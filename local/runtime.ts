/**
 * The local runtime: every function of the manifest, unchanged, behind wire-compatible stand-ins of the AWS
 * services it uses — dynalite for DynamoDB (in a child process, patched to AWS's rules: local/dynamo.ts), local-aws-sqs plus an event-source poller for SQS, and an API Gateway
 * WebSocket API (with the @connections Management API) on one port, next to a development identity provider.
 *
 * Functions learn where things are only from their environment, exactly as in AWS: AWS_ENDPOINT_URL_<SERVICE>
 * points the SDK at the stand-ins, and the binding variables (TABLE_NAME, DELIVERY_QUEUE_URL, ...) are set from the
 * manifest. `startLocal` is used by `npm start` (local/main.ts) and, in-process, by the integration tests.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TenantDirectory, type TenantLimits } from '../lambdas/core/tenants.ts';
import { functions as manifestFunctions, queues as manifestQueues, type Trigger } from '../lambdas/manifest.ts';
import { HTTP_API_CORS } from '../lib/http-api-cors.ts';
import { createWebHandler } from '../web/server.ts';
import { type LocalDataApi, startLocalDataApi } from './data-api.ts';
import {
  ensureTable,
  type LocalDynamo,
  RUNTIME_USER_AGENT,
  startDynamo,
  startTtlSweeper,
  type TtlSweeper,
} from './dynamo.ts';
import { FUNCTION_BUNDLES_ENV } from './function-bundles.ts';
import { FunctionHost } from './function-host.ts';
import { type Gateway, type GatewayLogger, startGateway, websocketRoutesFromManifest } from './gateway.ts';
import { createHttpApi, httpRoutesFromManifest } from './http-api.ts';
import { createDevIdentity, type DevIdentity, persistentSigningKey } from './identity.ts';
import type { Meter } from './meter.ts';
import { createOpsHandler, MetricsCollector, type OpsSources } from './ops.ts';
import { type Poller, startPoller } from './poller.ts';
import { localClusterIds, seedData } from './seed-data.ts';
import { ensureQueues, type LocalSqs, type QueueInfo, startSqs } from './sqs.ts';
import { localDataPorts, writeEndpointsFile } from './tenant-data.ts';

export interface LocalOptions {
  /** @default 4000 (`PORT`); 0 picks a free port. */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default 'local' */
  readonly stage?: string;
  /** Where data is kept between runs (DynamoDB, tenant databases, the dev signing key); omitted = in memory. */
  readonly dataDir?: string;
  /** Without `dataDir`, tenant databases in memory rather than in a temporary directory (local/data-api.ts). @default false */
  readonly memoryDatabases?: boolean;
  /** API Gateway's idle timeout. @default 10 minutes */
  readonly idleTimeoutMs?: number;
  /** API Gateway's maximum connection duration. @default 2 hours */
  readonly maxConnectionMs?: number;
  /** Seconds before a failed SQS message is visible again (a local speed-up; AWS waits the visibility timeout). @default 1 */
  readonly sqsRetryDelaySeconds?: number | null;
  /**
   * How often expired items are swept (DynamoDB TTL); `null`: never on a timer (`ttlSweeper.sweepOnce()` still
   * sweeps). @default 30 s
   */
  readonly ttlSweepIntervalMs?: number | null;
  /** Log level of the functions (Powertools). @default 'INFO' */
  readonly functionLogLevel?: string;
  /** Where function log lines go. @default stdout */
  readonly onFunctionLog?: (functionName: string, line: string) => void;
  /** Gateway and runtime log. @default console */
  readonly log?: GatewayLogger;
  /** Seed the tenants acme and globex. @default true */
  readonly seed?: boolean;
  /** Limits of the seeded tenants when they are created. @default none: the service defaults (docs/security.md) */
  readonly seedLimits?: TenantLimits;
  /** Meter DynamoDB (requests and capacity units by item kind, for the benchmark: local/meter.ts). @default false */
  readonly meterDynamo?: boolean;
  /** Extra environment for every function (e.g. a shorter tenant cache TTL in tests). */
  readonly functionEnv?: Readonly<Record<string, string>>;
  /** Run scheduled functions on their manifest rate (tests turn this off and call `runScheduled`). @default true */
  readonly schedules?: boolean;
  /** Writes the endpoints the tenants CLI needs (`npm run tenants`) to this file. @default none */
  readonly endpointsFile?: string;
  /**
   * Multi-region delivery (docs/multi-region.md): the stage's regions, in order, and the delivery queue URL of each
   * other region. Started together by `startLocalStage` (local/multi-region.ts). @default this region alone
   */
  readonly stageRegions?: readonly string[];
  readonly peerDeliveryQueues?: Readonly<Record<string, string>>;
  /** An SQS stand-in started (and stopped) by the caller, whose queue URLs peers must know up front. @default own */
  readonly sqs?: LocalSqs;
  /**
   * Browser origins the authorizer accepts and the HTTP API's CORS allows (`*`: any), as a stage's `auth.allowedOrigins`
   * and `cors` do. @default this runtime's own, `http://127.0.0.1:<port>` and `http://localhost:<port>`, and
   * `extraAllowedOrigins`
   */
  readonly allowedOrigins?: readonly string[];
  /** Origins allowed beside the runtime's own (a front end's dev server; `npm start` reads `ALLOWED_ORIGINS`). */
  readonly extraAllowedOrigins?: readonly string[];
  /** Accept handshakes without an `Origin` header (server clients). @default true */
  readonly allowMissingOrigin?: boolean;
  /** Serve the demo app (web/) at `/`; it is bundled on its first request (web/server.ts). @default true */
  readonly web?: boolean;
  /**
   * Fault injection into `@connections` posts (`gateway.injectFaults`, `POST /local/faults`): for tests and the
   * benchmark only; `npm start` leaves it off (docs/security.md). @default false
   */
  readonly faultInjection?: boolean;
  /**
   * Frames waiting per connection in the gateway before it answers RATE_LIMITED (local/gateway/routes.ts, docs/security.md).
   * The benchmark raises it to send its bursts from one connection. @default 64
   */
  readonly maxQueuedPerConnection?: number;
  /**
   * A directory of prebuilt function bundles (local/function-bundles.ts) the sandboxes load instead of the TypeScript
   * entries: the Jest global setup builds them once per run. @default `TENANTCAST_FUNCTION_BUNDLES`, else the entries
   */
  readonly functionBundles?: string;
  /**
   * Start one sandbox of every function (or of the named ones) before the runtime is ready, so no first request waits
   * for a cold start; the others start on first use. Tests warm the WebSocket path only: a file uses a few of the
   * functions, and a cold start costs a few tenths of a second of CPU. @default true (every function)
   */
  readonly warmFunctions?: boolean | readonly string[];
  /**
   * Most sandboxes (concurrent invocations) per function (local/function-host.ts). @default one per core, at least 2
   */
  readonly maxSandboxes?: number;
}

export interface LocalRuntime {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/ws` */
  readonly wsUrl: string;
  readonly port: number;
  readonly gateway: Gateway;
  readonly identity: DevIdentity;
  readonly dynamo: LocalDynamo;
  /** The RDS Data API + Secrets Manager stand-in, with the local clusters (docs/tenants.md). */
  readonly dataApi: LocalDataApi;
  /** DynamoDB requests and capacity units of every function, when started with `meterDynamo`. */
  readonly dynamoMeter: Meter | undefined;
  readonly sqs: LocalSqs;
  readonly queues: Readonly<Record<keyof typeof manifestQueues, QueueInfo>>;
  readonly tableName: string;
  readonly functions: ReadonlyMap<string, FunctionHost>;
  readonly pollers: ReadonlyMap<string, Poller>;
  readonly ttlSweeper: TtlSweeper;
  /** Invokes a scheduled function now, with the event its schedule sends. */
  runScheduled(functionName: string): Promise<unknown>;
  /** Tenant configuration, through the same code the functions use. */
  readonly tenants: TenantDirectory;
  /** The functions' EMF metrics, as the ops page (`GET /ops`, docs/operations.md) shows them. */
  readonly metrics: MetricsCollector;
  stop(): Promise<void>;
}

const root = resolve(import.meta.dirname, '..');
// The SDK warns that releases from 2027 need Node 22; Lambda runs the newest Node runtime, this machine has 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
export const LOCAL_AUDIENCE = 'tenantcast-local';
const localCredentials = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };

/** The event an EventBridge schedule sends. */
function scheduledEvent(region: string, functionName: string) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region,
    resources: [`arn:aws:events:${region}:000000000000:rule/${functionName}-schedule`],
    detail: {},
  };
}

/** What a start has set up so far: stopped in reverse order, by `stop` or when the start fails. */
class Stoppers {
  private readonly stops: (() => Promise<void>)[] = [];

  constructor(private readonly log: GatewayLogger) {}

  add(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  async stopAll(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        this.log('error', 'stop failed', { error: String(err) });
      }
    }
  }
}

type Invoker = (event: unknown) => Promise<unknown>;

function defaultLog(): GatewayLogger {
  return (level, message, fields) => {
    if (level === 'debug') return;
    console[level === 'info' ? 'log' : level](`[local] ${message}`, fields ?? '');
  };
}

/** DynamoDB (a child process) and the tenant databases (PGlite) start side by side: each is mostly waiting. */
async function startStores(
  options: LocalOptions,
  region: string,
  log: GatewayLogger,
  stoppers: Stoppers,
): Promise<{ dynamo: LocalDynamo; dataApi: LocalDataApi }> {
  const [startedDynamo, startedDataApi] = await Promise.allSettled([
    startDynamo({
      region,
      ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
      ...(options.meterDynamo && { meter: { skipUserAgent: RUNTIME_USER_AGENT } }),
      log,
    }),
    // Tenant databases: PGlite per database under <dataDir>/rds (a temporary directory without a data dir).
    startLocalDataApi({
      region,
      ...(options.dataDir !== undefined && { dataDir: resolve(options.dataDir, 'rds') }),
      ...(options.memoryDatabases === true && { memoryDatabases: true }),
    }),
  ]);
  if (startedDynamo.status === 'fulfilled') stoppers.add(() => startedDynamo.value.close());
  if (startedDataApi.status === 'fulfilled') stoppers.add(() => startedDataApi.value.close());
  if (startedDynamo.status === 'rejected') throw startedDynamo.reason;
  if (startedDataApi.status === 'rejected') throw startedDataApi.reason;
  log('info', `DynamoDB: ${startedDynamo.value.description}`, { endpoint: startedDynamo.value.endpoint });
  return { dynamo: startedDynamo.value, dataApi: startedDataApi.value };
}

/** The environment every function shares: the stand-ins' endpoints, as AWS_ENDPOINT_URL_<SERVICE>, and Powertools. */
function baseEnvironment(
  options: LocalOptions,
  region: string,
  endpoints: { readonly dynamodb: string; readonly sqs: string; readonly rdsData: string },
): Record<string, string> {
  return {
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    ...localCredentials,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_RDS_DATA: endpoints.rdsData,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.rdsData,
    POWERTOOLS_LOG_LEVEL: options.functionLogLevel ?? 'INFO',
    POWERTOOLS_DEV: 'false',
    POWERTOOLS_TRACE_ENABLED: 'false',
    POWERTOOLS_METRICS_NAMESPACE: 'tenantcast',
    NODE_OPTIONS: '--enable-source-maps',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...options.functionEnv,
  };
}

/**
 * A host per function of the manifest. Sandboxes start lazily, on first invocation (or when warmed), so their
 * environment can name the gateway's real port: `bindingValues` is filled in once it is known.
 */
function createFunctionHosts(
  options: LocalOptions,
  deps: {
    readonly baseEnv: Record<string, string>;
    readonly bindingValues: Record<string, string>;
    readonly queues: LocalRuntime['queues'];
    readonly metrics: MetricsCollector;
  },
): Map<string, FunctionHost> {
  const bundleDir = options.functionBundles ?? process.env[FUNCTION_BUNDLES_ENV];
  const functionLog = options.onFunctionLog ?? ((_name: string, line: string) => process.stdout.write(`${line}\n`));
  const hosts = new Map<string, FunctionHost>();
  for (const spec of manifestFunctions) {
    hosts.set(
      spec.name,
      new FunctionHost({
        spec,
        root,
        ...(bundleDir !== undefined && bundleDir !== '' && { bundleDir }),
        bindingValues: deps.bindingValues,
        baseEnv: deps.baseEnv,
        ...(options.maxSandboxes !== undefined && { maxSandboxes: options.maxSandboxes }),
        ...(spec.trigger.kind === 'sqs' && {
          triggerValues: { DEAD_LETTER_QUEUE_URL: deps.queues[spec.trigger.queue].dlqUrl },
        }),
        // Every function log line also feeds the ops page's EMF collector (local/ops.ts), as CloudWatch extracts EMF.
        onLog: (name, line) => {
          deps.metrics.ingest(line);
          functionLog(name, line);
        },
      }),
    );
  }
  return hosts;
}

/** The browser origins of this runtime's stage: the WebSocket authorizer's allowlist and the HTTP API's CORS. */
function allowedOriginsOf(options: LocalOptions, gateway: Gateway): readonly string[] {
  return (
    options.allowedOrigins ?? [gateway.url, `http://localhost:${gateway.port}`, ...(options.extraAllowedOrigins ?? [])]
  );
}

/** The binding variables the manifest names (TABLE_NAME, DELIVERY_QUEUE_URL, ...), as CDK sets them in AWS. */
function bindingValuesFor(
  options: LocalOptions,
  at: {
    readonly region: string;
    readonly tableName: string;
    readonly queues: LocalRuntime['queues'];
    readonly gateway: Gateway;
    readonly identity: DevIdentity;
  },
): Record<string, string> {
  const { gateway, identity, queues } = at;
  return {
    TABLE_NAME: at.tableName,
    DELIVERY_QUEUE_URL: queues.delivery.url,
    FANOUT_QUEUE_URL: queues.fanout.url,
    CONNECTIONS_ENDPOINT: gateway.url,
    JWT_ISSUER: identity.issuer,
    JWT_AUDIENCE: identity.audience,
    JWKS_URI: `${gateway.url}${identity.jwksPath}`,
    CLAIM_TENANT: 'tenant_id',
    CLAIM_USER: 'sub',
    CLAIM_ROLES: 'roles',
    // The stage's origin allowlist (docs/security.md): locally, pages served by this runtime and server clients.
    ALLOWED_ORIGINS: allowedOriginsOf(options, gateway).join(' '),
    ALLOW_MISSING_ORIGIN: String(options.allowMissingOrigin ?? true),
    CHANGES_QUEUE_URL: queues.changes.url,
    // Multi-region delivery (docs/multi-region.md): alone, this region is every tenant's home and has no peers.
    STAGE_REGIONS: (options.stageRegions ?? [at.region]).join(' '),
    PEER_DELIVERY_QUEUES: Object.entries(options.peerDeliveryQueues ?? {})
      .map(([peer, url]) => `${peer}=${url}`)
      .join(' '),
    REPLICATION_QUEUE_URL: queues.replication.url,
  };
}

/**
 * One port for everything a browser or server reaches: the WebSocket API with its @connections API, the demo app,
 * the development identity provider, the stage's HTTP API (the manifest's http routes, JWT authorizer like AWS's)
 * and the ops page. Until the runtime is ready, requests and handshakes get 503 with Retry-After.
 */
async function startFront(
  options: LocalOptions,
  at: {
    readonly stage: string;
    readonly region: string;
    readonly log: GatewayLogger;
    readonly invokerOf: (name: string) => Invoker;
    readonly metrics: MetricsCollector;
    readonly ops: Omit<OpsSources, 'gateway' | 'httpApi'>;
  },
  stoppers: Stoppers,
): Promise<{ gateway: Gateway; identity: DevIdentity; httpApi: ReturnType<typeof createHttpApi> }> {
  const { log, invokerOf } = at;
  const wired = websocketRoutesFromManifest(
    Object.fromEntries(manifestFunctions.map((spec) => [spec.name, invokerOf(spec.name)])),
  );
  const gateway = await startGateway({
    ...wired,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? Number(process.env.PORT ?? 4000),
    stage: at.stage,
    region: at.region,
    log,
    faultInjection: options.faultInjection ?? false,
    ...(options.maxQueuedPerConnection !== undefined && { maxQueuedPerConnection: options.maxQueuedPerConnection }),
    ...(options.idleTimeoutMs !== undefined && { idleTimeoutMs: options.idleTimeoutMs }),
    ...(options.maxConnectionMs !== undefined && { maxConnectionMs: options.maxConnectionMs }),
    starting: true,
  });
  // Closed before the functions, so every $disconnect still runs.
  stoppers.add(() => gateway.close());
  // The demo app (docs/client.md, "Demo") at `/`, on the same origin as the WebSocket and HTTP APIs; served while
  // starting, so a page loaded then waits for the stack by itself.
  if (options.web ?? true) gateway.addHttpHandler(createWebHandler().httpHandler, { whileStarting: true });

  // With a data directory the signing key is kept there, so pages and tokens survive a restart.
  const identity = createDevIdentity({
    issuer: `${gateway.url}/dev`,
    audience: LOCAL_AUDIENCE,
    ...(options.dataDir !== undefined && {
      key: await persistentSigningKey(resolve(options.dataDir, 'identity', 'signing-key.pem')),
    }),
  });
  // Tokens can be issued while starting: a page waiting for the stack needs one as soon as it is ready.
  gateway.addHttpHandler(identity.httpHandler, { whileStarting: true });
  const httpApi = createHttpApi({
    routes: httpRoutesFromManifest(manifestFunctions, invokerOf),
    cors: { ...HTTP_API_CORS, allowOrigins: allowedOriginsOf(options, gateway) },
    jwt: { issuer: identity.issuer, audience: identity.audience, jwksUri: `${gateway.url}${identity.jwksPath}` },
    onError: (err, routeKey) => log('error', 'HTTP API integration failed', { routeKey, error: String(err) }),
  });
  gateway.addHttpHandler(httpApi.httpHandler);
  gateway.addHttpHandler(createOpsHandler(at.metrics, { ...at.ops, gateway, httpApi }));
  return { gateway, identity, httpApi };
}

/**
 * Lambda's SQS event source mappings: a poller per SQS-triggered function of the manifest. FIFO queues get several
 * receive loops: many message groups (tenants' groups, fan-out lanes) in parallel, SQS's group lock keeping each to
 * one batch at a time (docs/delivery.md, "Fair share").
 */
function startPollers(
  options: LocalOptions,
  at: {
    readonly region: string;
    readonly log: GatewayLogger;
    readonly sqs: LocalSqs;
    readonly queues: LocalRuntime['queues'];
    readonly invokerOf: (name: string) => Invoker;
  },
): Map<string, Poller> {
  const { log, region } = at;
  const pollers = new Map<string, Poller>();
  for (const spec of manifestFunctions) {
    if (spec.trigger.kind !== 'sqs') continue;
    const queue = at.queues[spec.trigger.queue];
    const invoke = at.invokerOf(spec.name);
    pollers.set(
      spec.name,
      startPoller({
        client: at.sqs.client,
        queueUrl: queue.url,
        queueArn: queue.arn,
        dlqUrl: queue.dlqUrl,
        maxReceiveCount: queue.spec.maxReceiveCount,
        batchSize: spec.trigger.batchSize,
        maxBatchingWindowSeconds: spec.trigger.maxBatchingWindowSeconds,
        visibilityTimeoutSeconds: queue.spec.visibilityTimeoutSeconds,
        handler: (event) => invoke(event),
        functionName: spec.name,
        timeoutSeconds: spec.timeoutSeconds,
        memoryMB: spec.memoryMB,
        region,
        retryDelaySeconds: options.sqsRetryDelaySeconds === undefined ? 1 : options.sqsRetryDelaySeconds,
        ...(queue.spec.fifo === true && { concurrency: 4 }),
        log: {
          warn: (m, ...d) => log('warn', m, { details: d }),
          error: (m, ...d) => log('error', m, { details: d }),
        },
      }),
    );
  }
  return pollers;
}

/** Scheduled functions (EventBridge schedules in AWS): a timer per function sending a Scheduled Event. */
function startSchedules(
  options: LocalOptions,
  at: { readonly region: string; readonly log: GatewayLogger; readonly invokerOf: (name: string) => Invoker },
): () => Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  for (const spec of manifestFunctions) {
    const trigger: Trigger = spec.trigger;
    if (trigger.kind !== 'schedule' || options.schedules === false) continue;
    const invoke = at.invokerOf(spec.name);
    const timer = setInterval(() => {
      invoke(scheduledEvent(at.region, spec.name)).catch((err: unknown) =>
        at.log('error', 'scheduled invocation failed', { functionName: spec.name, error: String(err) }),
      );
    }, trigger.rateMinutes * 60_000);
    timer.unref();
    timers.push(timer);
  }
  return async () => {
    for (const timer of timers) clearInterval(timer);
  };
}

/**
 * The tenant catalog, and the seeded tenants acme and globex: onboarded only where missing, since putting the seed
 * configs again would drop a restarted stack's databases.
 */
async function prepareTenants(
  options: LocalOptions,
  at: {
    readonly region: string;
    readonly log: GatewayLogger;
    readonly dynamo: LocalDynamo;
    readonly dataApi: LocalDataApi;
    readonly tableName: string;
    readonly clusters: Awaited<ReturnType<LocalDataApi['addCluster']>>[];
    readonly progress: (step: string) => void;
  },
): Promise<TenantDirectory> {
  const tenants = new TenantDirectory({
    client: DynamoDBDocumentClient.from(at.dynamo.client),
    tableName: at.tableName,
    cacheTtlMs: 0,
  });
  // A data directory written before the catalog was indexed (lambdas/core/tenants.ts) gets its index keys, so its
  // tenants are listed (and not onboarded again below). One Scan of the local table at each start (a few ms; it
  // finds nothing to update after the first).
  const reindexed = await tenants.reindex();
  if (reindexed > 0) at.log('info', `tenant catalog: indexed ${reindexed} item(s) of an older data directory`);
  if (options.seed ?? true) {
    at.progress(
      options.dataDir === undefined
        ? 'seeding the tenants acme and globex'
        : 'seeding the tenants acme and globex (what the data directory has already is kept)',
    );
    await seedData({
      ...localDataPorts(at.dataApi.endpoint, at.region),
      tenants,
      clusters: at.clusters,
      ...(options.seedLimits !== undefined && { limits: options.seedLimits }),
    });
  }
  return tenants;
}

export async function startLocal(options: LocalOptions = {}): Promise<LocalRuntime> {
  const region = options.region ?? 'us-east-1';
  const stage = options.stage ?? 'local';
  const log: GatewayLogger = options.log ?? defaultLog();
  const stoppers = new Stoppers(log);
  const startedAt = Date.now();
  const progress = (step: string) => log('info', `starting: ${step}`, { elapsedMs: Date.now() - startedAt });
  try {
    progress('DynamoDB and tenant databases (Data API)');
    const { dynamo, dataApi } = await startStores(options, region, log, stoppers);
    const tableName = `tenantcast-${stage}`;
    await ensureTable(dynamo.client, tableName);
    const clusters = [];
    for (const id of localClusterIds) clusters.push(await dataApi.addCluster(id));

    progress('SQS');
    const sqs = options.sqs ?? (await startSqs({ region }));
    if (options.sqs === undefined) stoppers.add(() => sqs.close());
    const queues = await ensureQueues(sqs.client, manifestQueues, { prefix: `tenantcast-${stage}-` });

    const metrics = new MetricsCollector();
    const bindingValues: Record<string, string> = {};
    const baseEnv = baseEnvironment(options, region, {
      dynamodb: dynamo.meter?.endpoint ?? dynamo.endpoint,
      sqs: sqs.endpoint,
      rdsData: dataApi.endpoint,
    });
    const hosts = createFunctionHosts(options, { baseEnv, bindingValues, queues, metrics });
    stoppers.add(async () => {
      await Promise.all([...hosts.values()].map((h) => h.close()));
    });
    const invokerOf = (name: string): Invoker => {
      const host = hosts.get(name);
      if (!host) throw new Error(`no function ${name}`);
      return (event: unknown) => host.invoke(event);
    };

    const { gateway, identity } = await startFront(
      options,
      { stage, region, log, invokerOf, metrics, ops: { functions: hosts, sqs: sqs.client, queues } },
      stoppers,
    );
    Object.assign(bindingValues, bindingValuesFor(options, { region, tableName, queues, gateway, identity }));

    const tenants = await prepareTenants(options, { region, log, dynamo, dataApi, tableName, clusters, progress });
    if (options.endpointsFile !== undefined) {
      await writeEndpointsFile(options.endpointsFile, {
        region,
        tableName,
        dynamodb: dynamo.endpoint,
        rdsData: dataApi.endpoint,
        secretsManager: dataApi.endpoint,
        clusters,
        connections: gateway.url,
        // The admin CLI's publish and dlq commands (docs/cli.md).
        sqs: sqs.endpoint,
        queues: Object.fromEntries(Object.entries(queues).map(([name, q]) => [name, { url: q.url, dlqUrl: q.dlqUrl }])),
      });
    }

    const pollers = startPollers(options, { region, log, sqs, queues, invokerOf });
    // Pollers stop before the gateway and functions, so no batch is cut off half-way.
    stoppers.add(async () => {
      await Promise.all([...pollers.values()].map((p) => p.stop()));
    });
    const ttlSweeper = startTtlSweeper({
      client: dynamo.client,
      tableName,
      intervalMs: options.ttlSweepIntervalMs,
      log: { error: (m, ...d) => log('error', m, { details: d }) },
    });
    stoppers.add(() => ttlSweeper.stop());
    stoppers.add(startSchedules(options, { region, log, invokerOf }));

    // Warm the sandboxes now that their environment is complete, so the first connection is not a cold start.
    const warm = options.warmFunctions ?? true;
    const warmed = [...hosts.values()].filter((h) => (typeof warm === 'boolean' ? warm : warm.includes(h.name)));
    progress(`functions (${warmed.length} sandboxes)`);
    await Promise.all(warmed.map((h) => h.start()));
    gateway.setReady();
    log('info', 'ready', { url: gateway.url, elapsedMs: Date.now() - startedAt });

    let stopping: Promise<void> | undefined;
    return {
      url: gateway.url,
      wsUrl: gateway.wsUrl,
      port: gateway.port,
      gateway,
      identity,
      dynamo,
      dataApi,
      dynamoMeter: dynamo.meter,
      sqs,
      queues,
      tableName,
      functions: hosts,
      pollers,
      ttlSweeper,
      runScheduled: (name) => invokerOf(name)(scheduledEvent(region, name)),
      tenants,
      metrics,
      stop: () => {
        stopping ??= stoppers.stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await stoppers.stopAll();
    throw err;
  }
}
