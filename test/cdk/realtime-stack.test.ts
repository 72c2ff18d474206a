import { describe, expect, it } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { Runtime, RuntimeFamily } from 'aws-cdk-lib/aws-lambda';
import {
  envKeysOf,
  type FunctionSpec,
  functions,
  queues,
  routeSelectionExpression,
  table,
  triggerEnvKeysOf,
} from '../../lambdas/manifest.ts';
import { HIGH_THROUGHPUT_FIFO, SQS_MAX_MESSAGE_BYTES } from '../../lib/realtime-queue.ts';
import { stageConfig, synthStack } from './support.ts';

const dev = synthStack('dev', 'eu-west-1');
const prod = synthStack('prod', 'us-east-1');

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };

/** The newest `nodejsNN.x` runtime aws-cdk-lib knows about. */
function newestNodeRuntime(): string {
  const majors = Object.values(Runtime)
    .filter((r): r is Runtime => r instanceof Runtime && r.family === RuntimeFamily.NODEJS)
    .map((r) => /^nodejs(\d+)\.x$/.exec(r.name)?.[1])
    .filter((m): m is string => m !== undefined)
    .map(Number);
  return `nodejs${Math.max(...majors)}.x`;
}

function functionLogicalId(name: string, synthesized = dev): string {
  const fn = synthesized.stack.functions.get(name);
  if (!fn) throw new Error(`no function '${name}'`);
  return synthesized.logicalIdOf(fn.functionName);
}

/** The logical id of the function a WebSocket route invokes, following route → integration → function ARN. */
function functionOfRoute(routeKey: string): string {
  const routes = dev.template.findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: routeKey } });
  const [route] = Object.values(routes) as Resource[];
  if (!route) throw new Error(`no route '${routeKey}'`);
  const target = JSON.stringify(route.Properties.Target);
  const integrationId = /"Ref":"([^"]+)"/.exec(target)?.[1];
  const integration = dev.template.toJSON().Resources[integrationId ?? ''] as Resource;
  const uri = JSON.stringify(integration.Properties.IntegrationUri);
  const functionId = /"Fn::GetAtt":\["([^"]+)","Arn"\]/.exec(uri)?.[1];
  if (!functionId) throw new Error(`route '${routeKey}' does not integrate a Lambda function`);
  return functionId;
}

const webSocketApiId = () => dev.logicalIdOf(dev.stack.webSocketApi.api.apiId);
/** Routes of the WebSocket API (the HTTP API has its own, tested in http-api.test.ts). */
const webSocketRoutes = () =>
  dev.template.findResources('AWS::ApiGatewayV2::Route', { Properties: { ApiId: { Ref: webSocketApiId() } } });

