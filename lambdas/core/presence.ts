/**
 * Presence (docs/protocol.md, "Presence"): who is in a group, per user with a connection count, and join/leave
 * events for the groups a tenant configures (`presenceGroups` in its TenantConfig).
 *
 * Accuracy without `$disconnect` (best-effort in AWS): membership items live until the connection's 2-hour cap, far
 * too long for presence, so every candidate connection is verified with `GetConnection` on the Management API
 * before it is counted. A 410 removes the connection and its memberships (as delivery does on 410) and, if it was
 * the user's last connection in the group, announces the user's leave. So a connection dropped without
 * `$disconnect` vanishes from the next presence answer that checks it.
 *
 * Bounded cost (docs/security.md, "Presence amplification"): one `presence` frame makes at most `verifyLimit` (50)
 * `GetConnection` calls, whatever the group's size, and with `checks` (a per-container memo, connection-checks.ts)
 * a connection checked in the last 10 s is not checked again: its outcome stands. So a viewer repeating `presence`
 * on a 300-member group costs at most 300 calls per 10 s per container, not 300 per frame. Connections not checked
 * this time (over the limit) are counted as the registry has them; the least recently checked go first, so a large
 * group is verified in turns over successive requests. With `sharedPresence`, requests for one tenant and group
 * within 1 s share one answer (one member query, one round of checks) in a container; the presence rate limit
 * (1 per second per connection, burst 5; lambdas/core/rate-limit.ts) bounds how often one connection asks at all.
 *
 * Join/leave events are posted directly to the group's connections through `@connections`: they are not sequenced,
 * not kept in history and not replayed (they describe the present, not the group's message stream). Concurrent
 * subscribes of one user's connections can both announce `join`: clients treat events as idempotent updates.
 */
import { settleConcurrently } from './concurrency.ts';
import type { ConnectionChecks } from './connection-checks.ts';
import { ENTITY_GROUP_PREFIX, globToRegExp } from './permissions.ts';
import type { PresenceEventFrame } from './protocol.ts';
import type { Member, Registry } from './registry.ts';
import { TtlCache } from './ttl-cache.ts';

export interface PresenceMember {
  readonly userId: string;
  readonly connections: number;
}

export interface PresenceDeps {
  readonly registry: Pick<Registry, 'members' | 'removeConnection'>;
  /** GetConnection: false when the connection is gone (410). */
  readonly isConnected: (connectionId: string) => Promise<boolean>;
  /** PostToConnection of one frame; false when the connection is gone (410). */
  readonly post: (connectionId: string, data: string) => Promise<boolean>;
  /** Calls to the Management API in flight at once. @default 16 */
  readonly concurrency?: number;
  /** Connections checked with GetConnection per presence request at most (file comment). @default 50 */
  readonly verifyLimit?: number;
  /** Recent GetConnection outcomes (file comment); omitted: every request checks up to `verifyLimit` anew. */
  readonly checks?: ConnectionChecks;
  readonly onError?: (err: unknown, context: Record<string, unknown>) => void;
  /** Answers a presence request; omitted: `livePresence` on these deps. `sharedPresence` builds one with a cache. */
  readonly live?: LivePresence;
}

export type LivePresence = (
  tenantId: string,
  group: string,
  options?: { readonly announceLeaves?: boolean },
) => Promise<PresenceMember[]>;

