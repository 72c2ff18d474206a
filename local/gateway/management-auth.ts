/**
 * Who may call the local management endpoints (`@connections` and, when enabled, `/local/faults`): as in AWS,
 * only a caller signing with SigV4 — any AWS SDK client, which is how the functions, the CLI and the tests call them.
 * Without it any web page could reach them: a simple cross-origin `POST` (no preflight) needs no header a page
 * cannot send, and made delivery drop a victim's subscription (docs/security.md, "Local management endpoints").
 *
 * Checked: an `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request,
 * SignedHeaders=<…;host;…>, Signature=<64 hex>` header and an `X-Amz-Date` — its presence and shape, not the
 * signature itself (the local credentials are fixed and public; what matters is that a browser page cannot send
 * such a header without a CORS preflight, which this server never grants). A request carrying an `Origin` header
 * comes from a browser and is refused whatever it carries: SDK clients never send one.
 *
 * Written by hand: verifying the shape is a regular expression; the SDK's signer has no verifier.
 */
import type { IncomingMessage } from 'node:http';

export interface ManagementRefusal {
  readonly status: 403;
  /** `x-amzn-ErrorType`, as API Gateway names it. */
  readonly type: string;
  readonly message: string;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=[^/\s,]+\/\d{8}\/[a-z0-9-]+\/[a-z0-9-]+\/aws4_request, ?SignedHeaders=([a-z0-9-]+(?:;[a-z0-9-]+)*), ?Signature=[0-9a-f]{64}$/;
const AMZ_DATE = /^\d{8}T\d{6}Z$/;

function header(req: Pick<IncomingMessage, 'headers'>, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Why a request to a management endpoint is refused, or undefined when it may proceed. */
export function refuseManagementRequest(req: Pick<IncomingMessage, 'headers'>): ManagementRefusal | undefined {
  if (header(req, 'origin') !== undefined) {
    return { status: 403, type: 'ForbiddenException', message: 'Requests from web pages (with an Origin) are refused' };
  }
  const authorization = header(req, 'authorization');
  if (authorization === undefined || authorization === '') {
    return { status: 403, type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  }
  const match = AUTHORIZATION.exec(authorization);
  const signed = match?.[1]?.split(';') ?? [];
  if (!match || !signed.includes('host') || !AMZ_DATE.test(header(req, 'x-amz-date') ?? '')) {
    return {
      status: 403,
      type: 'IncompleteSignatureException',
      message: 'Authorization header is not an AWS Signature Version 4 signature (AWS4-HMAC-SHA256 with X-Amz-Date)',
    };
  }
  return undefined;
}
