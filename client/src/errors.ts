import type { ErrorCode } from './types.ts';

/** Every failure the client reports: a code from the server's error frame, or one of the client-only codes. */
export class TenantcastClientError extends Error {
  // Declared here and assigned in the constructor, not class fields: an ES2020 bundle then needs no field helper.
  declare readonly code: ErrorCode;
  /** The group the failed request was about, if any. */
  declare readonly group?: string;
  /** RATE_LIMITED: how long the server asks to wait before trying again (ms), as its error frame said. */
  declare readonly retryAfterMs?: number;
  declare readonly name: 'TenantcastClientError';

  constructor(code: ErrorCode, message: string, group?: string, retryAfterMs?: number) {
    super(message);
    Object.assign(this, { code, group, name: 'TenantcastClientError', retryAfterMs });
  }
}
