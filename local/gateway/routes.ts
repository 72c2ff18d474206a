/**
 * Route dispatch of a connection's data frames: route selection on `$request.body.<path>` with `$default` (binary
 * frames go to `$default`), `Forbidden` when nothing matches, the per-connection queue ("Fair share" in index.ts:
 * at most `maxInflightPerConnection` invocations running, at most `maxQueuedPerConnection` waiting, more answered
 * RATE_LIMITED by throttle.ts), error frames for failed invocations and two-way route responses.
 */
import { apiGatewayStyleId, buildMessageEvent } from '../lambda-events.ts';
import { closeConnection, sendErrorFrame, sendFrame, touch } from './connection.ts';
import { invoke, track } from './invoke.ts';
import { queueFullFrame } from './throttle.ts';
import type { Connection, GatewayRoute, GatewayState } from './types.ts';
import { describeError, isRecord } from './util.ts';

/**
 * The route key for a frame: the value at `selectionPath` of a JSON text frame when a route has that key (keys
 * starting with `$` are never selected this way), else `$default` when there is one, else undefined.
 */
export function selectRoute(
  routes: ReadonlyMap<string, unknown>,
  selectionPath: readonly string[],
  body: string,
  isBinary: boolean,
): string | undefined {
  const fallback = routes.has('$default') ? '$default' : undefined;
  if (isBinary) return fallback;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    value = undefined;
  }
  for (const key of selectionPath) value = isRecord(value) ? value[key] : undefined;
  if (typeof value === 'string' && !value.startsWith('$') && routes.has(value)) return value;
  return fallback;
}

/** The frame a two-way route sends back: a string result, or a result's `body`. */
export function responseFrame(result: unknown): string | Buffer | undefined {
  if (typeof result === 'string') return result;
  if (!isRecord(result) || typeof result.body !== 'string') return undefined;
  return result.isBase64Encoded === true ? Buffer.from(result.body, 'base64') : result.body;
}

/** A data frame from the client: select its route and queue its invocation (or answer Forbidden / RATE_LIMITED). */
export function onFrame(gw: GatewayState, conn: Connection, data: Buffer, isBinary: boolean): void {
  if (conn.state !== 'open') return;
  gw.stats.framesIn++;
  if (isBinary) {
    // "API Gateway WebSocket APIs don't currently support binary frames in incoming message payloads. If a client app
    // sends a binary frame, API Gateway rejects it and disconnects the client with code 1003" (Developer Guide, "Binary
    // media types for WebSocket APIs"). Until 2026-12-04 the stand-in routed it to $default, base64-encoded.
    const unsupported = { code: 1003, reason: 'Binary frames are not supported' };
    closeConnection(gw, conn, unsupported, unsupported, 'binary frame');
    return;
  }
  touch(conn);
  const requestId = apiGatewayStyleId();
  const messageId = apiGatewayStyleId();
  const body = isBinary ? data.toString('base64') : data.toString('utf8');
  const routeKey = selectRoute(gw.routes, gw.config.selectionPath, body, isBinary);
  const route = routeKey === undefined ? undefined : gw.routes.get(routeKey);
  if (routeKey === undefined || !route) {
    sendErrorFrame(gw, conn, 'Forbidden', requestId);
    return;
  }
  const { maxInflightPerConnection, maxQueuedPerConnection } = gw.config;
  if (conn.inflight >= maxInflightPerConnection && conn.waiting.length >= maxQueuedPerConnection) {
    gw.stats.queueFull++;
    sendFrame(gw, conn, queueFullFrame(body, maxQueuedPerConnection));
    return;
  }
  const event = buildMessageEvent(conn.facts, routeKey, body, isBinary, { requestId, messageId });
  conn.waiting.push(() => runRoute(gw, conn, route, routeKey, event, requestId));
  startWaiting(gw, conn);
}

/** One route invocation; its failure becomes an error frame, a two-way route's result a response frame. */
async function runRoute(
  gw: GatewayState,
  conn: Connection,
  route: GatewayRoute,
  routeKey: string,
  event: unknown,
  requestId: string,
): Promise<void> {
  const outcome = await invoke(gw, route, routeKey, event);
  if (!outcome.ok) {
    gw.log('error', 'route handler failed', {
      route: routeKey,
      connectionId: conn.connectionId,
      error: describeError(outcome.error),
      timedOut: outcome.timedOut,
    });
    sendErrorFrame(gw, conn, outcome.timedOut ? 'Endpoint request timed out' : 'Internal server error', requestId);
    return;
  }
  if (!route.returnResponse) return;
  const frame = responseFrame(outcome.result);
  if (frame !== undefined) sendFrame(gw, conn, frame);
}

/** Starts the connection's waiting invocations while it has free slots; frames still waiting when it closed are dropped. */
function startWaiting(gw: GatewayState, conn: Connection): void {
  if (conn.state === 'closed') return;
  while (conn.inflight < gw.config.maxInflightPerConnection && conn.waiting.length > 0) {
    const next = conn.waiting.shift() as () => Promise<void>;
    conn.inflight++;
    track(
      gw,
      next().finally(() => {
        conn.inflight--;
        startWaiting(gw, conn);
      }),
    );
  }
}
