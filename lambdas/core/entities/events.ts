/** The change event the entity API and the outbox relay put on the changes queue, and the change feed takes off it. */

import { TENANT_PATTERN } from '../protocol.ts';
import * as z from '../zod.ts';

/**
 * The longest primary key (as text) a change event carries: a create with a longer one is refused (400), as its change
 * could never be published (until 2026-12-03 it was created, and its change set aside as not a change event).
 */
export const MAX_KEY_LENGTH = 256;

export const ChangeEvent = z.strictObject({
  tenantId: z.string().check(z.regex(TENANT_PATTERN)),
  entity: z.string().check(z.minLength(1), z.maxLength(63)),
  key: z.string().check(z.minLength(1), z.maxLength(MAX_KEY_LENGTH)),
  version: z.number().check(z.int(), z.positive()),
});
export type ChangeEvent = z.infer<typeof ChangeEvent>;
