import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpMethod as ApiHttpMethod,
  CorsHttpMethod,
  HttpApi,
  type HttpRoute,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { HttpMethod } from '../lambdas/manifest.ts';
import { DEFAULT_THROTTLE, type ThrottleConfig } from './config.ts';
import { HTTP_API_CORS } from './http-api-cors.ts';

export interface TenantcastHttpApiProps {
  /** Expected `iss` of the JWT, an https URL; API Gateway fetches the keys from its OpenID discovery document. */
  readonly jwtIssuer: string;

  /** Accepted `aud` (or Cognito `client_id`) values of the JWT; at least one. */
  readonly jwtAudience: readonly string[];

  /**
   * Browser origins allowed to call the API (CORS), or `['*']`.
   *
   * @default ['*']
   */
  readonly corsAllowedOrigins?: readonly string[];

  /**
   * Default throttling of every route.
   *
   * @default { rateLimit: 500, burstLimit: 1000 }
   */
  readonly throttle?: ThrottleConfig;

  /**
   * How long access logs are kept.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: RetentionDays;

  /**
   * What happens to the access log group when it leaves the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly accessLogRemovalPolicy?: RemovalPolicy;

  /**
   * Name of the API.
   *
   * @default - the construct's unique id
   */
  readonly apiName?: string;

  /**
   * Description of the API.
   *
   * @default - none
   */
  readonly description?: string;
}

/** One JSON line per request; HTTP API `$context` variables only. */
export const HTTP_ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    ip: '$context.identity.sourceIp',
    requestTime: '$context.requestTime',
    routeKey: '$context.routeKey',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    responseLatency: '$context.responseLatency',
    error: '$context.error.message',
    authorizerError: '$context.authorizer.error',
    integrationError: '$context.integrationErrorMessage',
  }),
);

const PATH = /^(\/[A-Za-z0-9._~-]+|\/\{[A-Za-z][A-Za-z0-9_]*\+?\})+$/;

/**
 * An API Gateway HTTP API whose routes all go through a native JWT authorizer and Lambda proxy integrations
 * (payload format 2.0), served from an auto-deployed `$default` stage (paths start at the root, e.g. `/v1/schema`)
 * with throttling, CORS and JSON access logs.
 */
export class TenantcastHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly authorizer: HttpJwtAuthorizer;
  readonly accessLogGroup: LogGroup;

  private readonly integrations = new Map<IFunction, HttpLambdaIntegration>();
  private readonly handlers = new Map<string, IFunction>();

  constructor(scope: Construct, id: string, props: TenantcastHttpApiProps) {
    super(scope, id);
    let issuer: URL | undefined;
    try {
      issuer = new URL(props.jwtIssuer);
    } catch {
      issuer = undefined;
    }
    if (issuer?.protocol !== 'https:') {
      throw new Error(`${this.node.path}: jwtIssuer must be an https URL (got '${props.jwtIssuer}')`);
    }
    if (props.jwtAudience.length === 0 || props.jwtAudience.some((a) => a.trim() === '')) {
      throw new Error(
        `${this.node.path}: jwtAudience needs at least one non-empty value (got ${JSON.stringify(props.jwtAudience)})`,
      );
    }
    const throttle = props.throttle ?? DEFAULT_THROTTLE;
    if (!(throttle.rateLimit > 0) || !Number.isInteger(throttle.burstLimit) || throttle.burstLimit <= 0) {
      throw new Error(
        `${this.node.path}: throttle needs a positive rateLimit and a positive integer burstLimit (got ${JSON.stringify(throttle)})`,
      );
    }
    const origins = props.corsAllowedOrigins ?? ['*'];
    if (origins.length === 0) throw new Error(`${this.node.path}: corsAllowedOrigins must not be empty (got [])`);

    this.authorizer = new HttpJwtAuthorizer('JwtAuthorizer', props.jwtIssuer, {
      jwtAudience: [...props.jwtAudience],
    });
    this.api = new HttpApi(this, 'Api', {
      apiName: props.apiName,
      description: props.description,
      createDefaultStage: false,
      defaultAuthorizer: this.authorizer,
      corsPreflight: {
        allowOrigins: [...origins],
        allowMethods: HTTP_API_CORS.allowMethods.map((method) => CorsHttpMethod[method]),
        allowHeaders: [...HTTP_API_CORS.allowHeaders],
        exposeHeaders: [...HTTP_API_CORS.exposeHeaders],
        maxAge: Duration.seconds(HTTP_API_CORS.maxAgeSeconds),
      },
    });
    this.accessLogGroup = new LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.accessLogRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: throttle.rateLimit, burstLimit: throttle.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: HTTP_ACCESS_LOG_FORMAT,
      },
    });
  }

  /** The API's base URL: `https://{apiId}.execute-api.{region}.amazonaws.com/`. */
  get url(): string {
    return this.stage.url;
  }

  /** The routes added so far, as `METHOD /path`. */
  get routeKeys(): readonly string[] {
    return [...this.handlers.keys()];
  }

  /**
   * Routes `method path` to `handler` through a Lambda proxy integration (payload format 2.0; one integration per
   * function, shared by its routes), behind the JWT authorizer.
   *
   * @throws when the path is not an API Gateway path (`/v1/entities/{entity}`) or the route already exists
   */
  addRoute(method: HttpMethod, path: string, handler: IFunction): HttpRoute {
    if (!PATH.test(path)) {
      throw new Error(
        `${this.node.path}: a route path is '/'-separated segments or {parameters}, e.g. /v1/entities/{entity} (got '${path}')`,
      );
    }
    const key = `${method} ${path}`;
    const existing = this.handlers.get(key);
    if (existing) throw new Error(`${this.node.path}: route '${key}' is already routed to ${existing.node.path}`);
    this.handlers.set(key, handler);

    let integration = this.integrations.get(handler);
    if (!integration) {
      integration = new HttpLambdaIntegration(`${handler.node.id}Integration`, handler);
      this.integrations.set(handler, integration);
    }
    const [route] = this.api.addRoutes({
      path,
      methods: [ApiHttpMethod[method]],
      integration,
      authorizer: this.authorizer,
    });
    if (!route) throw new Error(`${this.node.path}: API Gateway created no route for '${key}'`);
    return route;
  }
}
