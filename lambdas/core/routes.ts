/**
 * Client frames on an open connection: subscribe, unsubscribe, publish, ping, and anything else ($default).
 * Pure core: every dependency is a port passed in; the handler (lambdas/handlers/message.ts) wires the real ones.
 * Every outcome is a frame for the caller; nothing here throws past `handleFrame`.
 */
import { limits } from '../manifest.ts';
import type { QueueMessage } from './delivery.ts';
import { assertMayFollow, assertMayListFollowers } from './entities/access.ts';
import {
  BadRequestError,
  ForbiddenError,
  RateLimitedError,
  TenantcastError,
  toTenantcastError,
  UnauthorizedError,
} from './errors.ts';
import { assertAllowed, type Caller } from './permissions.ts';
import {
  allMembers,
  announceJoin,
  announceLeave,
  hasPresenceEvents,
  type LivePresence,
  livePresence,
  type PresenceDeps,
  presencePage,
} from './presence.ts';
import {
  ack,
  errorFrame,
  type PresenceFrame,
  type PublishFrame,
  parseClientFrame,
  parseJsonFrame,
  pong,
  refOf,
  type ServerFrame,
  type SubscribeFrame,
  type UnsubscribeFrame,
} from './protocol.ts';
import { assertPublishData } from './publish-data.ts';
import type { Member, Registry } from './registry.ts';
import type { TenantDirectory } from './tenants.ts';

/** The `retryAfterMs` of a subscribe refused at the subscription cap while room is coming back. */
export const SUBSCRIPTION_CAP_RETRY_MS = 1000;
/**
 * How long from a connection's first subscribe refused at the cap more are worth another try: longer than a client's
 * unsubscribe waits to be sent again after RATE_LIMITED (its backoff, at most 20 s by default, plus `retryAfterMs`).
 */
export const SUBSCRIPTION_CAP_FREEING_MS = 60_000;

export interface RouteDeps {
  readonly registry: Pick<Registry, 'subscribe' | 'unsubscribe' | 'completeReplay'>;
  /**
   * Whether the connection may subscribe to one more group (`limits.subscriptionsPerConnection`; one it has already
   * does not count). @default no cap
   */
  readonly hasRoomFor?: (connectionId: string, group: string) => Promise<boolean>;
  /**
   * When the connection's current stretch at the subscription cap began (`Registry.atCapSince`): a subscribe that
   * finds no room in its first SUBSCRIPTION_CAP_FREEING_MS is RATE_LIMITED, later ones FORBIDDEN.
   * @default none: always FORBIDDEN
   */
  readonly atCapSince?: (connectionId: string, now: number) => Promise<number>;
  readonly tenants: Pick<TenantDirectory, 'get'>;
  /** Puts a message (or a replay request) on the delivery queue. */
  readonly enqueue: (message: QueueMessage, meta: { connectionId: string }) => Promise<void>;
  /**
   * The group's current seq. Read after the membership is written, so every message with a higher seq is delivered
   * to the new member: the ack tells a client where its subscription starts (and what to resume from later).
   */
  readonly groupSeq?: (tenantId: string, group: string) => Promise<number>;
  readonly newId: () => string;
  readonly now: () => number;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
  /**
   * Rate limits (docs/security.md): `message` for every frame of a connection, `publish` for each publish of the
   * tenant, `presence` for each presence request of a connection (on top of `message`). Throws RateLimitedError
   * when the limit is reached. Omitted: no limits.
   */
  readonly admit?: (kind: 'message' | 'publish' | 'presence', caller: Caller, connectionId: string) => Promise<void>;
  /**
   * `refresh`: verifies the new token for this caller (UNAUTHORIZED / FORBIDDEN) and extends the connection's life
   * (lambdas/core/expiry.ts). Omitted: `refresh` is refused as BAD_REQUEST.
   */
  readonly refresh?: (connectionId: string, caller: Caller, token: string) => Promise<void>;
  /**
   * Presence (lambdas/core/presence.ts): answers `presence` and announces join/leave on subscribe/unsubscribe in
   * the tenant's `presenceGroups`. Omitted: `presence` is refused as BAD_REQUEST and nothing is announced.
   */
  readonly presence?: PresenceDeps;
}

export interface FrameRequest {
  readonly body: string | undefined;
  readonly connectionId: string;
  /** Epoch ms at which the connection opened (API Gateway's `requestContext.connectedAt`). */
  readonly connectedAt: number;
  /**
   * Epoch ms at which API Gateway received this frame (`requestContext.requestTimeEpoch`): orders a connection's
   * subscribe and unsubscribe of one group, which may run concurrently. Omitted: they are not ordered.
   */
  readonly receivedAt?: number;
  /** From the authorizer context; undefined means the route was reached without it (a deployment error). */
  readonly caller: Caller | undefined;
}

