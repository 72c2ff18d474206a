/** The `$connect` authorizer's decision: 401 (no or invalid token), 403 (explicit deny) or allow with context. */

import * as jwtErrors from 'aws-jwt-verify/error';
import type { JwtHeader, JwtPayload } from 'aws-jwt-verify/jwt-model';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { type ClaimNames, ClaimsError, callerFromToken, extractToken, header, toAuthorizerContext } from './auth.ts';

export interface TokenVerifier {
  verify(token: string): Promise<JwtPayload>;
}

/**
 * Whether a verifier error means the token could not be *checked* (the JWKS unreachable, timed out, malformed or not
 * cached), rather than that the token does not verify. Those answer 500 (API Gateway turns any error but
 * `Unauthorized` into 500), so a client retries instead of believing its token is bad. A token whose `kid` the JWKS
 * does not have is a bad token (401).
 */
export function isVerifierUnavailable(err: unknown): boolean {
  if (!(err instanceof jwtErrors.JwtBaseError)) return true;
  return (
    err instanceof jwtErrors.FetchError ||
    err instanceof jwtErrors.JwksValidationError ||
    err instanceof jwtErrors.JwkValidationError ||
    err instanceof jwtErrors.JwksNotAvailableInCacheError
  );
}

export interface AuthorizeDeps {
  readonly verifier: TokenVerifier;
  readonly claimNames: ClaimNames;
  readonly log?: (message: string, details: Record<string, unknown>, level?: 'info' | 'error') => void;
  /** The stage's origin allowlist (docs/security.md). Omitted: any origin, and none. */
  readonly origins?: OriginPolicy;
}

export interface OriginPolicy {
  /** Origins (`https://app.example.com`), `https://*` or `http://*` for any of a scheme, or `*` for any. */
  readonly allowed: readonly string[];
  /** Whether a handshake without `Origin` (a server or native client) is accepted. */
  readonly allowMissing: boolean;
}

/** The origin policy from `ALLOWED_ORIGINS` (space- or comma-separated) and `ALLOW_MISSING_ORIGIN`. */
export function originPolicyFrom(allowedOrigins: string, allowMissingOrigin: string): OriginPolicy {
  return {
    allowed: allowedOrigins.split(/[\s,]+/).filter((o) => o.length > 0),
    allowMissing: allowMissingOrigin.trim().toLowerCase() !== 'false',
  };
}

/**
 * Whether `origin` is in an allowlist as API Gateway's HTTP API reads its CORS `allowOrigins`: `*` allows any, a
 * listed `https://*` or `http://*` any origin of that scheme, and otherwise the origin itself (case-insensitively, as
 * hosts are). The WebSocket authorizer and the local HTTP API's CORS (local/http-cors.ts) both ask it, so a stage's one
 * list means the same on both transports (until 2026-12-04 the authorizer took `https://*` as a literal origin).
 */
export function originAllowed(allowed: readonly string[], origin: string): boolean {
  const wanted = origin.toLowerCase().replace(/\/+$/, '');
  return allowed.some((entry) => {
    const o = entry.toLowerCase();
    return o === '*' || o === wanted || ((o === 'https://*' || o === 'http://*') && wanted.startsWith(o.slice(0, -1)));
  });
}

/** Why the handshake's origin is refused, or undefined when it is allowed (`originAllowed`). */
export function refusedOrigin(origin: string | undefined, policy: OriginPolicy): string | undefined {
  if (origin === undefined || origin === '') return policy.allowMissing ? undefined : 'no Origin header';
  return originAllowed(policy.allowed, origin) ? undefined : 'origin not allowed';
}

/** API Gateway answers 401 when the authorizer throws exactly this. */
export const UNAUTHORIZED = 'Unauthorized';

/**
 * A token must say when it expires: aws-jwt-verify checks `exp` only when a token has one (RFC 7519 makes it
 * optional), while API Gateway's HTTP API JWT authorizer requires it ("exp – Must be after the current time"), and a
 * connection never outlives its token (docs/security.md). So every verifier of tenant tokens (the `$connect`
 * authorizer, `refresh`, the local HTTP API) runs this (`checkToken`) as aws-jwt-verify's `customJwtCheck`. Until 2026-12-04 a token
 * without `exp` opened a WebSocket connection bound only by the 2-hour cap (and, locally, published over HTTP for
 * ever), while the same token was refused over HTTP on AWS.
 */
export function requireExpiry({ payload }: { readonly payload: JwtPayload }): void {
  if (typeof payload.exp !== 'number') {
    throw new jwtErrors.JwtParseError('JWT payload has no exp claim');
  }
}

/**
 * The signing algorithms API Gateway's HTTP API JWT authorizer takes: "Currently, only RSA-based algorithms are
 * supported" (API Gateway Developer Guide, "Control access to HTTP APIs with JWT authorizers", its token validation
 * workflow). aws-jwt-verify also takes ES256/384/512 and EdDSA, so every verifier of tenant tokens keeps to these.
 */
export const TOKEN_ALGORITHMS: ReadonlySet<string> = new Set(['RS256', 'RS384', 'RS512']);

