/**
 * Poison records (docs/limits.md, "Set-aside messages"): a queue record that can never succeed fails alone. The
 * consumer throws `PoisonRecordError` for it (or an error `isPermanent` recognises); the batch handler
 * (lambdas/shared/fifo-batch-handler.ts) logs it at error level with its ids, sends it to its queue's dead-letter
 * queue with the reason, and lets the records behind it in its FIFO group go on. Transient errors are retried as
 * before (SQS redelivers; after `maxReceiveCount` receives SQS itself moves the record to the DLQ).
 */
import { TenantcastError } from './errors.ts';

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
  if (err instanceof TenantcastError) return err.code === 'BAD_REQUEST' || err.code === 'TOO_LARGE';
  const name = (err as { name?: unknown } | undefined)?.name;
  if (name === 'ZodError' || name === 'SyntaxError') return true;
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
