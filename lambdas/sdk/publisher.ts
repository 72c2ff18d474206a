/**
 * The server SDK: producers (your own services) publish to a tenant's group through the delivery queue directly,
 * with the same checks and the same FIFO parameters as the WebSocket publish route.
 *
 * ```ts
 * const publisher = new Publisher({ queueUrl: process.env.DELIVERY_QUEUE_URL });
 * const { id } = await publisher.publish({ tenantId: 'acme', group: 'chat:general', data: { text: 'hi' } });
 * ```
 *
 * The caller is trusted (it holds sqs:SendMessage on the queue), so it names the tenant; it must take it from its
 * own verified context, never from an end user's request body.
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Audience } from '../core/audience.ts';
import {
  DELIVERY_MESSAGE_BYTES,
  DeliveryMessage,
  deliverySendParams,
  oversizeDeliveryMessage,
} from '../core/delivery.ts';
import { BadRequestError, ForbiddenError, TooLargeError } from '../core/errors.ts';
import { isSystemGroup } from '../core/permissions.ts';
import { assertPublishData } from '../core/publish-data.ts';

export interface PublisherOptions {
  /** The delivery queue's URL (stack output `DeliveryQueueUrl`). */
  readonly queueUrl: string;
  /** @default a new SQSClient configured from the environment */
  readonly client?: SQSClient;
  /** Sender shown as `from` when a publish names none. @default 'server' */
  readonly defaultFrom?: string;
  /** @default randomUUID */
  readonly newId?: () => string;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface PublishInput {
  readonly tenantId: string;
  readonly group: string;
  readonly data: unknown;
  readonly from?: string;
  readonly audience?: Audience;
  /**
   * Reuse an id to make a retried publish a no-op within SQS's 5-minute deduplication window: a publish with an id
   * published in the last 5 minutes is taken and dropped, even once the first was delivered (so an id is no business
   * key: `order-42` sent for each of its updates would deliver only the first; the local stack does the same since
   * 2026-12-04). @default a new UUID
   */
  readonly id?: string;
}

export class Publisher {
  private readonly client: SQSClient;

  constructor(private readonly options: PublisherOptions) {
    if (!options.queueUrl.endsWith('.fifo')) {
      throw new Error(`queueUrl must be the FIFO delivery queue (ending .fifo); got '${options.queueUrl}'`);
    }
    this.client = options.client ?? new SQSClient({});
  }

  /** Validates and enqueues one message; resolves with its id once it is durably queued. */
  async publish(input: PublishInput): Promise<{ id: string }> {
    // The same system-group rule as every other publish path: `entity:*` messages come from the change feed only,
    // with each row's audience (until 2026-12-03 the SDK and the CLI put any row on a table's live feed).
    if (isSystemGroup(input.group)) {
      throw new ForbiddenError(`'${input.group}' is a system group: only the service publishes to entity:* groups`);
    }
    assertPublishData(input.data);
    const parsed = DeliveryMessage.safeParse({
      v: 1,
      id: input.id ?? (this.options.newId ?? randomUUID)(),
      tenantId: input.tenantId,
      group: input.group,
      data: input.data,
      from: input.from ?? this.options.defaultFrom ?? 'server',
      ts: (this.options.now ?? Date.now)(),
      ...(input.audience !== undefined && { audience: input.audience }),
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new BadRequestError(`${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}`);
    }
    const bytes = oversizeDeliveryMessage(parsed.data);
    if (bytes !== undefined) {
      throw new TooLargeError(
        `message is ${bytes} bytes queued (its from and audience count): at most ${DELIVERY_MESSAGE_BYTES}`,
      );
    }
    await this.client.send(new SendMessageCommand(deliverySendParams(this.options.queueUrl, parsed.data)));
    return { id: parsed.data.id };
  }
}
