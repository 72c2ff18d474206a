/** The change event the entity API and the outbox relay put on the changes queue, and the change feed takes off it. */
import { z } from 'zod';
import { TENANT_PATTERN } from '../protocol.ts';

export const ChangeEvent = z.strictObject({
  tenantId: z.string().regex(TENANT_PATTERN),
  entity: z.string().min(1).max(63),
  key: z.string().min(1).max(256),
  version: z.number().int().positive(),
});
export type ChangeEvent = z.infer<typeof ChangeEvent>;
