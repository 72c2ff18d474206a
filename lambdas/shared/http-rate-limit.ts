/**
 * Rate limits of the HTTP API handlers (lambdas/core/rate-limit-http.ts, docs/security.md): clients from the
 * environment. `createHttpRateLimit` takes the user's HTTP bucket before a route runs; `createPublishAdmit` takes
 * the tenant's publish bucket for `POST /v1/publish`, the very bucket WebSocket publishes take.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { EntityHttpResponse } from '../core/entities/http.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { RateLimitedError } from '../core/errors.ts';
import type { Caller } from '../core/permissions.ts';
import { DynamoRateLimiter, type EffectiveLimits, effectiveLimits, rateKeys } from '../core/rate-limit.ts';
import { httpRateLimited } from '../core/rate-limit-http.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { createDocumentClient } from './aws.ts';
import { claimNamesFromEnv } from './verifier.ts';

interface Limits {
  readonly limiter: DynamoRateLimiter;
  readonly limitsOf: (tenantId: string) => Promise<EffectiveLimits>;
}

let shared: Limits | undefined;

/** One limiter and tenant directory per container, whichever limits the handler uses. */
function limits(): Limits {
  if (shared !== undefined) return shared;
  const client = createDocumentClient();
  const tableName = requireEnv('TABLE_NAME');
  const tenants = new TenantDirectory({
    client,
    tableName,
    cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
  });
  shared = {
    limiter: new DynamoRateLimiter({ client, tableName }),
    limitsOf: async (tenantId: string) => {
      try {
        return effectiveLimits((await tenants.get(tenantId)).limits);
      } catch {
        return effectiveLimits(undefined);
      }
    },
  };
  return shared;
}

export function createHttpRateLimit(): (event: APIGatewayProxyEventV2) => Promise<EntityHttpResponse | undefined> {
  const deps = { ...limits(), claimNames: claimNamesFromEnv() };
  return (event) => {
    const claims = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } }).authorizer
      ?.jwt?.claims;
    return httpRateLimited({ claims, authorization: event.headers?.authorization }, deps);
  };
}

/** Takes one publish from the caller's tenant bucket; RateLimitedError when it is empty (as on the WebSocket). */
export function createPublishAdmit(): (caller: Caller) => Promise<void> {
  const { limiter, limitsOf } = limits();
  return async (caller) => {
    const decision = await limiter.take(
      rateKeys.tenantPublish(caller.tenantId),
      (await limitsOf(caller.tenantId)).publish,
    );
    if (!decision.allowed) throw new RateLimitedError('too many publishes in this tenant', decision.retryAfterMs);
  };
}
