/** The message the publish route puts on the delivery queue and the broadcaster takes off it. */
import { z } from 'zod';
import { GROUP_PATTERN, type MessageFrame, TENANT_PATTERN } from './protocol.ts';

export const DeliveryMessage = z.strictObject({
  v: z.literal(1),
  id: z.string().min(1).max(64),
  tenantId: z.string().regex(TENANT_PATTERN),
  group: z.string().regex(GROUP_PATTERN),
  data: z.unknown(),
  from: z.string().min(1),
  ts: z.number().int().positive(),
});

export type DeliveryMessage = z.infer<typeof DeliveryMessage>;

export function toMessageFrame(message: DeliveryMessage): MessageFrame {
  return {
    type: 'message',
    group: message.group,
    id: message.id,
    data: message.data,
    from: message.from,
    ts: message.ts,
  };
}
