import type { ErrorCode } from './types.ts';

/** Every failure the client reports: a code from the server's error frame, or one of the client-only codes. */
export class TenantcastClientError extends Error {
  override readonly name = 'TenantcastClientError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The group the failed request was about, if any. */
    readonly group?: string,
  ) {
    super(message);
  }
}
