/**
 * What API Gateway's JWT authorizer hands an HTTP API function for a token with this payload: the claims flattened
 * to strings (arrays as `"[a b]"`, as local/http-api.ts does) and the `Authorization` header with the token. The
 * token is unsigned: the function never verifies it again (API Gateway did), it only reads it.
 */
import { flattenClaim } from '../../local/http-api.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function httpIdentity(claims: Record<string, unknown>): {
  claims: Record<string, string>;
  authorization: string;
} {
  // With the stack's audience unless the payload says otherwise (`aud: undefined` leaves it out, as a token without one).
  const payload = Object.fromEntries(
    Object.entries({ aud: 'tenantcast-local', ...claims }).filter(([, v]) => v !== undefined),
  );
  return {
    claims: Object.fromEntries(Object.entries(payload).map(([k, v]) => [k, flattenClaim(v)])),
    authorization: `Bearer ${b64({ alg: 'RS256', typ: 'JWT', kid: 'test' })}.${b64(payload)}.c2lnbmF0dXJl`,
  };
}
