/**
 * Types of the local API Gateway WebSocket stand-in: the public ones (options, the `Gateway` handle, stats, faults)
 * and the internal `Connection` record and `GatewayState`, the state every module of local/gateway/ is handed
 * explicitly (no module keeps state of its own).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import type {
  AnyLambdaHandler,
  ConnectionFacts,
  WebSocketAuthorizerData,
  WebSocketIdentity,
} from '../lambda-events.ts';

export type GatewayLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type GatewayLogger = (level: GatewayLogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Handles a plain HTTP request (not an upgrade). Returns true when it answered the request. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/** How a function is invoked (its Lambda context settings). */
export interface GatewayFunction {
  handler: AnyLambdaHandler;
  /** Name in the Lambda context (`context.functionName`); defaults to the route key. */
  functionName?: string;
  timeoutSeconds?: number;
  memoryMB?: number;
}

export interface GatewayRoute extends GatewayFunction {
  /** Two-way route: the handler's `body` (or string result) is sent back to the client as a frame. */
  returnResponse?: boolean;
}

export interface GatewayAuthorizer extends GatewayFunction {
  /**
   * Identity sources as configured on the authorizer in AWS, e.g. `['route.request.querystring.token']` or
   * `['route.request.header.Authorization']` (the CDK default). If any is missing or empty, API Gateway answers 401
   * without invoking the authorizer. Empty or omitted: no check.
   */
  identitySource?: readonly string[];
}

export interface GatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port; `gateway.port` tells which. */
  port?: number;
  /** Path of WebSocket upgrades. Default `/ws`. */
  wsPath?: string;
  apiId?: string;
  /** Default `local`. The Management API also answers under `/{stage}/@connections/…`. */
  stage?: string;
  region?: string;
  accountId?: string;
  stageVariables?: Record<string, string>;
  /** Default: the manifest's (`$request.body.action`). Only `$request.body.<path>` expressions are supported. */
  routeSelectionExpression?: string;
  /** REQUEST authorizer on $connect. */
  authorizer?: GatewayAuthorizer;
  /** Route key → function: `$connect`, `$disconnect`, `$default` and custom route keys. */
  routes: Record<string, GatewayRoute>;
  /** Largest frame a client may send; larger closes with 1009. Default: manifest `limits.frameBytes`. */
  frameBytes?: number;
  /** Default: manifest `limits.idleTimeoutSeconds`. */
  idleTimeoutMs?: number;
  /** Default: manifest `limits.maxConnectionSeconds`. */
  maxConnectionMs?: number;
  /** Largest `@connections` POST body. Default 128 KB (API Gateway's message payload quota). */
  postPayloadBytes?: number;
  /**
   * Bytes a connection may have waiting to be sent (its socket's `bufferedAmount`) before a post to it answers 429
   * LimitExceededException, as API Gateway does when "the WebSocket client side buffer is full". AWS does not give the
   * size: 1 MiB here, past what the local socket takes by itself. Default 1 MiB.
   */
  clientBufferBytes?: number;
  /** API Gateway's integration timeout. Default 29 000 ms. */
  integrationTimeoutMs?: number;
  /** Route invocations running at once per connection; later frames wait in order (file comment). Default 8. */
  maxInflightPerConnection?: number;
  /** Frames waiting per connection at most; more are answered RATE_LIMITED (file comment). Default 64. */
  maxQueuedPerConnection?: number;
  /** Enables `injectFaults` and `/local/faults` (tests and the benchmark only). Default false. */
  faultInjection?: boolean;
  /** How long a server-initiated close waits for the client's close frame before cutting the socket. Default 1000 ms. */
  closeGraceMs?: number;
  /** Called first for every non-upgrade HTTP request (more can be added with `addHttpHandler`). */
  httpHandler?: HttpHandler;
  /**
   * Start not ready: until `setReady()`, handshakes and HTTP requests are answered 503 with `Retry-After`, except by
   * handlers mounted `whileStarting` (a page that then retries). Default false (ready at once).
   */
  starting?: boolean;
  /** Default: console. */
  log?: GatewayLogger;
}

