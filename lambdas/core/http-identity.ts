/**
 * The caller of an HTTP API request (entity, publish and admin APIs), read exactly as the WebSocket `$connect`
 * authorizer reads its token: with `callerFromToken` (lambdas/core/auth.ts), so the same token gives the same
 * rights on both transports (docs/security.md, "Claims over HTTP").
 *
 * Why not from `requestContext.authorizer.jwt.claims` alone: API Gateway's JWT authorizer hands the function every
 * claim as a string, arrays flattened Go-style to `"[a b]"` and objects to `"map[k:v]"` (aws/aws-lambda-go#591;
 * local/http-api.ts does the same). That form is lossy: the roles `["viewer admin"]` (one role, which grants
 * nothing) and `["viewer","admin"]` both arrive as `"[viewer admin]"`, and a `sub` of `"[bob]"` looks like the
 * array `["bob"]`. So the claims are read from the token itself. The `Authorization` header is the JWT authorizer's
 * identity source: the very token API Gateway verified (signature, issuer, audience, expiry) before invoking the
 * function. Its payload is decoded here, not verified again, and must flatten to the claims the authorizer passed;
 * a request without that header, with a malformed token or with another token is refused UNAUTHORIZED, so only a
 * verified token's claims are ever read. The comparison with API Gateway's flattened claims is written by hand (no
 * library knows that format); decoding is aws-jwt-verify's.
 */
import { decomposeUnverifiedJwt } from 'aws-jwt-verify/jwt';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import { type ClaimNames, ClaimsError, callerFromToken } from './auth.ts';
import type { EntityCaller } from './entities/model.ts';
import { UnauthorizedError } from './errors.ts';

/** What an HTTP API event tells about its caller. */
export interface HttpIdentity {
  /** `requestContext.authorizer.jwt.claims`: verified by API Gateway's JWT authorizer, flattened to strings. */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
  /** The `Authorization` header (`Bearer <jwt>` or the bare token): the token the authorizer verified. */
  readonly authorization: string | undefined;
}

/**
 * A string or array claim as API Gateway flattens it (`"[a b]"` for arrays); undefined for other types, whose
 * rendering (numbers, objects) is not compared.
 */
export function flattenedClaim(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return `[${value.join(' ')}]`;
  return undefined;
}

/** The payload of a compact JWT (aws-jwt-verify's decoder, no verification), or undefined when it is not one. */
export function decodePayload(token: string): JwtPayload | undefined {
  try {
    return decomposeUnverifiedJwt(token).payload;
  } catch {
    return undefined;
  }
}

/**
 * Claim names aws-jwt-verify's decoder leaves out of every object it parses (`safeJsonParse`, against prototype
 * pollution): neither transport reads such a claim, so it is not compared either. API Gateway passes it among the
 * flattened claims; until 2026-12-04 a token carrying a `constructor` claim was refused here (401) while it opened
 * WebSocket connections (found by an attacking pass).
 */
const DROPPED_BY_DECODER: ReadonlySet<string> = new Set(['__proto__', 'constructor']);

/** The verified token's payload: the header's token, provided its claims are the authorizer's claims. */
function verifiedPayload(identity: HttpIdentity, names: ClaimNames): JwtPayload {
  const { claims, authorization } = identity;
  if (claims === undefined) throw new UnauthorizedError('request has no verified identity');
  const token = authorization?.replace(/^Bearer\s+/i, '').trim();
  const payload = token ? decodePayload(token) : undefined;
  if (payload === undefined) throw new UnauthorizedError('request has no bearer token');
  // API Gateway's JWT authorizer also admits a token without `aud` whose `client_id` is the audience (it checks
  // `client_id` only when `aud` is absent: "Troubleshooting issues with HTTP API JWT authorizers"); the WebSocket
  // authorizer (aws-jwt-verify) requires `aud`. So a token without one is refused here too: one token, one answer.
  if (payload.aud === undefined || payload.aud === '' || (Array.isArray(payload.aud) && payload.aud.length === 0)) {
    throw new UnauthorizedError("bearer token has no 'aud' claim");
  }
  for (const name of [names.tenant, names.user]) {
    if (!Object.hasOwn(claims, name)) throw new UnauthorizedError(`verified claims lack '${name}'`);
  }
  for (const [name, flat] of Object.entries(claims)) {
    if (!Object.hasOwn(payload, name)) {
      if (DROPPED_BY_DECODER.has(name)) continue;
      throw new UnauthorizedError('bearer token is not the verified token');
    }
    const expected = flattenedClaim(payload[name]);
    if (expected !== undefined && expected !== flat) {
      throw new UnauthorizedError('bearer token is not the verified token');
    }
  }
  return payload;
}

/** The caller of an HTTP request: UNAUTHORIZED without a verified token, or with unusable tenant/user/roles claims. */
export function callerFromHttp(identity: HttpIdentity, names: ClaimNames): EntityCaller {
  const payload = verifiedPayload(identity, names);
  try {
    return callerFromToken(payload, names);
  } catch (err) {
    if (err instanceof ClaimsError) throw new UnauthorizedError(err.message);
    throw err;
  }
}
