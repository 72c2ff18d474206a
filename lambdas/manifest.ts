/**
 * The one function manifest. The CDK app (lib/) and the local runtime (local/) both read this file, so what
 * runs locally is what deploys: same entries, same triggers, same environment keys, same limits.
 *
 * Nothing here may import AWS CDK or local-runtime code: it is plain data plus types.
 */
import { aws } from './core/limits.ts';

/** Shared resources a function can be bound to. Binding sets the environment keys listed and grants access. */
export type Binding =
  /** The main DynamoDB table: `TABLE_NAME` (read/write on the table and its indexes). */
  | 'table'
  /** Send to the delivery queue: `DELIVERY_QUEUE_URL` (sqs:SendMessage). */
  | 'deliveryQueue'
  /** The API Gateway Management API of this stage's WebSocket API: `CONNECTIONS_ENDPOINT` (execute-api:ManageConnections). */
  | 'connections'
  /** JWT verification settings: `JWT_ISSUER`, `JWT_AUDIENCE`, `JWKS_URI`, claim names, origin allowlist. No grants. */
  | 'auth'
  /** Send change events to the changes queue: `CHANGES_QUEUE_URL` (sqs:SendMessage). */
  | 'changesQueue'
  /** Send pages of large groups to the fan-out queue: `FANOUT_QUEUE_URL` (sqs:SendMessage). */
  | 'fanoutQueue'
  /**
   * The tenant databases through the RDS Data API (docs/tenants.md). No environment: each tenant's cluster ARN,
   * database and secret ARN come from the tenant catalog (the endpoint, locally, from `AWS_ENDPOINT_URL_RDS_DATA`).
   * Grants: `rds-data:ExecuteStatement`, `BatchExecuteStatement`, `BeginTransaction`, `CommitTransaction`,
   * `RollbackTransaction` on the tenant clusters, and `secretsmanager:GetSecretValue` on the stage's tenant secrets
   * (`tenantSecretPrefix(stage)*`) only.
   */
  | 'tenantData'
  /**
   * The stage's other regions (docs/multi-region.md): `STAGE_REGIONS` (space-separated, cdk.json order) and
   * `PEER_DELIVERY_QUEUES` (space-separated `region=deliveryQueueUrl` of every other region). Grants
   * sqs:SendMessage on the peers' delivery queues (computed by name, no cross-stack references).
   */
  | 'peers'
  /** Queue sequenced messages for the peer regions: `REPLICATION_QUEUE_URL` (sqs:SendMessage). */
  | 'replicationQueue';

/** Environment keys each binding sets. */
export const bindingEnv = {
  table: ['TABLE_NAME'],
  deliveryQueue: ['DELIVERY_QUEUE_URL'],
  connections: ['CONNECTIONS_ENDPOINT'],
  auth: [
    'JWT_ISSUER',
    'JWT_AUDIENCE',
    'JWKS_URI',
    'CLAIM_TENANT',
    'CLAIM_USER',
    'CLAIM_ROLES',
    /** Space-separated browser origins the `$connect` authorizer accepts; `*` any (docs/security.md). */
    'ALLOWED_ORIGINS',
    /** `true` or `false`: whether a handshake without an `Origin` header (server clients) is accepted. */
    'ALLOW_MISSING_ORIGIN',
  ],
  changesQueue: ['CHANGES_QUEUE_URL'],
  fanoutQueue: ['FANOUT_QUEUE_URL'],
  tenantData: [],
  peers: ['STAGE_REGIONS', 'PEER_DELIVERY_QUEUES'],
  replicationQueue: ['REPLICATION_QUEUE_URL'],
} as const satisfies Record<Binding, readonly string[]>;

export type EnvKey = (typeof bindingEnv)[Binding][number];

/** Queues, by logical name. Each has a dead-letter queue receiving what failed `maxReceiveCount` times. */
export interface QueueSpec {
  /** Seconds a received message stays invisible; must be at least the consumer's timeout (AWS requires 6x for event sources; we use that). */
  readonly visibilityTimeoutSeconds: number;
  /** Receives before a message moves to the DLQ. */
  readonly maxReceiveCount: number;
  /** How long messages (and DLQ messages) are kept. */
  readonly retentionSeconds: number;
  readonly dlqRetentionSeconds: number;
  /**
   * A FIFO queue (name ending `.fifo`): senders give a MessageGroupId and a MessageDeduplicationId, and consumers get
   * each message group in order, one batch of a group at a time. @default false
   */
  readonly fifo?: boolean;
}