/** The group's members per user, with how many connections each has; sorted by userId. */
export function aggregatePresence(members: readonly Pick<Member, 'userId'>[]): PresenceMember[] {
  const counts = new Map<string, number>();
  for (const member of members) counts.set(member.userId, (counts.get(member.userId) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([userId, connections]) => ({ userId, connections }));
}

/**
 * One `presence` answer's page: the members after user id `after`, as many as keep the answer's JSON within
 * `maxBytes` (at least one), with `total` users in all and `next` when more follow. Until 2026-12-03 the whole list
 * went in one ack: 700 users of 200-character ids made a 150 KB frame, over API Gateway's 128 KB per message.
 */
export function presencePage(
  members: readonly PresenceMember[],
  after: string | undefined,
  maxBytes: number,
): { members: PresenceMember[]; total: number; next?: string } {
  const rest = after === undefined ? members : members.filter((m) => m.userId > after);
  const page: PresenceMember[] = [];
  // The ack's envelope: type, total, ref (at most 128 characters) and next (at most 256), each escaped at worst.
  let bytes = 6 * (128 + 256) + 256;
  for (const member of rest) {
    const size = Buffer.byteLength(JSON.stringify(member), 'utf8') + 1;
    if (page.length > 0 && bytes + size > maxBytes) break;
    page.push(member);
    bytes += size;
  }
  const last = page.at(-1);
  const more = page.length < rest.length && last !== undefined;
  return { members: page, total: members.length, ...(more && { next: last.userId }) };
}

/**
 * Whether a tenant's `presenceGroups` patterns (`*` = any characters) cover `group`. An entity's live feed never has
 * presence events, whatever the patterns: its members may be bound by a row filter that keeps other users' rows from
 * them, and a `join` would name who follows those rows (lambdas/core/entities/access.ts, `assertMayListFollowers`;
 * until 2026-12-05 a pattern such as `*` covered `entity:` groups too).
 */
export function hasPresenceEvents(patterns: readonly string[] | undefined, group: string): boolean {
  if (group.startsWith(ENTITY_GROUP_PREFIX)) return false;
  return (patterns ?? []).some((pattern) => globToRegExp(pattern).test(group));
}

/** Every member of a group (all pages); `consistent`: a strongly consistent read. */
export async function allMembers(
  registry: Pick<Registry, 'members'>,
  tenantId: string,
  group: string,
  read: { readonly consistent?: boolean } = {},
): Promise<Member[]> {
  const members: Member[] = [];
  for await (const page of registry.members(tenantId, group, read)) members.push(...page);
  return members;
}

/**
 * The group's live members per user. Candidates are verified with GetConnection (file comment); the gone ones are
 * removed, and a user whose last connection was gone is announced as left when `announceLeaves` is set.
 */
export async function livePresence(
  deps: PresenceDeps,
  tenantId: string,
  group: string,
  options: { readonly announceLeaves?: boolean } = {},
): Promise<PresenceMember[]> {
  const members = await allMembers(deps.registry, tenantId, group);
  const checked = toCheck(members, deps.verifyLimit ?? 50, deps.checks);
  const check = (id: string) => (deps.checks ? deps.checks.check(id, deps.isConnected) : deps.isConnected(id));
  const results = await settleConcurrently(checked, deps.concurrency ?? 16, (m) => check(m.connectionId));
  const gone = new Set<string>();
  results.forEach((result, i) => {
    const member = checked[i];
    if (member === undefined) return;
    // A failed check is not evidence of absence: the member is counted.
    if (result.status === 'rejected') deps.onError?.(result.reason, { connectionId: member.connectionId });
    else if (!result.value) gone.add(member.connectionId);
  });
  const live = members.filter((m) => !gone.has(m.connectionId));
  if (gone.size > 0) {
    // Remembered: the `$disconnect` that follows announces the `leave` in the connection's other groups.
    await settleConcurrently([...gone], deps.concurrency ?? 16, (id) =>
      deps.registry.removeConnection(id, { remember: true }),
    );
    if (options.announceLeaves) {
      const liveUsers = new Set(live.map((m) => m.userId));
      const left = new Set(
        members.filter((m) => gone.has(m.connectionId) && !liveUsers.has(m.userId)).map((m) => m.userId),
      );
      for (const userId of left) await announce(deps, live, { type: 'presence', group, event: 'leave', userId });
    }
  }
  return aggregatePresence(live);
}

/**
 * `livePresence` whose answers are shared for `ttlMs` per tenant and group (and `announceLeaves`) in this
 * container: concurrent and repeated requests within `ttlMs` make one member query and one round of checks.
 */
export function sharedPresence(deps: PresenceDeps, ttlMs: number): LivePresence {
  const answers = new TtlCache<PresenceMember[]>(
    (key) => {
      const [tenantId, group, announceLeaves] = JSON.parse(key) as [string, string, boolean];
      return livePresence(deps, tenantId, group, { announceLeaves });
    },
    { ttlMs },
  );
  return (tenantId, group, options = {}) => answers.get(JSON.stringify([tenantId, group, !!options.announceLeaves]));
}

/**
 * The members whose liveness this request uses: those with a fresh outcome in `checks` (no call) and at most
 * `limit` others, least recently checked first (never checked before anything checked).
 */
function toCheck(members: readonly Member[], limit: number, checks: ConnectionChecks | undefined): Member[] {
  if (checks === undefined) return members.slice(0, limit);
  const fresh = members.filter((m) => checks.isFresh(m.connectionId));
  const due = members
    .filter((m) => !checks.isFresh(m.connectionId))
    .map((m) => ({ m, at: checks.lastChecked(m.connectionId) ?? Number.NEGATIVE_INFINITY }))
    .sort((a, b) => a.at - b.at)
    .slice(0, limit)
    .map(({ m }) => m);
  return [...fresh, ...due];
}

/** Posts a presence event to each of `members` (410s ignored: delivery and presence clean those up). */
export async function announce(
  deps: Pick<PresenceDeps, 'post' | 'concurrency' | 'onError'>,
  members: readonly Pick<Member, 'connectionId'>[],
  event: PresenceEventFrame,
): Promise<void> {
  const data = JSON.stringify(event);
  const results = await settleConcurrently(members, deps.concurrency ?? 16, (m) => deps.post(m.connectionId, data));
  results.forEach((result, i) => {
    if (result.status === 'rejected') deps.onError?.(result.reason, { connectionId: members[i]?.connectionId, event });
  });
}

/**
 * After `connectionId` of `userId` joined `group` (its membership written and standing): announces `join` to the
 * group unless another connection of the user was a member both before the write (`before`) and after it (read
 * consistently). After: so a join racing a leave of the user's other connection reads that leave's outcome, as
 * `announceLeave` reads the join's (until 2026-12-04 both decided on a read before: a tab subscribing while the user's
 * other tab disconnected could leave her announced as gone). Before as well: of two connections of the user joining
 * at once, each may see the other after, but not both before, so at least one announces. Repeated joins are allowed
 * (docs/protocol.md).
 */
export async function announceJoin(
  deps: PresenceDeps,
  tenantId: string,
  group: string,
  userId: string,
  connectionId: string,
  before: readonly Member[],
): Promise<void> {
  const others = (members: readonly Member[]) =>
    new Set(members.filter((m) => m.userId === userId && m.connectionId !== connectionId).map((m) => m.connectionId));
  const earlier = others(before);
  const members = await allMembers(deps.registry, tenantId, group, { consistent: true });
  // Gone already (its unsubscribe or $disconnect removed it after the write): its `leave` was decided, and a `join` now
  // would come after it and stand for ever (until 2026-12-04; found by an attacking pass).
  if (!members.some((m) => m.connectionId === connectionId)) return;
  if ([...others(members)].some((id) => earlier.has(id))) return;
  await announce(deps, members, { type: 'presence', group, event: 'join', userId });
}

/**
 * After `connectionId` of `userId` left `group`: announces `leave` to the remaining members if the connection was a
 * member (`before`: the members read before it left) and no other connection of the user is one now, read
 * consistently after the removal. Two connections of one user leaving at once (two tabs closed together) each saw
 * the other before; whichever reads last finds neither and announces (until 2026-12-04 neither did). Returns whether
 * it announced.
 */
export async function announceLeave(
  deps: PresenceDeps,
  tenantId: string,
  group: string,
  userId: string,
  connectionId: string,
  before: readonly Pick<Member, 'connectionId'>[],
): Promise<boolean> {
  if (!before.some((m) => m.connectionId === connectionId)) return false;
  const after = await allMembers(deps.registry, tenantId, group, { consistent: true });
  if (after.some((m) => m.userId === userId && m.connectionId !== connectionId)) return false;
  const remaining = after.filter((m) => m.connectionId !== connectionId);
  await announce(deps, remaining, { type: 'presence', group, event: 'leave', userId });
  return true;
}

/**
 * The groups of `connectionId` with presence events under the tenant's `patterns` (none when it has none). A failed
 * lookup is reported to `onError` and costs only the leave events, never the removal.
 */
export async function presenceGroupsOf(
  deps: Pick<PresenceDeps, 'onError'> & { readonly registry: Pick<Registry, 'groupsOf'> },
  patterns: readonly string[] | undefined,
  connectionId: string,
): Promise<string[]> {
  if (patterns === undefined || patterns.length === 0) return [];
  const groups = await deps.registry.groupsOf(connectionId).catch((err: unknown) => {
    deps.onError?.(err, { connectionId });
    return [];
  });
  return groups.filter((group) => hasPresenceEvents(patterns, group));
}

/**
 * Runs `remove` (the connection's removal, on `$disconnect` or when the reaper closes it) and announces `leave` in each of `groups` (those with
 * presence events) where this was the user's last connection. Announcing is best-effort: its failures are reported
 * to `onError`, never thrown, so the removal's outcome stands.
 *
 * `removedEarlier` names the presence groups another remover already took the connection out of (delivery on a 410,
 * a `presence` request: `Registry.groupsLeft`): it was a member there too. Asked after the members are read, so a
 * membership missing from that read because such a removal took it meanwhile is named there (the removal remembers
 * before it deletes). Until 2026-12-05 those groups were announced nowhere, and their members kept the user's `join`.
 */
export async function removeAnnouncingLeaves<R>(
  deps: PresenceDeps,
  who: { readonly tenantId: string; readonly userId: string; readonly connectionId: string },
  groups: readonly string[],
  remove: () => Promise<R>,
  removedEarlier?: () => Promise<readonly string[]>,
): Promise<R> {
  const before = new Map<string, Pick<Member, 'connectionId'>[]>();
  for (const group of groups) {
    try {
      before.set(group, await allMembers(deps.registry, who.tenantId, group));
    } catch (err) {
      deps.onError?.(err, { group });
    }
  }
  const earlier = new Set(
    removedEarlier === undefined
      ? []
      : await removedEarlier().catch((err: unknown) => {
          deps.onError?.(err, { connectionId: who.connectionId });
          return [];
        }),
  );
  for (const group of earlier) if (!before.has(group)) before.set(group, []);
  const result = await remove();
  for (const [group, read] of before) {
    // Taken out earlier: a member all the same, whether or not the read above still found it.
    const members = earlier.has(group) ? [...read, { connectionId: who.connectionId }] : read;
    try {
      await announceLeave(deps, who.tenantId, group, who.userId, who.connectionId, members);
    } catch (err) {
      deps.onError?.(err, { group });
    }
  }
  return result;
}