export interface ConnectionInfo {
  readonly connectionId: string;
  /** Epoch ms. */
  readonly connectedAt: number;
  /** Epoch ms of the last data frame in either direction. */
  readonly lastActiveAt: number;
  readonly identity: WebSocketIdentity;
  readonly authorizer?: WebSocketAuthorizerData;
  /** The subprotocol selected by $connect, if any. */
  readonly subprotocol?: string;
}

/** Counters for benchmarks and tests. Live object: read it whenever. */
export interface GatewayStats {
  /** Upgrade requests at the WebSocket path. */
  handshakes: number;
  /** Handshakes completed (connections opened). */
  connects: number;
  /** Handshakes rejected (401/403/4xx/5xx). */
  rejectedHandshakes: number;
  /** The same, by the status answered (the ops page lists 401/403/429/503 …). */
  rejectedHandshakesByStatus: Record<number, number>;
  /** Data frames received from clients. */
  framesIn: number;
  /** Data frames sent to clients (posts, route responses, error frames). */
  framesOut: number;
  /** Error frames sent (Forbidden, Internal server error, Endpoint request timed out). */
  errorFrames: number;
  /** Route handler invocations that threw or timed out (authorizer, $connect, routes, $disconnect). */
  handlerErrors: number;
  posts: number;
  postBytes: number;
  gets: number;
  deletes: number;
  /** @connections calls answered 410. */
  gone: number;
  /** @connections posts answered 413. */
  payloadTooLarge: number;
  /** @connections posts answered 429 because the client was not reading (`clientBufferBytes`). */
  clientBufferFull: number;
  /** Connections closed (for any reason). */
  disconnects: number;
  /** $disconnect invocations started. */
  disconnectInvocations: number;
  /** @connections posts answered with an injected fault (see `injectFaults`). */
  faults: number;
  /** Frames answered RATE_LIMITED because `maxQueuedPerConnection` frames of their connection were waiting. */
  queueFull: number;
  /** Waiting frames dropped because their connection closed. */
  droppedOnClose: number;
  /** Management requests (@connections, /local/faults) refused: unsigned, or from a web page. */
  managementRefused: number;
}

/** A fault for `@connections` posts (see `Gateway.injectFaults`). */
export interface FaultSpec {
  /** Answer matching posts with this status instead of delivering. Omitted: deliver (after `delayMs`). */
  readonly status?: 410 | 413 | 429 | 500;
  /** Fraction of matching posts affected, 0 to 1. @default 1 */
  readonly rate?: number;
  /** Affect at most this many posts, then the fault is removed. @default unlimited */
  readonly count?: number;
  /** Hold matching posts this long first; dropped if the caller has gone away by then. @default 0 */
  readonly delayMs?: number;
  /** Only posts to these connections. @default every connection */
  readonly connectionIds?: readonly string[];
}