describe('the WebSocket API', () => {
  it('is a WEBSOCKET API selecting routes by the manifest expression', () => {
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: routeSelectionExpression,
    });
  });

  it('routes every manifest route key to the function that declares it', () => {
    const expected = functions.flatMap((fn) =>
      fn.trigger.kind === 'websocket' ? fn.trigger.routes.map((route) => [route, fn.name] as const) : [],
    );
    const routeKeys = Object.values(webSocketRoutes()).map((r) => (r as Resource).Properties.RouteKey);
    expect(routeKeys.sort()).toEqual(expected.map(([route]) => route).sort());
    for (const [route, name] of expected) {
      expect({ route, handler: functionOfRoute(route) }).toEqual({ route, handler: functionLogicalId(name) });
    }
  });

  it('guards $connect with a Lambda REQUEST authorizer that has no identity source', () => {
    const authorizerFunction = functionLogicalId('authorizer');
    const authorizers = dev.template.findResources('AWS::ApiGatewayV2::Authorizer', {
      Properties: { ApiId: { Ref: webSocketApiId() } },
    });
    expect(Object.keys(authorizers)).toHaveLength(1);
    const [authorizerId, authorizer] = Object.entries(authorizers)[0] as [string, Resource];

    expect(authorizer.Properties.AuthorizerType).toBe('REQUEST');
    expect(authorizer.Properties).not.toHaveProperty('IdentitySource');
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(`"${authorizerFunction}","Arn"`);
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: '$connect',
      AuthorizationType: 'CUSTOM',
      AuthorizerId: { Ref: authorizerId },
    });
  });

  it('lets API Gateway invoke the authorizer', () => {
    dev.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionLogicalId('authorizer'), 'Arn'] },
    });
  });

  it('leaves every other route without an authorizer', () => {
    const routes = Object.values(webSocketRoutes()) as Resource[];
    for (const route of routes.filter((r) => r.Properties.RouteKey !== '$connect')) {
      expect(route.Properties.AuthorizationType).toBe('NONE');
    }
  });

  it('gives two-way routes a route response and one-way routes none', () => {
    for (const fn of functions) {
      if (fn.trigger.kind !== 'websocket') continue;
      for (const routeKey of fn.trigger.routes) {
        const [routeId, route] = Object.entries(
          dev.template.findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: routeKey } }),
        )[0] as [string, Resource];
        const responses = dev.template.findResources('AWS::ApiGatewayV2::RouteResponse', {
          Properties: { RouteId: { Ref: routeId }, RouteResponseKey: '$default' },
        });
        const twoWay = fn.trigger.returnResponse;
        expect({ routeKey, responses: Object.keys(responses).length }).toEqual({ routeKey, responses: twoWay ? 1 : 0 });
        expect({ routeKey, selection: route.Properties.RouteResponseSelectionExpression }).toEqual({
          routeKey,
          selection: twoWay ? '$default' : undefined,
        });
      }
    }
  });

  it('has an auto-deployed stage named after the tenantcast stage, throttled as cdk.json says', () => {
    const { throttle } = stageConfig('dev');
    dev.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'dev',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: throttle.rateLimit, ThrottlingBurstLimit: throttle.burstLimit },
    });
  });

  it('outputs the wss:// URL and the callback URL of the stage', () => {
    const api = dev.logicalIdOf(dev.stack.webSocketApi.api.apiId);
    const url = (scheme: string) => ({
      'Fn::Join': ['', [scheme, { Ref: api }, '.execute-api.eu-west-1.', { Ref: 'AWS::URLSuffix' }, '/dev']],
    });
    dev.template.hasOutput('WebSocketUrl', { Value: url('wss://') });
    dev.template.hasOutput('CallbackUrl', { Value: url('https://') });
  });
});

describe('the table', () => {
  it('is on-demand with TTL, point-in-time recovery, encryption and the manifest keys and indexes', () => {
    dev.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    dev.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: table.partitionKey, KeyType: 'HASH' },
        { AttributeName: table.sortKey, KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      GlobalSecondaryIndexes: table.globalSecondaryIndexes.map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    });
  });

  it('is destroyed with a dev stack', () => {
    dev.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
    });
  });

  it('is retained and deletion-protected in prod, whose stacks are termination-protected', () => {
    prod.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
    });
    expect(prod.stack.terminationProtection).toBe(true);
    expect(dev.stack.terminationProtection).toBe(false);
  });

  it('outputs its name', () => {
    dev.template.hasOutput('TableName', { Value: { Ref: dev.logicalIdOf(dev.stack.table.tableName) } });
  });
});

