/**
 * Local stand-in for an API Gateway WebSocket API (one stage) and its `@connections` Management API.
 *
 * It runs the unchanged Lambda handlers in-process and reproduces the behaviour that bites in AWS:
 *  - the REQUEST authorizer runs before the upgrade is accepted: `Unauthorized` → 401, an explicit or missing Allow → 403,
 *    a crash or malformed policy → 500; missing identity sources → 401 without calling the authorizer;
 *  - the authorizer's `context` values are stringified (objects/arrays → 500) and reach every later event of the
 *    connection in `requestContext.authorizer`, with `principalId` and `integrationLatency`;
 *  - $connect decides the handshake (non-2xx or a crash rejects it) and selects the subprotocol: when a client offers
 *    subprotocols and $connect selects none, the handshake completes without one, exactly as API Gateway does, and
 *    browsers (and `ws` clients) then fail the connection;
 *  - route selection on `$request.body.<path>`, `$default`, and API Gateway's own error frames
 *    (`Forbidden` when no route matches and there is no $default, `Internal server error` when a handler throws,
 *    `Endpoint request timed out` after the 29 s integration timeout);
 *  - 32 KB frames (close 1009), the 10 min idle timeout and 2 h maximum duration (close 1001 "Going away");
 *  - `@connections` POST/GET/DELETE with AWS's wire format (410 GoneException, 413 PayloadTooLargeException), so the
 *    real `@aws-sdk/client-apigatewaymanagementapi` client works against it, and a connection still inside its
 *    $connect is not reachable yet (410), as in AWS;
 *  - $disconnect once per connection whatever closed it (best effort in AWS: `dropConnection(id, {skipDisconnect})`
 *    loses it on purpose, for tests).
 *
 * Decisions where AWS is not documented precisely (keep in mind when reading test results):
 *  - Idle time counts data frames in either direction (client frames, @connections posts, route responses); ping/pong
 *    control frames do not reset it.
 *  - Frames of one connection are dispatched as they arrive and their invocations run concurrently, like API Gateway,
 *    which gives no ordering guarantee between invocations: responses may come back out of order.
 *  - Fair share of the machine: in AWS every route invocation gets its own Lambda sandbox, so a connection flooding
 *    the API does not slow anybody else's invocations. Here a function's invocations share a few sandboxes
 *    (local/function-host.ts) on the machine's cores, so each connection has at most `maxInflightPerConnection` (default 8) route invocations running; its further
 *    frames wait in arrival order. Without it one connection's thousand queued frames would sit ahead of every other
 *    connection's next frame in the worker. At most `maxQueuedPerConnection` (default 64) frames wait per
 *    connection: a frame over that is answered with a `RATE_LIMITED` error frame at once (local/gateway-throttle.ts),
 *    and a connection's waiting frames are dropped when it closes (frames already running finish).
 *  - A message larger than `frameBytes` is rejected with 1009 even if the client fragmented it (AWS would accept
 *    fragmented messages up to 128 KB; browsers never fragment, so this only matters for custom clients).
 *  - Error frames are sent for any route that fails, whether or not it is configured to return a response.
 *  - DeleteConnection closes the socket with 1000 and reports `disconnectStatusCode` 1000,
 *    `disconnectReason` "Connection Closed Normally" (what API Gateway logs for it).
 *  - A $connect that returns nothing (undefined/null) accepts the connection.
 *  - Handshake rejections use 500 for authorizer and $connect crashes (AWS may answer 502 for a $connect crash).
 *
 * Logs never contain query strings or the Sec-WebSocket-Protocol header (both can carry tokens).
 *
 * The Management API (`@connections`) and `/local/faults` answer only SigV4-signed requests without an `Origin`
 * header, as AWS SDK clients send them (local/gateway-management-auth.ts): any web page could reach them otherwise.
 *
 * Fault injection (local only, for tests and the benchmark, only with the `faultInjection` option):
 * `gateway.injectFaults({ status, rate, count, delayMs, connectionIds })`, or a signed `POST /local/faults` with the
 * same JSON (`DELETE /local/faults` clears), makes `@connections`
 * posts answer 410 GoneException, 429 LimitExceededException or 500 InternalServerErrorException instead of
 * delivering, and/or holds them `delayMs` first. A held post whose caller went away meanwhile (a crashed function)
 * is dropped, as a request that never completed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  functions as manifestFunctions,
  limits as manifestLimits,
  routeSelectionExpression as manifestRouteSelection,
} from '../lambdas/manifest.ts';
import { refuseManagementRequest } from './gateway-management-auth.ts';
import { queueFullFrame } from './gateway-throttle.ts';
import { drain, listen, readBody } from './http-util.ts';
import {
  type AnyLambdaHandler,
  apiGatewayStyleId,
  buildAuthorizerEvent,
  buildConnectEvent,
  buildDisconnectEvent,
  buildMessageEvent,
  type ConnectionFacts,
  createLambdaContext,
  type HandshakeRequest,
  invokeHandler,
  traceId,
  type WebSocketAuthorizerData,
  type WebSocketIdentity,
} from './lambda-events.ts';

// ---------------------------------------------------------------------------------------------------------------
// Public types

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
  readonly status?: 410 | 429 | 500;
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
// Wiring from the manifest

/**
 * Gateway `authorizer` and `routes` for the manifest's WebSocket functions, given their handlers by function name.
 * Throws if a WebSocket function of the manifest has no handler.
 */
