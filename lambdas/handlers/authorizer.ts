/** `$connect` authorizer: verifies the JWT and passes tenant, user and roles to every route of the connection. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { JwtVerifier } from 'aws-jwt-verify';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { defaultClaimNames } from '../core/auth.ts';
import { authorize } from '../core/authorize.ts';
import { optionalEnv, requireEnv } from '../core/env.ts';
import { FetchJwksFetcher } from '../core/jwks-fetcher.ts';
import { createLogger } from '../shared/logger.ts';

const logger = createLogger();

const verifier = JwtVerifier.create(
  { issuer: requireEnv('JWT_ISSUER'), audience: requireEnv('JWT_AUDIENCE'), jwksUri: requireEnv('JWKS_URI') },
  { jwksCache: new SimpleJwksCache({ fetcher: new FetchJwksFetcher() }) },
);

const claimNames = {
  tenant: optionalEnv('CLAIM_TENANT', defaultClaimNames.tenant),
  user: optionalEnv('CLAIM_USER', defaultClaimNames.user),
  roles: optionalEnv('CLAIM_ROLES', defaultClaimNames.roles),
};

export const handler = middy<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event) =>
    authorize(event, {
      verifier,
      claimNames,
      log: (message, details) => logger.info(message, { ...details, connectionId: event.requestContext?.connectionId }),
    }),
  );
