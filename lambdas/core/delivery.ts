/**
 * What travels on the delivery queue (an SQS FIFO queue, one message group per tenant and group) and on the
 * fan-out queue, and the frames built from it. Layout and guarantees: docs/delivery.md.
 */
import { createHash } from 'node:crypto';
import { limits } from '../manifest.ts';
import { Audience } from './audience.ts';
import { GROUP_PATTERN, type MessageFrame, TENANT_PATTERN } from './protocol.ts';
import { sqsMessageBody } from './sqs-batches.ts';
import * as z from './zod.ts';

/** A published message, as the publish route, the HTTP publish route and the server SDK enqueue it. */
export const DeliveryMessage = z.strictObject({
  v: z.literal(1),
  id: z.string().check(z.minLength(1), z.maxLength(64)),
  tenantId: z.string().check(z.regex(TENANT_PATTERN)),
  group: z.string().check(z.regex(GROUP_PATTERN)),
  data: z.unknown(),
  from: z.string().check(z.minLength(1)),
  ts: z.number().check(z.int(), z.positive()),
  /** Who may receive it (docs/delivery.md); absent: every member of the group. */
  audience: z.optional(Audience),
});
export type DeliveryMessage = z.infer<typeof DeliveryMessage>;

/**
 * The most a delivery message's SQS body may hold: the delivery queue's limit less 1 KiB for what wraps it on its way
 * (a forward to the tenant's home region, a replica to the peers, their attributes: docs/multi-region.md). Until
 * 2026-12-03 a message the queue took could be too big to replicate: sequenced at home, never delivered there live
 * and never reaching the peers.
 */
export const DELIVERY_MESSAGE_BYTES = limits.queueMessageBytes - 1024;

/** The size of a delivery message's SQS body when it is over `DELIVERY_MESSAGE_BYTES`, else undefined. */
export function oversizeDeliveryMessage(message: DeliveryMessage): number | undefined {
  const bytes = Buffer.byteLength(sqsMessageBody(message), 'utf8');
  return bytes > DELIVERY_MESSAGE_BYTES ? bytes : undefined;
}

/**
 * Put on the group's FIFO stream by a `subscribe` with `since`: the broadcaster replays history to that connection
 * in order with live messages (docs/delivery.md, "Recovery").
 */
export const ReplayRequest = z.strictObject({
  v: z.literal(1),
  kind: z.literal('replay'),
  tenantId: z.string().check(z.regex(TENANT_PATTERN)),
  group: z.string().check(z.regex(GROUP_PATTERN)),
  connectionId: z.string().check(z.minLength(1), z.maxLength(128)),
  since: z.number().check(z.int(), z.nonnegative()),
  /** The subscriber's roles and claims, for the audience filter of replayed messages. */
  roles: z.optional(z.array(z.string())),
  claims: z.optional(z.record(z.string(), z.unknown())),
});
export type ReplayRequest = z.infer<typeof ReplayRequest>;

export const QueueMessage = z.union([ReplayRequest, DeliveryMessage]);
export type QueueMessage = z.infer<typeof QueueMessage>;

export function isReplayRequest(message: QueueMessage): message is ReplayRequest {
  return 'kind' in message && message.kind === 'replay';
}

/** A message with the `seq` the broadcaster gave it. */
export interface SequencedMessage extends DeliveryMessage {
  readonly seq: number;
}

