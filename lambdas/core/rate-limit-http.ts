/**
 * The per-user rate limit of the HTTP API (docs/security.md): checked before the route runs; over the limit the
 * answer is 429 `RATE_LIMITED` with `Retry-After` (seconds) and `retryAfterMs` in the error body.
 */
import type { ClaimNames } from './auth.ts';
import { callerOf, type EntityHttpResponse } from './entities/http.ts';
import type { HttpIdentity } from './http-identity.ts';
import { type EffectiveLimits, type RateLimiter, rateKeys } from './rate-limit.ts';

export interface HttpRateLimitDeps {
  readonly limiter: RateLimiter;
  readonly limitsOf: (tenantId: string) => Promise<EffectiveLimits>;
  readonly claimNames: ClaimNames;
}

/** Undefined when the request may go on; else the 429 response. A request without a usable identity goes on (the route refuses it). */
export async function httpRateLimited(
  identity: HttpIdentity,
  deps: HttpRateLimitDeps,
): Promise<EntityHttpResponse | undefined> {
  let caller: { tenantId: string; userId: string };
  try {
    caller = callerOf(identity, deps.claimNames);
  } catch {
    return undefined;
  }
  const limits = await deps.limitsOf(caller.tenantId);
  const decision = await deps.limiter.take(rateKeys.userHttp(caller.tenantId, caller.userId), limits.http);
  if (decision.allowed) return undefined;
  return {
    statusCode: 429,
    headers: { 'content-type': 'application/json', 'retry-after': String(Math.ceil(decision.retryAfterMs / 1000)) },
    body: JSON.stringify({
      error: { code: 'RATE_LIMITED', message: 'too many requests from this user', retryAfterMs: decision.retryAfterMs },
    }),
  };
}
