import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnAuthorizer,
  LogGroupLogDestination,
  WebSocketApi,
  type WebSocketAuthorizer,
  type WebSocketRoute,
  WebSocketStage,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { routeSelectionExpression as manifestRouteSelectionExpression } from '../lambdas/manifest.ts';
import { DEFAULT_THROTTLE, type ThrottleConfig } from './config.ts';
import type { IConnectionsEndpoint } from './function-binding.ts';
import { acknowledgeWildcardResource } from './nag.ts';

export interface RealtimeWebSocketApiProps {
  /** Name of the API stage; clients connect to `wss://…/{stageName}`. Letters, digits, `-` and `_`. */
  readonly stageName: string;

  /**
   * The Lambda REQUEST authorizer of the `$connect` route. It has no identity source, so API Gateway invokes it
   * for every connection attempt and the function itself finds the token (header or query string).
   */
  readonly authorizer: IFunction;

  /**
   * How API Gateway picks the route of an incoming frame.
   *
   * @default - `routeSelectionExpression` from lambdas/manifest.ts (`$request.body.action`)
   */
  readonly routeSelectionExpression?: string;

  /**
   * Default throttling of every route of the stage.
   *
   * @default { rateLimit: 500, burstLimit: 1000 }
   */
  readonly throttle?: ThrottleConfig;

  /**
   * How long access logs are kept. Access logging of a WebSocket API needs the region's API Gateway account
   * setting to name a CloudWatch Logs role (see ApiGatewayCloudWatchRole).
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

/** Options for {@link RealtimeWebSocketApi.addRoute}. */
export interface RealtimeRouteOptions {
  /**
   * Two-way route: the handler's `{statusCode, body}` response is sent back to the client as a frame.
   *
   * @default false
   */
  readonly returnResponse?: boolean;
}

/** One JSON line per connect, message and disconnect; WebSocket API `$context` variables only. */
export const WEBSOCKET_ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    connectionId: '$context.connectionId',
    eventType: '$context.eventType',
    routeKey: '$context.routeKey',
    status: '$context.status',
    ip: '$context.identity.sourceIp',
    requestTime: '$context.requestTime',
    error: '$context.error.message',
    integrationError: '$context.integration.error',
  }),
);

const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
const ROUTE_KEY = /^\S{1,128}$/;

/**
 * An API Gateway WebSocket API with one auto-deployed, throttled stage and Lambda routes, whose `$connect` is
 * guarded by a Lambda REQUEST authorizer.
 */
export class RealtimeWebSocketApi extends Construct implements IConnectionsEndpoint {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  /** Where the stage's access logs go. */
  readonly accessLogGroup: LogGroup;
  /** The `$connect` authorizer's function. */
  readonly authorizerFunction: IFunction;

  private readonly authorizer: WebSocketLambdaAuthorizer;
  private readonly integrations = new Map<IFunction, WebSocketLambdaIntegration>();
  private readonly handlers = new Map<string, IFunction>();

