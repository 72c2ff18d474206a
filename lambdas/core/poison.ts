/**
 * Poison records (docs/limits.md, "Set-aside messages"): a queue record that can never succeed fails alone. The
 * consumer throws `PoisonRecordError` for it (or an error `isPermanent` recognises); the batch handler
 * (lambdas/shared/fifo-batch-handler.ts) logs it at error level with its ids, sends it to its queue's dead-letter
 * queue with the reason, and lets the records behind it in its FIFO group go on. Transient errors are retried as
 * before (SQS redelivers; after `maxReceiveCount` receives SQS itself moves the record to the DLQ).
 */
import { TenantcastError } from './errors.ts';
import { messageBytes } from './sqs-batches.ts';

/** This record can never succeed: retrying it would only hold back the records behind it. */
export class PoisonRecordError extends Error {
  override readonly name = 'PoisonRecordError';
  constructor(
    /** Why, for the operator (`npx tenantcast dlq show`): short, no secrets, no message data. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}

/** Message attributes of a set-aside record in the dead-letter queue: why, and which function gave up on it. */
export const setAsideAttributes = { reason: 'failureReason', by: 'failedBy' } as const;

/**
 * The attribute `tenantcast dlq redrive` puts on a message it sends back: the deduplication id the message had before
 * it was dead-lettered (its own is new, or FIFO would drop it within five minutes). Consumers treat such a message as
 * a redelivery (it may have been partly done), and the fan-out keys its progress by the old id, so members a page
 * reached before are skipped (until 2026-12-04 they got it again; found by an attacking pass).
 */
export const REDRIVE_OF_ATTRIBUTE = 'redriveOf';

/** The deduplication id a redriven record had before it was dead-lettered, if it was redriven. */
export function redriveOf(record: { readonly messageAttributes?: Record<string, { stringValue?: string }> }) {
  return record.messageAttributes?.[REDRIVE_OF_ATTRIBUTE]?.stringValue;
}

/**
 * Whether a record may have been (partly) processed before: SQS delivered it before (receive count over 1), or it was
 * redriven from the dead-letter queue (`redriveOf`, its receive count starting again at 1).
 */
export function isRedelivery(record: {
  readonly attributes: { readonly ApproximateReceiveCount: string };
  readonly messageAttributes?: Record<string, { stringValue?: string }>;
}): boolean {
  return Number(record.attributes.ApproximateReceiveCount) > 1 || redriveOf(record) !== undefined;
}

type StringAttributes = Record<string, { DataType: string; StringValue: string }>;

/**
 * The attributes a set-aside copy of `body` carries: at most 8 of the record's own (SQS allows 10), then the reason
 * and the function, all within `maxBytes` with the body (SQS counts both): a record near the limit keeps fewer of
 * its own, then a shorter reason, then none (its reason is in the error-level log line either way). Until 2026-12-03
 * such a copy went over 256 KiB, SQS refused it, and the record stayed where it was, holding its group.
 */
export function setAsideMessageAttributes(
  body: string,
  own: StringAttributes,
  reason: string,
  by: string,
  maxBytes: number,
): StringAttributes {
  const ours = (why: string): StringAttributes => ({
    [setAsideAttributes.reason]: { DataType: 'String', StringValue: why },
    [setAsideAttributes.by]: { DataType: 'String', StringValue: by },
  });
  const fits = (attributes: StringAttributes) =>
    messageBytes({ MessageBody: body, MessageAttributes: attributes }) <= maxBytes;
  const kept = Object.entries(own).slice(0, 8);
  for (let n = kept.length; n >= 0; n--) {
    const attributes = { ...Object.fromEntries(kept.slice(0, n)), ...ours(reason) };
    if (fits(attributes)) return attributes;
  }
  const room = maxBytes - messageBytes({ MessageBody: body, MessageAttributes: ours('') });
  // Characters, not bytes: a reason is mostly ASCII, and a 4-byte character only makes the cut shorter.
  // Never half a surrogate pair, which SQS refuses.
  if (room >= 16) return ours(`${reason.slice(0, Math.floor(room / 4) - 1).replace(/[\uD800-\uDBFF]$/, '')}…`);
  return {};
}

const permanentAwsErrors = new Set([
  // DynamoDB and SQS refuse the request itself (nesting, sizes, names, duplicate keys): the same request fails again.
  'ValidationException',
  'InvalidParameterValue',
  'InvalidMessageContents',
  // A message or batch over SQS's size limits.
  'BatchRequestTooLong',
  'MessageTooLong',
  // PostToConnection: 413, a frame over API Gateway's message size.
  'PayloadTooLargeException',
]);

/**
 * Whether retrying `err` can never help: a PoisonRecordError, a client-error TenantcastError (BAD_REQUEST,
 * TOO_LARGE), a zod validation error, or an AWS error that refuses the request itself.
 */
export function isPermanent(err: unknown): boolean {
  if (err instanceof PoisonRecordError) return true;
  // A delivery every left-out connection of which failed for a reason no retry changes (a 413: a frame over API
  // Gateway's limit); one with a transient failure among them is retried, so those connections get another try.
  if ((err as { name?: unknown } | undefined)?.name === 'DeliveryFailedError') {
    const { causes, firstCause } = err as { causes?: readonly unknown[]; firstCause?: unknown };
    return (causes ?? [firstCause]).every((cause) => isPermanent(cause));
  }
  if (err instanceof TenantcastError) return err.code === 'BAD_REQUEST' || err.code === 'TOO_LARGE';
  const name = (err as { name?: unknown } | undefined)?.name;
  // zod 4 (`zod/mini`, lambdas/core/zod.ts) names its error `$ZodError`; until 2026-12-04 only `ZodError` was known.
  if (name === 'ZodError' || name === '$ZodError' || name === 'SyntaxError') return true;
  if (typeof name === 'string' && permanentAwsErrors.has(name)) return true;
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 413;
}

/** The reason to record for a permanent error: its name and message, cut to `max` characters. */
export function reasonOf(err: unknown, max = 500): string {
  const text =
    err instanceof PoisonRecordError
      ? err.reason
      : err instanceof Error
        ? `${err.name}: ${err.message}`
        : `non-error thrown: ${String(err)}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