export interface Gateway {
  /** `http://host:port`: base of extra HTTP routes, and an endpoint the Management API client accepts. */
  readonly url: string;
  /** `ws://host:port/ws`: where clients connect. */
  readonly wsUrl: string;
  /** `http://host:port/{stage}`: the value for CONNECTIONS_ENDPOINT (same shape as `https://{api}.execute-api…/{stage}`). */
  readonly connectionsEndpoint: string;
  readonly port: number;
  readonly stage: string;
  /** Open connections (a connection leaves the map as soon as it starts closing). */
  readonly connections: ReadonlyMap<string, ConnectionInfo>;
  readonly stats: Readonly<GatewayStats>;
  /**
   * Mount another HTTP handler (tried in order, before the Management API); `whileStarting`: it also answers before
   * `setReady()`. Returns a function that unmounts it.
   */
  addHttpHandler(handler: HttpHandler, options?: { whileStarting?: boolean }): () => void;
  /** Ends the `starting` phase: from now on requests and handshakes are served. */
  setReady(): void;
  /** Send a frame to a connection, as `@connections` POST does. False if the connection is gone. */
  send(connectionId: string, data: string | Buffer): boolean;
  /** Close a connection as DeleteConnection does (1000, then $disconnect). False if it is gone. */
  disconnect(connectionId: string): boolean;
  /**
   * Cut a connection abruptly (client sees 1006). With `skipDisconnect`, $disconnect is NOT invoked: the best-effort
   * case where AWS loses the $disconnect event and the backend keeps a stale connection record.
   */
  dropConnection(connectionId: string, options?: { skipDisconnect?: boolean }): boolean;
  /** Resolves when no handshake, handler invocation or $disconnect is in flight. */
  whenIdle(): Promise<void>;
  /**
   * Injects a fault into `@connections` posts (file comment). Returns a function that removes it. Throws unless
   * the gateway was started with `faultInjection`.
   */
  injectFaults(fault: FaultSpec): () => void;
  /** Removes every injected fault. */
  clearFaults(): void;
  /** Stop accepting, close every socket with 1001, run and await their $disconnect, close the server. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Internal types

export interface CloseStatus {
  code: number;
  reason: string;
}

export interface Connection extends ConnectionInfo {
  lastActiveAt: number;
  readonly ws: WebSocket;
  readonly facts: ConnectionFacts;
  state: 'open' | 'closing' | 'closed';
  /** Why we closed it (used for $disconnect instead of what the socket reports). */
  closeCause?: CloseStatus;
  skipDisconnect: boolean;
  /** Route invocations running, and those waiting for a slot (index.ts file comment, "Fair share"). */
  inflight: number;
  readonly waiting: (() => Promise<void>)[];
  idleTimer?: NodeJS.Timeout;
  maxTimer?: NodeJS.Timeout;
  graceTimer?: NodeJS.Timeout;
  readonly closed: Promise<void>;
  markClosed(): void;
}

export type InvokeOutcome = { ok: true; result: unknown } | { ok: false; timedOut: boolean; error: unknown };

/** Options with their defaults applied (config.ts). */
export interface GatewayConfig {
  readonly host: string;
  readonly wsPath: string;
  readonly stage: string;
  readonly apiId: string;
  readonly region: string;
  readonly accountId: string;
  readonly stageVariables?: Record<string, string>;
  readonly frameBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxConnectionMs: number;
  readonly postPayloadBytes: number;
  readonly clientBufferBytes: number;
  readonly integrationTimeoutMs: number;
  readonly closeGraceMs: number;
  readonly maxInflightPerConnection: number;
  readonly maxQueuedPerConnection: number;
  readonly faultInjection: boolean;
  /** The keys of `$request.body.<path>`. */
  readonly selectionPath: readonly string[];
}

/** An injected fault and how many posts it may still affect. */
export interface ActiveFault {
  readonly spec: FaultSpec;
  left: number;
}

/** Everything the gateway's modules share, created once by `startGateway` and passed to each function. */
export interface GatewayState {
  readonly config: GatewayConfig;
  readonly log: GatewayLogger;
  readonly stats: GatewayStats;
  readonly routes: ReadonlyMap<string, GatewayRoute>;
  readonly authorizer?: GatewayAuthorizer;
  /** Open connections by id (a connection leaves as soon as it starts closing). */
  readonly open: Map<string, Connection>;
  /** Connections whose socket has not closed yet. */
  readonly live: Set<Connection>;
  readonly usedIds: Set<string>;
  /** Work that `whenIdle` and `close` wait for (invoke.ts `track`). */
  readonly inflight: Set<Promise<unknown>>;
  readonly faults: Set<ActiveFault>;
  readonly wss: WebSocketServer;
  /** The subprotocol $connect selected, per upgrade request (read by the WebSocketServer's handleProtocols). */
  readonly selectedProtocol: WeakMap<IncomingMessage, string>;
  readonly httpHandlers: HttpHandler[];
  readonly startingHandlers: Set<HttpHandler>;
  /** Until `setReady()`: 503 with Retry-After. */
  starting: boolean;
  /** Set by `close()`. */
  closing: boolean;
  /** The port listened on (set once listening). */
  port: number;
}
