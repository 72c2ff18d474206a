/** The change event the entity API and the outbox relay put on the changes queue, and the change feed takes off it. */

import { TENANT_PATTERN } from '../protocol.ts';
import * as z from '../zod.ts';

export const ChangeEvent = z.strictObject({
  tenantId: z.string().check(z.regex(TENANT_PATTERN)),
  entity: z.string().check(z.minLength(1), z.maxLength(63)),
  key: z.string().check(z.minLength(1), z.maxLength(256)),
  version: z.number().check(z.int(), z.positive()),
});
export type ChangeEvent = z.infer<typeof ChangeEvent>;
