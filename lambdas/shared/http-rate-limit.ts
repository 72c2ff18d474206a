/** The HTTP API's per-user rate limit for a handler (lambdas/core/rate-limit-http.ts): clients from the environment. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { EntityHttpResponse } from '../core/entities/http.ts';
import { numberEnv, requireEnv } from '../core/env.ts';
import { DynamoRateLimiter, effectiveLimits } from '../core/rate-limit.ts';
import { httpRateLimited } from '../core/rate-limit-http.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { createDocumentClient } from './aws.ts';
import { claimNamesFromEnv } from './verifier.ts';

export function createHttpRateLimit(): (event: APIGatewayProxyEventV2) => Promise<EntityHttpResponse | undefined> {
  const client = createDocumentClient();
  const tableName = requireEnv('TABLE_NAME');
  const tenants = new TenantDirectory({
    client,
    tableName,
    cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
  });
  const deps = {
    limiter: new DynamoRateLimiter({ client, tableName }),
    limitsOf: async (tenantId: string) => {
      try {
        return effectiveLimits((await tenants.get(tenantId)).limits);
      } catch {
        return effectiveLimits(undefined);
      }
    },
    claimNames: claimNamesFromEnv(),
  };
  return (event) => {
    const claims = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } }).authorizer
      ?.jwt?.claims;
    return httpRateLimited(claims, deps);
  };
}
