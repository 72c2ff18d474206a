import { describe, expect, it } from '@jest/globals';
import { FetchError, JwtInvalidSignatureError, KidNotFoundInJwksError } from 'aws-jwt-verify/error';
import { defaultClaimNames } from './auth.ts';
import {
  authorize,
  checkToken,
  originPolicyFrom,
  refusedOrigin,
  requireExpiry,
  type TokenVerifier,
} from './authorize.ts';

const methodArn = 'arn:aws:execute-api:eu-west-1:123456789012:abc/dev/$connect';
const verifier = (payload: Record<string, unknown> | Error): TokenVerifier => ({
  verify: async () => {
    if (payload instanceof Error) throw payload;
    return { exp: 2000000000, ...payload };
  },
});

describe('the $connect authorizer', () => {
  it('allows a valid token and passes tenant, user, roles, other claims and expiry in the context', async () => {
    const result = await authorize(
      { methodArn, headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1, t.o.k' }, queryStringParameters: null },
      {
        verifier: verifier({ tenant_id: 'acme', sub: 'alice', roles: ['member'], iat: 5, team: 'red' }),
        claimNames: defaultClaimNames,
      },
    );
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow', Resource: methodArn });
    expect(result.context).toEqual({
      tenantId: 'acme',
      userId: 'alice',
      roles: '["member"]',
      claims: '{"sub":"alice","team":"red"}',
      exp: 2000000000,
    });
  });

  it('returns at most 8 KB, the most API Gateway takes, for every token it allows, and denies one with more roles', async () => {
    // The worst a token can be: a user id of 256 characters JSON writes 6 bytes each, 2 KB of quote-heavy claims, the
    // longest method ARN, then as many roles as are allowed.
    const longArn = `arn:aws:execute-api:ap-southeast-2:123456789012:abcdefghij/${'s'.repeat(128)}/$connect`;
    const worst = {
      tenant_id: 'a'.repeat(64),
      sub: '\u0001'.repeat(256),
      q1: '"'.repeat(1000),
      q2: '"'.repeat(1000),
    };
    const attempt = (roles: number) =>
      authorize(
        {
          methodArn: longArn,
          headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1, t.o.k' },
          queryStringParameters: null,
        },
        {
          verifier: verifier({ ...worst, roles: Array.from({ length: roles }, (_, i) => `"role-${i}"`) }),
          claimNames: defaultClaimNames,
        },
      );
    let roles = 0;
    let last = await attempt(0);
    while (last.policyDocument.Statement[0]?.Effect === 'Allow') {
      expect(Buffer.byteLength(JSON.stringify(last))).toBeLessThanOrEqual(8192);
      roles++;
      last = await attempt(roles);
    }
    expect(roles).toBeGreaterThan(0);
    expect(last.policyDocument.Statement[0]?.Effect).toBe('Deny');
    // A plain token keeps room for ~150 group ids.
    const groups = Array.from({ length: 140 }, (_, i) => `group-${String(i).padStart(36, '0')}`);
    const plain = await authorize(
      { methodArn, headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1, t.o.k' }, queryStringParameters: null },
      { verifier: verifier({ tenant_id: 'acme', sub: 'alice', roles: groups }), claimNames: defaultClaimNames },
    );
    expect(plain.policyDocument.Statement[0]?.Effect).toBe('Allow');
  });

  it('denies a token refused for its claims within 8 KB too, however long its sub', async () => {
    for (const claimNames of [defaultClaimNames, { ...defaultClaimNames, user: 'email' }]) {
      const result = await authorize(
        { methodArn, headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1, t.o.k' }, queryStringParameters: null },
        { verifier: verifier({ tenant_id: 'acme', sub: 'u'.repeat(9000), roles: ['member'] }), claimNames },
      );
      expect(result.policyDocument.Statement[0]?.Effect).toBe('Deny');
      expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(8192);
    }
  });

  it('answers Unauthorized (HTTP 401) without a token or with one that does not verify', async () => {
    const deps = { verifier: verifier({}), claimNames: defaultClaimNames };
    await expect(authorize({ methodArn, headers: {}, queryStringParameters: {} }, deps)).rejects.toThrow(
      /^Unauthorized$/,
    );
    await expect(
      authorize(
        { methodArn, headers: {}, queryStringParameters: { token: 'x' } },
        { verifier: verifier(new JwtInvalidSignatureError('Invalid signature')), claimNames: defaultClaimNames },
      ),
    ).rejects.toThrow(/^Unauthorized$/);
    await expect(
      authorize(
        { methodArn, headers: {}, queryStringParameters: { token: 'x' } },
        { verifier: verifier(new KidNotFoundInJwksError('kid not found')), claimNames: defaultClaimNames },
      ),
    ).rejects.toThrow(/^Unauthorized$/);
  });

  it('fails (HTTP 500, the client retries) when the token cannot be checked, logging the error class at error level', async () => {
    const logged: [string, Record<string, unknown>, string | undefined][] = [];
    const log = (message: string, details: Record<string, unknown>, level?: string) =>
      logged.push([message, details, level]);
    for (const error of [
      new FetchError('https://idp.example/jwks.json', 'The operation was aborted due to timeout'),
      new TypeError('fetch failed'),
    ]) {
      const outcome = authorize(
        { methodArn, headers: {}, queryStringParameters: { token: 'x.y.z' } },
        { verifier: verifier(error), claimNames: defaultClaimNames, log },
      );
      await expect(outcome).rejects.toThrow(/^token could not be checked/);
      await expect(outcome).rejects.not.toThrow(/^Unauthorized$/);
    }
    expect(logged).toEqual([
      ['token could not be checked', expect.objectContaining({ errorClass: 'FetchError' }), 'error'],
      ['token could not be checked', { errorClass: 'TypeError', error: 'fetch failed' }, 'error'],
    ]);
  });

  it('names the error class as exported even when minification renamed the class (the deployed bundles are minified)', async () => {
    const logged: Record<string, unknown>[] = [];
    const original = Object.getOwnPropertyDescriptor(FetchError, 'name');
    Object.defineProperty(FetchError, 'name', { value: 'e', configurable: true });
    try {
      const outcome = authorize(
        { methodArn, headers: {}, queryStringParameters: { token: 'x.y.z' } },
        {
          verifier: verifier(new FetchError('https://idp.example/jwks.json', 'timeout')),
          claimNames: defaultClaimNames,
          log: (_message, details) => logged.push(details),
        },
      );
      await expect(outcome).rejects.toThrow(/^token could not be checked/);
    } finally {
      if (original !== undefined) Object.defineProperty(FetchError, 'name', original);
    }
    expect(logged).toEqual([expect.objectContaining({ errorClass: 'FetchError' })]);
  });

  it('denies (HTTP 403) a verified token whose claims name no tenant', async () => {
    const result = await authorize(
      { methodArn, headers: {}, queryStringParameters: { token: 'x' } },
      { verifier: verifier({ sub: 'alice' }), claimNames: defaultClaimNames },
    );
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    expect(result.context).toBeUndefined();
  });

  it('never logs the token', async () => {
    const lines: string[] = [];
    const log = (message: string, details: Record<string, unknown>) => lines.push(message + JSON.stringify(details));
    await authorize(
      { methodArn, headers: {}, queryStringParameters: { token: 'secret.token.value' } },
      { verifier: verifier(new Error('bad signature secret.token.value')), claimNames: defaultClaimNames, log },
    ).catch(() => undefined);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('secret.token.value');
  });
});

describe('the origin policy', () => {
  const policy = originPolicyFrom('https://app.example.com http://dev.example.test:3000', 'false');

  it('allows listed origins, case-insensitively, and nothing else', () => {
    expect(refusedOrigin('https://app.example.com', policy)).toBeUndefined();
    expect(refusedOrigin('HTTPS://APP.EXAMPLE.COM', policy)).toBeUndefined();
    expect(refusedOrigin('https://app.example.com.evil.example', policy)).toBe('origin not allowed');
    expect(refusedOrigin('null', policy)).toBe('origin not allowed');
  });

  it('reads https://* and http://* as any origin of that scheme, as the HTTP API reads its CORS list', () => {
    const anyHttps = originPolicyFrom('https://*', 'false');
    expect(refusedOrigin('https://app.example.com', anyHttps)).toBeUndefined();
    expect(refusedOrigin('http://app.example.com', anyHttps)).toBe('origin not allowed');
  });

  it('refuses a missing origin unless the stage allows server clients, and * allows any origin', () => {
    expect(refusedOrigin(undefined, policy)).toBe('no Origin header');
    expect(refusedOrigin(undefined, originPolicyFrom('', 'true'))).toBeUndefined();
    expect(refusedOrigin('https://anything.example', originPolicyFrom('*', 'false'))).toBeUndefined();
  });
});

describe('requireExpiry', () => {
  it('refuses a token without a numeric exp and passes one that has it', () => {
    expect(() => requireExpiry({ payload: { sub: 'alice' } })).toThrow('no exp claim');
    expect(() => requireExpiry({ payload: { sub: 'alice', exp: 1_900_000_000 } })).not.toThrow();
  });
});

describe('checkToken', () => {
  it('refuses a token whose header lists critical extensions, and one without exp', () => {
    const payload = { sub: 'alice', exp: 1_900_000_000 };
    expect(() => checkToken({ header: { alg: 'RS256' }, payload })).not.toThrow();
    expect(() => checkToken({ header: { alg: 'RS256', crit: ['b64'] }, payload })).toThrow('crit');
    expect(() => checkToken({ header: { alg: 'RS256' }, payload: { sub: 'alice' } })).toThrow('no exp claim');
  });

  it("takes only the RSA algorithms API Gateway's HTTP API JWT authorizer takes", () => {
    const payload = { sub: 'alice', exp: 1_900_000_000 };
    for (const alg of ['RS256', 'RS384', 'RS512']) {
      expect(() => checkToken({ header: { alg }, payload })).not.toThrow();
    }
    for (const alg of ['ES256', 'ES384', 'ES512', 'EdDSA', 'PS256', 'HS256', 'none', '']) {
      expect(() => checkToken({ header: { alg }, payload })).toThrow('only RSA algorithms');
    }
  });

  it('refuses a token issued after now, and takes one issued now or before, or with no iat', () => {
    const now = 1_800_000_000;
    const header = { alg: 'RS256' };
    expect(() => checkToken({ header, payload: { exp: now + 60, iat: now + 1 } }, now)).toThrow('issued in the future');
    expect(() => checkToken({ header, payload: { exp: now + 60, iat: now } }, now)).not.toThrow();
    expect(() => checkToken({ header, payload: { exp: now + 60, iat: now - 30 } }, now)).not.toThrow();
    expect(() => checkToken({ header, payload: { exp: now + 60 } }, now)).not.toThrow();
  });
});
