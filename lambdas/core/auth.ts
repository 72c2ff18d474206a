/**
 * Authentication for the WebSocket `$connect`: find the token, verify it with aws-jwt-verify, and map its claims
 * to the caller (tenant, user, roles) that API Gateway then hands to every route in the authorizer context.
 */
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import { awsLimits } from './limits.ts';
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

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

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
  // Half a surrogate pair is no text: UTF-8 (DynamoDB's strings) cannot hold it, and two such ids would read back
  // as one (until 2026-12-04 such a token got a 500 on every request).
  if (LONE_SURROGATE.test(userId)) throw new ClaimsError(`claim '${names.user}' must be well-formed text`);
  const rawRoles = payload[names.roles];
  let roles: string[];
  if (rawRoles === undefined) roles = [];
  else if (Array.isArray(rawRoles)) roles = rawRoles.filter((r): r is string => typeof r === 'string');
  else if (typeof rawRoles === 'string') roles = rawRoles.split(/[\s,]+/).filter((r) => r.length > 0);
  else throw new ClaimsError(`claim '${names.roles}' must be an array of strings or a string`);
  return { tenantId, userId, roles };
}

/**
 * Registered JWT claims (RFC 7519 and common provider extras): never copied into `claims`. `sub` is kept: it is the
 * identity row filters most often compare with (`{"column":"owner","equalsClaim":"sub"}`).
 */
const REGISTERED_CLAIMS = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'jti', 'token_use', 'auth_time']);

/** Most bytes of JSON the `claims` context value may take (API Gateway caps the whole context). */
export const MAX_CLAIMS_BYTES = 2048;

/** A claim's scalar as filters compare it (`claimValues`: as text), or undefined for what they cannot compare. */
function usableScalar(value: unknown): string | boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string' || LONE_SURROGATE.test(value)) return undefined;
  return value;
}

/**
 * A claim as audience and row filters read it (`claimValues` in lambdas/core/audience.ts): a string, a boolean, a
 * number as its text, or an array of those (other elements left out), which they compare as text; undefined for a
 * value they never match (an object, null, an empty array). So every claim kept is one a DynamoDB membership item can
 * hold: until 2026-12-04 a claim holding a number past 2^53 (the SDK refuses to write it), a name of "" or 32 levels of
 * nesting (DynamoDB refuses both) made every subscribe of the connection fail, while HTTP served the same token.
 */
function usableClaim(value: unknown): string | boolean | (string | boolean)[] | undefined {
  if (!Array.isArray(value)) return usableScalar(value);
  const kept = value.map(usableScalar).filter((v) => v !== undefined);
  return kept.length > 0 ? kept : undefined;
}

/**
 * The token's claims for audience filters: everything but the registered claims and the tenant and roles claims
 * (the user claim stays, so filters can name it as the HTTP API's JWT claims do), each as filters read it
 * (`usableClaim`), the user claim and `sub` first, then in token order, keeping whole claims while the JSON stays within {@link MAX_CLAIMS_BYTES}.
 */
export function extraClaims(payload: JwtPayload, names: ClaimNames = defaultClaimNames): Record<string, unknown> {
  const skip = new Set([...REGISTERED_CLAIMS, names.tenant, names.roles]);
  const out: Record<string, unknown> = {};
  let bytes = 2;
  // The user claim and `sub` first: row filters compare them most (`equalsClaim: "sub"`), and a token whose other
  // claims came first in its JSON lost them past 2 KB (found by an attacking pass). The user claim is at most 256
  // characters, so it always fits.
  const first = [...new Set([names.user, 'sub'])].filter((key) => Object.hasOwn(payload, key));
  const keys = [...first, ...Object.keys(payload).filter((key) => !first.includes(key))];
  for (const key of keys) {
    const value = usableClaim(payload[key]);
    if (skip.has(key) || key === '' || value === undefined) continue;
    const size = Buffer.byteLength(JSON.stringify({ [key]: value }), 'utf8') - 1;
    if (bytes + size > MAX_CLAIMS_BYTES) continue;
    out[key] = value;
    bytes += size;
  }
  return out;
}

/**
 * Most bytes a caller may take in the `$connect` authorizer's result (its principal and context as JSON): API Gateway
 * takes at most 8 KB from a WebSocket authorizer, and the policy beside them keeps 1 KB (its statement and a method
 * ARN of up to ~900 characters). The user id (256 characters) and the claims (2 KB) are bounded: this bounds the roles.
 */
export const MAX_CALLER_BYTES = awsLimits.websocketAuthorizerResultBytes.value - 1024;

/** The bytes of `caller` as the `$connect` authorizer returns it (the largest `exp` counted). */
export function callerBytes(caller: Caller): number {
  const context = toAuthorizerContext(caller, Number.MAX_SAFE_INTEGER);
  return Buffer.byteLength(JSON.stringify({ principalId: caller.userId, context }), 'utf8');
}

/**
 * The caller a verified token stands for, with the claims audience filters and row filters read: the one reading
 * of a token, shared by the WebSocket `$connect` authorizer and the HTTP API (lambdas/core/http-identity.ts), so the
 * same claims give the same rights on both. Throws ClaimsError for unusable tenant, user or roles claims, and for a
 * caller over {@link MAX_CALLER_BYTES} (in practice, roles past ~4 KB): API Gateway would refuse the authorizer's
 * result (500 on every handshake, which clients retry for ever), so HTTP refuses such a token too. Until 2026-12-04 a
 * token with ~170 group roles opened no connection while HTTP served it (found by an attacking pass).
 */
export function callerFromToken(
  payload: JwtPayload,
  names: ClaimNames = defaultClaimNames,
): Caller & { claims: Record<string, unknown> } {
  const caller = { ...callerFromClaims(payload, names), claims: extraClaims(payload, names) };
  const bytes = callerBytes(caller);
  if (bytes > MAX_CALLER_BYTES) {
    throw new ClaimsError(
      `the token's user, roles and claims take ${bytes} bytes as the WebSocket authorizer passes them, over the ${MAX_CALLER_BYTES} that fit (API Gateway takes at most 8 KB from an authorizer): issue fewer roles`,
    );
  }
  return caller;
}

/** What the authorizer puts in its context: API Gateway allows only string, number and boolean values. */
export interface AuthorizerContext {
  tenantId: string;
  userId: string;
  /** JSON array of role names. */
  roles: string;
  /** JSON object of the token's other claims ({@link extraClaims}). */
  claims: string;
  /** Token expiry, epoch seconds. */
  exp: number;
}

export function toAuthorizerContext(caller: Caller, exp: number): AuthorizerContext {
  return {
    tenantId: caller.tenantId,
    userId: caller.userId,
    roles: JSON.stringify(caller.roles),
    claims: JSON.stringify(caller.claims ?? {}),
    exp,
  };
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
  let claims: Record<string, unknown> = {};
  if (typeof ctx.claims === 'string') {
    try {
      const parsed: unknown = JSON.parse(ctx.claims);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        claims = parsed as Record<string, unknown>;
      }
    } catch {
      claims = {};
    }
  }
  return { tenantId: ctx.tenantId, userId: ctx.userId, roles, claims };
}

/** The token expiry (epoch seconds) from the authorizer context (API Gateway stringifies it); 0 when absent. */
export function expFromAuthorizer(authorizer: unknown): number {
  if (typeof authorizer !== 'object' || authorizer === null) return 0;
  const exp = Number((authorizer as Record<string, unknown>).exp);
  return Number.isFinite(exp) && exp > 0 ? Math.floor(exp) : 0;
}
