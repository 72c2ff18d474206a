/**
 * SendMessageBatch entries grouped to fit SQS: at most `limits.queueBatchEntries` (10) entries and
 * `limits.queueBatchBytes` (1 MiB) per batch, in order; an entry over `limits.queueMessageBytes` (256 KiB) is refused
 * here, by name, before SQS would refuse the whole batch (docs/limits.md). Hand-written: the SDK sends what it is given.
 */
import { limits } from '../manifest.ts';

/** The two characters `JSON.stringify` leaves raw that an SQS message may not hold. */
const NOT_FOR_SQS = /[\uFFFE\uFFFF]/g;

/**
 * `value` as JSON for an SQS message body. SQS takes only #x9, #xA, #xD, #x20–#xD7FF, #xE000–#xFFFD and
 * #x10000–#x10FFFF (SendMessage API reference; one page says it refuses the message with InvalidMessageContents,
 * another that it replaces the characters with U+FFFD). `JSON.stringify` escapes control characters and lone
 * surrogates but leaves U+FFFE and U+FFFF as they are, and a published string or a tenant's row may hold them: they
 * are written as `\ufffe` and `\uffff`, which `JSON.parse` reads back as the same characters, so the value arrives
 * unchanged. Hand-written: no library shapes JSON for SQS.
 */
export function sqsMessageBody(value: unknown): string {
  return JSON.stringify(value).replace(NOT_FOR_SQS, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

export interface BatchEntry {
  readonly MessageBody: string;
  readonly MessageAttributes?: Readonly<
    Record<string, { readonly DataType?: string; readonly StringValue?: string; readonly BinaryValue?: Uint8Array }>
  >;
}

/** The size SQS counts for a message: the body plus every attribute's name, type and value, in bytes. */
export function messageBytes(entry: BatchEntry): number {
  let bytes = Buffer.byteLength(entry.MessageBody, 'utf8');
  for (const [name, value] of Object.entries(entry.MessageAttributes ?? {})) {
    bytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value.DataType ?? '', 'utf8');
    bytes += value.StringValue !== undefined ? Buffer.byteLength(value.StringValue, 'utf8') : 0;
    bytes += value.BinaryValue?.byteLength ?? 0;
  }
  return bytes;
}

export class MessageTooLargeError extends Error {
  override readonly name = 'MessageTooLong';
}

/** Consecutive batches of `entries`, in order, each within SQS's entry count and total size. */
export function sqsBatches<E extends BatchEntry>(
  entries: readonly E[],
  max: { entries?: number; bytes?: number; messageBytes?: number } = {},
): E[][] {
  const maxEntries = max.entries ?? limits.queueBatchEntries;
  const maxBytes = max.bytes ?? limits.queueBatchBytes;
  const maxMessage = max.messageBytes ?? limits.queueMessageBytes;
  const batches: E[][] = [];
  let current: E[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = messageBytes(entry);
    if (size > maxMessage) {
      throw new MessageTooLargeError(`a message of ${size} bytes is over SQS's ${maxMessage}-byte limit`);
    }
    if (current.length > 0 && (current.length >= maxEntries || bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
