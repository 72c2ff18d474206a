/**
 * Development identity provider: issues RS256 JWTs for any tenant/user/roles and serves the public JWKS, so the
 * real authorizer verifies real tokens locally (with `JWT_ISSUER`, `JWT_AUDIENCE`, `JWKS_URI` pointing here).
 *
 * HTTP (mount `httpHandler` on the gateway's server):
 *   POST {basePath}/token      {"tenantId":"acme","userId":"alice","roles":["member"],"ttlSeconds":3600}
 *                              → 200 {"token":"<jwt>","expiresAt":<epoch seconds>}
 *   GET  {basePath}/jwks.json  → 200 {"keys":[<RSA public JWK>]}
 *
 * Signing is done here with node:crypto: none of the project's libraries signs JWTs (aws-jwt-verify only verifies).
 * For tests, `signToken` takes claim/header overrides and another key (`createSigningKey`), to make expired,
 * wrong-issuer, wrong-audience or foreign-key tokens.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { drain, readBody } from './http-util.ts';

export interface PublicJwk {
  kty: 'RSA';
  kid: string;
  alg: 'RS256';
  use: 'sig';
  n: string;
  e: string;
}

export interface Jwks {
  keys: PublicJwk[];
}

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: PublicJwk;
}

/** A fresh RSA-2048 key pair for RS256. */
export function createSigningKey(kid: string = `dev-${randomUUID().slice(0, 8)}`): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') throw new Error('RSA public key export failed');
  return { kid, privateKey, publicJwk: { kty: 'RSA', kid, alg: 'RS256', use: 'sig', n: jwk.n, e: jwk.e } };
}

/** A signing key from a PEM private key (PKCS#8 or PKCS#1), e.g. to keep tokens valid across restarts. */
export function signingKeyFromPem(pem: string, kid: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.e !== 'string') {
    throw new Error('not an RSA private key');
  }
  return { kid, privateKey, publicJwk: { kty: 'RSA', kid, alg: 'RS256', use: 'sig', n: jwk.n, e: jwk.e } };
}

/**
 * The signing key kept in `file` (PKCS#8 PEM), created there on first use: tokens issued before a restart of the
 * local runtime stay valid after it (docs/client.md, "Demo"). The kid is derived from the public key, so it is
 * stable too.
 */
export async function persistentSigningKey(file: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const created = createSigningKey();
    pem = created.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, pem, { mode: 0o600 });
  }
  const publicDer = createPublicKey(createPrivateKey(pem)).export({ format: 'der', type: 'spki' });
  return signingKeyFromPem(pem, `dev-${createHash('sha256').update(publicDer).digest('hex').slice(0, 8)}`);
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** Signs `header.payload` with RS256 (RSASSA-PKCS1-v1_5 with SHA-256). */
export function signJwt(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${base64url(sign('sha256', Buffer.from(input), key))}`;
}

/** Names of the claims the authorizer reads (CLAIM_TENANT, CLAIM_USER, CLAIM_ROLES). */
export interface ClaimNames {
  tenant: string;
  user: string;
  roles: string;
}

export const defaultClaimNames: ClaimNames = { tenant: 'tenant_id', user: 'sub', roles: 'roles' };

export interface DevIdentityOptions {
  issuer: string;
  audience: string;
  /** Path prefix of the HTTP routes. Default `/dev`. */
  basePath?: string;
  claimNames?: Partial<ClaimNames>;
  /** Default: a fresh key generated now. */
  key?: SigningKey;
  /** Largest accepted TTL. Default 24 h. */
  maxTtlSeconds?: number;
}

export interface SignTokenInput {
  tenantId: string;
  userId: string;
  roles: readonly string[];
  /** Default 3600. */
  ttlSeconds?: number;
  /** Added to the payload (after the standard claims, so they can also override them, e.g. `iss`, `exp`). */
  extraClaims?: Record<string, unknown>;
  /** Merged into the JOSE header (e.g. `{kid: 'other'}`, `{alg: 'none'}`) — for tests. */
  header?: Record<string, unknown>;
  /** Sign with another key (its kid goes in the header unless `header.kid` is given) — for tests. */
  key?: SigningKey;
  /** Issue time, epoch seconds. Default now — set it in the past for expired tokens. */
  now?: number;
}

export interface SignedToken {
  token: string;
  /** Epoch seconds. */
  expiresAt: number;
}

export interface DevIdentity {
  readonly issuer: string;
  readonly audience: string;
  readonly kid: string;
  readonly claimNames: ClaimNames;
  /** The public JWKS served at `jwksPath`. */
  readonly jwks: Jwks;
  /** `{basePath}/token` */
  readonly tokenPath: string;
  /** `{basePath}/jwks.json` — JWKS_URI is the server's base URL plus this. */
  readonly jwksPath: string;
  signToken(input: SignTokenInput): SignedToken;
  /** Requests served (live object): how often verifiers fetched the JWKS, for tests of the key cache. */
  readonly stats: { jwksRequests: number };
  /**
   * Fault injection (live object, tests only): with `jwksStatus` set, the JWKS answers that status, as an identity
   * provider that is down would.
   */
  readonly faults: { jwksStatus?: number };
  /** Serves the token and JWKS routes; false for any other path. Fits `Gateway.addHttpHandler`. */
  httpHandler(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

const MAX_BODY_BYTES = 16 * 1024;

class BadRequest extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A `POST /dev/token` body: tenant, user, roles (at most 50) and a TTL up to `maxTtlSeconds`. */
function parseTokenRequest(body: unknown, maxTtlSeconds: number): SignTokenInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest(400, 'BAD_REQUEST', 'body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  const text = (name: string): string => {
    const v = b[name];
    if (typeof v !== 'string' || v.trim() === '' || v.length > 256) {
      throw new BadRequest(400, 'BAD_REQUEST', `${name} must be a non-empty string of at most 256 characters`);
    }
    return v;
  };
  const tenantId = text('tenantId');
  const userId = text('userId');
  const roles = b.roles;
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string' || r === '') || roles.length > 50) {
    throw new BadRequest(400, 'BAD_REQUEST', 'roles must be an array of non-empty strings');
  }
  let ttlSeconds = 3600;
  if (b.ttlSeconds !== undefined) {
    const t = b.ttlSeconds;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > maxTtlSeconds) {
      throw new BadRequest(400, 'BAD_REQUEST', `ttlSeconds must be an integer from 1 to ${maxTtlSeconds}`);
    }
    ttlSeconds = t;
  }
  return { tenantId, userId, roles: roles as string[], ttlSeconds };
}

/** A `POST /dev/token` request's body as JSON, or the 400/405/413 it deserves. */
async function tokenRequestBody(req: IncomingMessage): Promise<unknown> {
  if ((req.method ?? 'GET') !== 'POST') {
    await drain(req);
    throw new BadRequest(405, 'BAD_REQUEST', 'use POST');
  }
  const raw = await readBody(req, MAX_BODY_BYTES, MAX_BODY_BYTES * 64);
  if (raw === undefined) throw new BadRequest(413, 'TOO_LARGE', `body exceeds ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BadRequest(400, 'BAD_REQUEST', 'body is not valid JSON');
  }
}