/** One page of a large group's delivery, for the fan-out queue: the frames each listed connection gets. */
export const FanoutJob = z.strictObject({
  v: z.literal(1),
  kind: z.literal('fanout'),
  tenantId: z.string().check(z.regex(TENANT_PATTERN)),
  group: z.string().check(z.regex(GROUP_PATTERN)),
  /** Seq of the first message of the broadcaster batch this page belongs to (progress key). */
  batchSeq: z.number().check(z.int(), z.positive()),
  /**
   * Seq of the run's last message, and the page's lane (shard): with both, the lane reads the group's history past
   * `lastSeq` and delivers it too (docs/delivery.md, "Pack from the log"). Pages without them are delivered as they are.
   */
  lastSeq: z.optional(z.number().check(z.int(), z.positive())),
  lane: z.optional(z.number().check(z.int(), z.nonnegative())),
  /** More parts of this page follow in the lane (a page cut to fit one SQS message): no reading ahead after it. */
  continued: z.optional(z.boolean()),
  /** The frames, JSON text, each at most one API Gateway frame. */
  frames: z.array(z.string()),
  /** Connection id → indexes into `frames`, in order. */
  recipients: z.record(z.string(), z.array(z.number().check(z.int(), z.nonnegative()))),
});
export type FanoutJob = z.infer<typeof FanoutJob>;

/**
 * `<tenant>#<group><suffix>`, or with the group hashed when that would pass SQS's 128 characters of `[!-~]` (tenant
 * 64 + group 128 may be longer; cutting the name short could make two groups share a message group).
 */
function queueGroupId(tenantId: string, group: string, suffix: string): string {
  const plain = `${tenantId}#${group}${suffix}`;
  if (plain.length <= 128) return plain;
  // `#` cannot be part of a group name, so no group's plain id is a hashed one (until 2026-12-03 the hashed form was
  // `<tenant>#h:<hash>`, itself a valid group name: that group and the long one shared a FIFO stream and a run).
  return `${tenantId}#h#${createHash('sha256').update(group).digest('base64url')}${suffix}`;
}

/** The delivery queue's message group of a tenant's group. */
export function messageGroupIdOf(tenantId: string, group: string): string {
  return queueGroupId(tenantId, group, '');
}

/** The fan-out queue's message group of one lane (shard) of a split group. */
export function fanoutLaneGroupId(tenantId: string, group: string, shard: number): string {
  return queueGroupId(tenantId, group, `#${shard}`);
}

/**
 * An id as SQS takes it for a FIFO message group or deduplication id: 1 to 128 characters of `[!-~]` (printable
 * ASCII, no space; SendMessage's MessageDeduplicationId). Any other id (a change of a row whose text key has a space
 * or an accent, an id a server SDK caller chose, a long one) is hashed (`h:` + SHA-256 of its UTF-16 code units, so
 * two ids differing only in half a surrogate pair stay apart), and still deduplicates exactly as itself. Until
 * 2026-12-04 such a change was refused by SQS on every attempt and never reached the live feed (found by an
 * attacking pass).
 */
export function sqsId(id: string): string {
  return /^[!-~]{1,128}$/.test(id) ? id : `h:${createHash('sha256').update(id, 'utf16le').digest('base64url')}`;
}

/** Characters an SQS message attribute's string value may hold (XML's: SendMessage's MessageAttributeValue). */
const ATTRIBUTE_TEXT = /^[\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

/** A message id for the `messageId` attribute, which only correlates logs: as it is, or `sqsId`'s hash of it. */
export function attributeId(id: string): string {
  return ATTRIBUTE_TEXT.test(id) ? id : sqsId(id);
}

/** SendMessage parameters for the delivery queue (FIFO): ordered per tenant and group, deduplicated by id. */
export function deliverySendParams(queueUrl: string, message: QueueMessage, dedupId?: string) {
  const id = isReplayRequest(message) ? (dedupId ?? `replay-${message.connectionId}-${message.since}`) : message.id;
  return {
    QueueUrl: queueUrl,
    MessageBody: sqsMessageBody(message),
    MessageGroupId: messageGroupIdOf(message.tenantId, message.group),
    MessageDeduplicationId: sqsId(id),
    MessageAttributes: {
      tenantId: { DataType: 'String', StringValue: message.tenantId },
      messageId: { DataType: 'String', StringValue: attributeId(id) },
    },
  };
}

export function toMessageFrame(message: SequencedMessage): MessageFrame {
  return {
    type: 'message',
    group: message.group,
    id: message.id,
    seq: message.seq,
    data: message.data,
    from: message.from,
    ts: message.ts,
  };
}
