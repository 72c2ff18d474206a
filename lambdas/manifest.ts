/**
 * The one function manifest. The CDK app (lib/) and the local runtime (local/) both read this file, so what
 * runs locally is what deploys: same entries, same triggers, same environment keys, same limits.
 *
 * Nothing here may import AWS CDK or local-runtime code: it is plain data plus types.
 */

/** Shared resources a function can be bound to. Binding sets the environment keys listed and grants access. */
export type Binding =
  /** The main DynamoDB table: `TABLE_NAME` (read/write on the table and its indexes). */
  | 'table'
  /** Send to the delivery queue: `DELIVERY_QUEUE_URL` (sqs:SendMessage). */
  | 'deliveryQueue'
  /** The API Gateway Management API of this stage's WebSocket API: `CONNECTIONS_ENDPOINT` (execute-api:ManageConnections). */
  | 'connections'
  /** JWT verification settings: `JWT_ISSUER`, `JWT_AUDIENCE`, `JWKS_URI`, claim names. No grants. */
  | 'auth';

/** Environment keys each binding sets. */
export const bindingEnv = {
  table: ['TABLE_NAME'],
  deliveryQueue: ['DELIVERY_QUEUE_URL'],
  connections: ['CONNECTIONS_ENDPOINT'],
  auth: ['JWT_ISSUER', 'JWT_AUDIENCE', 'JWKS_URI', 'CLAIM_TENANT', 'CLAIM_USER', 'CLAIM_ROLES'],
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
}

export const queues = {
  delivery: {
    visibilityTimeoutSeconds: 180,
    maxReceiveCount: 3,
    retentionSeconds: 4 * 24 * 3600,
    dlqRetentionSeconds: 14 * 24 * 3600,
  },
} as const satisfies Record<string, QueueSpec>;

export type QueueName = keyof typeof queues;

/** The single table. Item layout is documented in docs/data-model.md. */
export const table = {
  partitionKey: 'pk',
  sortKey: 'sk',
  timeToLiveAttribute: 'ttl',
  globalSecondaryIndexes: [{ indexName: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
} as const;

export type Trigger =
  /** The WebSocket API's `$connect` REQUEST authorizer. */
  | { readonly kind: 'websocket-authorizer' }
  /** WebSocket routes. `returnResponse`: the function's `{statusCode, body}` is sent back to the client as a frame. */
  | { readonly kind: 'websocket'; readonly routes: readonly string[]; readonly returnResponse: boolean }
  /** An SQS event source with partial batch responses (ReportBatchItemFailures). */
  | {
      readonly kind: 'sqs';
      readonly queue: QueueName;
      readonly batchSize: number;
      readonly maxBatchingWindowSeconds: number;
    };

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
}

export const functions = [
  {
    name: 'authorizer',
    entry: 'lambdas/handlers/authorizer.ts',
    description: 'Verifies the JWT on $connect and passes tenant, user and roles in the authorizer context',
    trigger: { kind: 'websocket-authorizer' },
    bindings: ['auth'],
    timeoutSeconds: 10,
    memoryMB: 256,
  },
  {
    name: 'connect',
    entry: 'lambdas/handlers/connect.ts',
    description: 'Registers a connection ($connect)',
    trigger: { kind: 'websocket', routes: ['$connect'], returnResponse: false },
    bindings: ['table'],
    timeoutSeconds: 10,
    memoryMB: 256,
  },
  {
    name: 'disconnect',
    entry: 'lambdas/handlers/disconnect.ts',
    description: 'Removes a connection and its memberships ($disconnect, best-effort in AWS)',
    trigger: { kind: 'websocket', routes: ['$disconnect'], returnResponse: false },
    bindings: ['table'],
    timeoutSeconds: 30,
    memoryMB: 256,
  },
  {
    name: 'message',
    entry: 'lambdas/handlers/message.ts',
    description: 'Client frames: subscribe, unsubscribe, publish, ping, and $default for anything else',
    trigger: {
      kind: 'websocket',
      routes: ['subscribe', 'unsubscribe', 'publish', 'ping', '$default'],
      returnResponse: true,
    },
    bindings: ['table', 'deliveryQueue'],
    timeoutSeconds: 10,
    memoryMB: 512,
  },
  {
    name: 'broadcaster',
    entry: 'lambdas/handlers/broadcaster.ts',
    description: 'Delivers published messages from the delivery queue to every connection of the group',
    trigger: { kind: 'sqs', queue: 'delivery', batchSize: 10, maxBatchingWindowSeconds: 0 },
    bindings: ['table', 'connections'],
    timeoutSeconds: 30,
    memoryMB: 1024,
  },
] as const satisfies readonly FunctionSpec[];

export type FunctionName = (typeof functions)[number]['name'];

/** Environment keys a function receives from its bindings. */
export function envKeysOf(spec: FunctionSpec): string[] {
  return spec.bindings.flatMap((b) => [...bindingEnv[b]]);
}

/** The WebSocket API's route selection expression: `action` in the JSON frame. */
export const routeSelectionExpression = '$request.body.action';

/** Limits that both the gateway stand-in and the handlers apply (API Gateway's own where they are AWS's). */
export const limits = {
  /** API Gateway WebSocket frame size. */
  frameBytes: 32 * 1024,
  /** Largest `data` in a publish, as JSON. */
  publishDataBytes: 16 * 1024,
  /** API Gateway idle timeout. */
  idleTimeoutSeconds: 10 * 60,
  /** API Gateway maximum connection duration. */
  maxConnectionSeconds: 2 * 60 * 60,
} as const;
