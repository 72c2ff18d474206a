/**
 * The `$connect` authorizer against every kind of bad token, end to end over real WebSocket handshakes
 * (docs/security.md, "Authentication"), and the cost of a flood of unknown key ids.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { createSigningKey, signJwt } from '../../local/identity.ts';
import { type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { devLimits } from '../../local/seed.ts';
import { httpApi, STARTUP_TIMEOUT_MS } from '../support/local-stack.ts';
import { connect, handshakeStatus } from '../support/ws-client.ts';

let runtime: LocalRuntime;

/**
 * An EC key the issuer also publishes: a token it signs verifies with aws-jwt-verify, but API Gateway's HTTP API JWT
 * authorizer takes only RSA algorithms, so neither transport may take it (docs/security.md).
 */
const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const EC_KID = 'issuer-ec';

function signEs256(payload: Record<string, unknown>): string {
  const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: EC_KID })}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key: ecKey.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

beforeAll(async () => {
  runtime = await startLocal({
    memoryDatabases: true,
    seedLimits: devLimits,
    port: 0,
    schedules: false,
    log: () => undefined,
    onFunctionLog: () => undefined,
    extraAllowedOrigins: ['http://localhost:5173'],
  });
  // Before any token is verified, so the verifiers' first fetch of the JWKS has it.
  const jwk = ecKey.publicKey.export({ format: 'jwk' });
  (runtime.identity.jwks.keys as unknown[]).push({ ...jwk, kid: EC_KID, alg: 'ES256', use: 'sig' });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await runtime?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const base = { tenantId: 'acme', userId: 'alice', roles: ['member'] };
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const es256Claims = () => ({
  iss: runtime.identity.issuer,
  aud: runtime.identity.audience,
  sub: 'alice',
  tenant_id: 'acme',
  roles: ['member'],
  iat: now(),
  exp: now() + 600,
});

describe('a handshake', () => {
  it('with a valid token is accepted as a subprotocol and as a query parameter', async () => {
    const { token } = runtime.identity.signToken(base);
    expect(await handshakeStatus(runtime.wsUrl, token, 'subprotocol')).toBe(101);
    expect(await handshakeStatus(runtime.wsUrl, token, 'query')).toBe(101);
  });

  it('with the token offered as a subprotocol selects tenantcast.v1 and never echoes the token', async () => {
    const c = await connect(runtime.wsUrl, runtime.identity.signToken(base).token);
    expect(c.ws.protocol).toBe('tenantcast.v1');
    await c.close();
  });

  const refused: [string, () => string | undefined][] = [
    ['no token', () => undefined],
    ['an empty token', () => ''],
    ['a malformed token', () => 'this-is-not-a-jwt'],
    ['three garbage segments', () => 'a.b.c'],
    ['an expired token', () => runtime.identity.signToken({ ...base, now: now() - 7200, ttlSeconds: 60 }).token],
    [
      'a token that never expires (no exp)',
      () => runtime.identity.signToken({ ...base, extraClaims: { exp: undefined } }).token,
    ],
    [
      'a token not yet valid',
      () => runtime.identity.signToken({ ...base, extraClaims: { nbf: now() + 3600, iat: now() + 3600 } }).token,
    ],
    [
      'a token of another issuer',
      () => runtime.identity.signToken({ ...base, extraClaims: { iss: 'https://evil.example/' } }).token,
    ],
    [
      'a token for another audience',
      () => runtime.identity.signToken({ ...base, extraClaims: { aud: 'someone-else' } }).token,
    ],
    [
      "a token for another audience, whatever its client_id (API Gateway's rule: aud first)",
      () =>
        runtime.identity.signToken({
          ...base,
          extraClaims: { aud: 'someone-else', client_id: runtime.identity.audience },
        }).token,
    ],
    [
      'a token without aud, even with the audience as its client_id (refused on both transports alike: docs/security.md)',
      () =>
        runtime.identity.signToken({
          ...base,
          extraClaims: { aud: undefined, client_id: runtime.identity.audience },
        }).token,
    ],
    [
      "an unsigned token (alg 'none')",
      () =>
        `${b64({ alg: 'none', typ: 'JWT', kid: runtime.identity.kid })}.${b64({ iss: runtime.identity.issuer, aud: runtime.identity.audience, sub: 'alice', tenant_id: 'acme', exp: now() + 600 })}.`,
    ],
    [
      'a token whose header claims HS256 with the public key id',
      () =>
        `${b64({ alg: 'HS256', typ: 'JWT', kid: runtime.identity.kid })}.${b64({ iss: runtime.identity.issuer, aud: runtime.identity.audience, sub: 'alice', tenant_id: 'acme', exp: now() + 600 })}.c2lnbmF0dXJl`,
    ],
    [
      'a token signed by an unknown key',
      () => runtime.identity.signToken({ ...base, key: createSigningKey('foreign') }).token,
    ],
    [
      "a token signed by another key under the issuer's key id",
      () => runtime.identity.signToken({ ...base, key: createSigningKey(runtime.identity.kid) }).token,
    ],
    [
      'a token issued in the future (API Gateway: iat must be before the current time)',
      () => runtime.identity.signToken({ ...base, extraClaims: { iat: now() + 3600 } }).token,
    ],
    [
      "a token the issuer signed with ES256 (API Gateway's HTTP API takes only RSA algorithms)",
      () => signEs256(es256Claims()),
    ],
    [
      'a token whose header lists critical extensions (RFC 7515: none is understood here)',
      () => runtime.identity.signToken({ ...base, header: { crit: ['exp-v2'], 'exp-v2': true } }).token,
    ],
  ];

  it.each(refused)('with %s is refused with 401, as a subprotocol and in the query string', async (_what, token) => {
    expect(await handshakeStatus(runtime.wsUrl, token(), 'subprotocol')).toBe(401);
    expect(await handshakeStatus(runtime.wsUrl, token(), 'query')).toBe(401);
  });

  it('signed with ES256 by a key of the JWKS, or issued in the future, is refused over HTTP too', async () => {
    const es256 = signEs256({ ...es256Claims(), roles: ['admin'] });
    const future = runtime.identity.signToken({ ...base, roles: ['admin'], extraClaims: { iat: now() + 3600 } }).token;
    for (const token of [es256, future]) {
      const answer = await httpApi(runtime, token, 'POST', '/v1/publish', { group: 'chat:general', data: 1 });
      expect(answer.status).toBe(401);
    }
  });

  it('with a critical header extension is refused over HTTP too', async () => {
    const critical = runtime.identity.signToken({ ...base, roles: ['admin'], header: { crit: ['exp-v2'] } }).token;
    expect((await httpApi(runtime, critical, 'POST', '/v1/publish', { group: 'chat:general', data: 1 })).status).toBe(
      401,
    );
  });

  it('with a token that never expires is refused over HTTP too, as API Gateway refuses it (claims mean one thing)', async () => {
    const forever = runtime.identity.signToken({ ...base, roles: ['admin'], extraClaims: { exp: undefined } }).token;
    const answer = await httpApi(runtime, forever, 'POST', '/v1/publish', { group: 'chat:general', data: 1 });
    expect(answer.status).toBe(401);
    const expiring = runtime.identity.signToken({ ...base, roles: ['admin'] }).token;
    expect((await httpApi(runtime, expiring, 'POST', '/v1/publish', { group: 'chat:general', data: 1 })).status).toBe(
      202,
    );
  });

  it('with a claim named constructor or __proto__ opens a connection and publishes over HTTP alike', async () => {
    // API Gateway passes such claims to the HTTP function; aws-jwt-verify's decoder drops them. Until 2026-12-04 the
    // HTTP functions refused the token (401) in AWS, and the local HTTP API, flattening the decoded payload, hid it.
    const odd = JSON.parse('{"constructor":"acme-dept","__proto__":"x"}') as Record<string, unknown>;
    const { token } = runtime.identity.signToken({ ...base, roles: ['admin'], extraClaims: odd });
    expect(await handshakeStatus(runtime.wsUrl, token)).toBe(101);
    expect((await httpApi(runtime, token, 'POST', '/v1/publish', { group: 'chat:general', data: 1 })).status).toBe(202);
  });

  it('with claims a DynamoDB item cannot hold as they are subscribes and publishes, as over HTTP', async () => {
    // Until 2026-12-04 every subscribe of such a connection answered INTERNAL (the membership item kept the claims
    // verbatim), while HTTP served the same token.
    const odd: Record<string, unknown>[] = [
      { employee_no: 2 ** 64 },
      { '': 'x' },
      { deep: JSON.parse(`${'{"a":'.repeat(32)}1${'}'.repeat(32)}`) },
    ];
    for (const extraClaims of odd) {
      const { token } = runtime.identity.signToken({ ...base, extraClaims });
      const c = await connect(runtime.wsUrl, token);
      expect(await c.request({ action: 'subscribe', group: 'chat:general' })).toMatchObject({ type: 'ack' });
      await c.close();
    }
  });

  it('with more roles than an authorizer may pass is refused on both transports; 100 group ids pass on both', async () => {
    // Until 2026-12-04 the handshake answered 500 (API Gateway's 8 KB cap on an authorizer's result), which clients
    // retry for ever, while HTTP served the token.
    const groups = (n: number) => Array.from({ length: n }, () => `group-${randomUUID()}`);
    const tooMany = runtime.identity.signToken({ ...base, roles: ['admin', ...groups(150)] }).token;
    expect(await handshakeStatus(runtime.wsUrl, tooMany)).toBe(403);
    expect((await httpApi(runtime, tooMany, 'POST', '/v1/publish', { group: 'chat:general', data: 1 })).status).toBe(
      401,
    );
    // With 170 the token itself passes the HTTP API's 10,240 bytes of request line and headers: refused before its
    // authorizer (431 locally; AWS does not say what it answers).
    const tooLong = runtime.identity.signToken({ ...base, roles: ['admin', ...groups(170)] }).token;
    expect(await handshakeStatus(runtime.wsUrl, tooLong)).toBe(403);
    expect((await httpApi(runtime, tooLong, 'POST', '/v1/publish', { group: 'chat:general', data: 1 })).status).toBe(
      431,
    );
    const many = runtime.identity.signToken({ ...base, roles: ['admin', ...groups(100)] }).token;
    expect(await handshakeStatus(runtime.wsUrl, many)).toBe(101);
    expect((await httpApi(runtime, many, 'POST', '/v1/publish', { group: 'chat:general', data: 1 })).status).toBe(202);
  });

  it('with a verified token lacking a usable tenant claim is refused with 403', async () => {
    const noTenant = runtime.identity.signToken({ ...base, extraClaims: { tenant_id: undefined } }).token;
    const badTenant = runtime.identity.signToken({ ...base, tenantId: 'acme#G#chat' }).token;
    expect(await handshakeStatus(runtime.wsUrl, noTenant)).toBe(403);
    expect(await handshakeStatus(runtime.wsUrl, badTenant)).toBe(403);
  });

  it('with a user id of 256 euro signs opens and publishes over HTTP; one holding half a surrogate pair is refused', async () => {
    // Until 2026-12-04 both were a 500: the first's percent-encoded id passed DynamoDB's 2,048-byte partition key in
    // the connection counter and the HTTP rate-limit keys, the second's could not be encoded at all.
    const long = runtime.identity.signToken({ ...base, userId: '€'.repeat(256), roles: ['admin'] }).token;
    expect(await handshakeStatus(runtime.wsUrl, long)).toBe(101);
    const published = await httpApi(runtime, long, 'POST', '/v1/publish', { group: 'chat:general', data: 1 });
    expect(published.status).toBe(202);
    const broken = runtime.identity.signToken({ ...base, userId: 'bob\ud800' }).token;
    expect(await handshakeStatus(runtime.wsUrl, broken)).toBe(403);
    const refused = await httpApi(runtime, broken, 'POST', '/v1/publish', { group: 'chat:general', data: 1 });
    expect(refused.status).toBe(401);
  });
});

describe('a flood of unknown key ids', () => {
  it('costs at most one JWKS fetch per penalty window', async () => {
    // Warm the authorizer's key cache first.
    expect(await handshakeStatus(runtime.wsUrl, runtime.identity.signToken(base).token)).toBe(101);
    const before = runtime.identity.stats.jwksRequests;
    const key = createSigningKey('attacker');
    const tokens = Array.from({ length: 30 }, (_, i) =>
      signJwt(
        { alg: 'RS256', typ: 'JWT', kid: `unknown-${i}` },
        { iss: runtime.identity.issuer, aud: runtime.identity.audience, sub: 'x', tenant_id: 'acme', exp: now() + 600 },
        key.privateKey,
      ),
    );
    const statuses = await Promise.all(tokens.map((t) => handshakeStatus(runtime.wsUrl, t)));
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(runtime.identity.stats.jwksRequests - before).toBeLessThanOrEqual(1);
    // And valid tokens still get in meanwhile.
    expect(await handshakeStatus(runtime.wsUrl, runtime.identity.signToken(base).token)).toBe(101);
  });
});

describe('the origin allowlist', () => {
  async function statusFrom(origin: string | undefined): Promise<number> {
    const ws = new WebSocket(runtime.wsUrl, ['tenantcast.v1', runtime.identity.signToken(base).token], {
      ...(origin !== undefined && { origin }),
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', reject);
    });
  }

  it("admits the stage's own origins and server clients without Origin, and refuses any other origin with 403", async () => {
    expect(await statusFrom(runtime.url)).toBe(101);
    expect(await statusFrom(`http://localhost:${runtime.port}`)).toBe(101);
    expect(await statusFrom(undefined)).toBe(101);
    expect(await statusFrom('https://evil.example')).toBe(403);
    expect(await statusFrom(`${runtime.url}.evil.example`)).toBe(403);
    expect(await statusFrom('null')).toBe(403);
  });

  it('admits an extra origin (a front end served elsewhere) on the WebSocket and by the HTTP API’s CORS alike', async () => {
    const devServer = 'http://localhost:5173';
    expect(await statusFrom(devServer)).toBe(101);
    const preflight = await fetch(`${runtime.url}/v1/publish`, {
      method: 'OPTIONS',
      headers: {
        origin: devServer,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(devServer);
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization,content-type,if-match');
    const token = runtime.identity.signToken({ ...base, roles: ['admin'] }).token;
    const published = await fetch(`${runtime.url}/v1/publish`, {
      method: 'POST',
      headers: { origin: devServer, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ group: 'chat:general', data: 1 }),
    });
    expect(published.status).toBe(202);
    expect(published.headers.get('access-control-allow-origin')).toBe(devServer);
    // Another origin gets no CORS headers, so its page cannot read the answer (API Gateway answers it all the same).
    const other = await fetch(`${runtime.url}/v1/publish`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