export function websocketRoutesFromManifest(
  handlers: Readonly<Record<string, AnyLambdaHandler | undefined>>,
  specs: typeof manifestFunctions = manifestFunctions,
): { authorizer?: GatewayAuthorizer; routes: Record<string, GatewayRoute> } {
  const routes: Record<string, GatewayRoute> = {};
  let authorizer: GatewayAuthorizer | undefined;
  for (const spec of specs) {
    const trigger = spec.trigger;
    if (trigger.kind !== 'websocket' && trigger.kind !== 'websocket-authorizer') continue;
    const handler = handlers[spec.name];
    if (!handler) throw new Error(`no handler given for WebSocket function ${spec.name}`);
    const fn = { handler, functionName: spec.name, timeoutSeconds: spec.timeoutSeconds, memoryMB: spec.memoryMB };
    if (trigger.kind === 'websocket-authorizer') {
      authorizer = fn;
      continue;
    }
    for (const key of trigger.routes) {
      if (routes[key]) throw new Error(`route ${key} is bound twice in the manifest`);
      routes[key] = { ...fn, returnResponse: trigger.returnResponse };
    }
  }
  return authorizer ? { authorizer, routes } : { routes };
}

// ---------------------------------------------------------------------------------------------------------------
// Internals

interface CloseStatus {
  code: number;
  reason: string;
}

interface Connection extends ConnectionInfo {
  lastActiveAt: number;
  readonly ws: WebSocket;
  readonly facts: ConnectionFacts;
  state: 'open' | 'closing' | 'closed';
  /** Why we closed it (used for $disconnect instead of what the socket reports). */
  closeCause?: CloseStatus;
  skipDisconnect: boolean;
  /** Route invocations running, and those waiting for a slot (file comment, "Fair share"). */
  inflight: number;
  readonly waiting: (() => Promise<void>)[];
  idleTimer?: NodeJS.Timeout;
  maxTimer?: NodeJS.Timeout;
  graceTimer?: NodeJS.Timeout;
  readonly closed: Promise<void>;
  markClosed(): void;
}

type InvokeOutcome = { ok: true; result: unknown } | { ok: false; timedOut: boolean; error: unknown };

export type AuthDecision =
  | { ok: true; principalId: string; context: Record<string, string | null> }
  | { ok: false; status: 403 | 500; why: string };

const GO_AWAY: CloseStatus = { code: 1001, reason: 'Going away' };

