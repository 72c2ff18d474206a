/**
 * Local stand-in for an API Gateway HTTP API (v2) with its native JWT authorizer, mounted on the WebSocket
 * gateway's server (`gateway.addHttpHandler`), so the unchanged function sees what AWS would send it:
 *
 *  - route matching on `METHOD /path` with `{param}` (one segment) and `{proxy+}` (the rest) path variables,
 *    literal segments first; no match → 404 `{"message":"Not Found"}`;
 *  - the JWT authorizer: `Authorization: Bearer <jwt>` (the `Bearer ` prefix optional, as in AWS), verified for
 *    issuer, audience, expiry and signature against the JWKS (aws-jwt-verify); missing or invalid → 401
 *    `{"message":"Unauthorized"}` with `www-authenticate`, without invoking the function;
 *  - payload format 2.0 events: `routeKey`, `rawPath`, `rawQueryString`, lower-cased `headers` (repeated headers
 *    joined with `,`), `queryStringParameters` (repeated keys joined with `,`), URL-decoded `pathParameters`,
 *    `cookies`, `body` (base64 with `isBase64Encoded` unless the content type is text or JSON), and
 *    `requestContext.authorizer.jwt.claims` with every claim as a string, as API Gateway flattens them: an array
 *    `["a","b"]` becomes `"[a b]"`, a number `"1700000000"`, an object `"map[k:v]"`;
 *  - the 10 MB request payload quota (413 `{"message":"Request Entity Too Large"}`), and the 10,240 bytes of the
 *    request line and header values together (431 `{"message":"Request Header Fields Too Large"}`; AWS does not say
 *    what it answers);
 *  - responses in format 2.0: `{statusCode, headers, body, isBase64Encoded, cookies}`, or any other value as a
 *    200 JSON body; a function error, or a result over Lambda's 6 MB for a synchronous invocation, → 500
 *    `{"message":"Internal Server Error"}`.
 *
 *  - the integration timeout (30 s): 503 `{"message":"Service Unavailable"}` while the function runs on.
 *
 *  - CORS (`cors`, local/http-cors.ts): preflights answered by the API, its headers on every answer to an allowed
 *    origin, the function's CORS headers ignored.
 *
 * Not emulated: throttling, custom domains, Lambda authorizers.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JwtVerifier } from 'aws-jwt-verify';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { checkToken } from '../lambdas/core/authorize.ts';
import { FetchJwksFetcher } from '../lambdas/core/jwks-fetcher.ts';
import { awsLimits } from '../lambdas/core/limits.ts';
import type { FunctionSpec } from '../lambdas/manifest.ts';
import type { HttpHandler } from './gateway.ts';
import { type HttpCorsConfig, isCorsHeader, preflightHeaders, responseHeaders } from './http-cors.ts';
import { drain } from './http-util.ts';
import { formatRequestTime } from './lambda-events.ts';

export interface HttpApiRoute {
  /** `GET`, `POST`, ...; `ANY` matches every method. */
  readonly method: string;
  /** API Gateway syntax: `/v1/entities/{entity}`, `/files/{proxy+}`. */
  readonly path: string;
  /** Invokes the integration (a Lambda function) with the event; resolves with its result. */
  readonly invoke: (event: APIGatewayProxyEventV2) => Promise<unknown>;
  /** Whether the route uses the JWT authorizer. @default true */
  readonly authorize?: boolean;
}

export interface HttpApiJwtAuthorizer {
  readonly issuer: string;
  readonly audience: string | readonly string[];
  readonly jwksUri: string;
}

export interface HttpApiOptions {
  readonly routes: readonly HttpApiRoute[];
  readonly jwt: HttpApiJwtAuthorizer;
  /** @default 'local-http' */
  readonly apiId?: string;
  /** @default '$default' */
  readonly stage?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  /** @default 10 MB (API Gateway's HTTP API payload quota) */
  readonly maxBodyBytes?: number;
  /**
   * How long the API waits for a function: past it the client gets 503 `{"message":"Service Unavailable"}` while the
   * function runs on, as API Gateway's HTTP API answers (its integration timeout is at most 30 s: HTTP API quotas; the
   * status is what deployed APIs answer, e.g. cortexlabs/cortex#1225, AWS's docs do not give it). @default 30 s
   */
  readonly integrationTimeoutMs?: number;
  /** The API's CORS configuration (local/http-cors.ts). @default none: no preflight answers, no CORS headers */
  readonly cors?: HttpCorsConfig;
  /** Told about function failures (the 500s). */
  readonly onError?: (err: unknown, routeKey: string) => void;
}

