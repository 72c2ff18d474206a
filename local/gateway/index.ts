/**
 * Local stand-in for an API Gateway WebSocket API (one stage) and its `@connections` Management API: `startGateway`
 * wires the modules of this folder together around one `GatewayState` (types.ts) and serves them on one HTTP server.
 *
 *  - handshake.ts: readiness (503 until ready), the REQUEST authorizer (authorizer.ts), $connect, the upgrade;
 *  - connection.ts: a connection's lifecycle (idle / 2 h timers, sending, closing, $disconnect once);
 *  - routes.ts: route selection, the per-connection queue (throttle.ts), error and response frames;
 *  - management-api.ts: `@connections` and `/local/faults`, signed only (management-auth.ts); faults.ts;
 *  - invoke.ts: invocations with the integration timeout, and the work `whenIdle`/`close` wait for;
 *  - config.ts (defaults), manifest-routes.ts (wiring from the manifest), util.ts (HTTP answers).
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
 *    (local/function-host.ts) on the machine's cores, so each connection has at most `maxInflightPerConnection`
 *    (default 8) route invocations running; its further frames wait in arrival order. Without it one connection's
 *    thousand queued frames would sit ahead of every other connection's next frame in the worker. At most
 *    `maxQueuedPerConnection` (default 64) frames wait per connection: a frame over that is answered with a
 *    `RATE_LIMITED` error frame at once (throttle.ts), and a connection's waiting frames are dropped when it closes
 *    (frames already running finish).
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
 * header, as AWS SDK clients send them (management-auth.ts): any web page could reach them otherwise.
 *
 * Fault injection (local only, for tests and the benchmark, only with the `faultInjection` option):
 * `gateway.injectFaults({ status, rate, count, delayMs, connectionIds })`, or a signed `POST /local/faults` with the
 * same JSON (`DELETE /local/faults` clears), makes `@connections`
 * posts answer 410 GoneException, 429 LimitExceededException or 500 InternalServerErrorException instead of
 * delivering, and/or holds them `delayMs` first. A held post whose caller went away meanwhile (a crashed function)
 * is dropped, as a request that never completed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { drain, listen } from '../http-util.ts';
import { defaultLogger, resolveConfig } from './config.ts';
import { closeConnection, DELETE_FRAME, DELETE_STATUS, dropConnection, GO_AWAY, sendFrame } from './connection.ts';
import { addFault } from './faults.ts';
import { createWebSocketServer, handleUpgrade, RETRY_AFTER } from './handshake.ts';
import { track, whenIdle } from './invoke.ts';
import { handleConnectionsApi, handleFaultsApi } from './management-api.ts';
import type { Gateway, GatewayOptions, GatewayState, GatewayStats } from './types.ts';
import { describeError, sendJson, writeRawResponse } from './util.ts';

export { type AuthDecision, evaluateAuthorizerResult } from './authorizer.ts';
export { websocketRoutesFromManifest } from './manifest-routes.ts';
export type {
  ConnectionInfo,
  FaultSpec,
  Gateway,
  GatewayAuthorizer,
  GatewayFunction,
  GatewayLogger,
  GatewayLogLevel,
  GatewayOptions,
  GatewayRoute,
  GatewayStats,
  HttpHandler,
} from './types.ts';

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const gw = createState(options);
  const server: Server = createServer((req, res) => {
    void track(gw, handleRequest(gw, req, res));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => gw.log('debug', 'socket error', { error: err.message }));
    void track(gw, handleUpgrade(gw, req, socket, head));
  });
  server.on('clientError', (_err, socket) => {
    if (!socket.destroyed) writeRawResponse(socket, 400, { message: 'Bad Request' });
  });

  const { host, wsPath, stage } = gw.config;
  const { port, hostForUrl, url } = await listen(server, { port: options.port, host, name: 'gateway' });
  gw.port = port;
  const wsUrl = `ws://${hostForUrl}:${port}${wsPath}`;
  gw.log('info', gw.starting ? 'listening (503 until ready)' : 'listening', { url, wsUrl, stage });
  return gatewayHandle(gw, server, { url, wsUrl });
}

function createState(options: GatewayOptions): GatewayState {
  const config = resolveConfig(options);
  const selectedProtocol = new WeakMap<IncomingMessage, string>();
  return {
    config,
    log: options.log ?? defaultLogger,
    stats: newStats(),
    routes: new Map(Object.entries(options.routes)),
    ...(options.authorizer ? { authorizer: options.authorizer } : {}),
    open: new Map(),
    live: new Set(),
    usedIds: new Set(),
    inflight: new Set(),
    faults: new Set(),
    wss: createWebSocketServer(config.frameBytes, selectedProtocol),
    selectedProtocol,
    httpHandlers: options.httpHandler ? [options.httpHandler] : [],
    startingHandlers: new Set(),
    starting: options.starting ?? false,
    closing: false,
    port: 0,
  };
}

function newStats(): GatewayStats {
  return {
    handshakes: 0,
    connects: 0,
    rejectedHandshakes: 0,
    rejectedHandshakesByStatus: {},
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
    clientBufferFull: 0,
    disconnects: 0,
    disconnectInvocations: 0,
    faults: 0,
    queueFull: 0,
    droppedOnClose: 0,
    managementRefused: 0,
  };
}

/** A plain HTTP request: mounted handlers first, then (once ready) `/local/faults` and `@connections`, else 404. */
async function handleRequest(gw: GatewayState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    for (const handler of [...gw.httpHandlers]) {
      if (gw.starting && !gw.startingHandlers.has(handler)) continue;
      if (await handler(req, res)) return;
    }
    if (gw.starting) {
      await drain(req);
      sendJson(res, 503, { message: 'Service Unavailable' }, RETRY_AFTER);
      return;
    }
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (await handleFaultsApi(gw, req, res, pathname)) return;
    if (await handleConnectionsApi(gw, req, res, pathname)) return;
    await drain(req);
    sendJson(res, 404, { message: 'Not Found' });
  } catch (err) {
    gw.log('error', 'HTTP handler failed', { method: req.method, error: describeError(err) });
    if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
    else res.destroy();
  }
}