export const queues = {
  /**
   * Published messages (FIFO: MessageGroupId `<tenant>#<group>`, dedup id = message id; send with
   * `deliverySendParams` from lambdas/core/delivery.ts). docs/delivery.md.
   */
  delivery: {
    visibilityTimeoutSeconds: 180,
    // At least 5, as the Lambda Developer Guide advises for an SQS event source ("Using Lambda with Amazon SQS"): a
    // receive counts even when the function is at its concurrency limit and is not invoked, so with 3 a burst of
    // throttling could dead-letter live messages no function ever saw (until 2026-12-04; found by an AWS-fidelity
    // pass). A record that can never succeed is set aside at its first failure anyway (lambdas/core/poison.ts).
    maxReceiveCount: 5,
    retentionSeconds: 4 * 24 * 3600,
    dlqRetentionSeconds: 14 * 24 * 3600,
    fifo: true,
  },
  /** Pages of large groups' runs (FIFO: one message group per group lane), from the broadcaster. docs/delivery.md. */
  fanout: {
    visibilityTimeoutSeconds: 180,
    // As the delivery queue's (above).
    maxReceiveCount: 5,
    retentionSeconds: 4 * 24 * 3600,
    dlqRetentionSeconds: 14 * 24 * 3600,
    fifo: true,
  },
  /** Change events `{tenantId, entity, key, version}` from entity writes and the outbox relay (docs/entities.md). */
  changes: {
    visibilityTimeoutSeconds: 180,
    maxReceiveCount: 5,
    retentionSeconds: 4 * 24 * 3600,
    dlqRetentionSeconds: 14 * 24 * 3600,
  },
  /**
   * The home region's sequenced messages on their way to each peer region (FIFO: one lane per peer and group), from
   * the broadcaster to the replicator (docs/multi-region.md). Many receives: a peer that is down holds its lanes
   * back for up to ~16 h (1000 x 60 s) before anything is dead-lettered.
   */
  replication: {
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 1000,
    retentionSeconds: 4 * 24 * 3600,
    dlqRetentionSeconds: 14 * 24 * 3600,
    fifo: true,
  },
} as const satisfies Record<string, QueueSpec>;

export type QueueName = keyof typeof queues;