export interface HttpApi {
  /** Mount with `gateway.addHttpHandler(api.httpHandler)`. Answers only paths some route could match. */
  readonly httpHandler: HttpHandler;
  /** Requests answered, by status code (live object). */
  readonly stats: Record<number, number>;
}

interface CompiledRoute {
  readonly route: HttpApiRoute;
  readonly routeKey: string;
  readonly segments: readonly string[];
  readonly literals: number;
  readonly greedy: boolean;
}

function compile(route: HttpApiRoute): CompiledRoute {
  const segments = route.path.split('/').filter((s) => s.length > 0);
  const greedy = segments.at(-1)?.endsWith('+}') ?? false;
  return {
    route,
    routeKey: `${route.method.toUpperCase()} ${route.path}`,
    segments,
    literals: segments.filter((s) => !s.startsWith('{')).length,
    greedy,
  };
}

/** Path parameters when `path` matches the route's segments, else undefined. */
export function matchPath(routePath: string, path: string): Record<string, string> | undefined {
  const { segments, greedy } = compile({ method: 'ANY', path: routePath, invoke: async () => undefined });
  const parts = path.split('/').filter((s) => s.length > 0);
  if (greedy ? parts.length < segments.length : parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, segment] of segments.entries()) {
    const part = parts[i] as string;
    if (segment.startsWith('{') && segment.endsWith('+}')) {
      params[segment.slice(1, -2)] = parts.slice(i).map(decode).join('/');
      return params;
    }
    if (segment.startsWith('{') && segment.endsWith('}')) params[segment.slice(1, -1)] = decode(part);
    else if (segment !== part) return undefined;
  }
  return params;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** A claim value as API Gateway HTTP APIs put it in `authorizer.jwt.claims`: always a string. */