/**
 * Every check a verifier of tenant tokens makes beyond aws-jwt-verify's own, as its `customJwtCheck`, so a token
 * means the same over WebSocket (the `$connect` authorizer, `refresh`) and HTTP (API Gateway's JWT authorizer, and
 * locally its stand-in):
 * - an `exp` (`requireExpiry`);
 * - no `crit` header. RFC 7515 (section 4.1.11) makes a token that lists extensions its recipient does not
 *   understand invalid, and tenantcast understands none; aws-jwt-verify does not look at `crit`. Until 2026-12-04
 *   such a token was accepted on both transports;
 * - an RSA algorithm (`TOKEN_ALGORITHMS`), and an `iat`, when there is one, not after now (the HTTP API's JWT
 *   authorizer: "iat – Must be before the current time"; aws-jwt-verify does not look at `iat`). Until 2026-12-04 a
 *   token signed with ES256 or EdDSA by the issuer's keys, or issued in the future, opened WebSocket connections while
 *   API Gateway refused it over HTTP (and the local HTTP API took it too).
 */
export function checkToken(
  { header, payload }: { readonly header: JwtHeader; readonly payload: JwtPayload },
  nowSeconds: number = Date.now() / 1000,
): void {
  requireExpiry({ payload });
  if (header.crit !== undefined) {
    throw new jwtErrors.JwtParseError('JWT header has crit: none of its extensions is understood here');
  }
  if (header.alg === undefined || !TOKEN_ALGORITHMS.has(header.alg)) {
    throw new jwtErrors.JwtParseError(
      `JWT signed with ${String(header.alg).slice(0, 20)}: only RSA algorithms are taken`,
    );
  }
  if (typeof payload.iat === 'number' && payload.iat > nowSeconds) {
    throw new jwtErrors.JwtParseError('JWT issued in the future (iat)');
  }
}

export async function authorize(
  event: Pick<APIGatewayRequestAuthorizerEvent, 'headers' | 'queryStringParameters' | 'methodArn'>,
  deps: AuthorizeDeps,
): Promise<APIGatewayAuthorizerResult> {
  const originProblem = deps.origins && refusedOrigin(header(event.headers, 'origin'), deps.origins);
  if (originProblem !== undefined) {
    // Checked before the token, so a page of a foreign site costs no signature verification. The origin is logged
    // (it is no secret), truncated.
    deps.log?.('connection denied: origin', {
      reason: originProblem,
      origin: header(event.headers, 'origin')?.slice(0, 200),
    });
    return policy('anonymous', 'Deny', event.methodArn);
  }
  const token = extractToken(event);
  if (token === undefined) {
    deps.log?.('connection refused: no token', {});
    throw new Error(UNAUTHORIZED);
  }
  let payload: JwtPayload;
  try {
    payload = await deps.verifier.verify(token);
  } catch (err) {
    if (isVerifierUnavailable(err)) {
      // Not the token's fault: a 500 the client retries. Logged with the error's class and message (no token).
      deps.log?.(
        'token could not be checked',
        { errorClass: nameOf(err), error: messageOf(err).replaceAll(token, '<token>') },
        'error',
      );
      throw new Error(`token could not be checked: ${nameOf(err)}`);
    }
    // The reason is logged, never the token.
    deps.log?.('connection refused: token not valid', { reason: nameOf(err) });
    throw new Error(UNAUTHORIZED);
  }
  try {
    const caller = callerFromToken(payload, deps.claimNames);
    const exp = typeof payload.exp === 'number' ? payload.exp : 0;
    return policy(caller.userId, 'Allow', event.methodArn, { ...toAuthorizerContext(caller, exp) });
  } catch (err) {
    if (!(err instanceof ClaimsError)) throw err;
    deps.log?.('connection denied: claims', { reason: err.message });
    // The principal of a refused token is only logged by API Gateway: cut to the user claim's 256 characters, so the
    // Deny stays within the 8 KB an authorizer may return (a long `sub` made it a 500, retried for ever; found by a
    // review).
    return policy(typeof payload.sub === 'string' ? payload.sub.slice(0, 256) : 'unknown', 'Deny', event.methodArn);
  }
}

/**
 * aws-jwt-verify's error classes by their exported names. Its errors do not set `name`, and the deployed bundles are
 * minified (class names mangled), so the class is found by identity, not by `constructor.name`.
 */
const jwtErrorClasses: [string, { readonly prototype: unknown }][] = Object.entries(
  jwtErrors as Record<string, unknown>,
).flatMap(([name, value]) => (typeof value === 'function' ? [[name, value as { prototype: unknown }]] : []));

/** The class of an error, for logs: aws-jwt-verify's by export name, others by `name` (`TypeError`, …). */
function nameOf(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  const own = jwtErrorClasses.find(([, type]) => Object.getPrototypeOf(err) === type.prototype);
  return own?.[0] ?? (err.name !== 'Error' ? err.name : err.constructor.name || err.name);
}
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

function policy(
  principalId: string,
  effect: 'Allow' | 'Deny',
  resource: string,
  context?: Record<string, string | number | boolean>,
): APIGatewayAuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
    },
    ...(context && { context }),
  };
}
