/**
 * A connection's lifecycle once its handshake completed: registration, the idle timeout and the 2-hour maximum
 * (close 1001 "Going away"), sending data frames and API Gateway's error frames, server-initiated closes
 * (DeleteConnection, `disconnect`, `dropConnection`, shutdown) with a grace period, and $disconnect once per
 * connection whatever closed it.
 */
import { isUtf8 } from 'node:buffer';
import { WebSocket } from 'ws';
import { apiGatewayStyleId, buildDisconnectEvent, type ConnectionFacts } from '../lambda-events.ts';
import { invoke, track } from './invoke.ts';
import type { CloseStatus, Connection, GatewayState } from './types.ts';
import { describeError } from './util.ts';

export const GO_AWAY: CloseStatus = { code: 1001, reason: 'Going away' };
/** What a client sees when DeleteConnection (or `disconnect`) closes its connection. */
export const DELETE_FRAME: CloseStatus = { code: 1000, reason: '' };
/** What $disconnect reports for it (what API Gateway logs). */
export const DELETE_STATUS: CloseStatus = { code: 1000, reason: 'Connection Closed Normally' };
export const ABNORMAL: CloseStatus = { code: 1006, reason: 'Connection closed abnormally' };

export type FrameListener = (conn: Connection, data: Buffer, isBinary: boolean) => void;

/** Records an upgraded socket as an open connection, starts its timers and hands its frames to `onFrame`. */
export function register(
  gw: GatewayState,
  ws: WebSocket,
  facts: ConnectionFacts,
  protocol: string | undefined,
  onFrame: FrameListener,
): Connection {
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
  gw.open.set(conn.connectionId, conn);
  gw.live.add(conn);
  gw.stats.connects++;
  startTimers(gw, conn);
  ws.on('message', (data, isBinary) => onFrame(conn, toBuffer(data), isBinary));
  ws.on('error', (err: Error & { code?: string }) => onSocketError(gw, conn, err));
  ws.on('close', (code, reason) => onClosed(gw, conn, code, reason.toString('utf8')));
  gw.log('info', 'connected', { connectionId: conn.connectionId, sourceIp: facts.identity.sourceIp });
  return conn;
}

function startTimers(gw: GatewayState, conn: Connection): void {
  const { idleTimeoutMs, maxConnectionMs } = gw.config;
  conn.idleTimer = setTimeout(() => closeConnection(gw, conn, GO_AWAY, GO_AWAY, 'idle timeout'), idleTimeoutMs);
  conn.maxTimer = setTimeout(
    () => closeConnection(gw, conn, GO_AWAY, GO_AWAY, 'maximum connection duration'),
    maxConnectionMs,
  );
}

function clearTimers(conn: Connection): void {
  clearTimeout(conn.idleTimer);
  clearTimeout(conn.maxTimer);
}

function onSocketError(gw: GatewayState, conn: Connection, err: Error & { code?: string }): void {
  if (conn.state === 'open') {
    conn.state = 'closing';
    gw.open.delete(conn.connectionId);
    conn.closeCause =
      err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
        ? { code: 1009, reason: 'Message too big' }
        : { code: 1002, reason: 'Protocol error' };
  }
  gw.log('info', 'connection error', { connectionId: conn.connectionId, error: err.message });
}

/** A data frame went through: the connection is active (its idle timer starts again). */
export function touch(conn: Connection): void {
  conn.lastActiveAt = Date.now();
  conn.idleTimer?.refresh();
}

/** Sends a data frame (valid UTF-8 as text, anything else as binary). False if the connection is not open. */
export function sendFrame(gw: GatewayState, conn: Connection, data: string | Buffer): boolean {
  if (conn.state !== 'open' || conn.ws.readyState !== WebSocket.OPEN) return false;
  // A posted body is sent as it came, without decoding and encoding it again: as text when it is valid UTF-8.
  conn.ws.send(data, { binary: typeof data !== 'string' && !isUtf8(data) });
  gw.stats.framesOut++;
  touch(conn);
  return true;
}

