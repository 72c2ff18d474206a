import { describe, expect, it } from '@jest/globals';
import { refuseManagementRequest } from './management-auth.ts';

const signed = {
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=' +
    '0123456789abcdef'.repeat(4),
  'x-amz-date': '20261202T031500Z',
};

describe('refuseManagementRequest', () => {
  it('lets a SigV4-signed request without an Origin through', () => {
    expect(refuseManagementRequest({ headers: signed })).toBeUndefined();
  });

  it('refuses a request without an Authorization header as a missing authentication token', () => {
    expect(refuseManagementRequest({ headers: {} })).toMatchObject({
      status: 403,
      type: 'MissingAuthenticationTokenException',
    });
  });

  it('refuses an Authorization header that is not a SigV4 signature, or one without X-Amz-Date or host signed', () => {
    const refusedAs = (headers: Record<string, string>) => refuseManagementRequest({ headers })?.type;
    expect(refusedAs({ ...signed, authorization: 'Bearer abc' })).toBe('IncompleteSignatureException');
    expect(refusedAs({ ...signed, authorization: signed.authorization.replace(/Signature=.*/, 'Signature=xyz') })).toBe(
      'IncompleteSignatureException',
    );
    expect(refusedAs({ authorization: signed.authorization })).toBe('IncompleteSignatureException');
    expect(refusedAs({ ...signed, authorization: signed.authorization.replace('host;', '') })).toBe(
      'IncompleteSignatureException',
    );
  });

  it('refuses any request carrying an Origin header, signed or not: it comes from a web page', () => {
    expect(refuseManagementRequest({ headers: { ...signed, origin: 'http://127.0.0.1:4000' } })).toMatchObject({
      status: 403,
      type: 'ForbiddenException',
    });
  });
});
