/**
 * The WebSocket handshake, as API Gateway runs it before accepting an upgrade: readiness (503 until ready or while
 * stopping), the REQUEST authorizer (identity sources, then its decision: authorizer.ts), $connect (its status
 * decides, its `Sec-WebSocket-Protocol` header selects the subprotocol), then the upgrade itself; and the refusals
 * written on the raw socket. Logs never contain query strings or the Sec-WebSocket-Protocol header.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { awsLimits } from '../../lambdas/core/limits.ts';
import {
  apiGatewayStyleId,
  buildAuthorizerEvent,
  buildConnectEvent,
  type ConnectionFacts,
  type HandshakeRequest,
  traceId,
} from '../lambda-events.ts';
import { evaluateAuthorizerResult, isUnauthorized, missingIdentitySource } from './authorizer.ts';
import { ABNORMAL, GO_AWAY, register, runDisconnect } from './connection.ts';
import { invoke } from './invoke.ts';
import { onFrame } from './routes.ts';
import type { GatewayAuthorizer, GatewayState } from './types.ts';
import { describeError, headerValue, isRecord, statusText, writeRawResponse } from './util.ts';

/** `Retry-After` sent with the 503 answered while starting. */
export const RETRY_AFTER = { 'Retry-After': '1' };

/** The `ws` server that completes accepted upgrades, offering the subprotocol $connect selected for each request. */
export function createWebSocketServer(frameBytes: number, selectedProtocol: WeakMap<IncomingMessage, string>) {
  return new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: frameBytes,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => selectedProtocol.get(req) ?? false,
  });
}

function rejectHandshake(
  gw: GatewayState,
  socket: Duplex,
  status: number,
  why: string,
  message: string,
  errorType?: string,
): void {
  countRejected(gw, status);
  gw.log('info', 'handshake rejected', { status, why });
  writeRawResponse(socket, status, { message }, errorType ? { 'x-amzn-ErrorType': errorType } : {});
}

function countRejected(gw: GatewayState, status: number): void {
  gw.stats.rejectedHandshakes++;
  gw.stats.rejectedHandshakesByStatus[status] = (gw.stats.rejectedHandshakesByStatus[status] ?? 0) + 1;
}

/** API Gateway's limit on a WebSocket API's URL (`awsLimits.websocketUrlCharacters`). */
const WEBSOCKET_URL_CHARACTERS = awsLimits.websocketUrlCharacters.value;

/** An upgrade request on the server: answered with a refusal, or completed into a registered connection. */
export async function handleUpgrade(gw: GatewayState, req: IncomingMessage, socket: Duplex, head: Buffer) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== gw.config.wsPath) {
    writeRawResponse(socket, 404, { message: 'Not Found' });
    return;
  }
  gw.stats.handshakes++;
  if (gw.closing) return rejectHandshake(gw, socket, 503, 'gateway stopping', 'Service Unavailable');
  if (gw.starting) {
    countRejected(gw, 503);
    return writeRawResponse(socket, 503, { message: 'Service Unavailable' }, RETRY_AFTER);
  }
  if (!looksLikeWebSocketUpgrade(req)) {
    return rejectHandshake(gw, socket, 400, 'not a WebSocket upgrade', 'Bad Request');
  }
  // "Length, in characters, of the URL for a WebSocket API: 4096" (WebSocket API quotas): a token in the query string
  // has that much room. AWS does not say what it answers past it; 414 here. Until 2026-12-04 a URL of any length was
  // taken, so a token with many roles connected with `?token=` locally and not in AWS.
  // Measured as the stage's URL in AWS would be (`wss://<api id>.execute-api.<region>.amazonaws.com/<stage>?…`), not
  // as the local one, whose host and path are shorter.
  const { region, stage } = gw.config;
  const urlLength = `wss://0123456789.execute-api.${region}.amazonaws.com/${stage}${url.search}`.length;
  if (urlLength > WEBSOCKET_URL_CHARACTERS) {
    return rejectHandshake(gw, socket, 414, `URL of ${urlLength} characters`, 'Request-URI Too Long');
  }

  const now = Date.now();
  const requestId = apiGatewayStyleId();
  const facts = connectionFacts(gw, req, now);
  const handshake = readHandshake(req, url, facts.identity.sourceIp, gw.port, now);

  if (gw.authorizer) {
    const authorized = await authorize(gw, gw.authorizer, socket, facts, handshake, requestId, now);
    if (!authorized) return;
  }
  if (socket.destroyed) {
    gw.log('debug', 'client left during authorization');
    return;
  }
  if (gw.closing) return rejectHandshake(gw, socket, 503, 'gateway stopping', 'Service Unavailable');

  const connected = await runConnect(gw, socket, facts, handshake, requestId, now);
  if (!connected) return;
  const { protocol } = connected;

  // $connect accepted the connection: from here on the backend may hold a record of it, so any failure to open
  // the socket still runs $disconnect.
  if (gw.closing || socket.destroyed) {
    if (!socket.destroyed) rejectHandshake(gw, socket, 503, 'gateway stopping', 'Service Unavailable');
    await runDisconnect(gw, facts, gw.closing ? GO_AWAY : ABNORMAL);
    return;
  }
  if (protocol !== undefined) gw.selectedProtocol.set(req, protocol);
  let upgraded: WebSocket | undefined;
  gw.wss.handleUpgrade(req, socket, head, (ws) => {
    upgraded = ws;
  });
  if (!upgraded) {
    await runDisconnect(gw, facts, ABNORMAL);
    return;
  }
  register(gw, upgraded, facts, protocol, (conn, data, isBinary) => onFrame(gw, conn, data, isBinary));
}