  constructor(scope: Construct, id: string, props: RealtimeWebSocketApiProps) {
    super(scope, id);
    if (!STAGE_NAME.test(props.stageName) || props.stageName === '$default') {
      throw new Error(
        `${this.node.path}: stageName must be 1-128 letters, digits, '-' or '_' (got '${props.stageName}')`,
      );
    }
    const throttle = props.throttle ?? DEFAULT_THROTTLE;
    if (!(throttle.rateLimit > 0) || !Number.isInteger(throttle.burstLimit) || throttle.burstLimit <= 0) {
      throw new Error(
        `${this.node.path}: throttle needs a positive rateLimit and a positive integer burstLimit (got ${JSON.stringify(throttle)})`,
      );
    }

    this.api = new WebSocketApi(this, 'Api', {
      apiName: props.apiName,
      description: props.description,
      routeSelectionExpression: props.routeSelectionExpression ?? manifestRouteSelectionExpression,
    });
    this.accessLogGroup = new LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.accessLogRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: props.stageName,
      autoDeploy: true,
      throttle: { rateLimit: throttle.rateLimit, burstLimit: throttle.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: WEBSOCKET_ACCESS_LOG_FORMAT,
      },
    });

    this.authorizerFunction = props.authorizer;
    // An empty identity source; the L1 property is removed below once the authorizer exists (see addRoute).
    this.authorizer = new WebSocketLambdaAuthorizer('ConnectAuthorizer', props.authorizer, { identitySource: [] });

    this.node.addValidation({
      validate: () =>
        this.handlers.has('$connect')
          ? []
          : ['the API has no $connect route, so connections would not go through the authorizer'],
    });
  }

  /** The stage's WebSocket URL: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  get url(): string {
    return this.stage.url;
  }

  /** The stage's `@connections` endpoint: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  get callbackUrl(): string {
    return this.stage.callbackUrl;
  }

  /** The route keys added so far. */
  get routeKeys(): readonly string[] {
    return [...this.handlers.keys()];
  }

  /**
   * Routes `routeKey` to `handler` through a Lambda proxy integration (one integration per function, shared by its
   * routes). `$connect` is guarded by the authorizer.
   *
   * @throws when the route key is already routed or is not a valid route key
   */
  addRoute(routeKey: string, handler: IFunction, options: RealtimeRouteOptions = {}): WebSocketRoute {
    if (!ROUTE_KEY.test(routeKey)) {
      throw new Error(`${this.node.path}: a route key is 1-128 non-blank characters (got '${routeKey}')`);
    }
    const existing = this.handlers.get(routeKey);
    if (existing) {
      throw new Error(`${this.node.path}: route '${routeKey}' is already routed to ${existing.node.path}`);
    }
    if (routeKey === '$disconnect' && options.returnResponse) {
      throw new Error(`${this.node.path}: $disconnect cannot return a response (the connection is gone)`);
    }
    this.handlers.set(routeKey, handler);

    let integration = this.integrations.get(handler);
    if (!integration) {
      integration = new WebSocketLambdaIntegration(`${handler.node.id}Integration`, handler);
      this.integrations.set(handler, integration);
    }
    const route = this.api.addRoute(routeKey, {
      integration,
      returnResponse: options.returnResponse ?? false,
      ...(routeKey === '$connect' ? { authorizer: this.authorizer } : {}),
    });
    if (routeKey === '$connect') {
      this.removeIdentitySource();
    } else {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          routeKey === '$disconnect'
            ? '$disconnect cannot carry an authorizer (API Gateway authorizes $connect only); it runs for connections $connect authorized.'
            : `API Gateway authorizes WebSocket connections at $connect only; '${routeKey}' runs on a connection $connect authorized, with the verified identity kept from then on.`,
      });
    }
    return route;
  }

  /**
   * Grants `execute-api:ManageConnections` (post to, get and delete connections) on this API's stage only:
   * `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{any method}/@connections/{any connection}`.
   */
  grantManageConnections(grantee: IGrantable): Grant {
    const apiArn = Stack.of(this).formatArn({ service: 'execute-api', resource: this.api.apiId });
    const connections = `${apiArn}/${this.stage.stageName}/*/@connections/*`;
    acknowledgeWildcardResource(
      grantee,
      connections,
      'Connection ids are created at run time, so the @connections resource of this API stage needs wildcards for the method and the connection id.',
    );
    return Grant.addToPrincipal({ grantee, actions: ['execute-api:ManageConnections'], resourceArns: [connections] });
  }

  /**
   * The L2 authorizer always renders `IdentitySource`. With one, API Gateway answers 401 itself whenever a listed
   * source is missing, and the token may come either in the `Sec-WebSocket-Protocol` header or the `token` query
   * string; so the property is dropped (it is optional for REQUEST authorizers). Without an identity source
   * there is no cache key, so results are not cached: the function runs on every connection attempt.
   */
  private removeIdentitySource(): void {
    const authorizer = this.api.node.findChild('ConnectAuthorizer') as WebSocketAuthorizer;
    const cfn = authorizer.node.defaultChild as CfnAuthorizer;
    cfn.identitySource = undefined;
  }
}
