import { describe, expect, it } from '@jest/globals';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { functions, queues } from '../../lambdas/manifest.ts';
import { TenantcastHttpApi } from '../../lib/tenantcast-http-api.ts';
import { newApp, stageConfig, synthStack } from './support.ts';

const dev = synthStack('dev', 'eu-west-1');

type Resource = { Type: string; Properties: Record<string, unknown> };

const functionId = (name: string) => dev.logicalIdOf(dev.stack.functions.get(name)?.functionName ?? '');
const httpApiId = () => dev.logicalIdOf(dev.stack.httpApi.api.apiId);

/** The logical id of the function an HTTP route invokes, following route → integration → function ARN. */
function functionOfHttpRoute(route: Resource): string | undefined {
  const integrationId = /"Ref":"([^"]+)"/.exec(JSON.stringify(route.Properties.Target))?.[1];
  const integration = dev.template.toJSON().Resources[integrationId ?? ''] as Resource | undefined;
  return /"Fn::GetAtt":\["([^"]+)","Arn"\]/.exec(JSON.stringify(integration?.Properties.IntegrationUri))?.[1];
}

describe('the HTTP API', () => {
  it('is an HTTP API with a JWT authorizer for the stage issuer and audience, reading the Authorization header', () => {
    const { auth } = stageConfig('dev');
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      ApiId: { Ref: httpApiId() },
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: auth.issuer, Audience: [auth.audience] },
    });
  });

  it('has every manifest http route, behind the JWT authorizer, invoking the function that declares it', () => {
    const expected = functions.flatMap((fn) =>
      fn.trigger.kind === 'http' ? fn.trigger.routes.map((r) => [`${r.method} ${r.path}`, fn.name] as const) : [],
    );
    const routes = Object.values(
      dev.template.findResources('AWS::ApiGatewayV2::Route', { Properties: { ApiId: { Ref: httpApiId() } } }),
    ) as Resource[];
    expect(routes.map((r) => r.Properties.RouteKey).sort()).toEqual(expected.map(([key]) => key).sort());
    const [authorizerId] = Object.keys(
      dev.template.findResources('AWS::ApiGatewayV2::Authorizer', { Properties: { AuthorizerType: 'JWT' } }),
    );
    for (const [key, name] of expected) {
      const route = routes.find((r) => r.Properties.RouteKey === key);
      expect({ key, auth: route?.Properties.AuthorizationType, authorizer: route?.Properties.AuthorizerId }).toEqual({
        key,
        auth: 'JWT',
        authorizer: { Ref: authorizerId },
      });
      expect({ key, handler: route && functionOfHttpRoute(route) }).toEqual({ key, handler: functionId(name) });
    }
  });

  it('integrates Lambda with payload format 2.0 and lets API Gateway invoke the functions', () => {
    dev.template.allResourcesProperties('AWS::ApiGatewayV2::Integration', {
      ApiId: Match.anyValue(),
      IntegrationType: 'AWS_PROXY',
    });
    const httpIntegrations = dev.template.findResources('AWS::ApiGatewayV2::Integration', {
      Properties: { ApiId: { Ref: httpApiId() } },
    }) as Record<string, Resource>;
    for (const integration of Object.values(httpIntegrations)) {
      expect(integration.Properties.PayloadFormatVersion).toBe('2.0');
    }
    dev.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionId('entityApi'), 'Arn'] },
    });
  });

  it('serves an auto-deployed $default stage, throttled as cdk.json says, with JSON access logs', () => {
    const { throttle, logRetentionDays } = stageConfig('dev');
    const logs = dev.logicalIdOf(dev.stack.httpApi.accessLogGroup.logGroupArn);
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: httpApiId() },
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: throttle.rateLimit, ThrottlingBurstLimit: throttle.burstLimit },
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [logs, 'Arn'] },
        Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"'),
      },
    });
    dev.template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: logRetentionDays });
  });

  it('answers CORS preflights for the stage origins, allowing the Authorization and If-Match headers', () => {
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({
        AllowOrigins: [...stageConfig('dev').cors.allowedOrigins],
        AllowHeaders: Match.arrayWith(['authorization', 'if-match']),
        ExposeHeaders: ['etag'],
      }),
    });
  });

  it('outputs its base URL', () => {
    dev.template.hasOutput('HttpApiUrl', { Value: dev.stack.resolve(dev.stack.httpApi.url) });
  });
});