describe('the queues', () => {
  const spec = queues.delivery;
  const queue = () => dev.stack.queues.get('delivery');

  it('exist once per manifest queue, each with a dead-letter queue', () => {
    dev.template.resourceCountIs('AWS::SQS::Queue', 2 * Object.keys(queues).length);
  });

  it('redrive to the DLQ after maxReceiveCount, with the manifest visibility and retention', () => {
    dev.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: spec.visibilityTimeoutSeconds,
      MessageRetentionPeriod: spec.retentionSeconds,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [dev.logicalIdOf(queue()?.deadLetterQueue.queueArn ?? ''), 'Arn'] },
        maxReceiveCount: spec.maxReceiveCount,
      },
    });
    dev.template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: spec.dlqRetentionSeconds,
      RedrivePolicy: Match.absent(),
    });
  });

  it('are all encrypted with SQS-managed keys', () => {
    for (const q of Object.values(dev.template.findResources('AWS::SQS::Queue')) as Resource[]) {
      expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    }
  });

  it('all deny requests not made over TLS', () => {
    for (const id of Object.keys(dev.template.findResources('AWS::SQS::Queue'))) {
      dev.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  it('all take messages of at most 256 KiB, set explicitly instead of left to the 1 MiB default', () => {
    expect(SQS_MAX_MESSAGE_BYTES).toBe(256 * 1024);
    for (const synthesized of [dev, prod]) {
      const all = Object.values(synthesized.template.findResources('AWS::SQS::Queue')) as Resource[];
      expect(all.map((q) => q.Properties.MaximumMessageSize)).toEqual(all.map(() => SQS_MAX_MESSAGE_BYTES));
    }
  });

  it('run every FIFO queue and FIFO dead-letter queue in high-throughput mode (quota per message group)', () => {
    const fifoSpecs = Object.values(queues).filter((q) => 'fifo' in q && q.fifo === true);
    expect(HIGH_THROUGHPUT_FIFO).toMatchObject({
      deduplicationScope: 'messageGroup',
      fifoThroughputLimit: 'perMessageGroupId',
    });
    for (const synthesized of [dev, prod]) {
      const fifo = Object.values(
        synthesized.template.findResources('AWS::SQS::Queue', { Properties: { FifoQueue: true } }),
      ) as Resource[];
      expect(fifo).toHaveLength(2 * fifoSpecs.length);
      for (const q of fifo) {
        expect(q.Properties).toMatchObject({
          DeduplicationScope: 'messageGroup',
          FifoThroughputLimit: 'perMessageGroupId',
        });
      }
    }
  });

  it('leave standard queues without FIFO attributes', () => {
    const standard = Object.values(dev.template.findResources('AWS::SQS::Queue')).filter(
      (q) => (q as Resource).Properties.FifoQueue !== true,
    ) as Resource[];
    expect(standard.length).toBeGreaterThan(0);
    for (const q of standard) {
      expect([q.Properties.DeduplicationScope, q.Properties.FifoThroughputLimit]).toEqual([undefined, undefined]);
    }
  });

  it('output their URLs', () => {
    dev.template.hasOutput('DeliveryQueueUrl', { Value: { Ref: dev.logicalIdOf(queue()?.queueUrl ?? '') } });
    dev.template.hasOutput('DeliveryDeadLetterQueueUrl', {
      Value: { Ref: dev.logicalIdOf(queue()?.deadLetterQueue.queueUrl ?? '') },
    });
  });
});

describe('the broadcaster', () => {
  const broadcaster = functions.find((fn) => fn.name === 'broadcaster');

  it('consumes the FIFO delivery queue in batches without a batching window, reporting failed items', () => {
    if (broadcaster?.trigger.kind !== 'sqs') throw new Error('the manifest broadcaster is not an SQS consumer');
    const sqsConsumers = functions.filter((fn) => fn.trigger.kind === 'sqs');
    dev.template.resourceCountIs('AWS::Lambda::EventSourceMapping', sqsConsumers.length);
    dev.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionLogicalId('broadcaster') },
      EventSourceArn: {
        'Fn::GetAtt': [dev.logicalIdOf(dev.stack.queues.get('delivery')?.queue.queueArn ?? ''), 'Arn'],
      },
      BatchSize: broadcaster.trigger.batchSize,
      MaximumBatchingWindowInSeconds: Match.absent(),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    dev.template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: queues.delivery.maxReceiveCount }),
    });
  });

  it("may manage connections of this API's stage only", () => {
    const api = dev.logicalIdOf(dev.stack.webSocketApi.api.apiId);
    const role = dev.logicalIdOf(dev.stack.functions.get('broadcaster')?.role?.roleArn ?? '');
    dev.template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: role }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'execute-api:ManageConnections',
            Effect: 'Allow',
            Resource: {
              'Fn::Join': [
                '',
                [
                  'arn:aws:execute-api:eu-west-1:',
                  { Ref: 'AWS::AccountId' },
                  ':',
                  { Ref: api },
                  '/dev/*/@connections/*',
                ],
              ],
            },
          },
        ]),
      },
    });
  });
});

