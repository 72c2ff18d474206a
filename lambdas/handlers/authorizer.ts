/** `$connect` authorizer: verifies the JWT and passes tenant, user and roles to every route of the connection. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { authorize, originPolicyFrom } from '../core/authorize.ts';
import { optionalEnv } from '../core/env.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, createMetrics, metricNames } from '../shared/metrics.ts';
import { createTracer } from '../shared/tracer.ts';
import { claimNamesFromEnv, createJwtVerifier } from '../shared/verifier.ts';

const logger = createLogger();
const metrics = createMetrics();
const tracer = createTracer();

const verifier = createJwtVerifier();

const claimNames = claimNamesFromEnv();

const origins = originPolicyFrom(optionalEnv('ALLOWED_ORIGINS', '*'), optionalEnv('ALLOW_MISSING_ORIGIN', 'true'));

export const handler = middy<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics))
  .use(countInput(metrics, metricNames.authorizations))
  .handler((event) =>
    authorize(event, {
      verifier,
      claimNames,
      origins,
      log: (message, details, level = 'info') =>
        logger[level](message, { ...details, connectionId: event.requestContext?.connectionId }),
    }),
  );