/** Browser dev clients fetch tokens cross-origin (e.g. from a separate dev server): any origin, and its preflight. */
async function answeredPreflight(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  res.setHeader('Access-Control-Allow-Origin', '*');
  if ((req.method ?? 'GET') !== 'OPTIONS') return false;
  await drain(req);
  res.writeHead(204, {
    'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type',
    'Access-Control-Max-Age': '600',
  });
  res.end();
  return true;
}

export function createDevIdentity(options: DevIdentityOptions): DevIdentity {
  const key = options.key ?? createSigningKey();
  const basePath = (options.basePath ?? '/dev').replace(/\/+$/, '');
  const claimNames: ClaimNames = { ...defaultClaimNames, ...options.claimNames };
  const maxTtlSeconds = options.maxTtlSeconds ?? 24 * 3600;
  const jwks: Jwks = { keys: [key.publicJwk] };
  const tokenPath = `${basePath}/token`;
  const jwksPath = `${basePath}/jwks.json`;
  const stats = { jwksRequests: 0 };
  const faults: { jwksStatus?: number } = {};

  function signToken(input: SignTokenInput): SignedToken {
    const signer = input.key ?? key;
    const iat = input.now ?? Math.floor(Date.now() / 1000);
    const exp = iat + (input.ttlSeconds ?? 3600);
    const payload: Record<string, unknown> = {
      iss: options.issuer,
      aud: options.audience,
      [claimNames.user]: input.userId,
      [claimNames.tenant]: input.tenantId,
      [claimNames.roles]: [...input.roles],
      iat,
      nbf: iat,
      exp,
      jti: randomUUID(),
      ...input.extraClaims,
    };
    const header = { alg: 'RS256', typ: 'JWT', kid: signer.kid, ...input.header };
    const expiresAt = typeof payload.exp === 'number' ? payload.exp : exp;
    return { token: signJwt(header, payload, signer.privateKey), expiresAt };
  }

  async function serveJwks(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.jwksRequests++;
    await drain(req);
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new BadRequest(405, 'BAD_REQUEST', 'use GET');
    if (faults.jwksStatus !== undefined) {
      json(res, faults.jwksStatus, { error: { code: 'INTERNAL', message: 'JWKS unavailable (fault injection)' } });
      return;
    }
    json(res, 200, jwks, { 'Cache-Control': 'max-age=300' });
  }

  async function httpHandler(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== tokenPath && pathname !== jwksPath) return false;
    if (await answeredPreflight(req, res)) return true;
    try {
      if (pathname === jwksPath) await serveJwks(req, res);
      else json(res, 200, signToken(parseTokenRequest(await tokenRequestBody(req), maxTtlSeconds)));
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      json(res, err.status, { error: { code: err.code, message: err.message } });
    }
    return true;
  }

  return {
    issuer: options.issuer,
    audience: options.audience,
    kid: key.kid,
    claimNames,
    jwks,
    tokenPath,
    jwksPath,
    signToken,
    stats,
    faults,
    httpHandler,
  };
}

/**
 * A fetcher for aws-jwt-verify's `SimpleJwksCache` that also reaches `http://` URIs (its default fetcher is
 * HTTPS-only): `new SimpleJwksCache({ fetcher: httpJwksFetcher })`.
 */
export const httpJwksFetcher = {
  async fetch(uri: string): Promise<ArrayBuffer> {
    const response = await fetch(uri);
    if (response.status !== 200) throw new Error(`JWKS fetch from ${uri}: status ${response.status}`);
    return response.arrayBuffer();
  },
};

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}
