import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { JwtVerifier } from 'aws-jwt-verify';
import {
  JwtExpiredError,
  JwtInvalidAudienceError,
  JwtInvalidIssuerError,
  JwtInvalidSignatureError,
  KidNotFoundInJwksError,
} from 'aws-jwt-verify/error';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import {
  createDevIdentity,
  createSigningKey,
  type DevIdentity,
  httpJwksFetcher,
  persistentSigningKey,
} from './identity.ts';

const AUDIENCE = 'tenantcast';

let server: Server;
let base: string;
let identity: DevIdentity;

beforeAll(async () => {
  // The identity's issuer is the server's own URL, as the local runtime sets it up; so the server starts first.
  let handler: DevIdentity['httpHandler'] = async () => false;
  server = createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  identity = createDevIdentity({ issuer: `${base}/dev`, audience: AUDIENCE });
  handler = identity.httpHandler;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function verifier() {
  return JwtVerifier.create(
    { issuer: identity.issuer, audience: AUDIENCE, jwksUri: `${base}${identity.jwksPath}` },
    { jwksCache: new SimpleJwksCache({ fetcher: httpJwksFetcher }) },
  );
}

const alice = { tenantId: 'acme', userId: 'alice', roles: ['member'] };

describe('signToken', () => {
  it('issues RS256 tokens that aws-jwt-verify accepts through the served JWKS', async () => {
    const { token, expiresAt } = identity.signToken({ ...alice, ttlSeconds: 600 });
    const [header] = token.split('.');
    expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toEqual({
      alg: 'RS256',
      typ: 'JWT',
      kid: identity.kid,
    });
    const payload = await verifier().verify(token);
    expect(payload).toMatchObject({
      iss: `${base}/dev`,
      aud: AUDIENCE,
      sub: 'alice',
      tenant_id: 'acme',
      roles: ['member'],
      exp: expiresAt,
    });
    expect(payload.nbf).toBe(payload.iat);
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(600);
    expect(typeof payload.jti).toBe('string');
  });

  it('makes tokens that are rejected: expired, wrong issuer, wrong audience, foreign key, unknown kid', async () => {
    const v = verifier();
    const past = Math.floor(Date.now() / 1000) - 7200;
    await expect(v.verify(identity.signToken({ ...alice, now: past, ttlSeconds: 60 }).token)).rejects.toBeInstanceOf(
      JwtExpiredError,
    );
    await expect(
      v.verify(identity.signToken({ ...alice, extraClaims: { iss: 'https://evil.example' } }).token),
    ).rejects.toBeInstanceOf(JwtInvalidIssuerError);
    await expect(
      v.verify(identity.signToken({ ...alice, extraClaims: { aud: 'other' } }).token),
    ).rejects.toBeInstanceOf(JwtInvalidAudienceError);
    const foreign = createSigningKey('foreign');
    await expect(
      v.verify(identity.signToken({ ...alice, key: foreign, header: { kid: identity.kid } }).token),
    ).rejects.toBeInstanceOf(JwtInvalidSignatureError);
    await expect(v.verify(identity.signToken({ ...alice, key: foreign }).token)).rejects.toBeInstanceOf(
      KidNotFoundInJwksError,
    );
  });

  it('uses configured claim names', () => {
    const custom = createDevIdentity({
      issuer: 'https://issuer.example',
      audience: 'a',
      claimNames: { tenant: 'https://tenantcast/tenant', user: 'uid' },
    });
    const { token } = custom.signToken(alice);
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
    expect(payload).toMatchObject({ 'https://tenantcast/tenant': 'acme', uid: 'alice', roles: ['member'] });
  });
});

describe('HTTP routes', () => {
  async function postToken(body: string) {
    const res = await fetch(`${base}/dev/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it('POST /dev/token returns a verifiable token and its expiry', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { status, json } = await postToken(JSON.stringify({ ...alice, ttlSeconds: 3600 }));
    expect(status).toBe(200);
    expect(typeof json.token).toBe('string');
    expect(json.expiresAt).toBeGreaterThanOrEqual(before + 3600);
    const payload = await verifier().verify(json.token as string);
    expect(payload.tenant_id).toBe('acme');
  });

  it('POST /dev/token answers 400 for missing or mistyped fields and invalid JSON, 413 above 16 KB', async () => {
    const bad = [
      JSON.stringify({ userId: 'alice', roles: [] }),
      JSON.stringify({ tenantId: 'acme', userId: 7, roles: [] }),
      JSON.stringify({ tenantId: 'acme', userId: 'alice', roles: 'member' }),
      JSON.stringify({ tenantId: 'acme', userId: 'alice', roles: [], ttlSeconds: -1 }),
      JSON.stringify([1, 2]),
      '{not json',
    ];
    for (const body of bad) {
      const { status, json } = await postToken(body);
      expect(status).toBe(400);
      expect(json).toEqual({ error: { code: 'BAD_REQUEST', message: expect.any(String) } });
    }
    const big = await postToken(JSON.stringify({ ...alice, pad: 'x'.repeat(16 * 1024) }));
    expect(big.status).toBe(413);
  });

  it('GET /dev/jwks.json serves the public key only', async () => {
    const res = await fetch(`${base}/dev/jwks.json`);
    expect(res.status).toBe(200);
    const jwks = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: identity.kid, e: 'AQAB' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect((await fetch(`${base}/dev/token`)).status).toBe(405);
    expect((await fetch(`${base}/dev/other`)).status).toBe(404);
  });
});

describe('a persistent signing key', () => {
  it('is created in its file on first use and read back from it afterwards, with the same kid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tenantcast-key-'));
    try {
      const file = join(dir, 'identity', 'signing-key.pem');
      const first = await persistentSigningKey(file);
      const again = await persistentSigningKey(file);
      expect(again.kid).toBe(first.kid);
      expect(again.publicJwk).toEqual(first.publicJwk);
      expect(await readFile(file, 'utf8')).toContain('BEGIN PRIVATE KEY');
      const other = await persistentSigningKey(join(dir, 'other.pem'));
      expect(other.kid).not.toBe(first.kid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