export async function handleFrame(request: FrameRequest, deps: RouteDeps): Promise<ServerFrame> {
  let ref: string | undefined;
  try {
    if (request.caller !== undefined && deps.admit !== undefined) {
      try {
        await deps.admit('message', request.caller, request.connectionId);
      } catch (err) {
        ref = refOfBody(request.body);
        throw err;
      }
    }
    const value = parseJsonFrame(request.body);
    ref = refOf(value);
    const frame = parseClientFrame(value);
    const caller = request.caller;
    if (caller === undefined) throw new UnauthorizedError('connection has no identity');
    const on: Route = { request, caller, deps, ref };
    switch (frame.action) {
      case 'ping':
        return pong(ref);
      case 'subscribe':
        return await subscribe(on, frame);
      case 'presence':
        return await presence(on, frame);
      case 'refresh':
        if (deps.refresh === undefined) throw new BadRequestError("unknown action 'refresh'");
        await deps.refresh(request.connectionId, caller, frame.token);
        return ack(ref);
      case 'unsubscribe':
        return await unsubscribe(on, frame);
      case 'publish':
        return await publish(on, frame);
    }
  } catch (err) {
    if (!(err instanceof TenantcastError)) deps.onError?.(err, { connectionId: request.connectionId });
    const error = toTenantcastError(err);
    return errorFrame(
      ref,
      error.code,
      error.message,
      error instanceof RateLimitedError ? { retryAfterMs: error.retryAfterMs } : {},
    );
  }
}

/** One parsed frame of a known caller, as each action's function below takes it. */
interface Route {
  readonly request: FrameRequest;
  readonly caller: Caller;
  readonly deps: RouteDeps;
  readonly ref: string | undefined;
}

async function subscribe({ request, caller, deps, ref }: Route, frame: SubscribeFrame): Promise<ServerFrame> {
  const tenant = await deps.tenants.get(caller.tenantId);
  assertAllowed(tenant.roleRules, caller, 'subscribe', frame.group);
  assertMayFollow(tenant.entityRules, caller, frame.group, tenant.schema);
  if (deps.hasRoomFor !== undefined && !(await deps.hasRoomFor(request.connectionId, frame.group))) {
    await refuseAtCap(request, deps);
  }
  // Presence events: a subscribe that stands announces its join unless another connection of the user was a
  // member before it was written and still is after (presence.ts, announceJoin).
  const presence = hasPresenceEvents(tenant.presenceGroups, frame.group) ? deps.presence : undefined;
  const before = presence && (await allMembers(presence.registry, caller.tenantId, frame.group));
  const announceIfFirst = async () => {
    if (presence && before) {
      await announceJoin(presence, caller.tenantId, frame.group, caller.userId, request.connectionId, before);
    }
  };
  // Not standing: an unsubscribe (or subscribe) of the group received after this one won the race; the
  // client's last word holds, and this one is answered without a join or a replay.
  if (frame.since === undefined) {
    const stands = await deps.registry.subscribe(caller, request.connectionId, frame.group, request.connectedAt, {
      at: request.receivedAt,
    });
    const seq = await deps.groupSeq?.(caller.tenantId, frame.group);
    if (stands) await announceIfFirst();
    return ack(ref, undefined, seq);
  }
  // Membership first (marked as waiting for its replay), then the replay request on the group's ordered
  // stream: the broadcaster replays history in order with live messages (docs/delivery.md, "Recovery").
  const stands = await deps.registry.subscribe(caller, request.connectionId, frame.group, request.connectedAt, {
    since: frame.since,
    at: request.receivedAt,
  });
  if (!stands) return ack(ref);
  try {
    await deps.enqueue(
      {
        v: 1,
        kind: 'replay',
        tenantId: caller.tenantId,
        group: frame.group,
        connectionId: request.connectionId,
        since: frame.since,
        roles: [...caller.roles],
        claims: { ...caller.claims },
      },
      { connectionId: request.connectionId },
    );
  } catch (err) {
    // No replay is coming: the member must not wait for one (live delivery skips a waiting member). Until 2026-12-04
    // it did, for the rest of its membership, while the client was told INTERNAL (found by an attacking pass).
    // Only this subscribe's wait: a client that sent the subscribe again (a timeout) has a newer one, whose replay
    // request is queued (until review this cleared it, and that replay was skipped as served).
    await deps.registry
      .completeReplay(caller.tenantId, frame.group, request.connectionId, frame.since, request.receivedAt)
      .catch((e: unknown) => deps.onError?.(e, { connectionId: request.connectionId, group: frame.group }));
    throw err;
  }
  await announceIfFirst();
  return ack(ref);
}

