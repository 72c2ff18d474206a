import { describe, expect, it } from '@jest/globals';
import { claimValues } from './audience.ts';
import {
  callerFromAuthorizer,
  callerFromClaims,
  defaultClaimNames,
  extraClaims,
  extractToken,
  MAX_CLAIMS_BYTES,
  toAuthorizerContext,
} from './auth.ts';

const claims = (extra: Record<string, unknown>) => ({ iss: 'i', exp: 1, ...extra });

describe('token extraction', () => {
  it('reads the token from the tenantcast.v1 subprotocol list, in either order and any header case', () => {
    expect(extractToken({ headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1, abc.def.ghi' } })).toBe('abc.def.ghi');
    expect(extractToken({ headers: { 'sec-websocket-protocol': 'abc.def.ghi,tenantcast.v1' } })).toBe('abc.def.ghi');
  });

  it('reads the token from the query string when there is no subprotocol token', () => {
    expect(extractToken({ queryStringParameters: { token: 'q.q.q' } })).toBe('q.q.q');
    expect(
      extractToken({ headers: { 'Sec-WebSocket-Protocol': 'other, x.y.z' }, queryStringParameters: { token: 'q' } }),
    ).toBe('q');
  });

  it('finds nothing when neither carries a token', () => {
    expect(extractToken({})).toBeUndefined();
    expect(
      extractToken({ headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1' }, queryStringParameters: { token: '' } }),
    ).toBeUndefined();
  });
});

describe('claims', () => {
  it('map tenant, user and roles with the default claim names', () => {
    expect(callerFromClaims(claims({ tenant_id: 'acme', sub: 'alice', roles: ['member'] }))).toEqual({
      tenantId: 'acme',
      userId: 'alice',
      roles: ['member'],
    });
  });

  it('accept configured claim names and space-separated roles', () => {
    const names = { tenant: 'custom:tenant', user: 'email', roles: 'cognito:groups' };
    expect(callerFromClaims(claims({ 'custom:tenant': 't1', email: 'a@b', 'cognito:groups': 'a b' }), names)).toEqual({
      tenantId: 't1',
      userId: 'a@b',
      roles: ['a', 'b'],
    });
  });

  it('refuse a missing tenant, a tenant with a key separator, or a missing user', () => {
    expect(() => callerFromClaims(claims({ sub: 'alice' }))).toThrow(/tenant_id/);
    expect(() => callerFromClaims(claims({ tenant_id: 'acme#G#x', sub: 'alice' }))).toThrow(/tenant_id/);
    expect(() => callerFromClaims(claims({ tenant_id: 'acme' }))).toThrow(/sub/);
    expect(() => callerFromClaims(claims({ tenant_id: 'acme', sub: 'a', roles: 5 }))).toThrow(/roles/);
  });

  it('refuse a user id holding half a surrogate pair, and take one holding whole pairs', () => {
    for (const sub of ['bob\ud800', '\udc00bob', 'a\ud800b']) {
      expect(() => callerFromClaims(claims({ tenant_id: 'acme', sub }))).toThrow(/sub' must be well-formed text/);
    }
    expect(callerFromClaims(claims({ tenant_id: 'acme', sub: 'bob😀' })).userId).toBe('bob😀');
  });

  it('round-trip through the authorizer context API Gateway passes to routes', () => {
    const caller = { tenantId: 'acme', userId: 'alice', roles: ['member', 'x,y'], claims: { team: 'red', n: 2 } };
    expect(callerFromAuthorizer({ principalId: 'alice', ...toAuthorizerContext(caller, 123) })).toEqual(caller);
    expect(callerFromAuthorizer({ tenantId: 'acme', userId: 'bob', roles: '[]', claims: 'nope' })).toEqual({
      tenantId: 'acme',
      userId: 'bob',
      roles: [],
      claims: {},
    });
    expect(callerFromAuthorizer(undefined)).toBeUndefined();
    expect(callerFromAuthorizer({ tenantId: 'acme' })).toBeUndefined();
  });
});

describe('extra claims for audience filters', () => {
  it("keep the token's own claims and its subject, and drop registered, tenant and roles claims", () => {
    expect(
      extraClaims(
        claims({
          tenant_id: 'acme',
          sub: 'a',
          roles: ['x'],
          iss: 'i',
          aud: 'a',
          iat: 1,
          jti: 'j',
          team: 'red',
          lvl: 3,
        }),
      ),
    ).toEqual({ sub: 'a', team: 'red', lvl: '3' });
  });

  it('keep each claim as filters compare it, so a DynamoDB item can hold every one and filters read the same', () => {
    const token = claims({
      tenant_id: 'acme',
      sub: 'a',
      employee_no: 2 ** 64,
      tiny: 1e-200,
      '': 'x',
      deep: JSON.parse(`${'{"a":'.repeat(32)}1${'}'.repeat(32)}`),
      nothing: null,
      teams: ['t1', 7, true, { t: 1 }, ['t2']],
      objects: [{ t: 1 }],
      flag: false,
      broken: 'a\uD800b',
    });
    const kept = extraClaims(token);
    expect(kept).toEqual({
      sub: 'a',
      employee_no: '18446744073709552000',
      tiny: '1e-200',
      teams: ['t1', '7', true],
      flag: false,
    });
    for (const name of ['sub', 'employee_no', 'tiny', 'deep', 'nothing', 'teams', 'objects', 'flag']) {
      expect(claimValues(kept, name)).toEqual(claimValues(token, name));
    }
  });

  it('keep the user claim and sub whatever comes before them in the token', () => {
    const kept = extraClaims(claims({ tenant_id: 'acme', big: 'x'.repeat(2030), sub: 'a', email: 'a@x.example' }), {
      ...defaultClaimNames,
      user: 'email',
    });
    expect(kept).toEqual({ email: 'a@x.example', sub: 'a' });
  });

  it('stay within 2 KB of JSON by leaving out whole claims that do not fit', () => {
    const kept = extraClaims(claims({ tenant_id: 'acme', sub: 'a', big: 'x'.repeat(3000), small: 'ok' }));
    expect(kept).toEqual({ sub: 'a', small: 'ok' });
    expect(JSON.stringify(kept).length).toBeLessThanOrEqual(MAX_CLAIMS_BYTES);
  });
});
