import type { ErrorCode } from './types.ts';

/** Every failure the client reports: a code from the server's error frame, or one of the client-only codes. */
export class TenantcastClientError extends Error {
  // Declared here and assigned in the constructor, not class fields: an ES2020 bundle then needs no field helper.
  declare readonly code: ErrorCode;
  /** The group the failed request was about, if any. */
  declare readonly group?: string;
  declare readonly name: 'TenantcastClientError';

  constructor(code: ErrorCode, message: string, group?: string) {
    super(message);
    Object.assign(this, { code, group, name: 'TenantcastClientError' });
  }
}