export function flattenClaim(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `[${value.map(flattenClaim).join(' ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `map[${Object.entries(value)
      .map(([k, v]) => `${k}:${flattenClaim(v)}`)
      .join(' ')}]`;
  }
  return String(value);
}

const TEXT_TYPES = /^(text\/|application\/(json|[a-z.+-]*\+json|x-www-form-urlencoded|xml|javascript))/i;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'apigw-requestid': randomUUID(),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limit) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** API Gateway's JWT authorizer: the token's own claims when it verifies, else undefined (a 401). */
function jwtAuthorizer(jwt: HttpApiJwtAuthorizer): (header: string | undefined) => Promise<JwtPayload | undefined> {
  const verifier = JwtVerifier.create(
    {
      issuer: jwt.issuer,
      audience: typeof jwt.audience === 'string' ? jwt.audience : [...jwt.audience],
      jwksUri: jwt.jwksUri,
      // API Gateway's JWT authorizer requires `exp` ("Must be after the current time"); aws-jwt-verify alone does not.
      customJwtCheck: checkToken,
    },
    { jwksCache: new SimpleJwksCache({ fetcher: new FetchJwksFetcher() }) },
  );
  return async (header) => {
    if (header === undefined) return undefined;
    const token = header.replace(/^Bearer\s+/i, '').trim();
    if (token === '') return undefined;
    try {
      await verifier.verify(token);
    } catch {
      return undefined;
    }
    // The claims as the token has them: API Gateway passes every one, names aws-jwt-verify's decoder drops
    // (`constructor`, `__proto__`) included, and lambdas/core/http-identity.ts must cope with them as in AWS.
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as JwtPayload;
  };
}

type MatchedRoute = { readonly route: CompiledRoute; readonly params: Record<string, string> };

/** The first route (most literal segments first) matching the method and path. */
function matchRoute(routes: readonly CompiledRoute[], method: string, path: string): MatchedRoute | undefined {
  for (const route of routes) {
    const m = route.route.method.toUpperCase();
    if (m !== 'ANY' && m !== method) continue;
    const params = matchPath(route.route.path, path);
    if (params) return { route, params };
  }
  return undefined;
}

/**
 * The bytes of a request's request line and of its header values (names not counted, as the quota says), as sent:
 * Node decodes both as latin1, one character per byte (until review they were counted as UTF-8, and 6,000 bytes of
 * UTF-8 in a cookie counted ~9,000).
 */
export function requestLineAndHeaderBytes(req: IncomingMessage): number {
  let bytes = Buffer.byteLength(`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`, 'latin1');
  for (let i = 1; i < req.rawHeaders.length; i += 2) bytes += Buffer.byteLength(req.rawHeaders[i] ?? '', 'latin1');
  return bytes;
}

/** The payload format 2.0 event of a request. */
function eventOf(
  req: IncomingMessage,
  url: URL,
  matched: MatchedRoute,
  request: { readonly body: Buffer; readonly claims: Record<string, string> | undefined; readonly requestId: string },
  api: { readonly accountId: string; readonly apiId: string; readonly stage: string },
): APIGatewayProxyEventV2 {
  const { body, claims } = request;
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] as string).toLowerCase();
    const value = req.rawHeaders[i + 1] as string;
    if (name === 'cookie') cookies.push(...value.split(/;\s*/).filter((c) => c.length > 0));
    else headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const isText = body.length === 0 || TEXT_TYPES.test(headers['content-type'] ?? '');
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: matched.route.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    ...(cookies.length > 0 && { cookies }),
    headers,
    ...(Object.keys(query).length > 0 && { queryStringParameters: query }),
    ...(Object.keys(matched.params).length > 0 && { pathParameters: matched.params }),
    requestContext: {
      accountId: api.accountId,
      apiId: api.apiId,
      ...(claims && { authorizer: { jwt: { claims, scopes: null } } }),
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method: (req.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: request.requestId,
      routeKey: matched.route.routeKey,
      stage: api.stage,
      // As API Gateway writes it (common log format, UTC: `12/Mar/2020:19:03:58 +0000`).
      time: formatRequestTime(now),
      timeEpoch: now,
    },
    ...(body.length > 0 && { body: isText ? body.toString('utf8') : body.toString('base64') }),
    isBase64Encoded: !isText,
  } as APIGatewayProxyEventV2;
}

/**
 * The function's answer to the event as API Gateway gets it: its result, its error (a thrown one, or a result over
 * Lambda's 6 MB for a synchronous invocation), or the integration timing out first.
 */
async function integrate(
  route: HttpApiRoute,
  event: APIGatewayProxyEventV2,
  timeoutMs: number,
): Promise<{ kind: 'result'; result: unknown } | { kind: 'error'; error: unknown } | { kind: 'timeout' }> {
  try {
    const outcome = await withinIntegrationTimeout(route.invoke(event), timeoutMs);
    if (outcome.timedOut) return { kind: 'timeout' };
    const bytes = Buffer.byteLength(JSON.stringify(outcome.result) ?? '', 'utf8');
    if (bytes > awsLimits.lambdaSyncPayloadBytes.value) {
      throw new Error(`Response payload size exceeded maximum allowed payload size (${bytes} bytes returned)`);
    }
    return { kind: 'result', result: outcome.result };
  } catch (error) {
    return { kind: 'error', error };
  }
}

export function createHttpApi(options: HttpApiOptions): HttpApi {
  const routes = options.routes
    .map(compile)
    .sort((a, b) => b.literals - a.literals || Number(a.greedy) - Number(b.greedy));
  const prefixes = new Set(routes.map((r) => `/${r.segments[0] ?? ''}`));
  const api = {
    apiId: options.apiId ?? 'local-http',
    stage: options.stage ?? '$default',
    accountId: options.accountId ?? '000000000000',
  };
  const maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
  const integrationTimeoutMs = options.integrationTimeoutMs ?? 30_000;
  const stats: Record<number, number> = {};
  const verify = jwtAuthorizer(options.jwt);
  const answer = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) => {
    stats[status] = (stats[status] ?? 0) + 1;
    json(res, status, { message }, headers);
    return true;
  };

  /** The stage's CORS headers for the request's origin, if it allows it (none without CORS). */
  const setCors = (req: IncomingMessage, res: ServerResponse) => {
    if (options.cors === undefined) return;
    for (const [name, value] of Object.entries(responseHeaders(options.cors, req))) res.setHeader(name, value);
  };
  /** Answers `status` and closes the connection, reading no more of the request. */
  const refuseAndClose = (req: IncomingMessage, res: ServerResponse, status: number, message: string) => {
    answer(res, status, message, { connection: 'close' });
    req.destroy();
    return true;
  };

  async function httpHandler(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const first = `/${url.pathname.split('/').filter((s) => s.length > 0)[0] ?? ''}`;
    if (!prefixes.has(first)) return false;
    // API Gateway's quota on the request line and header values together (10,240 bytes; a token in `Authorization`
    // is one of them), before anything else. AWS does not say what it answers: 431 here, as Node answers past its own
    // 16 KB. Until 2026-12-05 anything under Node's 16 KB was served here, and a token AWS refuses worked locally.
    // With the stage's CORS headers for an allowed origin, as every answer (a browser would see a network error
    // without them), and without reading a body first (the connection is closed, as on a 413).
    if (requestLineAndHeaderBytes(req) > awsLimits.httpApiRequestLineAndHeaderBytes.value) {
      setCors(req, res);
      return refuseAndClose(req, res, 431, 'Request Header Fields Too Large');
    }
    if (options.cors !== undefined) {
      const preflight = preflightHeaders(options.cors, req);
      if (preflight !== undefined) {
        await drain(req);
        stats[204] = (stats[204] ?? 0) + 1;
        res.writeHead(204, { 'apigw-requestid': randomUUID(), ...preflight });
        res.end();
        return true;
      }
      // On every answer, the function's and the API's own (401, 404, 413, 500, 503) alike.
      setCors(req, res);
    }
    const matched = matchRoute(routes, (req.method ?? 'GET').toUpperCase(), url.pathname);
    if (!matched) {
      await drain(req);
      return answer(res, 404, 'Not Found');
    }
    const body = await readBody(req, maxBodyBytes);
    if (body === undefined) return refuseAndClose(req, res, 413, 'Request Entity Too Large');
    let claims: Record<string, string> | undefined;
    if (matched.route.route.authorize ?? true) {
      const payload = await verify(req.headers.authorization);
      if (payload === undefined) return answer(res, 401, 'Unauthorized', { 'www-authenticate': 'Bearer' });
      claims = Object.fromEntries(Object.entries(payload).map(([k, v]) => [k, flattenClaim(v)]));
    }
    const requestId = randomUUID();
    const event = eventOf(req, url, matched, { body, claims, requestId }, api);
    const outcome = await integrate(matched.route.route, event, integrationTimeoutMs);
    if (outcome.kind === 'timeout') return answer(res, 503, 'Service Unavailable');
    if (outcome.kind === 'error') {
      options.onError?.(outcome.error, matched.route.routeKey);
      return answer(res, 500, 'Internal Server Error');
    }
    try {
      sendResult(res, outcome.result, requestId);
    } catch (err) {
      // A result API Gateway cannot read (a status code out of range, a body that is not a string) is a function
      // error to the client.
      options.onError?.(err, matched.route.routeKey);
      if (!res.headersSent) {
        // The result's headers set before the bad one threw are not the 500's; the API's CORS headers are.
        for (const name of res.getHeaderNames()) if (!isCorsHeader(name)) res.removeHeader(name);
        return answer(res, 500, 'Internal Server Error');
      }
    }
    stats[res.statusCode] = (stats[res.statusCode] ?? 0) + 1;
    return true;
  }

  return { httpHandler, stats };
}

/** The function's result, or that the integration timed out first (the function is not stopped: it runs on). */
async function withinIntegrationTimeout(
  invocation: Promise<unknown>,
  timeoutMs: number,
): Promise<{ timedOut: false; result: unknown } | { timedOut: true }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ timedOut: true }>((resolve) => {
    timer = setTimeout(() => resolve({ timedOut: true }), timeoutMs);
  });
  try {
    return await Promise.race([invocation.then((result) => ({ timedOut: false as const, result })), timeout]);
  } finally {
    clearTimeout(timer);
    // A late failure of a function the client no longer waits for is its own (logged by its host), not unhandled.
    invocation.catch(() => undefined);
  }
}

function sendResult(res: ServerResponse, result: unknown, requestId: string): void {
  const structured =
    typeof result === 'object' && result !== null && 'statusCode' in result
      ? (result as APIGatewayProxyStructuredResultV2)
      : undefined;
  if (structured === undefined) {
    // Payload format 2.0: anything without a statusCode is a 200 JSON body.
    const text = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    res.writeHead(200, { 'content-type': 'application/json', 'apigw-requestid': requestId });
    res.end(text);
    return;
  }
  const headers: Record<string, string | string[]> = { 'apigw-requestid': requestId };
  for (const [k, v] of Object.entries(structured.headers ?? {})) {
    if (!isCorsHeader(k)) headers[k.toLowerCase()] = String(v);
  }
  if (structured.cookies && structured.cookies.length > 0) headers['set-cookie'] = structured.cookies;
  const body =
    structured.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(structured.body, structured.isBase64Encoded ? 'base64' : 'utf8');
  if (body.length > 0 && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  res.writeHead(structured.statusCode ?? 200, headers);
  res.end(body);
}

/** The manifest's HTTP routes, each invoking its function (through the local runtime's function hosts). */
export function httpRoutesFromManifest(
  specs: readonly FunctionSpec[],
  invokerOf: (functionName: string) => (event: unknown) => Promise<unknown>,
): HttpApiRoute[] {
  return specs.flatMap((spec) => {
    const trigger = spec.trigger;
    if (trigger.kind !== 'http') return [];
    const invoke = invokerOf(spec.name);
    return trigger.routes.map((r) => ({
      method: r.method,
      path: r.path,
      invoke,
      authorize: trigger.authorizer === 'jwt',
    }));
  });
}
