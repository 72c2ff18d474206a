/**
 * Lambda invocation plumbing for the local runtime: the handler signature, a Lambda `Context` stand-in, and builders
 * for the events API Gateway's WebSocket API sends (REQUEST authorizer, $connect, messages, $disconnect).
 *
 * Shapes follow what AWS actually delivers (API Gateway developer guide: "Control access to WebSocket APIs with AWS
 * Lambda REQUEST authorizers" and the WebSocket integration request/context variable reference), not the loosest
 * reading of @types/aws-lambda: e.g. CONNECT and DISCONNECT events carry no `messageId`, MESSAGE events carry no headers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type {
  APIGatewayEventWebsocketRequestContextV2,
  APIGatewayProxyWebsocketEventV2WithRequestContext,
  Context,
} from 'aws-lambda';

/** A Lambda function as the local runtime calls it: the Node.js runtime's async handler signature. */
export type LambdaHandler<E = unknown, R = unknown> = (event: E, context: Context) => Promise<R>;

/**
 * Any Lambda handler, whatever event type it declares (assignable from `LambdaHandler<SomeEvent, SomeResult>`).
 * Sync handlers are accepted too; the caller awaits the result.
 */
export type AnyLambdaHandler = (event: never, context: Context) => unknown;

/** Calls a handler with an event of our choosing (the one place the `never` parameter is widened). */
export function invokeHandler(handler: AnyLambdaHandler, event: unknown, context: Context): Promise<unknown> {
  return Promise.resolve().then(() => (handler as (e: unknown, c: Context) => unknown)(event, context));
}

// ---------------------------------------------------------------------------------------------------------------
// Ids and times

/**
 * An id in the style of API Gateway's connection, request and message ids: 16 characters, base64 of 11 random
 * bytes with the URL-safe alphabet and the `=` padding kept, e.g. `L0SM9cOFvHcCIhw=`.
 */