/** console, without debug lines. */
const defaultLogger: GatewayLogger = (level, message, fields) => {
  if (level === 'debug') return;
  const line = `[gateway] ${message}`;
  const out = level === 'error' ? console.error : level === 'warn' ? console.warn : console.log;
  if (fields && Object.keys(fields).length > 0) out(line, fields);
  else out(line);
};

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1';
  const wsPath = options.wsPath ?? '/ws';
  const stage = options.stage ?? 'local';
  const apiId = options.apiId ?? 'local';
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const frameBytes = options.frameBytes ?? manifestLimits.frameBytes;
  const idleTimeoutMs = options.idleTimeoutMs ?? manifestLimits.idleTimeoutSeconds * 1000;
  const maxConnectionMs = options.maxConnectionMs ?? manifestLimits.maxConnectionSeconds * 1000;
  const postPayloadBytes = options.postPayloadBytes ?? 128 * 1024;
  const integrationTimeoutMs = options.integrationTimeoutMs ?? 29_000;
  const closeGraceMs = options.closeGraceMs ?? 1000;
  const maxInflightPerConnection = options.maxInflightPerConnection ?? 8;
  if (!Number.isInteger(maxInflightPerConnection) || maxInflightPerConnection < 1) {
    throw new Error(`maxInflightPerConnection must be a positive integer, got ${maxInflightPerConnection}`);
  }
  const maxQueuedPerConnection = options.maxQueuedPerConnection ?? 64;
  if (!Number.isInteger(maxQueuedPerConnection) || maxQueuedPerConnection < 0) {
    throw new Error(`maxQueuedPerConnection must be a non-negative integer, got ${maxQueuedPerConnection}`);
  }
  const faultInjection = options.faultInjection ?? false;
  const log = options.log ?? defaultLogger;
  const selectionPath = parseSelectionExpression(options.routeSelectionExpression ?? manifestRouteSelection);
  const routes = new Map(Object.entries(options.routes));
  const authorizer = options.authorizer;
  const httpHandlers: HttpHandler[] = options.httpHandler ? [options.httpHandler] : [];
  const startingHandlers = new Set<HttpHandler>();
  let starting = options.starting ?? false;
  const retryAfter = { 'Retry-After': '1' };

  const stats: GatewayStats = {
    handshakes: 0,
    connects: 0,
    rejectedHandshakes: 0,
    framesIn: 0,
    framesOut: 0,
    errorFrames: 0,
    handlerErrors: 0,
    posts: 0,
    postBytes: 0,
    gets: 0,
    deletes: 0,
    gone: 0,
    payloadTooLarge: 0,
    disconnects: 0,
    disconnectInvocations: 0,
    faults: 0,
    queueFull: 0,
    droppedOnClose: 0,
    managementRefused: 0,
  };
  const faults = new Set<{ spec: FaultSpec; left: number }>();
  const FAULT_TYPES = { 410: 'GoneException', 429: 'LimitExceededException', 500: 'InternalServerErrorException' };

  function addFault(spec: FaultSpec): () => void {
    if (!faultInjection) throw new Error('fault injection is off: start the gateway (or runtime) with faultInjection');
    const rate = spec.rate ?? 1;
    if (!(rate >= 0 && rate <= 1)) throw new Error(`fault rate must be between 0 and 1 (got ${spec.rate})`);
    if (spec.status !== undefined && !(spec.status in FAULT_TYPES)) {
      throw new Error(`fault status must be 410, 429 or 500 (got ${spec.status})`);
    }
    const fault = { spec, left: spec.count ?? Number.POSITIVE_INFINITY };
    faults.add(fault);
    return () => faults.delete(fault);
  }

  /** The fault that applies to this post, if any (consumes one of its `count`). */
  function faultFor(connectionId: string): FaultSpec | undefined {
    for (const fault of faults) {
      if (fault.spec.connectionIds !== undefined && !fault.spec.connectionIds.includes(connectionId)) continue;
      if (Math.random() >= (fault.spec.rate ?? 1)) continue;
      if (--fault.left <= 0) faults.delete(fault);
      return fault.spec;
    }
    return undefined;
  }

  /** Refuses (403, and true) a management request that is not SigV4-signed or comes from a web page. */
  async function refusedManagement(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const refusal = refuseManagementRequest(req);
    if (refusal === undefined) return false;
    stats.managementRefused++;
    log('warn', 'management request refused', { method: req.method, why: refusal.type });
    await drain(req);
    awsError(res, refusal.status, refusal.type, refusal.message);
    return true;
  }

  async function handleFaultsApi(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    if (!faultInjection || pathname !== '/local/faults') return false;
    if (await refusedManagement(req, res)) return true;
    if (req.method === 'DELETE') {
      await drain(req);
      faults.clear();
      res.writeHead(204);
      res.end();
      return true;
    }
    const body = await readBody(req, 64 * 1024);
    try {
      addFault(JSON.parse(body?.toString('utf8') ?? '') as FaultSpec);
      sendJson(res, 200, { faults: faults.size });
    } catch (err) {
      sendJson(res, 400, { message: err instanceof Error ? err.message : 'bad fault' });
    }
    return true;
  }
  const open = new Map<string, Connection>();
  const live = new Set<Connection>();
  const usedIds = new Set<string>();
  const inflight = new Set<Promise<unknown>>();
  const selectedProtocol = new WeakMap<IncomingMessage, string>();
  let closing = false;
  let closePromise: Promise<void> | undefined;

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: frameBytes,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => selectedProtocol.get(req) ?? false,
  });

  /** Registers work that `whenIdle`/`close` wait for. The returned promise never rejects (errors are logged). */
  function track(promise: Promise<unknown>): Promise<void> {
    const tracked = promise.then(
      () => {},
      (err: unknown) => {
        log('error', 'unexpected gateway error', { error: describeError(err) });
      },
    );
    inflight.add(tracked);
    void tracked.finally(() => inflight.delete(tracked));
    return tracked;
  }

  async function invoke(fn: GatewayFunction, defaultName: string, event: unknown): Promise<InvokeOutcome> {
    const context = createLambdaContext({
      functionName: fn.functionName ?? defaultName,
      timeoutSeconds: fn.timeoutSeconds,
      memoryMB: fn.memoryMB,
      region,
      accountId,
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<InvokeOutcome>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({ ok: false, timedOut: true, error: new Error(`integration timeout (${integrationTimeoutMs} ms)`) }),
        integrationTimeoutMs,
      );
    });
    const run = invokeHandler(fn.handler, event, context).then(
      (result): InvokeOutcome => ({ ok: true, result }),
      (error: unknown): InvokeOutcome => ({ ok: false, timedOut: false, error }),
    );
    try {
      const outcome = await Promise.race([run, timeout]);
      if (!outcome.ok) stats.handlerErrors++;
      return outcome;
    } finally {
      clearTimeout(timer);
    }
  }

  function newConnectionId(): string {
    for (;;) {
      const id = apiGatewayStyleId();
      if (!usedIds.has(id)) {
        usedIds.add(id);
        return id;
      }
    }
  }

  // ---- handshake ------------------------------------------------------------------------------------------------

  function rejectHandshake(socket: Duplex, status: number, why: string, message: string, errorType?: string): void {
    stats.rejectedHandshakes++;
    log('info', 'handshake rejected', { status, why });
    writeRawResponse(socket, status, { message }, errorType ? { 'x-amzn-ErrorType': errorType } : {});
  }

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== wsPath) {
      writeRawResponse(socket, 404, { message: 'Not Found' });
      return;
    }
    stats.handshakes++;
    if (closing) return rejectHandshake(socket, 503, 'gateway stopping', 'Service Unavailable');
    if (starting) {
      stats.rejectedHandshakes++;
      return writeRawResponse(socket, 503, { message: 'Service Unavailable' }, retryAfter);
    }
    if (!looksLikeWebSocketUpgrade(req)) return rejectHandshake(socket, 400, 'not a WebSocket upgrade', 'Bad Request');

    const now = Date.now();
    const requestId = apiGatewayStyleId();
    const sourceIp = normalizeIp(req.socket.remoteAddress);
    const userAgent = headerValue(req, 'user-agent') ?? null;
    const facts: ConnectionFacts = {
      apiId,
      stage,
      region,
      accountId,
      domainName: headerValue(req, 'host') ?? `${host}:${actualPort}`,
      connectionId: newConnectionId(),
      connectedAt: now,
      identity: { sourceIp, userAgent },
      stageVariables: options.stageVariables,
    };
    const handshake = readHandshake(req, url, sourceIp, actualPort, now);

    if (authorizer) {
      const missing = missingIdentitySource(authorizer.identitySource ?? [], handshake);
      if (missing) return rejectHandshake(socket, 401, `identity source ${missing} missing`, 'Unauthorized');
      const event = buildAuthorizerEvent(facts, handshake, requestId, now);
      const started = Date.now();
      const outcome = await invoke(authorizer, 'authorizer', event);
      const integrationLatency = Date.now() - started;
      if (!outcome.ok) {
        if (isUnauthorized(outcome.error)) {
          return rejectHandshake(socket, 401, 'authorizer: Unauthorized', 'Unauthorized', 'UnauthorizedException');
        }
        log('error', 'authorizer failed', { error: describeError(outcome.error), timedOut: outcome.timedOut });
        return rejectHandshake(socket, 500, 'authorizer failed', 'Internal server error', 'AuthorizerFailure');
      }
      const decision = evaluateAuthorizerResult(outcome.result, event.methodArn);
      if (!decision.ok) {
        if (decision.status === 500) log('error', 'authorizer returned an invalid result', { why: decision.why });
        return decision.status === 403
          ? rejectHandshake(socket, 403, decision.why, 'Forbidden', 'AccessDeniedException')
          : rejectHandshake(socket, 500, decision.why, 'Internal server error', 'AuthorizerConfigurationException');
      }
      facts.authorizer = { ...decision.context, principalId: decision.principalId, integrationLatency };
    }
    if (socket.destroyed) {
      log('debug', 'client left during authorization');
      return;
    }
    if (closing) return rejectHandshake(socket, 503, 'gateway stopping', 'Service Unavailable');

    let protocol: string | undefined;
    const connectRoute = routes.get('$connect');
    if (connectRoute) {
      const outcome = await invoke(connectRoute, '$connect', buildConnectEvent(facts, handshake, requestId, now));
      if (!outcome.ok) {
        log('error', '$connect handler failed', {
          connectionId: facts.connectionId,
          error: describeError(outcome.error),
          timedOut: outcome.timedOut,
        });
        return outcome.timedOut
          ? rejectHandshake(socket, 504, '$connect timed out', 'Endpoint request timed out')
          : rejectHandshake(socket, 500, '$connect failed', 'Internal server error');
      }
      const result = outcome.result;
      if (isRecord(result)) {
        const status = result.statusCode;
        if (typeof status === 'number' && (status < 200 || status > 299)) {
          const message = typeof result.body === 'string' && result.body !== '' ? result.body : statusText(status);
          return rejectHandshake(socket, status, `$connect returned ${status}`, message);
        }
        protocol = headerOf(result.headers, 'sec-websocket-protocol');
      }
    }

    // $connect accepted the connection: from here on the backend may hold a record of it, so any failure to open
    // the socket still runs $disconnect.
    if (closing || socket.destroyed) {
      if (!socket.destroyed) rejectHandshake(socket, 503, 'gateway stopping', 'Service Unavailable');
      await runDisconnect(facts, closing ? GO_AWAY : { code: 1006, reason: 'Connection closed abnormally' });
      return;
    }
    if (protocol !== undefined) selectedProtocol.set(req, protocol);
    let upgraded: WebSocket | undefined;
    wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = ws;
    });
    if (!upgraded) {
      await runDisconnect(facts, { code: 1006, reason: 'Connection closed abnormally' });
      return;
    }
    register(upgraded, facts, protocol);
  }

  function register(ws: WebSocket, facts: ConnectionFacts, protocol: string | undefined): void {
    let markClosed = () => {};
    const closed = new Promise<void>((resolve) => {
      markClosed = resolve;
    });
    const conn: Connection = {
      connectionId: facts.connectionId,
      connectedAt: facts.connectedAt,
      lastActiveAt: facts.connectedAt,
      identity: facts.identity,
      ...(facts.authorizer ? { authorizer: facts.authorizer } : {}),
      ...(protocol !== undefined ? { subprotocol: protocol } : {}),
      ws,
      facts,
      state: 'open',
      skipDisconnect: false,
      inflight: 0,
      waiting: [],
      closed,
      markClosed,
    };
    open.set(conn.connectionId, conn);
    live.add(conn);
    stats.connects++;
    conn.idleTimer = setTimeout(() => closeConnection(conn, GO_AWAY, GO_AWAY, 'idle timeout'), idleTimeoutMs);
    conn.maxTimer = setTimeout(
      () => closeConnection(conn, GO_AWAY, GO_AWAY, 'maximum connection duration'),
      maxConnectionMs,
    );
    ws.on('message', (data, isBinary) => onFrame(conn, toBuffer(data), isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      if (conn.state === 'open') {
        conn.state = 'closing';
        open.delete(conn.connectionId);
        conn.closeCause =
          err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
            ? { code: 1009, reason: 'Message too big' }
            : { code: 1002, reason: 'Protocol error' };
      }
      log('info', 'connection error', { connectionId: conn.connectionId, error: err.message });
    });
    ws.on('close', (code, reason) => onClosed(conn, code, reason.toString('utf8')));
    log('info', 'connected', { connectionId: conn.connectionId, sourceIp: facts.identity.sourceIp });
  }

  // ---- frames ---------------------------------------------------------------------------------------------------

  function touch(conn: Connection): void {
    conn.lastActiveAt = Date.now();
    conn.idleTimer?.refresh();
  }

  function sendFrame(conn: Connection, data: string | Buffer): boolean {
    if (conn.state !== 'open' || conn.ws.readyState !== WebSocket.OPEN) return false;
    if (typeof data === 'string') {
      conn.ws.send(data);
    } else {
      const text = decodeUtf8(data);
      if (text === undefined) conn.ws.send(data, { binary: true });
      else conn.ws.send(text);
    }
    stats.framesOut++;
    touch(conn);
    return true;
  }

  function sendErrorFrame(conn: Connection, message: string, requestId: string): void {
    stats.errorFrames++;
    // API Gateway's own formatting, spaces included.
    sendFrame(
      conn,
      `{"message": ${JSON.stringify(message)}, "connectionId":${JSON.stringify(conn.connectionId)}, "requestId":${JSON.stringify(requestId)}}`,
    );
  }

  function selectRoute(text: string): string | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    let value: unknown = parsed;
    for (const key of selectionPath) value = isRecord(value) ? value[key] : undefined;
    if (typeof value === 'string' && !value.startsWith('$') && routes.has(value)) return value;
    return routes.has('$default') ? '$default' : undefined;
  }

  function onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.state !== 'open') return;
    stats.framesIn++;
    touch(conn);
    const requestId = apiGatewayStyleId();
    const messageId = apiGatewayStyleId();
    const body = isBinary ? data.toString('base64') : data.toString('utf8');
    const routeKey = isBinary ? (routes.has('$default') ? '$default' : undefined) : selectRoute(body);
    const route = routeKey === undefined ? undefined : routes.get(routeKey);
    if (routeKey === undefined || !route) {
      sendErrorFrame(conn, 'Forbidden', requestId);
      return;
    }
    if (conn.inflight >= maxInflightPerConnection && conn.waiting.length >= maxQueuedPerConnection) {
      stats.queueFull++;
      sendFrame(conn, queueFullFrame(body, maxQueuedPerConnection));
      return;
    }
    const event = buildMessageEvent(conn.facts, routeKey, body, isBinary, { requestId, messageId });
    conn.waiting.push(async () => {
      const outcome = await invoke(route, routeKey, event);
      if (!outcome.ok) {
        log('error', 'route handler failed', {
          route: routeKey,
          connectionId: conn.connectionId,
          error: describeError(outcome.error),
          timedOut: outcome.timedOut,
        });
        sendErrorFrame(conn, outcome.timedOut ? 'Endpoint request timed out' : 'Internal server error', requestId);
        return;
      }
      if (!route.returnResponse) return;
      const frame = responseFrame(outcome.result);
      if (frame !== undefined) sendFrame(conn, frame);
    });
    startWaiting(conn);
  }

  /** Starts the connection's waiting invocations while it has free slots; frames still waiting when it closed are dropped. */
  function startWaiting(conn: Connection): void {
    if (conn.state === 'closed') return;
    while (conn.inflight < maxInflightPerConnection && conn.waiting.length > 0) {
      const next = conn.waiting.shift() as () => Promise<void>;
      conn.inflight++;
      track(
        next().finally(() => {
          conn.inflight--;
          startWaiting(conn);
        }),
      );
    }
  }

  // ---- closing --------------------------------------------------------------------------------------------------

  function clearTimers(conn: Connection): void {
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.maxTimer);
  }

  /** Server-initiated close: `frame` is what the client sees, `status` what $disconnect reports. */
  function closeConnection(conn: Connection, frame: CloseStatus, status: CloseStatus, why: string): void {
    if (conn.state !== 'open') return;
    conn.state = 'closing';
    conn.closeCause = status;
    open.delete(conn.connectionId);
    clearTimers(conn);
    log('info', 'closing connection', { connectionId: conn.connectionId, why, code: frame.code });
    conn.ws.close(frame.code, frame.reason);
    conn.graceTimer = setTimeout(() => conn.ws.terminate(), closeGraceMs);
  }

  function onClosed(conn: Connection, code: number, reason: string): void {
    if (conn.state === 'closed') return;
    conn.state = 'closed';
    open.delete(conn.connectionId);
    live.delete(conn);
    clearTimers(conn);
    clearTimeout(conn.graceTimer);
    stats.disconnects++;
    stats.droppedOnClose += conn.waiting.length;
    conn.waiting.length = 0;
    const status = conn.closeCause ?? clientCloseStatus(code, reason);
    log('info', 'disconnected', { connectionId: conn.connectionId, code: status.code, reason: status.reason });
    if (conn.skipDisconnect) {
      log('info', '$disconnect skipped (dropConnection)', { connectionId: conn.connectionId });
      conn.markClosed();
      return;
    }
    void track(runDisconnect(conn.facts, status)).finally(() => conn.markClosed());
  }

  async function runDisconnect(facts: ConnectionFacts, status: CloseStatus): Promise<void> {
    const route = routes.get('$disconnect');
    if (!route) return;
    stats.disconnectInvocations++;
    const outcome = await invoke(route, '$disconnect', buildDisconnectEvent(facts, status, apiGatewayStyleId()));
    if (!outcome.ok) {
      log('error', '$disconnect handler failed', {
        connectionId: facts.connectionId,
        error: describeError(outcome.error),
        timedOut: outcome.timedOut,
      });
    }
  }

  // ---- @connections ---------------------------------------------------------------------------------------------

  function awsError(res: ServerResponse, status: number, type: string, message: string): void {
    sendJson(res, status, { message }, { 'x-amzn-ErrorType': type });
  }

  async function handleConnectionsApi(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    const match = /^(?:\/([^/]+))?\/@connections\/([^/]+)$/.exec(pathname);
    if (!match) return false;
    const [, stagePrefix, rawId] = match;
    if (stagePrefix !== undefined && stagePrefix !== stage) return false;
    if (await refusedManagement(req, res)) return true;
    let connectionId: string;
    try {
      connectionId = decodeURIComponent(rawId ?? '');
    } catch {
      return false;
    }
    const method = req.method ?? 'GET';
    if (method === 'POST') {
      stats.posts++;
      const body = await readBody(req, postPayloadBytes);
      if (body === undefined) {
        stats.payloadTooLarge++;
        awsError(res, 413, 'PayloadTooLargeException', 'Request entity too large');
        return true;
      }
      const fault = faults.size > 0 ? faultFor(connectionId) : undefined;
      if (fault?.delayMs) {
        await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
        if (req.socket.destroyed || res.destroyed) {
          stats.faults++;
          return true;
        }
      }
      if (fault?.status !== undefined) {
        stats.faults++;
        if (fault.status === 410) gone(res);
        else awsError(res, fault.status, FAULT_TYPES[fault.status], 'injected fault');
        return true;
      }
      const conn = open.get(connectionId);
      if (!conn || !sendFrame(conn, body)) {
        gone(res);
        return true;
      }
      stats.postBytes += body.length;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '0' });
      res.end();
      return true;
    }
    if (method === 'GET') {
      stats.gets++;
      await drain(req);
      const conn = open.get(connectionId);
      if (!conn) {
        gone(res);
        return true;
      }
      // Member names as on the wire (jsonName in the service model), ISO 8601 dates.
      sendJson(res, 200, {
        connectedAt: new Date(conn.connectedAt).toISOString(),
        identity: { sourceIp: conn.identity.sourceIp, userAgent: conn.identity.userAgent ?? '' },
        lastActiveAt: new Date(conn.lastActiveAt).toISOString(),
      });
      return true;
    }
    if (method === 'DELETE') {
      stats.deletes++;
      await drain(req);
      const conn = open.get(connectionId);
      if (!conn) {
        gone(res);
        return true;
      }
      closeConnection(
        conn,
        { code: 1000, reason: '' },
        { code: 1000, reason: 'Connection Closed Normally' },
        'DeleteConnection',
      );
      res.writeHead(204);
      res.end();
      return true;
    }
    await drain(req);
    awsError(res, 405, 'MethodNotAllowedException', `Method ${method} not allowed`);
    return true;
  }

  function gone(res: ServerResponse): void {
    stats.gone++;
    awsError(res, 410, 'GoneException', 'Gone');
  }

  // ---- HTTP server ----------------------------------------------------------------------------------------------

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      for (const handler of [...httpHandlers]) {
        if (starting && !startingHandlers.has(handler)) continue;
        if (await handler(req, res)) return;
      }
      if (starting) {
        await drain(req);
        sendJson(res, 503, { message: 'Service Unavailable' }, retryAfter);
        return;
      }
      const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (await handleFaultsApi(req, res, pathname)) return;
      if (await handleConnectionsApi(req, res, pathname)) return;
      await drain(req);
      sendJson(res, 404, { message: 'Not Found' });
    } catch (err) {
      log('error', 'HTTP handler failed', { method: req.method, error: describeError(err) });
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
      else res.destroy();
    }
  }

  const server: Server = createServer((req, res) => {
    void track(handleRequest(req, res));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log('debug', 'socket error', { error: err.message }));
    void track(handleUpgrade(req, socket, head));
  });
  server.on('clientError', (_err, socket) => {
    if (!socket.destroyed) writeRawResponse(socket, 400, { message: 'Bad Request' });
  });

  const { port: actualPort, hostForUrl, url } = await listen(server, { port: options.port, host, name: 'gateway' });
  log('info', starting ? 'listening (503 until ready)' : 'listening', {
    url,
    wsUrl: `ws://${hostForUrl}:${actualPort}${wsPath}`,
    stage,
  });

  async function whenIdle(): Promise<void> {
    while (inflight.size > 0) await Promise.allSettled([...inflight]);
  }

  return {
    url,
    wsUrl: `ws://${hostForUrl}:${actualPort}${wsPath}`,
    connectionsEndpoint: `${url}/${stage}`,
    port: actualPort,
    stage,
    connections: open,
    stats,
    injectFaults: addFault,
    clearFaults: () => faults.clear(),
    addHttpHandler(handler, mount = {}) {
      httpHandlers.push(handler);
      if (mount.whileStarting === true) startingHandlers.add(handler);
      return () => {
        const i = httpHandlers.indexOf(handler);
        if (i >= 0) httpHandlers.splice(i, 1);
        startingHandlers.delete(handler);
      };
    },
    setReady() {
      starting = false;
    },
    send(connectionId, data) {
      const conn = open.get(connectionId);
      return conn ? sendFrame(conn, data) : false;
    },
    disconnect(connectionId) {
      const conn = open.get(connectionId);
      if (!conn) return false;
      closeConnection(
        conn,
        { code: 1000, reason: '' },
        { code: 1000, reason: 'Connection Closed Normally' },
        'disconnect',
      );
      return true;
    },
    dropConnection(connectionId, dropOptions) {
      const conn = open.get(connectionId);
      if (!conn) return false;
      conn.state = 'closing';
      conn.skipDisconnect = dropOptions?.skipDisconnect ?? false;
      conn.closeCause = { code: 1006, reason: 'Connection closed abnormally' };
      open.delete(connectionId);
      clearTimers(conn);
      log('info', 'dropping connection', { connectionId, skipDisconnect: conn.skipDisconnect });
      conn.ws.terminate();
      return true;
    },
    whenIdle,
    close() {
      closePromise ??= (async () => {
        closing = true;
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        for (const conn of [...live]) closeConnection(conn, GO_AWAY, GO_AWAY, 'gateway stopping');
        await Promise.all([...live].map((c) => c.closed));
        await whenIdle();
        wss.close();
        server.closeAllConnections();
        await serverClosed;
        log('info', 'stopped', {});
      })();
      return closePromise;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers (pure)

function parseSelectionExpression(expression: string): string[] {
  const prefix = '$request.body.';
  if (!expression.startsWith(prefix) || expression.length === prefix.length) {
    throw new Error(`unsupported route selection expression ${expression}: only ${prefix}<path> is supported`);
  }
  return expression.slice(prefix.length).split('.');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

function isUnauthorized(err: unknown): boolean {
  return err === 'Unauthorized' || (err instanceof Error && err.message === 'Unauthorized');
}

function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

function normalizeIp(address: string | undefined): string {
  if (!address) return '127.0.0.1';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** Case-insensitive header lookup in a Lambda result's `headers`. */
function headerOf(headers: unknown, name: string): string | undefined {
  if (!isRecord(headers)) return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
      return String(v);
    }
  }
  return undefined;
}

function looksLikeWebSocketUpgrade(req: IncomingMessage): boolean {
  return (
    req.method === 'GET' &&
    (headerValue(req, 'upgrade') ?? '').toLowerCase() === 'websocket' &&
    typeof req.headers['sec-websocket-key'] === 'string'
  );
}

/** Headers as received (original case) plus what API Gateway adds; query string parameters, single and multi. */
function readHandshake(req: IncomingMessage, url: URL, sourceIp: string, port: number, now: number): HandshakeRequest {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    headers[name] = value;
    const list = multiValueHeaders[name] ?? [];
    list.push(value);
    multiValueHeaders[name] = list;
  }
  const add = (name: string, value: string) => {
    const existing = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
    if (existing) return;
    headers[name] = value;
    multiValueHeaders[name] = [value];
  };
  add('X-Forwarded-For', sourceIp);
  add('X-Forwarded-Port', String(port));
  add('X-Forwarded-Proto', 'http');
  add('X-Amzn-Trace-Id', traceId(now));
  const queryStringParameters: Record<string, string> = {};
  const multiValueQueryStringParameters: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    queryStringParameters[k] = v;
    const list = multiValueQueryStringParameters[k] ?? [];
    list.push(v);
    multiValueQueryStringParameters[k] = list;
  }
  return { headers, multiValueHeaders, queryStringParameters, multiValueQueryStringParameters };
}