describe('TenantcastHttpApi', () => {
  const newApi = () => {
    const stack = new Stack(newApp(), 'Test', { env: { region: 'eu-west-1' } });
    const handler = new LambdaFunction(stack, 'fn', {
      code: Code.fromInline('export const handler = async () => {};'),
      handler: 'index.handler',
      runtime: Runtime.NODEJS_LATEST,
    });
    const api = new TenantcastHttpApi(stack, 'Api', { jwtIssuer: 'https://idp.example.com/', jwtAudience: ['app'] });
    return { stack, api, handler };
  };

  it('shares one integration between the routes of a function', () => {
    const { stack, api, handler } = newApi();
    api.addRoute('GET', '/v1/things', handler);
    api.addRoute('POST', '/v1/things/{id}', handler);
    Template.fromStack(stack).resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    expect(api.routeKeys).toEqual(['GET /v1/things', 'POST /v1/things/{id}']);
  });

  it('refuses the same route twice, naming the function it already goes to', () => {
    const { api, handler } = newApi();
    api.addRoute('GET', '/v1/things', handler);
    expect(() => api.addRoute('GET', '/v1/things', handler)).toThrow(
      "route 'GET /v1/things' is already routed to Test/fn",
    );
  });

  it('refuses a path that is not an API Gateway path', () => {
    const { api, handler } = newApi();
    expect(() => api.addRoute('GET', 'v1/things', handler)).toThrow("(got 'v1/things')");
  });

  it('refuses an issuer that is not https and an empty audience', () => {
    const stack = new Stack(newApp(), 'Test');
    expect(
      () => new TenantcastHttpApi(stack, 'A', { jwtIssuer: 'http://idp.example.com', jwtAudience: ['x'] }),
    ).toThrow("jwtIssuer must be an https URL (got 'http://idp.example.com')");
    expect(() => new TenantcastHttpApi(stack, 'B', { jwtIssuer: 'https://idp.example.com', jwtAudience: [] })).toThrow(
      'jwtAudience needs at least one non-empty value (got [])',
    );
  });
});

describe('schedules', () => {
  it('invoke every schedule-triggered function at its manifest rate through an EventBridge rule', () => {
    const scheduled = functions.filter((fn) => fn.trigger.kind === 'schedule');
    expect(scheduled.map((fn) => fn.name)).toContain('outboxRelay');
    dev.template.resourceCountIs('AWS::Events::Rule', scheduled.length);
    for (const fn of scheduled) {
      if (fn.trigger.kind !== 'schedule') continue;
      const rate = fn.trigger.rateMinutes;
      dev.template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: `rate(${rate} ${rate === 1 ? 'minute' : 'minutes'})`,
        State: 'ENABLED',
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId(fn.name), 'Arn'] } })],
      });
      dev.template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [functionId(fn.name), 'Arn'] },
      });
    }
  });
});

describe('the changes queue', () => {
  const changes = () => dev.stack.queues.get('changes');

  it('redrives to its own dead-letter queue after the manifest receive count', () => {
    dev.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: queues.changes.visibilityTimeoutSeconds,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [dev.logicalIdOf(changes()?.deadLetterQueue.queueArn ?? ''), 'Arn'] },
        maxReceiveCount: queues.changes.maxReceiveCount,
      },
    });
  });

  it('feeds changeFeed through an event source reporting failed items', () => {
    dev.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('changeFeed') },
      EventSourceArn: { 'Fn::GetAtt': [dev.logicalIdOf(changes()?.queue.queueArn ?? ''), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('may be sent to by the functions bound to it, and is named by CHANGES_QUEUE_URL', () => {
    const senders = functions.filter((fn) => (fn.bindings as readonly string[]).includes('changesQueue'));
    expect(senders.map((fn) => fn.name).sort()).toEqual(['entityApi', 'outboxRelay']);
    const fns = dev.template.findResources('AWS::Lambda::Function') as Record<string, Resource>;
    for (const fn of senders) {
      const environment = fns[functionId(fn.name)]?.Properties.Environment as
        | { Variables: Record<string, unknown> }
        | undefined;
      expect(environment?.Variables.CHANGES_QUEUE_URL).toEqual({ Ref: dev.logicalIdOf(changes()?.queueUrl ?? '') });
    }
  });
});

describe('WebSocket access logs', () => {
  it('go to a log group from the stage, with the account CloudWatch role set before the stage exists', () => {
    const logs = dev.logicalIdOf(dev.stack.webSocketApi.accessLogGroup.logGroupArn);
    const stage = dev.template.findResources('AWS::ApiGatewayV2::Stage', {
      Properties: { StageName: 'dev', AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [logs, 'Arn'] } } },
    }) as Record<string, { DependsOn?: string[] }>;
    const [account] = Object.keys(dev.template.findResources('AWS::ApiGateway::Account'));
    expect(Object.values(stage).map((s) => s.DependsOn?.includes(account ?? ''))).toEqual([true]);
  });

  it('are written by a role with an inline policy, no AWS-managed policy', () => {
    dev.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })],
      }),
      ManagedPolicyArns: Match.absent(),
    });
  });

  it('leave the account setting alone in a stage that opts out', () => {
    const optOut = synthStack('dev', 'eu-west-1', {
      stage: { ...stageConfig('dev'), apiGatewayCloudWatchRole: false },
    });
    optOut.template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });
});
