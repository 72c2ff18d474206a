/**
 * Server-side publishing over HTTP: `POST /v1/publish` (API Gateway HTTP API, JWT authorizer). The same message and
 * the same permission rules as the WebSocket `publish` frame, for callers that hold a token but no connection:
 *
 * - `{"group":"chat:general","data":…}` publishes to a group of the token's tenant (role rules of the tenant);
 * - `{"userId":"bob","data":…}` publishes to the group `user:bob`, which reaches every connection of user `bob`
 *   (docs/delivery.md, "User groups"), with a seq, in order, and replayable like any group.
 *
 * Answers `202 {"id":"<message id>","group":"<group>"}` once the message is durably queued (not yet delivered), or
 * the entity API's error body `{"error":{"code","message"}}` with its status. Pure: every port is an argument.
 */
import type { ClaimNames } from './auth.ts';
import type { DeliveryMessage } from './delivery.ts';
import {
  callerOf,
  type EntityHttpRequest,
  type EntityHttpResponse,
  errorResponse,
  parseBody,
} from './entities/http.ts';
import { BadRequestError, TenantcastError, toTenantcastError } from './errors.ts';
import type { HttpIdentity } from './http-identity.ts';
import { assertAllowed, type Caller, USER_GROUP_PREFIX } from './permissions.ts';
import { GROUP_PATTERN, USER_GROUP_ID } from './protocol.ts';
import { assertPublishData } from './publish-data.ts';
import type { TenantDirectory } from './tenants.ts';
import * as z from './zod.ts';

const data = z.unknown().check(z.refine((v) => v !== undefined, 'data is required'));
const groupName = z.string().check(z.regex(GROUP_PATTERN, `group must match ${GROUP_PATTERN.source}`));
/** A user id that makes a valid `user:<id>` group name. */
const userId = z
  .string()
  .check(
    z.regex(
      USER_GROUP_ID,
      `userId must match ${USER_GROUP_ID.source} (printable ASCII without '#': the group user:<id> must be a group name)`,
    ),
  );

const GroupPublishBody = z.strictObject({ group: groupName, data });
const UserPublishBody = z.strictObject({ userId, data });
export const PublishBody = z.union([GroupPublishBody, UserPublishBody]);
export type PublishBody = z.infer<typeof PublishBody>;

export type PublishRequest = Pick<EntityHttpRequest, 'body' | 'isBase64Encoded'> & HttpIdentity;

export interface PublishDeps {
  readonly tenants: Pick<TenantDirectory, 'get'>;
  /** Puts the message on the delivery queue (FIFO, `deliverySendParams`). */
  readonly enqueue: (message: DeliveryMessage) => Promise<void>;
  readonly newId: () => string;
  readonly now: () => number;
  readonly claimNames: ClaimNames;
  /** Largest request body (TOO_LARGE above it). */
  readonly maxBodyBytes: number;
  /**
   * Takes a publish from the tenant's publish bucket, the one WebSocket publishes take (docs/security.md, "Rate
   * limits"); throws RateLimitedError (429 with `Retry-After`) when it is empty. The user's HTTP bucket is taken
   * before the request reaches here (lambdas/core/rate-limit-http.ts). Omitted: no limit.
   */
  readonly admit?: (caller: Caller) => Promise<void>;
  readonly onError?: (err: unknown) => void;
}

/** The body, validated: exactly one of `group` and `userId`, and `data`; BAD_REQUEST saying what is wrong. */
export function parsePublishBody(value: unknown): { group: string; data: unknown } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('body must be a JSON object');
  }
  const fields = value as Record<string, unknown>;
  const hasGroup = Object.hasOwn(fields, 'group');
  const hasUser = Object.hasOwn(fields, 'userId');
  if (hasGroup === hasUser) throw new BadRequestError("body needs exactly one of 'group' and 'userId'");
  const schema = hasGroup ? GroupPublishBody : UserPublishBody;
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const unknownKey = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    throw new BadRequestError(
      unknownKey !== undefined
        ? `unknown field '${unknownKey.slice(0, 40)}'`
        : `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const body = result.data;
  return { group: 'group' in body ? body.group : `${USER_GROUP_PREFIX}${body.userId}`, data: body.data };
}

export async function handlePublishRequest(request: PublishRequest, deps: PublishDeps): Promise<EntityHttpResponse> {
  try {
    // The tenant and the sender come from the verified token only, never from the body.
    const caller = callerOf(request, deps.claimNames);
    const { group, data } = parsePublishBody(parseBody(request, deps.maxBodyBytes));
    assertPublishData(data);
    const tenant = await deps.tenants.get(caller.tenantId);
    assertAllowed(tenant.roleRules, caller, 'publish', group);
    await deps.admit?.(caller);
    const id = deps.newId();
    await deps.enqueue({ v: 1, id, tenantId: caller.tenantId, group, data, from: caller.userId, ts: deps.now() });
    return { statusCode: 202, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, group }) };
  } catch (err) {
    if (!(err instanceof TenantcastError) || err.code === 'INTERNAL') deps.onError?.(err);
    return errorResponse(toTenantcastError(err));
  }
}
