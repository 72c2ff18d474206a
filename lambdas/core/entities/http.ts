/**
 * The entity API over HTTP: one request in (the parts of an API Gateway HTTP API event the API uses), one response
 * out. Every failure becomes `{"error":{"code","message"}}` with its status; nothing throws past `handleEntityRequest`.
 */
import type { ClaimNames } from '../auth.ts';
import {
  BadRequestError,
  type ErrorCode,
  RateLimitedError,
  TenantcastError,
  TooLargeError,
  toTenantcastError,
} from '../errors.ts';
import { callerFromHttp, type HttpIdentity } from '../http-identity.ts';
import type { EntityCaller } from './model.ts';
import type { EntityService } from './service.ts';
import { parseIfMatch } from './validation.ts';

/** The API's operations, by API Gateway route key (lambdas/manifest.ts lists the same routes). */
export const entityRoutes = {
  'GET /v1/schema': 'schema',
  'GET /v1/entities/{entity}': 'list',
  'POST /v1/entities/{entity}': 'create',
  'GET /v1/entities/{entity}/{id}': 'get',
  'PATCH /v1/entities/{entity}/{id}': 'update',
  'DELETE /v1/entities/{entity}/{id}': 'delete',
  'GET /v1/entities/{entity}/{id}/changes': 'changes',
} as const;
export type EntityOperation = (typeof entityRoutes)[keyof typeof entityRoutes];

export interface EntityHttpRequest {
  readonly operation: EntityOperation;
  readonly pathParameters: Readonly<Record<string, string | undefined>>;
  readonly query: Readonly<Record<string, string | undefined>>;
  /** Header names in lower case (as API Gateway HTTP APIs deliver them). */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string | undefined;
  readonly isBase64Encoded: boolean;
  /** `requestContext.authorizer.jwt.claims`: verified by API Gateway's JWT authorizer (the token is `headers.authorization`). */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
}

export interface EntityHttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export const statusOf: Readonly<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
};

const JSON_HEADERS = { 'content-type': 'application/json' };

function respond(statusCode: number, body: unknown, headers: Record<string, string> = {}): EntityHttpResponse {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: body === undefined ? '' : JSON.stringify(body) };
}

/** The error body with its status; a rate limit adds `Retry-After` (whole seconds) and `retryAfterMs`. */
export function errorResponse(err: TenantcastError): EntityHttpResponse {
  if (err instanceof RateLimitedError) {
    return respond(
      statusOf[err.code],
      { error: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } },
      { 'retry-after': String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))) },
    );
  }
  return respond(statusOf[err.code], { error: { code: err.code, message: err.message } });
}

/**
 * The caller of an HTTP request, read from the verified token exactly as the WebSocket authorizer reads it
 * (lambdas/core/http-identity.ts): never from API Gateway's flattened claims, which are ambiguous.
 */
export function callerOf(identity: HttpIdentity, names: ClaimNames): EntityCaller {
  return callerFromHttp(identity, names);
}

/** The JSON body, at most `maxBytes` (TOO_LARGE above it). */
export function parseBody(request: Pick<EntityHttpRequest, 'body' | 'isBase64Encoded'>, maxBytes: number): unknown {
  if (request.body === undefined || request.body === '') throw new BadRequestError('body must be a JSON object');
  const bytes = request.isBase64Encoded ? Buffer.from(request.body, 'base64') : Buffer.from(request.body, 'utf8');
  if (bytes.length > maxBytes) throw new TooLargeError(`body is ${bytes.length} bytes; the limit is ${maxBytes}`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BadRequestError('body is not valid JSON');
  }
}

export interface EntityHttpDeps {
  readonly service: Pick<EntityService, 'schema' | 'list' | 'get' | 'create' | 'update' | 'remove' | 'changes'>;
  readonly claimNames: ClaimNames;
  readonly maxBodyBytes: number;
  readonly onError?: (err: unknown) => void;
}

function param(request: EntityHttpRequest, name: string): string {
  const value = request.pathParameters[name];
  if (value === undefined || value === '') throw new BadRequestError(`missing path parameter '${name}'`);
  return value;
}

export async function handleEntityRequest(
  request: EntityHttpRequest,
  deps: EntityHttpDeps,
): Promise<EntityHttpResponse> {
  try {
    const caller = callerOf({ claims: request.claims, authorization: request.headers.authorization }, deps.claimNames);
    const { service } = deps;
    switch (request.operation) {
      case 'schema':
        return respond(200, await service.schema(caller));
      case 'list': {
        const entity = param(request, 'entity');
        // The filters are validated against the entity's fields inside `list` (an unknown entity is a 404 first).
        return respond(200, await service.list(caller, entity, request.query));
      }
      case 'get':
        return versioned(200, await service.get(caller, param(request, 'entity'), param(request, 'id')));
      case 'changes':
        return respond(
          200,
          await service.changes(caller, param(request, 'entity'), param(request, 'id'), request.query),
        );
      case 'create': {
        const body = parseBody(request, deps.maxBodyBytes);
        return versioned(201, await service.create(caller, param(request, 'entity'), body));
      }
      case 'update': {
        const body = parseBody(request, deps.maxBodyBytes);
        const ifMatch = parseIfMatch(request.headers['if-match']);
        return versioned(
          200,
          await service.update(caller, param(request, 'entity'), param(request, 'id'), body, ifMatch),
        );
      }
      case 'delete': {
        const ifMatch = parseIfMatch(request.headers['if-match']);
        await service.remove(caller, param(request, 'entity'), param(request, 'id'), ifMatch);
        return { statusCode: 204, headers: {}, body: '' };
      }
    }
  } catch (err) {
    if (!(err instanceof TenantcastError) || err.code === 'INTERNAL') deps.onError?.(err);
    return errorResponse(toTenantcastError(err));
  }
}

/** A row with its version as the ETag, for `If-Match`. */
function versioned(statusCode: number, row: Record<string, unknown>): EntityHttpResponse {
  const version = row._version;
  return respond(statusCode, row, typeof version === 'number' ? { etag: `"${version}"` } : {});
}
