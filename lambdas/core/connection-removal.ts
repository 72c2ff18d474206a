/**
 * Removing an ending connection as `$disconnect` does: its items, and a presence `leave` in each group with presence
 * events where it was the user's last connection (lambdas/core/presence.ts). Shared by `$disconnect` and the reaper,
 * which closes connections whose token expired and removes their items itself (`$disconnect` is best-effort in AWS;
 * the one its DeleteConnection triggers may run beside it and announce the same `leave`: events are idempotent).
 * Until 2026-12-05 the reaper removed them silently, and the group's other members saw the user online for good.
 * A connection delivery or a `presence` request already removed (found gone) is announced from what that removal
 * remembered (`Registry.groupsLeft`).
 */
import { ForbiddenError } from './errors.ts';
import {
  announceLeave,
  hasPresenceEvents,
  type PresenceDeps,
  presenceGroupsOf,
  removeAnnouncingLeaves,
} from './presence.ts';
import type { Registry } from './registry.ts';
import type { TenantDirectory } from './tenants.ts';

/** The ports of a removal: the registry, API Gateway's Management API, the tenant directory. */
export interface ConnectionRemovalOptions {
  readonly registry: Registry;
  readonly connections: Pick<PresenceDeps, 'isConnected' | 'post'>;
  readonly tenants: Pick<TenantDirectory, 'get'>;
  /** A presence `leave` (or a read it needs) that failed; the removal goes on. */
  readonly onError: (err: unknown, context: Record<string, unknown>) => void;
}

/** Who is leaving: the connection and its user, of its tenant. */
export interface Leaving {
  readonly tenantId: string;
  readonly userId: string;
  readonly connectionId: string;
}

/**
 * The reaper's part for a connection removed by delivery (a 410) or a `presence` request whose `$disconnect` never
 * came (best effort in AWS): its `LEFT` item, past `Registry.leftAnnounceAfterSeconds`, still there (a `$disconnect`
 * deletes it), gets the `leave`s that `$disconnect` would have announced, in its groups with presence events where the
 * user has no other connection, and is then deleted. Returns whether it announced in any group. Until 2026-12-05 such
 * a user stayed `joined` in the events of every room for good (the `presence` answers were right).
 *
 * It is the last chance for those leaves, so a failure (reading the tenant, a group's members) throws and keeps the
 * item: the reaper's bucket is retried on its next sweep, and groups already announced may hear it twice (until
 * review a failure was only logged and the item deleted, and the leave was lost for good). A tenant no longer
 * configured has no presence groups: the item goes.
 */
export function createLeftAnnouncer(options: ConnectionRemovalOptions): (connectionId: string) => Promise<boolean> {
  const { registry, tenants } = options;
  const presence = presenceDepsOf(options);
  return async (connectionId) => {
    const gone = await registry.leftConnection(connectionId);
    if (gone === undefined) return false;
    const patterns = await presencePatterns(tenants, gone.tenantId);
    let announced = false;
    for (const group of gone.groups.filter((g) => hasPresenceEvents(patterns, g))) {
      if (await announceLeave(presence, gone.tenantId, group, gone.userId, connectionId, [{ connectionId }])) {
        announced = true;
      }
    }
    await registry.forgetLeft(connectionId);
    return announced;
  };
}

function presenceDepsOf(options: ConnectionRemovalOptions): PresenceDeps & { registry: Pick<Registry, 'groupsOf'> } {
  const { registry, connections, onError } = options;
  return {
    registry,
    isConnected: (connectionId) => connections.isConnected(connectionId),
    post: (connectionId, data) => connections.post(connectionId, data),
    onError,
  };
}

export function createConnectionRemoval(
  options: ConnectionRemovalOptions,
): (who: Leaving) => Promise<{ groups: number }> {
  const { registry, tenants } = options;
  const presence = presenceDepsOf(options);
  return async (who) => {
    // A read this removal's leaves need that fails (the tenant, or the groups an earlier removal kept) makes it remove
    // remembering: the `LEFT` item stays, with this removal's groups added, and the reaper announces them ~2 minutes
    // later (until review the item was deleted here, and those leaves were lost for good).
    let unsure = false;
    const patterns = await presencePatterns(tenants, who.tenantId).catch((err: unknown) => {
      unsure = true;
      presence.onError?.(err, { tenantId: who.tenantId });
      return undefined;
    });
    const groups = await presenceGroupsOf(presence, patterns, who.connectionId);
    // Groups delivery (a 410) or a `presence` request took the connection out of before this ran (its `LEFT` item).
    const removedEarlier =
      patterns === undefined || patterns.length === 0
        ? undefined
        : async () => {
            try {
              return (await registry.groupsLeft(who.connectionId, who.tenantId)).filter((g) =>
                hasPresenceEvents(patterns, g),
              );
            } catch (err) {
              unsure = true;
              throw err;
            }
          };
    return removeAnnouncingLeaves(
      presence,
      who,
      groups,
      () => registry.removeConnection(who.connectionId, { remember: unsure }),
      removedEarlier,
    );
  };
}

/** The tenant's presence group patterns; none for a tenant no longer configured. Other failures are thrown. */
async function presencePatterns(
  tenants: Pick<TenantDirectory, 'get'>,
  tenantId: string,
): Promise<readonly string[] | undefined> {
  try {
    return (await tenants.get(tenantId)).presenceGroups;
  } catch (err) {
    if (err instanceof ForbiddenError) return undefined;
    throw err;
  }
}
