import { describe, expect, it } from '@jest/globals';
import { httpIdentity } from '../../test/support/http-identity.ts';
import { callerFromToken, defaultClaimNames } from './auth.ts';
import { callerFromHttp } from './http-identity.ts';

const token = (extra: Record<string, unknown>) => ({
  iss: 'https://idp',
  exp: 1_900_000_000,
  tenant_id: 'acme',
  sub: 'alice',
  ...extra,
});
const read = (identity: Parameters<typeof callerFromHttp>[0]) => callerFromHttp(identity, defaultClaimNames);

describe('the caller of an HTTP request', () => {
  it('is the caller the WebSocket authorizer reads from the same token', () => {
    for (const payload of [
      token({ roles: ['viewer', 'admin'], teams: ['t1', 't2'] }),
      token({ roles: 'member admin' }),
      token({ roles: ['viewer admin'] }),
      token({ roles: ['guest,admin'] }),
      token({ sub: '[bob]', roles: ['member'] }),
    ]) {
      expect(read(httpIdentity(payload))).toEqual(callerFromToken(payload, defaultClaimNames));
    }
  });

  it('keeps a single role with a space or comma one role, though API Gateway flattens it like two', () => {
    const oneRole = httpIdentity(token({ roles: ['viewer admin'] }));
    const twoRoles = httpIdentity(token({ roles: ['viewer', 'admin'] }));
    expect(oneRole.claims.roles).toBe(twoRoles.claims.roles);
    expect(read(oneRole).roles).toEqual(['viewer admin']);
    expect(read(httpIdentity(token({ roles: ['guest,admin'] }))).roles).toEqual(['guest,admin']);
    expect(read(twoRoles).roles).toEqual(['viewer', 'admin']);
  });

  it('keeps a bracketed sub as it is, not as the user inside the brackets', () => {
    const caller = read(httpIdentity(token({ sub: '[bob]' })));
    expect(caller.userId).toBe('[bob]');
    expect(caller.claims.sub).toBe('[bob]');
  });

  it('reads a token carrying claims named constructor or __proto__, which neither transport reads', () => {
    // API Gateway passes them among the flattened claims; aws-jwt-verify's decoder drops them from the payload.
    const payload = JSON.parse('{"constructor":"acme-dept","__proto__":"x"}') as Record<string, unknown>;
    const caller = read(httpIdentity(token({ roles: ['member'], ...payload })));
    expect(caller).toMatchObject({ tenantId: 'acme', userId: 'alice', roles: ['member'] });
    expect(Object.hasOwn(caller.claims, 'constructor')).toBe(false);
  });

  it('accepts the token with or without the Bearer prefix', () => {
    const identity = httpIdentity(token({ roles: ['member'] }));
    const bare = identity.authorization.replace(/^Bearer /, '');
    expect(read({ ...identity, authorization: bare }).roles).toEqual(['member']);
  });

  it('is refused UNAUTHORIZED without verified claims, without a token, or with a token that is not the verified one', () => {
    const identity = httpIdentity(token({ roles: ['member'] }));
    const other = httpIdentity(token({ roles: ['admin'] }));
    for (const bad of [
      { claims: undefined, authorization: identity.authorization },
      { claims: identity.claims, authorization: undefined },
      { claims: identity.claims, authorization: 'Bearer not-a-jwt' },
      { claims: identity.claims, authorization: other.authorization },
      { claims: { ...identity.claims, extra: 'x' }, authorization: identity.authorization },
    ]) {
      expect(() => read(bad)).toThrow(expect.objectContaining({ code: 'UNAUTHORIZED' }));
    }
  });

  it('is refused UNAUTHORIZED without an aud claim, which the WebSocket authorizer requires', () => {
    // API Gateway's JWT authorizer lets such a token through when its client_id is the audience.
    const noAud = httpIdentity(token({ aud: undefined, client_id: 'tenantcast-local', roles: ['member'] }));
    expect(noAud.claims.aud).toBeUndefined();
    expect(() => read(noAud)).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED', message: expect.stringMatching(/'aud'/) }),
    );
    expect(() => read(httpIdentity(token({ aud: [], roles: ['member'] })))).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
    expect(read(httpIdentity(token({ aud: ['other', 'tenantcast-local'], roles: ['member'] })))).toMatchObject({
      userId: 'alice',
    });
  });

  it('is refused UNAUTHORIZED when the token has no usable tenant or user', () => {
    expect(() => read(httpIdentity(token({ tenant_id: ['acme'] })))).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
    expect(() => read(httpIdentity(token({ sub: { id: 'x' } })))).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
  });
});
