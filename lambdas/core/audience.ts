/**
 * Who may receive a delivered message. A message without `audience` goes to every member of the group; with one,
 * the broadcaster (and replay) checks each member against it, using the roles and claims the member's token had
 * when it subscribed (kept on the membership item).
 */
import { z } from 'zod';

const ClaimValue = z.union([z.string(), z.number(), z.boolean()]);

export const Audience = z.strictObject({
  /** The member needs any one of these roles. */
  roles: z.array(z.string().min(1)).min(1).optional(),
  /** Members with any one of these roles receive the message whatever the other conditions say. */
  bypassRoles: z.array(z.string().min(1)).min(1).optional(),
  /** The member's claim `name` must equal one of `anyOf` (or, for an array claim, contain one of them). */
  claim: z.strictObject({ name: z.string().min(1), anyOf: z.array(ClaimValue).min(1) }).optional(),
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
