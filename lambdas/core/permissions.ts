/**
 * Per-tenant role rules: which groups each role may subscribe and publish to. Patterns are group names in which
 * `*` matches any run of characters (`chat:*`, `*`). A user's request is allowed if any of their roles allows it.
 * Whatever the rules say, a `user:<id>` group can be subscribed only by user `<id>`, and a system group
 * (`entity:<name>`, the live change feed) is published to only by the service itself (the change-feed function
 * enqueues directly), never by a caller: subscribers take its messages for change events.
 */
import { ForbiddenError } from './errors.ts';
import * as z from './zod.ts';

export const RoleRule = z.strictObject({
  subscribe: z._default(z.array(z.string()), []),
  publish: z._default(z.array(z.string()), []),
});
export const RoleRules = z.record(z.string(), RoleRule);
export type RoleRules = z.infer<typeof RoleRules>;

export type Operation = 'subscribe' | 'publish';

export interface Caller {
  readonly tenantId: string;
  readonly userId: string;
  readonly roles: readonly string[];
  /**
   * The token's other claims (registered JWT claims and the tenant/user/roles claims removed), for audience
   * filters on delivered messages (docs/delivery.md). Empty when the token had none.
   */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** The `user:` group prefix: a user's own group, delivered to every connection of that user (docs/protocol.md). */
export const USER_GROUP_PREFIX = 'user:';

/** The live feed of entity `<name>` is the group `entity:<name>` (docs/entities.md, "Live change feed"). */
export const ENTITY_GROUP_PREFIX = 'entity:';

/** Prefixes of the groups only the service publishes to (docs/security.md, "System groups"). */
export const SYSTEM_GROUP_PREFIXES: readonly string[] = [ENTITY_GROUP_PREFIX];

export function isSystemGroup(group: string): boolean {
  return SYSTEM_GROUP_PREFIXES.some((prefix) => group.startsWith(prefix));
}

/** Compiles a glob pattern (`*` = any characters) to an anchored RegExp; every other character is literal. */
export function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`);
}

const compiled = new Map<string, RegExp>();
function matches(pattern: string, group: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    re = globToRegExp(pattern);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(group);
}

export function isAllowed(rules: RoleRules, caller: Caller, operation: Operation, group: string): boolean {
  if (operation === 'publish' && isSystemGroup(group)) return false;
  if (group.startsWith(USER_GROUP_PREFIX) && operation === 'subscribe') {
    // A user's private group: only its owner subscribes, and the owner always may.
    return group.slice(USER_GROUP_PREFIX.length) === caller.userId;
  }
  return caller.roles.some((role) => {
    const rule = Object.hasOwn(rules, role) ? rules[role] : undefined;
    return rule?.[operation].some((pattern) => matches(pattern, group)) ?? false;
  });
}

export function assertAllowed(rules: RoleRules, caller: Caller, operation: Operation, group: string): void {
  if (operation === 'publish' && isSystemGroup(group)) {
    throw new ForbiddenError(`'${group}' is a system group: only the service publishes to entity:* groups`);
  }
  if (!isAllowed(rules, caller, operation, group)) {
    throw new ForbiddenError(`not allowed to ${operation} to '${group}'`);
  }
}