/** API Gateway's own error frame (`Forbidden`, `Internal server error`, `Endpoint request timed out`). */
export function sendErrorFrame(gw: GatewayState, conn: Connection, message: string, requestId: string): void {
  gw.stats.errorFrames++;
  sendFrame(gw, conn, apiGatewayErrorFrame(message, conn.connectionId, requestId));
}

/** API Gateway's formatting, spaces included. */
export function apiGatewayErrorFrame(message: string, connectionId: string, requestId: string): string {
  return `{"message": ${JSON.stringify(message)}, "connectionId":${JSON.stringify(connectionId)}, "requestId":${JSON.stringify(requestId)}}`;
}

/** Server-initiated close: `frame` is what the client sees, `status` what $disconnect reports. */
export function closeConnection(
  gw: GatewayState,
  conn: Connection,
  frame: CloseStatus,
  status: CloseStatus,
  why: string,
): void {
  if (conn.state !== 'open') return;
  conn.state = 'closing';
  conn.closeCause = status;
  gw.open.delete(conn.connectionId);
  clearTimers(conn);
  gw.log('info', 'closing connection', { connectionId: conn.connectionId, why, code: frame.code });
  conn.ws.close(frame.code, frame.reason);
  conn.graceTimer = setTimeout(() => conn.ws.terminate(), gw.config.closeGraceMs);
}

/** Cuts a connection (the client sees 1006); with `skipDisconnect`, its $disconnect is lost on purpose. */
export function dropConnection(gw: GatewayState, conn: Connection, skipDisconnect: boolean): void {
  conn.state = 'closing';
  conn.skipDisconnect = skipDisconnect;
  conn.closeCause = ABNORMAL;
  gw.open.delete(conn.connectionId);
  clearTimers(conn);
  gw.log('info', 'dropping connection', { connectionId: conn.connectionId, skipDisconnect: conn.skipDisconnect });
  conn.ws.terminate();
}

function onClosed(gw: GatewayState, conn: Connection, code: number, reason: string): void {
  if (conn.state === 'closed') return;
  conn.state = 'closed';
  gw.open.delete(conn.connectionId);
  gw.live.delete(conn);
  clearTimers(conn);
  clearTimeout(conn.graceTimer);
  gw.stats.disconnects++;
  gw.stats.droppedOnClose += conn.waiting.length;
  conn.waiting.length = 0;
  const status = conn.closeCause ?? clientCloseStatus(code, reason);
  gw.log('info', 'disconnected', { connectionId: conn.connectionId, code: status.code, reason: status.reason });
  if (conn.skipDisconnect) {
    gw.log('info', '$disconnect skipped (dropConnection)', { connectionId: conn.connectionId });
    conn.markClosed();
    return;
  }
  void track(gw, runDisconnect(gw, conn.facts, status)).finally(() => conn.markClosed());
}

/** Invokes $disconnect (if routed) for a connection that closed with `status`; a failure is logged. */
export async function runDisconnect(gw: GatewayState, facts: ConnectionFacts, status: CloseStatus): Promise<void> {
  const route = gw.routes.get('$disconnect');
  if (!route) return;
  gw.stats.disconnectInvocations++;
  const outcome = await invoke(gw, route, '$disconnect', buildDisconnectEvent(facts, status, apiGatewayStyleId()));
  if (!outcome.ok) {
    gw.log('error', '$disconnect handler failed', {
      connectionId: facts.connectionId,
      error: describeError(outcome.error),
      timedOut: outcome.timedOut,
    });
  }
}

const CLOSE_REASONS: Record<number, string> = {
  1000: 'Connection Closed Normally',
  1001: 'Going away',
  1005: 'Client-side close frame status not set',
  1006: 'Connection closed abnormally',
  1009: 'Message too big',
};

/** The status $disconnect reports for a close the client started (its reason, or API Gateway's text for the code). */
export function clientCloseStatus(code: number, reason: string): CloseStatus {
  return { code, reason: reason !== '' ? reason : (CLOSE_REASONS[code] ?? 'Connection closed') };
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