/** What every event of the connection says about it (a new connection id, the caller's address and agent). */
function connectionFacts(gw: GatewayState, req: IncomingMessage, now: number): ConnectionFacts {
  const { apiId, stage, region, accountId, host, stageVariables } = gw.config;
  return {
    apiId,
    stage,
    region,
    accountId,
    domainName: headerValue(req, 'host') ?? `${host}:${gw.port}`,
    connectionId: newConnectionId(gw.usedIds),
    connectedAt: now,
    identity: { sourceIp: normalizeIp(req.socket.remoteAddress), userAgent: headerValue(req, 'user-agent') ?? null },
    stageVariables,
  };
}

/** Runs the authorizer; true when it allowed the connection (then `facts.authorizer` is set), else it refused it. */
async function authorize(
  gw: GatewayState,
  authorizer: GatewayAuthorizer,
  socket: Duplex,
  facts: ConnectionFacts,
  handshake: HandshakeRequest,
  requestId: string,
  now: number,
): Promise<boolean> {
  const missing = missingIdentitySource(authorizer.identitySource ?? [], handshake);
  if (missing) {
    rejectHandshake(gw, socket, 401, `identity source ${missing} missing`, 'Unauthorized');
    return false;
  }
  const event = buildAuthorizerEvent(facts, handshake, requestId, now);
  const started = Date.now();
  const outcome = await invoke(gw, authorizer, 'authorizer', event);
  const integrationLatency = Date.now() - started;
  if (!outcome.ok) {
    if (isUnauthorized(outcome.error)) {
      rejectHandshake(gw, socket, 401, 'authorizer: Unauthorized', 'Unauthorized', 'UnauthorizedException');
      return false;
    }
    gw.log('error', 'authorizer failed', { error: describeError(outcome.error), timedOut: outcome.timedOut });
    rejectHandshake(gw, socket, 500, 'authorizer failed', 'Internal server error', 'AuthorizerFailure');
    return false;
  }
  const decision = evaluateAuthorizerResult(outcome.result, event.methodArn);
  if (!decision.ok) {
    if (decision.status === 500) gw.log('error', 'authorizer returned an invalid result', { why: decision.why });
    if (decision.status === 403) rejectHandshake(gw, socket, 403, decision.why, 'Forbidden', 'AccessDeniedException');
    else {
      const type = 'AuthorizerConfigurationException';
      rejectHandshake(gw, socket, 500, decision.why, 'Internal server error', type);
    }
    return false;
  }
  facts.authorizer = { ...decision.context, principalId: decision.principalId, integrationLatency };
  return true;
}

/** Runs $connect (if routed): the subprotocol it selected when it accepted, undefined when it refused. */
async function runConnect(
  gw: GatewayState,
  socket: Duplex,
  facts: ConnectionFacts,
  handshake: HandshakeRequest,
  requestId: string,
  now: number,
): Promise<{ protocol: string | undefined } | undefined> {
  const connectRoute = gw.routes.get('$connect');
  if (!connectRoute) return { protocol: undefined };
  const outcome = await invoke(gw, connectRoute, '$connect', buildConnectEvent(facts, handshake, requestId, now));
  if (!outcome.ok) {
    gw.log('error', '$connect handler failed', {
      connectionId: facts.connectionId,
      error: describeError(outcome.error),
      timedOut: outcome.timedOut,
    });
    if (outcome.timedOut) rejectHandshake(gw, socket, 504, '$connect timed out', 'Endpoint request timed out');
    else rejectHandshake(gw, socket, 500, '$connect failed', 'Internal server error');
    return undefined;
  }
  const result = outcome.result;
  if (!isRecord(result)) return { protocol: undefined };
  const status = result.statusCode;
  if (typeof status === 'number' && (status < 200 || status > 299)) {
    const message = typeof result.body === 'string' && result.body !== '' ? result.body : statusText(status);
    rejectHandshake(gw, socket, status, `$connect returned ${status}`, message);
    return undefined;
  }
  return { protocol: headerOf(result.headers, 'sec-websocket-protocol') };
}

/** A connection id API Gateway could have given, never one given before. */
function newConnectionId(usedIds: Set<string>): string {
  for (;;) {
    const id = apiGatewayStyleId();
    if (!usedIds.has(id)) {
      usedIds.add(id);
      return id;
    }
  }
}

export function normalizeIp(address: string | undefined): string {
  if (!address) return '127.0.0.1';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** Case-insensitive header lookup in a Lambda result's `headers`. */
export function headerOf(headers: unknown, name: string): string | undefined {
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
export function readHandshake(
  req: IncomingMessage,
  url: URL,
  sourceIp: string,
  port: number,
  now: number,
): HandshakeRequest {
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