/** Stop accepting, close every socket with 1001, await their $disconnect and all other work, close the server. */
async function shutDown(gw: GatewayState, server: Server): Promise<void> {
  gw.closing = true;
  const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  for (const conn of [...gw.live]) closeConnection(gw, conn, GO_AWAY, GO_AWAY, 'gateway stopping');
  await Promise.all([...gw.live].map((c) => c.closed));
  await whenIdle(gw);
  gw.wss.close();
  server.closeAllConnections();
  await serverClosed;
  gw.log('info', 'stopped', {});
}

function gatewayHandle(gw: GatewayState, server: Server, urls: { url: string; wsUrl: string }): Gateway {
  let closePromise: Promise<void> | undefined;
  return {
    url: urls.url,
    wsUrl: urls.wsUrl,
    connectionsEndpoint: `${urls.url}/${gw.config.stage}`,
    port: gw.port,
    stage: gw.config.stage,
    connections: gw.open,
    stats: gw.stats,
    injectFaults: (spec) => addFault(gw.faults, gw.config.faultInjection, spec),
    clearFaults: () => gw.faults.clear(),
    addHttpHandler(handler, mount = {}) {
      gw.httpHandlers.push(handler);
      if (mount.whileStarting === true) gw.startingHandlers.add(handler);
      return () => {
        const i = gw.httpHandlers.indexOf(handler);
        if (i >= 0) gw.httpHandlers.splice(i, 1);
        gw.startingHandlers.delete(handler);
      };
    },
    setReady() {
      gw.starting = false;
    },
    send(connectionId, data) {
      const conn = gw.open.get(connectionId);
      return conn ? sendFrame(gw, conn, data) : false;
    },
    disconnect(connectionId) {
      const conn = gw.open.get(connectionId);
      if (!conn) return false;
      closeConnection(gw, conn, DELETE_FRAME, DELETE_STATUS, 'disconnect');
      return true;
    },
    dropConnection(connectionId, dropOptions) {
      const conn = gw.open.get(connectionId);
      if (!conn) return false;
      dropConnection(gw, conn, dropOptions?.skipDisconnect ?? false);
      return true;
    },
    whenIdle: () => whenIdle(gw),
    close() {
      closePromise ??= shutDown(gw, server);
      return closePromise;
    },
  };
}