export function apiGatewayStyleId(): string {
  return randomBytes(11).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `requestTime` as API Gateway writes it (common log format, UTC): `20/Jul/2023:23:29:25 +0000`. */
export function formatRequestTime(epochMs: number): string {
  const d = new Date(epochMs);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(
    d.getUTCMinutes(),
  )}:${p2(d.getUTCSeconds())} +0000`;
}

/** An X-Ray trace header value in AWS's format, `Root=1-<epoch seconds hex>-<96 bits hex>`. */
export function traceId(epochMs: number = Date.now()): string {
  return `Root=1-${Math.floor(epochMs / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Context

export interface LambdaContextOptions {
  functionName: string;
  /** The function's timeout; `getRemainingTimeInMillis()` counts down from it. */
  timeoutSeconds?: number;
  memoryMB?: number;
  region?: string;
  accountId?: string;
  awsRequestId?: string;
  /** Start of the invocation (defaults to now). */
  startedAt?: number;
}

/** A Lambda `Context` as the Node.js runtime passes it. The deprecated callback-style methods throw. */
export function createLambdaContext(options: LambdaContextOptions): Context {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const startedAt = options.startedAt ?? Date.now();
  const deadline = startedAt + (options.timeoutSeconds ?? 3) * 1000;
  const day = new Date(startedAt).toISOString().slice(0, 10).replaceAll('-', '/');
  const deprecated = (name: string) => () => {
    throw new Error(`context.${name}() is not supported by the local runtime: return or throw from the handler`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: options.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryMB ?? 128),
    awsRequestId: options.awsRequestId ?? randomUUID(),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: deprecated('done'),
    fail: deprecated('fail'),
    succeed: deprecated('succeed'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// WebSocket events

export interface WebSocketIdentity {
  sourceIp: string;
  userAgent: string | null;
}

/**
 * `requestContext.authorizer` of every event after a successful REQUEST authorizer: the authorizer's `context` keys
 * flattened in (values stringified by API Gateway, `null` kept), plus `principalId` and `integrationLatency` (ms).
 */
export type WebSocketAuthorizerData = { principalId: string; integrationLatency: number } & {
  [key: string]: string | number | null;
};

export interface WebSocketRequestContext
  extends Omit<APIGatewayEventWebsocketRequestContextV2, 'messageId' | 'eventType'> {
  eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT';
  /** MESSAGE events only. */
  messageId?: string;
  identity: WebSocketIdentity;
  /** Present when the API has a REQUEST authorizer on $connect. */
  authorizer?: WebSocketAuthorizerData;
  /** DISCONNECT events only. */
  disconnectStatusCode?: number;
  disconnectReason?: string;
}

/** The Lambda proxy event of a WebSocket route ($connect, $disconnect, custom routes, $default). */
export interface WebSocketEvent extends APIGatewayProxyWebsocketEventV2WithRequestContext<WebSocketRequestContext> {
  /** $connect and $disconnect only. */
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
}

/** The event of a WebSocket API's REQUEST authorizer (there is no HTTP method or path, unlike REST APIs). */
export interface WebSocketAuthorizerEvent {
  type: 'REQUEST';
  methodArn: string;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters: Record<string, string>;
  multiValueQueryStringParameters: Record<string, string[]>;
  stageVariables: Record<string, string>;
  requestContext: Omit<
    WebSocketRequestContext,
    'authorizer' | 'messageId' | 'disconnectStatusCode' | 'disconnectReason'
  >;
}

/** What every event of one connection shares. */
export interface ConnectionFacts {
  apiId: string;
  stage: string;
  region: string;
  accountId: string;
  /** Host the client connected to (`domainName`). */
  domainName: string;
  connectionId: string;
  connectedAt: number;
  identity: WebSocketIdentity;
  authorizer?: WebSocketAuthorizerData;
  stageVariables?: Record<string, string>;
}

/** The handshake request, as API Gateway passes it to the authorizer and the $connect route. */
export interface HandshakeRequest {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters: Record<string, string>;
  multiValueQueryStringParameters: Record<string, string[]>;
}

function baseContext(
  facts: ConnectionFacts,
  routeKey: string,
  eventType: WebSocketRequestContext['eventType'],
  requestId: string,
  now: number,
): WebSocketRequestContext {
  const ctx: WebSocketRequestContext = {
    routeKey,
    eventType,
    extendedRequestId: requestId,
    requestTime: formatRequestTime(now),
    messageDirection: 'IN',
    stage: facts.stage,
    connectedAt: facts.connectedAt,
    requestTimeEpoch: now,
    identity: { ...facts.identity },
    requestId,
    domainName: facts.domainName,
    connectionId: facts.connectionId,
    apiId: facts.apiId,
  };
  if (facts.authorizer) ctx.authorizer = { ...facts.authorizer };
  return ctx;
}

/** `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{routeKey}` */
export function routeArn(
  facts: Pick<ConnectionFacts, 'region' | 'accountId' | 'apiId' | 'stage'>,
  route: string,
): string {
  return `arn:aws:execute-api:${facts.region}:${facts.accountId}:${facts.apiId}/${facts.stage}/${route}`;
}

export function buildAuthorizerEvent(
  facts: ConnectionFacts,
  request: HandshakeRequest,
  requestId: string,
  now: number = Date.now(),
): WebSocketAuthorizerEvent {
  const { authorizer: _none, ...requestContext } = baseContext(
    { ...facts, authorizer: undefined },
    '$connect',
    'CONNECT',
    requestId,
    now,
  );
  return {
    type: 'REQUEST',
    methodArn: routeArn(facts, '$connect'),
    headers: { ...request.headers },
    multiValueHeaders: cloneMulti(request.multiValueHeaders),
    queryStringParameters: { ...request.queryStringParameters },
    multiValueQueryStringParameters: cloneMulti(request.multiValueQueryStringParameters),
    stageVariables: { ...(facts.stageVariables ?? {}) },
    requestContext,
  };
}

export function buildConnectEvent(
  facts: ConnectionFacts,
  request: HandshakeRequest,
  requestId: string,
  now: number = Date.now(),
): WebSocketEvent {
  const event: WebSocketEvent = {
    headers: { ...request.headers },
    multiValueHeaders: cloneMulti(request.multiValueHeaders),
    requestContext: baseContext(facts, '$connect', 'CONNECT', requestId, now),
    isBase64Encoded: false,
  };
  if (Object.keys(request.queryStringParameters).length > 0) {
    event.queryStringParameters = { ...request.queryStringParameters };
    event.multiValueQueryStringParameters = cloneMulti(request.multiValueQueryStringParameters);
  }
  if (facts.stageVariables && Object.keys(facts.stageVariables).length > 0) {
    event.stageVariables = { ...facts.stageVariables };
  }
  return event;
}

export function buildMessageEvent(
  facts: ConnectionFacts,
  routeKey: string,
  body: string,
  isBase64Encoded: boolean,
  ids: { requestId: string; messageId: string },
  now: number = Date.now(),
): WebSocketEvent {
  const requestContext = baseContext(facts, routeKey, 'MESSAGE', ids.requestId, now);
  requestContext.messageId = ids.messageId;
  const event: WebSocketEvent = { requestContext, body, isBase64Encoded };
  if (facts.stageVariables && Object.keys(facts.stageVariables).length > 0) {
    event.stageVariables = { ...facts.stageVariables };
  }
  return event;
}

export function buildDisconnectEvent(
  facts: ConnectionFacts,
  status: { code: number; reason: string },
  requestId: string,
  now: number = Date.now(),
): WebSocketEvent {
  const requestContext = baseContext(facts, '$disconnect', 'DISCONNECT', requestId, now);
  requestContext.disconnectStatusCode = status.code;
  requestContext.disconnectReason = status.reason;
  // API Gateway sends these few headers (mostly empty) on $disconnect.
  const headers: Record<string, string> = {
    Host: facts.domainName,
    'x-api-key': '',
    'X-Forwarded-For': '',
    'x-restapi': '',
  };
  const event: WebSocketEvent = {
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    requestContext,
    isBase64Encoded: false,
  };
  if (facts.stageVariables && Object.keys(facts.stageVariables).length > 0) {
    event.stageVariables = { ...facts.stageVariables };
  }
  return event;
}

function cloneMulti(m: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...v]]));
}
