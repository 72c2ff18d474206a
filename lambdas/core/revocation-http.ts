/**
 * The admin HTTP API (docs/security.md): `POST /v1/admin/disconnect` closes every connection of the caller's tenant,
 * or of one user of it; `GET /v1/usage?from=&to=` reads the tenant's metered usage. Both for the `admin` role only;
 * the tenant is always the token's. Every failure is `{"error":{"code","message"}}` with its status.
 */
import type { ClaimNames } from './auth.ts';
import { callerOf, type EntityHttpResponse, errorResponse, parseBody } from './entities/http.ts';
import { BadRequestError, ForbiddenError, TenantcastError, toTenantcastError } from './errors.ts';
import type { HttpIdentity } from './http-identity.ts';
import { type DisconnectDeps, disconnectAll } from './revocation.ts';
import { parseUsageRange, type UsageStore } from './usage.ts';
import * as z from './zod.ts';

/** The role allowed to use the admin API. */
export const ADMIN_ROLE = 'admin';

export const adminRoutes = { 'POST /v1/admin/disconnect': 'disconnect', 'GET /v1/usage': 'usage' } as const;
export type AdminOperation = (typeof adminRoutes)[keyof typeof adminRoutes];

export const DisconnectBody = z.strictObject({
  userId: z.optional(
    z
      .string()
      .check(z.minLength(1, 'userId must not be empty'), z.maxLength(256, 'userId must be at most 256 characters')),
  ),
});

export interface AdminRequest extends HttpIdentity {
  readonly operation: AdminOperation;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly body: string | undefined;
  readonly isBase64Encoded: boolean;
  /** The invocation's time left (Lambda's `getRemainingTimeInMillis()`). @default the HTTP answer's budget alone */
  readonly timeLeftMs?: number;
}

/**
 * How long a disconnect closes connections before it answers with what is `remaining`: API Gateway's HTTP API gives an
 * integration at most 30 s (HTTP API quotas: integration timeout), and answers the client with an error past it while
 * the function runs on; the rest of the 30 s is for listing the connections and a cold start. Until 2026-12-04 a
 * tenant too big to close in 30 s got that error, with no count of what was done (found by an AWS-fidelity review).
 */
export const DISCONNECT_BUDGET_MS = 20_000;

export interface AdminDeps extends DisconnectDeps {
  readonly usage: Pick<UsageStore, 'read'>;
  readonly claimNames: ClaimNames;
  readonly now: () => number;
}

const json = (statusCode: number, body: unknown): EntityHttpResponse => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export async function handleAdminRequest(request: AdminRequest, deps: AdminDeps): Promise<EntityHttpResponse> {
  try {
    const caller = callerOf(request, deps.claimNames);
    if (!caller.roles.includes(ADMIN_ROLE)) throw new ForbiddenError(`only the '${ADMIN_ROLE}' role may do this`);
    switch (request.operation) {
      case 'disconnect': {
        const raw = request.body === undefined || request.body === '' ? {} : parseBody(request, 4096);
        const parsed = DisconnectBody.safeParse(raw);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new BadRequestError(
            issue?.code === 'unrecognized_keys'
              ? `unknown field ${issue.keys.map((k) => `'${k.slice(0, 40)}'`).join(', ')}`
              : (issue?.message ?? 'invalid body'),
          );
        }
        const budgetMs = Math.min(DISCONNECT_BUDGET_MS, (request.timeLeftMs ?? Number.POSITIVE_INFINITY) - 2000);
        const result = await disconnectAll(caller.tenantId, parsed.data.userId, deps, {
          deadline: deps.now() + budgetMs,
          now: deps.now,
        });
        return json(200, { tenantId: caller.tenantId, ...parsed.data, ...result });
      }
      case 'usage': {
        const { from, to } = parseUsageRange(request.query, deps.now());
        return json(200, {
          tenantId: caller.tenantId,
          from,
          to,
          days: await deps.usage.read(caller.tenantId, from, to),
        });
      }
    }
  } catch (err) {
    if (!(err instanceof TenantcastError)) deps.onError?.(err, { operation: request.operation });
    return errorResponse(toTenantcastError(err));
  }
}
