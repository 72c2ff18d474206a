/** The connection JWT verifier and the claim names, both read from the environment the manifest binds. */
import { JwtVerifier } from 'aws-jwt-verify';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import { type ClaimNames, defaultClaimNames } from '../core/auth.ts';
import { checkToken } from '../core/authorize.ts';
import { optionalEnv, requireEnv } from '../core/env.ts';
import { FetchJwksFetcher } from '../core/jwks-fetcher.ts';

/** A verifier for the tenant's tokens: issuer, audience and JWKS from `JWT_ISSUER`, `JWT_AUDIENCE`, `JWKS_URI`. */
export function createJwtVerifier() {
  return JwtVerifier.create(
    {
      issuer: requireEnv('JWT_ISSUER'),
      audience: requireEnv('JWT_AUDIENCE'),
      jwksUri: requireEnv('JWKS_URI'),
      customJwtCheck: checkToken,
    },
    { jwksCache: new SimpleJwksCache({ fetcher: new FetchJwksFetcher() }) },
  );
}

/** The claims naming tenant, user and roles: `CLAIM_TENANT`, `CLAIM_USER`, `CLAIM_ROLES`, else the defaults. */
export function claimNamesFromEnv(): ClaimNames {
  return {
    tenant: optionalEnv('CLAIM_TENANT', defaultClaimNames.tenant),
    user: optionalEnv('CLAIM_USER', defaultClaimNames.user),
    roles: optionalEnv('CLAIM_ROLES', defaultClaimNames.roles),
  };
}
