/**
 * One error family for every rejection tenantcast makes. Each carries a code from the protocol
 * (docs/protocol.md); handlers turn it into an `error` frame or an HTTP error body.
 */
export const errorCodes = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'RATE_LIMITED',
  'TOO_LARGE',
  /** A write based on a stale version (entity API `If-Match`). */
  'CONFLICT',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class TenantcastError extends Error {
  override readonly name: string = 'TenantcastError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class BadRequestError extends TenantcastError {
  override readonly name = 'BadRequestError';
  constructor(message: string) {
    super('BAD_REQUEST', message);
  }
}

export class UnauthorizedError extends TenantcastError {
  override readonly name = 'UnauthorizedError';
  constructor(message: string) {
    super('UNAUTHORIZED', message);
  }
}

export class ForbiddenError extends TenantcastError {
  override readonly name = 'ForbiddenError';
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

export class TooLargeError extends TenantcastError {
  override readonly name = 'TooLargeError';
  constructor(message: string) {
    super('TOO_LARGE', message);
  }
}

export class NotFoundError extends TenantcastError {
  override readonly name = 'NotFoundError';
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class ConflictError extends TenantcastError {
  override readonly name = 'ConflictError';
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/** A rate limit engaged (docs/security.md): `retryAfterMs` says when the next attempt can succeed. */
export class RateLimitedError extends TenantcastError {
  override readonly name = 'RateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super('RATE_LIMITED', message);
  }
}

/** Anything that is not a TenantcastError becomes INTERNAL, without leaking its message to the client. */
export function toTenantcastError(err: unknown): TenantcastError {
  if (err instanceof TenantcastError) return err;
  return new TenantcastError('INTERNAL', 'internal error');
}

/**
 * Whether a DynamoDB write was refused by its condition: `ConditionalCheckFailedException`, tested by name so the
 * SDK's error and a test's stand-in both count.
 */
export function isConditionalCheckFailed(err: unknown): boolean {
  return (err as { name?: unknown } | null | undefined)?.name === 'ConditionalCheckFailedException';
}
