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
  /** Members with any one of these roles receive the message whatever the other conditions say. */
  bypassRoles: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  /** The member's claim `name` must equal one of `anyOf` (or, for an array claim, contain one of them). */
  claim: z.optional(
    z.strictObject({ name: z.string().check(z.minLength(1)), anyOf: z.array(ClaimValue).check(z.minLength(1)) }),
  ),
});
export type Audience = z.infer<typeof Audience>;

export interface AudienceMember {
  readonly roles: readonly string[];
  readonly claims?: Readonly<Record<string, unknown>>;
}

export function isInAudience(audience: Audience | undefined, member: AudienceMember): boolean {
  if (audience === undefined) return true;
  if (audience.bypassRoles?.some((role) => member.roles.includes(role))) return true;
  if (audience.roles !== undefined && !audience.roles.some((role) => member.roles.includes(role))) return false;
  if (audience.claim !== undefined) {
    const value = member.claims?.[audience.claim.name];
    const values = Array.isArray(value) ? value : [value];
    if (!values.some((v) => audience.claim?.anyOf.includes(v as never))) return false;
  }
  return true;
}