/** The single table. Item layout is documented in docs/data-model.md. */
export const table = {
  partitionKey: 'pk',
  sortKey: 'sk',
  timeToLiveAttribute: 'ttl',
  globalSecondaryIndexes: [
    { indexName: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    /**
     * Sparse, several partitions: token expiry of connections (`gsi2pk = EXP#<minute bucket>`, docs/security.md) and,
     * in the same buckets, the `LEFT` items whose presence leaves the reaper announces when no `$disconnect` did, the
     * reaper's recount order (`CONNS#RECOUNT`) and the tenant catalog (`TENANTS`); docs/data-model.md.
     */
    { indexName: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  ],
} as const;

export type Trigger =
  /** The WebSocket API's `$connect` REQUEST authorizer. */
  | { readonly kind: 'websocket-authorizer' }
  /** WebSocket routes. `returnResponse`: the function's `{statusCode, body}` is sent back to the client as a frame. */
  | { readonly kind: 'websocket'; readonly routes: readonly string[]; readonly returnResponse: boolean }
  /**
   * An SQS event source with partial batch responses (ReportBatchItemFailures). The function also gets
   * `DEAD_LETTER_QUEUE_URL` (its queue's DLQ) and sqs:SendMessage on it, to set aside a record that can never succeed
   * (lambdas/shared/set-aside.ts, docs/limits.md).
   */
  | {
      readonly kind: 'sqs';
      readonly queue: QueueName;
      readonly batchSize: number;
      readonly maxBatchingWindowSeconds: number;
    }
  /**
   * Routes of the stage's HTTP API (API Gateway v2, payload format 2.0). `path` uses API Gateway's syntax
   * (`/v1/entities/{entity}`); `authorizer: 'jwt'` is the API's native JWT authorizer with the `auth` settings.
   */
  | {
      readonly kind: 'http';
      readonly routes: readonly { readonly method: HttpMethod; readonly path: string }[];
      readonly authorizer: 'jwt';
    }
  /** Invoked on a fixed rate (EventBridge schedule in AWS, a timer in the local runtime). */
  | { readonly kind: 'schedule'; readonly rateMinutes: number };

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface FunctionSpec {
  /** Logical name; also the CDK construct id and the local runtime's name for the function. */
  readonly name: string;
  /** Handler file, relative to the repository root. It exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly trigger: Trigger;
  readonly bindings: readonly Binding[];
  /** Static environment (in addition to what bindings set). */
  readonly environment?: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly memoryMB: number;
  /**
   * Whether the handler runs the Powertools Tracer (the X-Ray SDK) in process. Functions that run for every published
   * message go without: loading the X-Ray SDK turns on async hooks that track every promise of the process, about
   * 60 % more CPU per AWS call, measured (lambdas/shared/tracer.ts, docs/operations.md "Traces"). Lambda's active
   * tracing still records every invocation of every function (CDK turns it on for all).
   */
  readonly inProcessTracing: boolean;
  /**
   * `allow`: the function sends to the queue that invokes it on purpose, within a bound of its own, so Lambda's
   * recursive loop detection (which stops a chain of about 16 such invocations) must not end the chain.
   * @default Lambda's default: such a chain is stopped
   */
  readonly recursiveLoop?: 'allow';
}

export const functions = [
  {
    name: 'authorizer',
    entry: 'lambdas/handlers/authorizer.ts',
    description: 'Verifies the JWT on $connect and passes tenant, user and roles in the authorizer context',
    trigger: { kind: 'websocket-authorizer' },
    bindings: ['auth'],
    timeoutSeconds: 10,
    inProcessTracing: true,
    memoryMB: 256,
  },
  {
    name: 'connect',
    entry: 'lambdas/handlers/connect.ts',
    description: 'Registers a connection ($connect)',
    trigger: { kind: 'websocket', routes: ['$connect'], returnResponse: false },
    // connections: a refusing user counter asks API Gateway about the user's registered connections (GetConnection)
    // and forgets those whose $disconnect was lost (lambdas/core/revocation.ts, `liveUserCount`).
    bindings: ['table', 'connections'],
    timeoutSeconds: 10,
    inProcessTracing: true,
    memoryMB: 256,
  },
  {
    name: 'disconnect',
    entry: 'lambdas/handlers/disconnect.ts',
    description: 'Removes a connection and its memberships ($disconnect, best-effort in AWS)',
    trigger: { kind: 'websocket', routes: ['$disconnect'], returnResponse: false },
    // connections: presence leave events (docs/protocol.md, "Presence").
    bindings: ['table', 'connections'],
    timeoutSeconds: 30,
    inProcessTracing: true,
    memoryMB: 256,
  },
  {
    name: 'message',
    entry: 'lambdas/handlers/message.ts',
    description: 'Client frames: subscribe, unsubscribe, publish, ping, and $default for anything else',
    trigger: {
      kind: 'websocket',
      routes: ['subscribe', 'unsubscribe', 'publish', 'ping', 'refresh', 'presence', '$default'],
      returnResponse: true,
    },
    // auth: verifies the token of a `refresh` (docs/security.md). connections: presence verifies members with
    // GetConnection and posts join/leave events (docs/protocol.md, "Presence").
    bindings: ['table', 'deliveryQueue', 'auth', 'connections'],
    timeoutSeconds: 10,
    inProcessTracing: false,
    memoryMB: 512,
  },
  {
    name: 'broadcaster',
    entry: 'lambdas/handlers/broadcaster.ts',
    description: 'Delivers published messages from the delivery queue to every connection of the group',
    trigger: { kind: 'sqs', queue: 'delivery', batchSize: 10, maxBatchingWindowSeconds: 0 },
    // peers + replicationQueue: forwards publishes of tenants homed elsewhere, replicates those homed here
    // (docs/multi-region.md). deliveryQueue: its own queue, for the replays of members whose client does not read
    // (lambdas/core/lagging.ts).
    bindings: ['table', 'connections', 'deliveryQueue', 'fanoutQueue', 'peers', 'replicationQueue'],
    environment: {
      /** How long delivered messages stay replayable with `since`. */
      HISTORY_RETENTION_SECONDS: String(24 * 3600),
      /** Groups with more members than this are split into pages for the fanout function. */
      SPLIT_THRESHOLD: '500',
      /** Most parallel lanes of a split group. */
      FANOUT_SHARDS: '8',
      /** Members per lane when a split period starts (a group of 1000 gets 8 lanes, of 50 one). */
      FANOUT_LANE_MEMBERS: '125',
      /**
       * A run whose oldest message waited longer than this (ms) takes the split path whatever the group's size, so
       * its lane packs from the log (docs/delivery.md, "Pack from the log").
       */
      SPLIT_BACKLOG_MS: '1000',
      /**
       * An invocation whose every run was a busy small group's (2–9 messages, posted directly) lasts at least this
       * long (ms), so the group's next batch holds more: fewer frames and writes per message (lambdas/core/pace.ts).
       */
      BUSY_RUN_MIN_MS: '40',
    },
    timeoutSeconds: 30,
    inProcessTracing: false,
    memoryMB: 1024,
    // A replay its client does not take is queued again on this function's own queue, each pass an invocation from
    // the one before; the chain ends when the client reads (its wait completes) or after 5 s of refusals, when its
    // connection is closed (lambdas/core/lagging.ts). Lambda would stop it at ~16 passes and dead-letter the request.
    recursiveLoop: 'allow',
  },
  {
    name: 'fanout',
    entry: 'lambdas/handlers/fanout.ts',
    description: 'Delivers pages of large groups from the fan-out queue, in parallel lanes',
    trigger: { kind: 'sqs', queue: 'fanout', batchSize: 10, maxBatchingWindowSeconds: 0 },
    // deliveryQueue: the replays of members whose client takes no page (lambdas/core/lagging.ts).
    bindings: ['table', 'connections', 'deliveryQueue'],
    timeoutSeconds: 30,
    inProcessTracing: false,
    memoryMB: 1024,
    // Its replay requests go to the broadcaster, whose runs queue pages for it: a chain through both functions, bounded
    // as the broadcaster's (lagging.ts), which Lambda's detection must not cut (a page dropped is a page lost).
    recursiveLoop: 'allow',
  },
  {
    name: 'replicator',
    entry: 'lambdas/handlers/replicator.ts',
    description: "Sends the home region's sequenced messages to the peer regions' delivery queues, in order per lane",
    trigger: { kind: 'sqs', queue: 'replication', batchSize: 10, maxBatchingWindowSeconds: 0 },
    bindings: ['peers'],
    timeoutSeconds: 10,
    inProcessTracing: false,
    memoryMB: 256,
  },
  {
    name: 'entityApi',
    entry: 'lambdas/handlers/entity-api.ts',
    description: 'Entity HTTP API: schema, list, get, create, update, delete and change log of tenant entities',
    trigger: {
      kind: 'http',
      authorizer: 'jwt',
      routes: [
        { method: 'GET', path: '/v1/schema' },
        { method: 'GET', path: '/v1/entities/{entity}' },
        { method: 'POST', path: '/v1/entities/{entity}' },
        { method: 'GET', path: '/v1/entities/{entity}/{id}' },
        { method: 'PATCH', path: '/v1/entities/{entity}/{id}' },
        { method: 'DELETE', path: '/v1/entities/{entity}/{id}' },
        { method: 'GET', path: '/v1/entities/{entity}/{id}/changes' },
      ],
    },
    bindings: ['table', 'auth', 'changesQueue', 'tenantData'],
    timeoutSeconds: 15,
    inProcessTracing: true,
    memoryMB: 512,
  },
  {
    name: 'changeFeed',
    entry: 'lambdas/handlers/change-feed.ts',
    description: 'Turns change events into entity:<name> messages for the delivery queue, with per-row audiences',
    trigger: { kind: 'sqs', queue: 'changes', batchSize: 10, maxBatchingWindowSeconds: 0 },
    bindings: ['table', 'deliveryQueue', 'tenantData'],
    timeoutSeconds: 30,
    inProcessTracing: false,
    memoryMB: 512,
  },
  {
    name: 'outboxRelay',
    entry: 'lambdas/handlers/outbox-relay.ts',
    description: 'Publishes committed changes whose change event was never sent (the change log is the outbox)',
    trigger: { kind: 'schedule', rateMinutes: 1 },
    bindings: ['table', 'changesQueue', 'tenantData'],
    timeoutSeconds: 60,
    inProcessTracing: true,
    memoryMB: 256,
  },
  {
    name: 'publishApi',
    entry: 'lambdas/handlers/publish-api.ts',
    description: 'Server-side publishing over HTTP: to a group, or to every connection of one user (user:<id>)',
    trigger: { kind: 'http', authorizer: 'jwt', routes: [{ method: 'POST', path: '/v1/publish' }] },
    // table: the tenant catalog's role rules; auth: the claim names of the JWT authorizer's claims.
    bindings: ['table', 'auth', 'deliveryQueue'],
    timeoutSeconds: 10,
    inProcessTracing: false,
    memoryMB: 256,
  },
  {
    name: 'reaper',
    entry: 'lambdas/handlers/reaper.ts',
    description:
      'Closes connections whose token expired (error frame, then DeleteConnection), and announces the presence leaves of connections removed without a $disconnect; docs/security.md',
    trigger: { kind: 'schedule', rateMinutes: 1 },
    bindings: ['table', 'connections'],
    timeoutSeconds: 60,
    inProcessTracing: true,
    memoryMB: 256,
  },
  {
    name: 'adminApi',
    entry: 'lambdas/handlers/admin-api.ts',
    description: 'Tenant administration over HTTP: disconnect a user or the whole tenant, read usage',
    trigger: {
      kind: 'http',
      authorizer: 'jwt',
      routes: [
        { method: 'POST', path: '/v1/admin/disconnect' },
        { method: 'GET', path: '/v1/usage' },
      ],
    },
    bindings: ['table', 'auth', 'connections'],
    timeoutSeconds: 30,
    inProcessTracing: true,
    memoryMB: 256,
  },
] as const satisfies readonly FunctionSpec[];

export type FunctionName = (typeof functions)[number]['name'];

/** Environment keys a function receives from its trigger (an SQS consumer: its dead-letter queue). */
export function triggerEnvKeysOf(spec: FunctionSpec): string[] {
  return spec.trigger.kind === 'sqs' ? ['DEAD_LETTER_QUEUE_URL'] : [];
}

/** Environment keys a function receives from its bindings. */
export function envKeysOf(spec: FunctionSpec): string[] {
  return spec.bindings.flatMap((b) => [...bindingEnv[b]]);
}

/**
 * The Secrets Manager name prefix of a stage's tenant database secrets: `tenantcast/<stage>/tenant/`. Onboarding
 * creates `tenantcast/<stage>/tenant/<tenantId>`; the `tenantData` binding may read only names under this prefix.
 */
export function tenantSecretPrefix(stage: string): string {
  return `tenantcast/${stage}/tenant/`;
}

/** The Secrets Manager name of a tenant's database secret: `tenantcast/<stage>/tenant/<tenantId>`. */
export function tenantSecretName(stage: string, tenantId: string): string {
  return `${tenantSecretPrefix(stage)}${tenantId}`;
}

/** The WebSocket API's route selection expression: `action` in the JSON frame. */
export const routeSelectionExpression = '$request.body.action';

/**
 * Limits that both the gateway stand-in and the handlers apply: AWS's own from the limits table
 * (lambdas/core/limits.ts, with sources), and tenantcast's product limits within them (docs/limits.md).
 */
export const limits = {
  /** API Gateway WebSocket frame size (client → server); also the size tenantcast packs server frames to. */
  frameBytes: aws.websocketFrameBytes,
  /** Largest message API Gateway posts to a connection (PostToConnection answers 413 above it). */
  postBytes: aws.websocketMessageBytes,
  /** Largest `data` in a publish, as JSON. */
  publishDataBytes: 16 * 1024,
  /** Deepest nesting of objects and arrays in published `data` (DynamoDB's own limit, so data stays storable). */
  publishDataDepth: aws.dynamoNestingLevels,
  /** Largest entity row inlined in a change-feed message; larger rows are announced without it (docs/entities.md). */
  changeRowBytes: 16 * 1024,
  /** API Gateway idle timeout. */
  idleTimeoutSeconds: aws.websocketIdleSeconds,
  /** API Gateway maximum connection duration. */
  maxConnectionSeconds: aws.websocketConnectionSeconds,
  /**
   * Most messages a `subscribe` with `since` replays, and most frames it takes: further behind, the subscriber gets a
   * `reset` (`HISTORY_TOO_LONG`) and reloads, so one replay stays a few seconds of one invocation (docs/delivery.md,
   * "Recovery").
   */
  replayMessages: 1000,
  replayFrames: 32,
  /**
   * Most groups one connection may be subscribed to (ours: each costs two items, and `$disconnect` removes them all
   * in one invocation; Centrifugo's default is 128, Ably's 200). A subscribe past it is FORBIDDEN.
   */
  subscriptionsPerConnection: 100,
  /** Largest entity API request body (413 TOO_LARGE above it; API Gateway's own limit is 10 MB). */
  entityBodyBytes: 256 * 1024,
  /**
   * Deepest nesting of objects and arrays in an entity API body (a jsonb value): ours, so that validating and storing a
   * body never runs out of stack (20,000 levels, well within 256 KB, was a 500 until 2026-12-03).
   */
  entityBodyDepth: 1000,
  /** Largest SQS message tenantcast sends (the queues' `MaximumMessageSize`). */
  queueMessageBytes: aws.sqsMessageBytes,
  /** Largest SendMessageBatch tenantcast sends. */
  queueBatchBytes: aws.sqsBatchBytes,
  queueBatchEntries: aws.sqsBatchEntries,
} as const;
