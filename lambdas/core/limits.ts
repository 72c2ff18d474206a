/**
 * The one table of AWS limits tenantcast builds against, each with its source. Every boundary checks against it:
 * what clients send is refused with a typed error before it is acknowledged (lambdas/core/publish-data.ts,
 * protocol.ts, the entity API), and what tenantcast builds (SQS batches, fan-out jobs, frames, history items) is split
 * or shaped to fit (docs/limits.md says what each boundary does at each limit).
 *
 * Plain data: the manifest, the functions, CDK (lib/) and the local stand-ins (local/) all read it.
 */

export interface AwsLimit {
  readonly value: number;
  /** Where AWS documents it. */
  readonly source: string;
}

const KiB = 1024;

export const awsLimits = {
  /** Largest DynamoDB item, attribute names and values together. */
  dynamoItemBytes: {
    value: 400 * KiB,
    source: 'DynamoDB Developer Guide, "Service, account, and table quotas": item size',
  },
  /** Deepest nesting of lists and maps in a DynamoDB attribute value. */
  dynamoNestingLevels: {
    value: 32,
    source: 'DynamoDB Developer Guide, "Service, account, and table quotas": nested attribute depth',
  },
  /** Significant digits of a DynamoDB number (JavaScript keeps integers exact only up to 2^53 - 1). */
  dynamoNumberDigits: {
    value: 38,
    source: 'DynamoDB Developer Guide, "Supported data types": Number, up to 38 digits of precision',
  },
  /** Keys in one BatchGetItem (no duplicates allowed). */
  dynamoBatchGetKeys: { value: 100, source: 'DynamoDB API Reference, BatchGetItem' },
  /** Put and delete requests in one BatchWriteItem (no duplicate keys allowed). */
  dynamoBatchWriteItems: { value: 25, source: 'DynamoDB API Reference, BatchWriteItem' },
  /** Largest SQS message body and attributes together, as our queues set `MaximumMessageSize`. */
  sqsMessageBytes: {
    value: 256 * KiB,
    source:
      'SQS Developer Guide, "Amazon SQS message quotas" (the queue attribute MaximumMessageSize; AWS allows up to 1 MiB since 2025, our queues set 256 KiB)',
  },
  /** Entries in one SendMessageBatch. */
  sqsBatchEntries: { value: 10, source: 'SQS API Reference, SendMessageBatch' },
  /** Total size of one SendMessageBatch (every entry's body and attributes). */
  sqsBatchBytes: {
    value: 1024 * KiB,
    source: 'SQS API Reference, SendMessageBatch (BatchRequestTooLong above it)',
  },
  /** FIFO: transactions per second per message group in high-throughput mode (per queue without it: 300/s). */
  sqsFifoGroupTps: {
    value: 300,
    source: 'SQS Developer Guide, "Quotas related to messages": FIFO throughput; high throughput mode',
  },
  /** Largest message a WebSocket client may send in one frame. */
  websocketFrameBytes: {
    value: 32 * KiB,
    source: 'API Gateway Developer Guide, "Quotas for configuring and running a WebSocket API": frame size',
  },
  /** Largest message of a WebSocket API (and of one PostToConnection; 413 above it). */
  websocketMessageBytes: {
    value: 128 * KiB,
    source: 'API Gateway Developer Guide, WebSocket API quotas: message payload size',
  },
  /** Largest result of a WebSocket API's Lambda authorizer (policy, principal and context as JSON). */
  websocketAuthorizerResultBytes: {
    value: 8 * KiB,
    source:
      'API Gateway Developer Guide, "Quotas for configuring and running a WebSocket API": Lambda authorizer result size',
  },
  /** Characters of a WebSocket API's URL, query string included (a token given as `?token=` shares it). */
  websocketUrlCharacters: {
    value: 4096,
    source: 'API Gateway Developer Guide, WebSocket API quotas: length, in characters, of the URL for a WebSocket API',
  },
  /**
   * Bytes of an HTTP API request's request line and header values together (a bearer token is one of them): past it
   * API Gateway refuses the request before any authorizer or function.
   */
  httpApiRequestLineAndHeaderBytes: {
    value: 10_240,
    source:
      'API Gateway Developer Guide, "Quotas for configuring and running an HTTP API": total combined size of request line and header values',
  },
  /** Idle timeout of a WebSocket connection. */
  websocketIdleSeconds: { value: 10 * 60, source: 'API Gateway Developer Guide, WebSocket API quotas: idle timeout' },
  /** Maximum duration of a WebSocket connection. */
  websocketConnectionSeconds: {
    value: 2 * 60 * 60,
    source: 'API Gateway Developer Guide, WebSocket API quotas: connection duration',
  },
  /** Asynchronous Lambda invocation payload (event sources such as EventBridge). */
  lambdaAsyncPayloadBytes: { value: 256 * KiB, source: 'Lambda Developer Guide, "Lambda quotas": invocation payload' },
  /** Synchronous Lambda invocation payload, request and response (API Gateway integrations). */
  lambdaSyncPayloadBytes: {
    value: 6 * 1024 * KiB,
    source: 'Lambda Developer Guide, "Lambda quotas": invocation payload',
  },
  /** Largest RDS Data API ExecuteStatement result. */
  dataApiResponseBytes: {
    value: 1024 * KiB,
    source: 'Aurora User Guide, "Data API limitations": the response size limit is 1 MiB',
  },
  /** Largest row of an RDS Data API result ("Packet for query is too large" above it). */
  dataApiRowBytes: {
    value: 64 * KiB,
    source:
      'Aurora User Guide, "Troubleshooting Amazon RDS Data API", Packet for query is too large: the Data API size limit is 64 KB per row in the result set returned by the database',
  },
} as const satisfies Record<string, AwsLimit>;

/** Values only, for code that needs the numbers. */
export const aws = Object.fromEntries(Object.entries(awsLimits).map(([k, v]) => [k, v.value])) as {
  readonly [K in keyof typeof awsLimits]: (typeof awsLimits)[K]['value'];
};
