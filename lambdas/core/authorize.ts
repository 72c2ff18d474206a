/** The `$connect` authorizer's decision: 401 (no or invalid token), 403 (explicit deny) or allow with context. */

import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import {
  type ClaimNames,
  ClaimsError,
  callerFromClaims,
  extraClaims,
  extractToken,
  toAuthorizerContext,
} from './auth.ts';

export interface TokenVerifier {
  verify(token: string): Promise<JwtPayload>;
}

export interface AuthorizeDeps {
  readonly verifier: TokenVerifier;
  readonly claimNames: ClaimNames;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

/** API Gateway answers 401 when the authorizer throws exactly this. */
export const UNAUTHORIZED = 'Unauthorized';

export async function authorize(
  event: Pick<APIGatewayRequestAuthorizerEvent, 'headers' | 'queryStringParameters' | 'methodArn'>,
  deps: AuthorizeDeps,
): Promise<APIGatewayAuthorizerResult> {
  const token = extractToken(event);
  if (token === undefined) {
    deps.log?.('connection refused: no token', {});
    throw new Error(UNAUTHORIZED);
  }
  let payload: JwtPayload;
  try {
    payload = await deps.verifier.verify(token);
  } catch (err) {
    // The reason is logged, never the token.
    deps.log?.('connection refused: token not valid', { reason: err instanceof Error ? err.name : 'unknown' });
    throw new Error(UNAUTHORIZED);
  }
  try {
    const caller = { ...callerFromClaims(payload, deps.claimNames), claims: extraClaims(payload, deps.claimNames) };
    const exp = typeof payload.exp === 'number' ? payload.exp : 0;
    return policy(caller.userId, 'Allow', event.methodArn, { ...toAuthorizerContext(caller, exp) });
  } catch (err) {
    if (!(err instanceof ClaimsError)) throw err;
    deps.log?.('connection denied: claims', { reason: err.message });
    return policy(typeof payload.sub === 'string' ? payload.sub : 'unknown', 'Deny', event.methodArn);
  }
}

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
