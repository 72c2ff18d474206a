/**
 * Delivery of one published message to every live connection of its group, with bounded concurrency.
 * A connection that is gone (410) is removed with all its memberships and does not fail the message; any other
 * failure does, after every other recipient has been tried, so SQS redelivers the message.
 */
import { settleConcurrently } from './concurrency.ts';
import { type DeliveryMessage, toMessageFrame } from './delivery.ts';
import type { Registry } from './registry.ts';

export interface FanoutDeps {
  readonly registry: Pick<Registry, 'members' | 'removeConnection'>;
  /** PostToConnection. */
  readonly post: (connectionId: string, data: string) => Promise<void>;
  readonly isGone: (err: unknown) => boolean;
  /** @default 32 */
  readonly concurrency?: number;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

export interface FanoutResult {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
}

export class DeliveryFailedError extends Error {
  override readonly name = 'DeliveryFailedError';
  constructor(
    readonly result: FanoutResult,
    readonly firstCause: unknown,
  ) {
    super(`delivery failed for ${result.failed} connection(s); ${result.delivered} delivered, ${result.gone} gone`);
  }
}

export async function fanOut(message: DeliveryMessage, deps: FanoutDeps): Promise<FanoutResult> {
  const payload = JSON.stringify(toMessageFrame(message));
  const concurrency = deps.concurrency ?? 32;
  let delivered = 0;
  let gone = 0;
  let failed = 0;
  let firstCause: unknown;

  for await (const page of deps.registry.members(message.tenantId, message.group)) {
    const results = await settleConcurrently(page, concurrency, async (member) => {
      try {
        await deps.post(member.connectionId, payload);
        return 'delivered' as const;
      } catch (err) {
        if (!deps.isGone(err)) throw err;
        await deps.registry.removeConnection(member.connectionId);
        deps.log?.('removed gone connection', { connectionId: member.connectionId });
        return 'gone' as const;
      }
    });
    for (const result of results) {
      if (result.status === 'fulfilled') {
        if (result.value === 'delivered') delivered++;
        else gone++;
      } else {
        failed++;
        firstCause ??= result.reason;
      }
    }
  }
  const result = { delivered, gone, failed };
  if (failed > 0) throw new DeliveryFailedError(result, firstCause);
  return result;
}
