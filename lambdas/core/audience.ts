/**
 * Who may receive a delivered message. A message without `audience` goes to every member of the group; with one,
 * the broadcaster (and replay) checks each member against it, using the roles and claims the member's token had
 * when it subscribed (kept on the membership item).
 */
import * as z from './zod.ts';

const ClaimValue = z.union([z.string(), z.number(), z.boolean()]);

export const Audience = z.strictObject({
  /** The member needs any one of these roles. */
  roles: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  /** Members with any one of these roles need not meet `claim` (they still need one of `roles`). */
  bypassRoles: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  /**
   * The member's claim `name` must equal one of `anyOf` (or, for an array claim, contain one of them), values compared
   * as strings (`claimValues`); with `firstValue`, only an array claim's first value counts (an entity rule's
   * `equalsClaim`, as the HTTP API reads it).
   */
  claim: z.optional(
    z.strictObject({
      name: z.string().check(z.minLength(1)),
      /** Empty: no member meets the claim (only bypass roles receive). */
      anyOf: z.array(ClaimValue),
      firstValue: z.optional(z.literal(true)),
    }),
  ),
  /**
   * The fingerprint of the rules it was judged under (an entity's live feed: lambdas/core/entities/access.ts,
   * `ruleFingerprint`). A replay of such messages checks it against the rules in force, and gives the member a
   * `reset` (`RULES_CHANGED`) instead where they differ: the history must not outlive the rules that let it be seen.
   */
  rules: z.optional(z.string().check(z.minLength(1), z.maxLength(64))),
});
export type Audience = z.infer<typeof Audience>;

export interface AudienceMember {
  readonly roles: readonly string[];
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * A claim's values as strings, as both transports and every filter read them: an array is its scalar elements, a
 * string is one value (never split: `"[bob]"` is the value `[bob]`, not `bob`), numbers and booleans are stringified.
 * Anything else (objects, missing) has no values.
 */
export function claimValues(claims: Readonly<Record<string, unknown>>, name: string): string[] {
  const raw = Object.hasOwn(claims, name) ? claims[name] : undefined;
  if (Array.isArray(raw)) return raw.filter((v) => ['string', 'number', 'boolean'].includes(typeof v)).map(String);
  if (typeof raw === 'number' || typeof raw === 'boolean') return [String(raw)];
  if (typeof raw !== 'string') return [];
  return [raw];
}

/**
 * Whether a member may receive a message with this audience. The same rights as the entity API's over HTTP
 * (lambdas/core/entities/access.ts): one of `roles` always, then a bypass role or the claim condition.
 */
export function isInAudience(audience: Audience | undefined, member: AudienceMember): boolean {
  if (audience === undefined) return true;
  if (audience.roles !== undefined && !audience.roles.some((role) => member.roles.includes(role))) return false;
  if (audience.bypassRoles?.some((role) => member.roles.includes(role))) return true;
  const claim = audience.claim;
  if (claim === undefined) return true;
  const values = claimValues(member.claims ?? {}, claim.name);
  const wanted = claim.anyOf.map(String);
  return (claim.firstValue ? values.slice(0, 1) : values).some((value) => wanted.includes(value));
}