/**
 * A subscribe with no room left. In the first SUBSCRIPTION_CAP_FREEING_MS at the cap since the connection's last
 * unsubscribe, RATE_LIMITED: room may be coming back, as a client swapping groups at the cap sends its unsubscribes
 * with its subscribes (in either order, the frame rate limit maybe holding the unsubscribes back, which write nothing
 * then). Clients drop a FORBIDDEN group for good: until 2026-12-05 swapping 40 of 100 groups at once lost 1–3 of the
 * new ones (found by a newcomer's pass). After that, FORBIDDEN: an app over the cap is told, not retried for ever (a
 * client's rollover waits for every subscribe's answer; found in review). Until a review the window followed the
 * connection's last unsubscribe, which a swap's own unsubscribes may not have written yet.
 */
async function refuseAtCap(request: FrameRequest, deps: RouteDeps): Promise<never> {
  const message = `this connection has ${limits.subscriptionsPerConnection} subscriptions, the most one may have: unsubscribe from one first, or open another connection`;
  const now = request.receivedAt ?? Date.now();
  const since = await deps.atCapSince?.(request.connectionId, now);
  if (since !== undefined && now - since < SUBSCRIPTION_CAP_FREEING_MS) {
    throw new RateLimitedError(message, SUBSCRIPTION_CAP_RETRY_MS);
  }
  throw new ForbiddenError(message);
}

async function presence({ request, caller, deps, ref }: Route, frame: PresenceFrame): Promise<ServerFrame> {
  if (deps.presence === undefined) throw new BadRequestError("unknown action 'presence'");
  const tenant = await deps.tenants.get(caller.tenantId);
  assertAllowed(tenant.roleRules, caller, 'subscribe', frame.group);
  assertMayListFollowers(tenant.entityRules, caller, frame.group, tenant.schema);
  await deps.admit?.('presence', caller, request.connectionId);
  const presence = deps.presence;
  const live: LivePresence = presence.live ?? ((tenantId, group, o) => livePresence(presence, tenantId, group, o));
  const members = await live(caller.tenantId, frame.group, {
    announceLeaves: hasPresenceEvents(tenant.presenceGroups, frame.group),
  });
  return { ...ack(ref), ...presencePage(members, frame.after, limits.frameBytes) };
}

async function unsubscribe({ request, caller, deps, ref }: Route, frame: UnsubscribeFrame): Promise<ServerFrame> {
  // An unconfigured tenant may still unsubscribe: it just has no presence events.
  const tenant = deps.presence && (await deps.tenants.get(caller.tenantId).catch(() => undefined));
  const presence = hasPresenceEvents(tenant?.presenceGroups, frame.group) ? deps.presence : undefined;
  const before: Member[] | undefined = presence && (await allMembers(presence.registry, caller.tenantId, frame.group));
  const left = await deps.registry.unsubscribe(caller.tenantId, request.connectionId, frame.group, request.receivedAt);
  // A subscribe received after this one stands (the member did not leave): no leave to announce.
  if (presence && before && left) {
    // Best effort, as on $disconnect: the membership is gone, and the unsubscribe is acknowledged whatever the
    // announcement's reads and posts do.
    try {
      await announceLeave(presence, caller.tenantId, frame.group, caller.userId, request.connectionId, before);
    } catch (err) {
      presence.onError?.(err, { group: frame.group, event: 'leave' });
    }
  }
  return ack(ref);
}

async function publish({ request, caller, deps, ref }: Route, frame: PublishFrame): Promise<ServerFrame> {
  assertPublishData(frame.data);
  const tenant = await deps.tenants.get(caller.tenantId);
  assertAllowed(tenant.roleRules, caller, 'publish', frame.group);
  await deps.admit?.('publish', caller, request.connectionId);
  const id = deps.newId();
  await deps.enqueue(
    { v: 1, id, tenantId: caller.tenantId, group: frame.group, data: frame.data, from: caller.userId, ts: deps.now() },
    { connectionId: request.connectionId },
  );
  return ack(ref, id);
}

/** The ref of a raw frame, for the error of a frame refused before it was parsed (a rate limit). */
function refOfBody(body: string | undefined): string | undefined {
  try {
    return refOf(parseJsonFrame(body));
  } catch {
    return undefined;
  }
}