describe('the functions', () => {
  const resources = () => dev.template.findResources('AWS::Lambda::Function') as Record<string, Resource>;
  const environmentOf = (name: string): Record<string, unknown> => {
    const fn = resources()[functionLogicalId(name)];
    if (!fn) throw new Error(`no Lambda function for '${name}'`);
    return (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
  };

  it('are one per manifest entry, and nothing else', () => {
    expect(Object.keys(resources()).sort()).toEqual(functions.map((fn) => functionLogicalId(fn.name)).sort());
  });

  it(`all run on the newest Node.js runtime aws-cdk-lib offers (${newestNodeRuntime()}), on arm64, traced`, () => {
    for (const fn of Object.values(resources())) {
      expect(fn.Properties).toMatchObject({
        Runtime: newestNodeRuntime(),
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
      });
    }
  });

  it("let Lambda's recursive loop detection stop chains, but in the functions that queue work for themselves", () => {
    for (const spec of functions as readonly FunctionSpec[]) {
      const expected = spec.recursiveLoop === 'allow' ? 'Allow' : undefined;
      expect(resources()[functionLogicalId(spec.name)]?.Properties.RecursiveLoop).toBe(expected);
    }
    // The broadcaster queues replays its client did not take for itself, the fan-out's go to it (lambdas/core/lagging.ts).
    expect(resources()[functionLogicalId('broadcaster')]?.Properties.RecursiveLoop).toBe('Allow');
    expect(resources()[functionLogicalId('fanout')]?.Properties.RecursiveLoop).toBe('Allow');
  });

  it('take timeout, memory and description from the manifest', () => {
    for (const spec of functions) {
      expect(resources()[functionLogicalId(spec.name)]?.Properties).toMatchObject({
        Timeout: spec.timeoutSeconds,
        MemorySize: spec.memoryMB,
        Description: spec.description,
      });
    }
  });

  it('get exactly the environment keys of their bindings and trigger, plus the Powertools settings', () => {
    for (const spec of functions) {
      expect(Object.keys(environmentOf(spec.name)).sort()).toEqual(
        [
          ...envKeysOf(spec),
          ...triggerEnvKeysOf(spec),
          ...Object.keys((spec as FunctionSpec).environment ?? {}),
          'POWERTOOLS_SERVICE_NAME',
          'POWERTOOLS_METRICS_NAMESPACE',
          'LOG_LEVEL',
        ].sort(),
      );
      expect(environmentOf(spec.name)).toMatchObject({
        POWERTOOLS_SERVICE_NAME: spec.name,
        POWERTOOLS_METRICS_NAMESPACE: 'tenantcast',
        LOG_LEVEL: stageConfig('dev').logLevel,
      });
    }
  });

  it('point TABLE_NAME at the table and CONNECTIONS_ENDPOINT at the stage callback URL', () => {
    expect(environmentOf('connect').TABLE_NAME).toEqual({ Ref: dev.logicalIdOf(dev.stack.table.tableName) });
    expect(environmentOf('message').DELIVERY_QUEUE_URL).toEqual({
      Ref: dev.logicalIdOf(dev.stack.queues.get('delivery')?.queueUrl ?? ''),
    });
    expect(environmentOf('broadcaster').CONNECTIONS_ENDPOINT).toEqual(
      dev.stack.resolve(dev.stack.webSocketApi.callbackUrl),
    );
  });

  it('give the authorizer the JWT settings of the stage', () => {
    const { auth } = stageConfig('dev');
    expect(environmentOf('authorizer')).toMatchObject({
      JWT_ISSUER: auth.issuer,
      JWT_AUDIENCE: auth.audience,
      JWKS_URI: auth.jwksUri,
      CLAIM_TENANT: 'tenant_id',
      CLAIM_USER: 'sub',
      CLAIM_ROLES: 'roles',
    });
  });

  it('may send to the delivery queue only when bound to it', () => {
    const senders = functions.filter((fn) => (fn.bindings as readonly string[]).includes('deliveryQueue'));
    const queueArn = { 'Fn::GetAtt': [dev.logicalIdOf(dev.stack.queues.get('delivery')?.queue.queueArn ?? ''), 'Arn'] };
    // CDK merges statements with the same actions: the queue may share a statement with other resources (an SQS
    // consumer's own dead-letter queue).
    const sendsToQueue = (statement: { Action?: unknown; Resource?: unknown }) =>
      [statement.Action].flat().includes('sqs:SendMessage') &&
      [statement.Resource].flat().some((r) => JSON.stringify(r) === JSON.stringify(queueArn));
    const policies = Object.values(dev.template.findResources('AWS::IAM::Policy') as Record<string, Resource>).filter(
      (p) =>
        (p.Properties.PolicyDocument as { Statement: { Action?: unknown; Resource?: unknown }[] }).Statement.some(
          sendsToQueue,
        ),
    );
    const roles = policies.flatMap((p) => p.Properties.Roles as unknown[]);
    expect(roles).toEqual(
      senders.map((fn) => ({ Ref: dev.logicalIdOf(dev.stack.functions.get(fn.name)?.role?.roleArn ?? '') })),
    );
  });

  it('that consume a queue may send to its dead-letter queue, named in DEAD_LETTER_QUEUE_URL, to set poison records aside', () => {
    for (const fn of functions) {
      if (fn.trigger.kind !== 'sqs') continue;
      const dlq = dev.stack.queues.get(fn.trigger.queue)?.deadLetterQueue;
      const dlqRef = { Ref: dev.logicalIdOf(dlq?.queueUrl ?? '') };
      expect(environmentOf(fn.name).DEAD_LETTER_QUEUE_URL).toEqual(dlqRef);
      const dlqArn = { 'Fn::GetAtt': [dev.logicalIdOf(dlq?.queueArn ?? ''), 'Arn'] };
      const role = { Ref: dev.logicalIdOf(dev.stack.functions.get(fn.name)?.role?.roleArn ?? '') };
      const granted = Object.values(dev.template.findResources('AWS::IAM::Policy') as Record<string, Resource>).some(
        (p) =>
          JSON.stringify(p.Properties.Roles) === JSON.stringify([role]) &&
          (p.Properties.PolicyDocument as { Statement: { Action?: unknown; Resource?: unknown }[] }).Statement.some(
            (st) =>
              [st.Action].flat().includes('sqs:SendMessage') &&
              [st.Resource].flat().some((r) => JSON.stringify(r) === JSON.stringify(dlqArn)),
          ),
      );
      expect({ function: fn.name, granted }).toEqual({ function: fn.name, granted: true });
    }
  });

  it('log to log groups kept as long as the stage says, deleted with dev stacks and retained in prod', () => {
    // One per function, plus the access logs of the WebSocket and HTTP APIs.
    dev.template.resourceCountIs('AWS::Logs::LogGroup', functions.length + 2);
    dev.template.allResourcesProperties('AWS::Logs::LogGroup', {
      RetentionInDays: stageConfig('dev').logRetentionDays,
    });
    prod.template.allResourcesProperties('AWS::Logs::LogGroup', {
      RetentionInDays: stageConfig('prod').logRetentionDays,
    });
    dev.template.allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
    prod.template.allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain' });
  });
});
