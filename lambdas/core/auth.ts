/**
 * Authentication for the WebSocket `$connect`: find the token, verify it with aws-jwt-verify, and map its claims
 * to the caller (tenant, user, roles) that API Gateway then hands to every route in the authorizer context.
 */
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import type { Caller } from './permissions.ts';
import { TENANT_PATTERN } from './protocol.ts';

export const SUBPROTOCOL = 'tenantcast.v1';

export interface ClaimNames {
  readonly tenant: string;
  readonly user: string;
  readonly roles: string;
}

export const defaultClaimNames: ClaimNames = { tenant: 'tenant_id', user: 'sub', roles: 'roles' };

/** Case-insensitive header lookup (API Gateway keeps the client's casing). */
export function header(
  headers: Record<string, string | undefined> | null | undefined,
  name: string,
): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

/**
 * The token from `Sec-WebSocket-Protocol: tenantcast.v1, <jwt>` or from `?token=<jwt>`.
 * Browsers cannot set headers on a WebSocket, so the subprotocol list carries the token.
 */
export function extractToken(request: {
  headers?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
}): string | undefined {
  const protocols = header(request.headers, 'sec-websocket-protocol');
  if (protocols !== undefined) {
    const offered = protocols
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p.length > 0);
    if (offered.includes(SUBPROTOCOL)) {
      const token = offered.find((p) => p !== SUBPROTOCOL);
      if (token !== undefined) return token;
    }
  }
  const fromQuery = request.queryStringParameters?.token;
  return fromQuery !== undefined && fromQuery !== '' ? fromQuery : undefined;
}

export class ClaimsError extends Error {
  override readonly name = 'ClaimsError';
}

/** Maps verified claims to the caller. Roles may be an array or a space/comma separated string. */
export function callerFromClaims(payload: JwtPayload, names: ClaimNames = defaultClaimNames): Caller {
  const tenantId = payload[names.tenant];
  const userId = payload[names.user];
  if (typeof tenantId !== 'string' || !TENANT_PATTERN.test(tenantId)) {
    throw new ClaimsError(`claim '${names.tenant}' must be a tenant id matching ${TENANT_PATTERN.source}`);
  }
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) {
    throw new ClaimsError(`claim '${names.user}' must be a non-empty string`);
  }
  const rawRoles = payload[names.roles];
  let roles: string[];
  if (rawRoles === undefined) roles = [];
  else if (Array.isArray(rawRoles)) roles = rawRoles.filter((r): r is string => typeof r === 'string');
  else if (typeof rawRoles === 'string') roles = rawRoles.split(/[\s,]+/).filter((r) => r.length > 0);
  else throw new ClaimsError(`claim '${names.roles}' must be an array of strings or a string`);
  return { tenantId, userId, roles };
}

/** What the authorizer puts in its context: API Gateway allows only string, number and boolean values. */
export interface AuthorizerContext {
  tenantId: string;
  userId: string;
  /** JSON array of role names. */
  roles: string;
  /** Token expiry, epoch seconds. */
  exp: number;
}

export function toAuthorizerContext(caller: Caller, exp: number): AuthorizerContext {
  return { tenantId: caller.tenantId, userId: caller.userId, roles: JSON.stringify(caller.roles), exp };
}

/** Reads the caller back from `event.requestContext.authorizer` of any WebSocket route. */
export function callerFromAuthorizer(authorizer: unknown): Caller | undefined {
  if (typeof authorizer !== 'object' || authorizer === null) return undefined;
  const ctx = authorizer as Record<string, unknown>;
  if (typeof ctx.tenantId !== 'string' || typeof ctx.userId !== 'string') return undefined;
  let roles: string[] = [];
  if (typeof ctx.roles === 'string') {
    try {
      const parsed: unknown = JSON.parse(ctx.roles);
      if (Array.isArray(parsed)) roles = parsed.filter((r): r is string => typeof r === 'string');
    } catch {
      roles = [];
    }
  }
  return { tenantId: ctx.tenantId, userId: ctx.userId, roles };
}
