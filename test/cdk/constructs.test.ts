import { describe, expect, it } from '@jest/globals';
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { functions, queues } from '../../lambdas/manifest.ts';
import { FunctionBinding, type IFunctionBinding } from '../../lib/function-binding.ts';
import { RealtimeQueue } from '../../lib/realtime-queue.ts';
import { DEFAULT_MANIFEST, RealtimeStack } from '../../lib/realtime-stack.ts';
import { RealtimeTable } from '../../lib/realtime-table.ts';
import { RealtimeWebSocketApi } from '../../lib/realtime-websocket-api.ts';
import { ESM_REQUIRE_BANNER, TenantcastFunction } from '../../lib/tenantcast-function.ts';
import { newApp, stageConfig } from './support.ts';

function newStack(): Stack {
  return new Stack(newApp(), 'Test', { env: { region: 'eu-west-1' } });
}

/** A function with inline code, so these tests need no handler files. */
function newFunction(scope: Stack, id = 'fn', timeout = Duration.seconds(10)): TenantcastFunction {
  return new TenantcastFunction(scope, id, {
    code: Code.fromInline('export const handler = async () => {};'),
    handler: 'index.handler',
    timeout,
  });
}

describe('TenantcastFunction', () => {
  it('bundles to ESM with a createRequire banner so CommonJS dependencies still work', () => {
    expect(ESM_REQUIRE_BANNER).toContain('createRequire');
    expect(ESM_REQUIRE_BANNER).toContain('const require =');
  });

  it('sets the environment keys and the grants of a binding in one call', () => {
    const stack = newStack();
    const queue = new Queue(stack, 'Queue');
    newFunction(stack).bind(FunctionBinding.deliveryQueue(queue));
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { DELIVERY_QUEUE_URL: { Ref: stack.getLogicalId(queue.node.defaultChild as never) } } },
    });
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).toContain('sqs:SendMessage');
  });

  it('refuses a binding whose environment keys differ from the manifest', () => {
    const fn = newFunction(newStack());
    const wrong: IFunctionBinding = { binding: 'table', environment: { TABLE: 'x' }, grantTo: () => undefined };
    expect(() => fn.bind(wrong)).toThrow(
      "Test/fn: binding 'table' sets [TABLE] but lambdas/manifest.ts expects [TABLE_NAME]",
    );
  });

  it('refuses the same binding twice', () => {
    const fn = newFunction(newStack());
    fn.bind(FunctionBinding.auth(stageConfig('dev').auth));
    expect(() => fn.bind(FunctionBinding.auth(stageConfig('dev').auth))).toThrow("binding 'auth' is already applied");
  });

  it('refuses a runtime that is not Node.js', () => {
    expect(
      () =>
        new TenantcastFunction(newStack(), 'py', {
          runtime: Runtime.PYTHON_3_13,
          code: Code.fromInline('x'),
          handler: 'index.handler',
        }),
    ).toThrow('Test/py: runtime must be a Node.js runtime (got python3.13)');
  });
});

describe('RealtimeQueue', () => {
  it('refuses a consumer whose timeout is more than a sixth of the visibility timeout', () => {
    const stack = newStack();
    const queue = new RealtimeQueue(stack, 'Delivery', { spec: queues.delivery });
    expect(() => queue.addConsumer(newFunction(stack, 'slow', Duration.seconds(31)))).toThrow(
      "Test/Delivery: visibility timeout 180s must be at least 6x the consumer's timeout (31s, so 186s)",
    );
  });

  it('refuses a dead-letter retention shorter than the queue retention', () => {
    expect(
      () =>
        new RealtimeQueue(newStack(), 'Delivery', {
          spec: { ...queues.delivery, retentionSeconds: 7200, dlqRetentionSeconds: 3600 },
        }),
    ).toThrow('dlqRetentionSeconds (3600) must be at least retentionSeconds (7200)');
  });

  it('refuses a maxReceiveCount of zero', () => {
    expect(
      () => new RealtimeQueue(newStack(), 'Delivery', { spec: { ...queues.delivery, maxReceiveCount: 0 } }),
    ).toThrow('maxReceiveCount must be 1 to 1000 (got 0)');
  });
});

describe('RealtimeTable', () => {
  it('refuses a sort key equal to the partition key', () => {
    expect(
      () =>
        new RealtimeTable(newStack(), 'Table', {
          spec: { partitionKey: 'pk', sortKey: 'pk', timeToLiveAttribute: 'ttl', globalSecondaryIndexes: [] },
        }),
    ).toThrow("Test/Table: partitionKey and sortKey must differ (both are 'pk')");
  });
});

describe('RealtimeWebSocketApi', () => {
  const newApi = (stack: Stack) =>
    new RealtimeWebSocketApi(stack, 'Api', { stageName: 'dev', authorizer: newFunction(stack, 'authorizer') });

  it('refuses to route one route key twice, naming the function already routed', () => {
    const stack = newStack();
    const api = newApi(stack);
    api.addRoute('ping', newFunction(stack, 'first'));
    expect(() => api.addRoute('ping', newFunction(stack, 'second'))).toThrow(
      "Test/Api: route 'ping' is already routed to Test/first",
    );
  });

  it('refuses a stage name API Gateway would reject', () => {
    const stack = newStack();
    expect(
      () => new RealtimeWebSocketApi(stack, 'Api', { stageName: 'my stage', authorizer: newFunction(stack) }),
    ).toThrow("Test/Api: stageName must be 1-128 letters, digits, '-' or '_' (got 'my stage')");
  });

  it('fails synthesis without a $connect route, which would leave connections unauthorized', () => {
    const stack = newStack();
    newApi(stack).addRoute('$default', newFunction(stack, 'fallback'));
    expect(() => Template.fromStack(stack)).toThrow(/the API has no \$connect route/);
  });
});

describe('RealtimeStack', () => {
  const withFunctions = (fns: typeof DEFAULT_MANIFEST.functions) => () =>
    new RealtimeStack(newApp(), 'Test', {
      stage: stageConfig('dev'),
      manifest: { ...DEFAULT_MANIFEST, functions: fns },
      tenantData: {
        grantTenantDataAccess: (grantee) =>
          Grant.addToPrincipal({ grantee, actions: ['rds-data:ExecuteStatement'], resourceArns: ['*'] }),
      },
    });

  it('refuses a manifest without exactly one authorizer', () => {
    const noAuthorizer = functions.filter((fn) => fn.trigger.kind !== 'websocket-authorizer');
    expect(withFunctions(noAuthorizer)).toThrow(
      "exactly one function needs the 'websocket-authorizer' trigger (got 0: [])",
    );
  });

  it('refuses a consumer of an undeclared queue', () => {
    const fns = functions.map((fn) =>
      fn.trigger.kind === 'sqs' ? { ...fn, trigger: { ...fn.trigger, queue: 'missing' as 'delivery' } } : fn,
    );
    expect(withFunctions(fns)).toThrow(
      `function 'broadcaster' consumes queue 'missing', which is not declared (queues: ${Object.keys(queues).join(', ')})`,
    );
  });
});
