/**
 * The signed local management endpoints: the `@connections` Management API (POST/GET/DELETE with AWS's wire format:
 * 410 GoneException, 413 PayloadTooLargeException, also under `/{stage}/@connections/…`), so the real
 * `@aws-sdk/client-apigatewaymanagementapi` client works against it, and `/local/faults` (faults.ts). Both answer
 * only SigV4-signed requests without an `Origin` (management-auth.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { drain, readBody } from '../http-util.ts';
import { closeConnection, DELETE_FRAME, DELETE_STATUS, sendFrame } from './connection.ts';
import { addFault, FAULT_TYPES, faultFor } from './faults.ts';
import { refuseManagementRequest } from './management-auth.ts';
import type { FaultSpec, GatewayState } from './types.ts';
import { awsError, sendJson } from './util.ts';

/**
 * The raw (still percent-encoded) connection id of an `@connections/{id}` path, with this stage's prefix or none;
 * undefined when the path is not one.
 */
export function connectionsPathId(pathname: string, stage: string): string | undefined {
  const match = /^(?:\/([^/]+))?\/@connections\/([^/]+)$/.exec(pathname);
  if (!match) return undefined;
  const [, stagePrefix, rawId] = match;
  if (stagePrefix !== undefined && stagePrefix !== stage) return undefined;
  return rawId ?? '';
}

function decodeId(rawId: string): string | undefined {
  try {
    return decodeURIComponent(rawId);
  } catch {
    return undefined;
  }
}

/** Refuses (403, and true) a management request that is not SigV4-signed or comes from a web page. */
async function refusedManagement(gw: GatewayState, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const refusal = refuseManagementRequest(req);
  if (refusal === undefined) return false;
  gw.stats.managementRefused++;
  gw.log('warn', 'management request refused', { method: req.method, why: refusal.type });
  await drain(req);
  awsError(res, refusal.status, refusal.type, refusal.message);
  return true;
}

/** `POST /local/faults` adds a fault (JSON `FaultSpec`), `DELETE` clears them; only with `faultInjection`. */
export async function handleFaultsApi(
  gw: GatewayState,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
): Promise<boolean> {
  if (!gw.config.faultInjection || pathname !== '/local/faults') return false;
  if (await refusedManagement(gw, req, res)) return true;
  if (req.method === 'DELETE') {
    await drain(req);
    gw.faults.clear();
    res.writeHead(204);
    res.end();
    return true;
  }
  const body = await readBody(req, 64 * 1024);
  try {
    addFault(gw.faults, gw.config.faultInjection, JSON.parse(body?.toString('utf8') ?? '') as FaultSpec);
    sendJson(res, 200, { faults: gw.faults.size });
  } catch (err) {
    sendJson(res, 400, { message: err instanceof Error ? err.message : 'bad fault' });
  }
  return true;
}

/** `@connections/{id}`: true when the request was answered (it was such a path). */
export async function handleConnectionsApi(
  gw: GatewayState,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
): Promise<boolean> {
  const rawId = connectionsPathId(pathname, gw.config.stage);
  if (rawId === undefined) return false;
  if (await refusedManagement(gw, req, res)) return true;
  const connectionId = decodeId(rawId);
  if (connectionId === undefined) return false;
  const method = req.method ?? 'GET';
  if (method === 'POST') await postToConnection(gw, req, res, connectionId);
  else if (method === 'GET') await getConnection(gw, req, res, connectionId);
  else if (method === 'DELETE') await deleteConnection(gw, req, res, connectionId);
  else {
    await drain(req);
    awsError(res, 405, 'MethodNotAllowedException', `Method ${method} not allowed`);
  }
  return true;
}

async function postToConnection(
  gw: GatewayState,
  req: IncomingMessage,
  res: ServerResponse,
  connectionId: string,
): Promise<void> {
  gw.stats.posts++;
  const body = await readBody(req, gw.config.postPayloadBytes);
  if (body === undefined) {
    gw.stats.payloadTooLarge++;
    awsError(res, 413, 'PayloadTooLargeException', 'Request entity too large');
    return;
  }
  const fault = gw.faults.size > 0 ? faultFor(gw.faults, connectionId) : undefined;
  if (fault?.delayMs) {
    await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (req.socket.destroyed || res.destroyed) {
      gw.stats.faults++;
      return;
    }
  }
  if (fault?.status !== undefined) {
    gw.stats.faults++;
    if (fault.status === 410) gone(gw, res);
    else awsError(res, fault.status, FAULT_TYPES[fault.status], 'injected fault');
    return;
  }
  const conn = gw.open.get(connectionId);
  if (conn?.state === 'open' && conn.ws.bufferedAmount >= gw.config.clientBufferBytes) {
    // A client that does not read: API Gateway refuses posts once its buffer for the client is full.
    gw.stats.clientBufferFull++;
    awsError(res, 429, 'LimitExceededException', 'The WebSocket client side buffer is full');
    return;
  }
  if (!conn || !sendFrame(gw, conn, body)) {
    gone(gw, res);
    return;
  }
  gw.stats.postBytes += body.length;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '0' });
  res.end();
}

async function getConnection(
  gw: GatewayState,
  req: IncomingMessage,
  res: ServerResponse,
  connectionId: string,
): Promise<void> {
  gw.stats.gets++;
  await drain(req);
  const conn = gw.open.get(connectionId);
  if (!conn) {
    gone(gw, res);
    return;
  }
  // Member names as on the wire (jsonName in the service model), ISO 8601 dates.
  sendJson(res, 200, {
    connectedAt: new Date(conn.connectedAt).toISOString(),
    identity: { sourceIp: conn.identity.sourceIp, userAgent: conn.identity.userAgent ?? '' },
    lastActiveAt: new Date(conn.lastActiveAt).toISOString(),
  });
}

async function deleteConnection(
  gw: GatewayState,
  req: IncomingMessage,
  res: ServerResponse,
  connectionId: string,
): Promise<void> {
  gw.stats.deletes++;
  await drain(req);
  const conn = gw.open.get(connectionId);
  if (!conn) {
    gone(gw, res);
    return;
  }
  closeConnection(gw, conn, DELETE_FRAME, DELETE_STATUS, 'DeleteConnection');
  res.writeHead(204);
  res.end();
}

function gone(gw: GatewayState, res: ServerResponse): void {
  gw.stats.gone++;
  awsError(res, 410, 'GoneException', 'Gone');
}