/** The first identity source that is missing or empty, if any. */
function missingIdentitySource(sources: readonly string[], request: HandshakeRequest): string | undefined {
  for (const source of sources) {
    let value: string | undefined;
    if (source.startsWith('route.request.header.')) {
      const name = source.slice('route.request.header.'.length).toLowerCase();
      const key = Object.keys(request.headers).find((k) => k.toLowerCase() === name);
      value = key === undefined ? undefined : request.headers[key];
    } else if (source.startsWith('route.request.querystring.')) {
      value = request.queryStringParameters[source.slice('route.request.querystring.'.length)];
    } else {
      continue; // stage variables and context variables are always present here
    }
    if (value === undefined || value === '') return source;
  }
  return undefined;
}

function globToRegExp(glob: string, flags = ''): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${escaped}$`, flags);
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined ? [] : [value];
}

/** Validates an authorizer result and evaluates its policy for `methodArn`, as API Gateway does. */
export function evaluateAuthorizerResult(result: unknown, methodArn: string): AuthDecision {
  if (!isRecord(result)) return { ok: false, status: 500, why: 'authorizer result is not an object' };
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(result));
  } catch {
    return { ok: false, status: 500, why: 'authorizer result is not serializable' };
  }
  if (size > 8192) return { ok: false, status: 500, why: `authorizer result is ${size} bytes (limit 8 KB)` };
  const principalId = result.principalId;
  if (typeof principalId !== 'string') return { ok: false, status: 500, why: 'principalId is missing' };
  const policy = result.policyDocument;
  if (!isRecord(policy)) return { ok: false, status: 500, why: 'policyDocument is missing' };
  const statements = asList(policy.Statement);
  if (statements.length === 0) return { ok: false, status: 500, why: 'policyDocument has no Statement' };

  const context: Record<string, string | null> = {};
  if (result.context !== undefined && result.context !== null) {
    if (!isRecord(result.context)) return { ok: false, status: 500, why: 'context is not an object' };
    for (const [key, value] of Object.entries(result.context)) {
      if (value === undefined) continue;
      if (value === null) context[key] = null;
      else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        context[key] = String(value);
      } else {
        return { ok: false, status: 500, why: `context.${key} is not a string, number or boolean` };
      }
    }
  }

  let allowed = false;
  for (const statement of statements) {
    if (!isRecord(statement)) return { ok: false, status: 500, why: 'policy statement is not an object' };
    const effect = statement.Effect;
    if (effect !== 'Allow' && effect !== 'Deny') return { ok: false, status: 500, why: 'statement Effect is invalid' };
    const actions = asList(statement.Action);
    const resources = asList(statement.Resource);
    const actionMatches = actions.some((a) => typeof a === 'string' && globToRegExp(a, 'i').test('execute-api:Invoke'));
    const resourceMatches = resources.some((r) => typeof r === 'string' && globToRegExp(r).test(methodArn));
    if (!actionMatches || !resourceMatches) continue;
    if (effect === 'Deny') return { ok: false, status: 403, why: 'policy denies $connect' };
    allowed = true;
  }
  if (!allowed) return { ok: false, status: 403, why: 'policy does not allow $connect' };
  return { ok: true, principalId, context };
}

const CLOSE_REASONS: Record<number, string> = {
  1000: 'Connection Closed Normally',
  1001: 'Going away',
  1005: 'Client-side close frame status not set',
  1006: 'Connection closed abnormally',
  1009: 'Message too big',
};

function clientCloseStatus(code: number, reason: string): CloseStatus {
  return { code, reason: reason !== '' ? reason : (CLOSE_REASONS[code] ?? 'Connection closed') };
}

/** The frame a two-way route sends back: a string result, or a result's `body`. */
function responseFrame(result: unknown): string | Buffer | undefined {
  if (typeof result === 'string') return result;
  if (!isRecord(result) || typeof result.body !== 'string') return undefined;
  return result.isBase64Encoded === true ? Buffer.from(result.body, 'base64') : result.body;
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** An HTTP response written on a raw socket (a refused upgrade), then the socket is closed. */
function writeRawResponse(socket: Duplex, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${statusText(status)}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(text)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
}
