/** `npm run bundles` (scripts/bundles.ts): finding the functions in the synthesized stack, their environment, the table. */
import { describe, expect, it } from '@jest/globals';
import { functions } from '../../lambdas/manifest.ts';
import { BUNDLE_BUDGET } from '../../lib/bundling.ts';
import { type BuiltFunction, builtFunctions, formatReport, lambdaEnvironment } from '../../scripts/bundles.ts';

const lambda = (name: string) => ({
  Type: 'AWS::Lambda::Function',
  Metadata: { 'aws:cdk:path': `stack/${name}/Resource`, 'aws:asset:path': `asset.${name}` },
  Properties: { Handler: 'index.handler', Runtime: 'nodejs24.x', MemorySize: 256 },
});

describe('npm run bundles', () => {
  it('finds every manifest function in the synthesized stack, and fails on one it lacks', () => {
    const resources = Object.fromEntries(functions.map((f) => [f.name, lambda(f.name)]));
    expect(builtFunctions({ Resources: resources }, 'stack').map((f) => f.name)).toEqual(functions.map((f) => f.name));

    const { authorizer: _, ...withoutAuthorizer } = resources;
    expect(() => builtFunctions({ Resources: withoutAuthorizer }, 'stack')).toThrow(
      "the synthesized stack has no bundled function 'authorizer'",
    );
  });

  it("imports with the function's deployed environment, placeholders for what a deploy resolves, and Lambda's own", () => {
    const fn: BuiltFunction = {
      name: 'message',
      dir: '/tmp/asset.x',
      handler: 'index.handler',
      runtime: 'nodejs24.x',
      memoryMB: 512,
      environment: { NODE_OPTIONS: '--enable-source-maps', TABLE_NAME: { Ref: 'Table' }, DELIVERY_QUEUE_URL: {} },
    };
    expect(lambdaEnvironment(fn, 'eu-west-1')).toMatchObject({
      NODE_OPTIONS: '--enable-source-maps',
      TABLE_NAME: 'placeholder',
      DELIVERY_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/placeholder',
      AWS_REGION: 'eu-west-1',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      LAMBDA_TASK_ROOT: '/tmp/asset.x',
    });
  });

  it('shows each target as met or not met', () => {
    const table = formatReport(
      [
        { name: 'small', bytes: 1000, mapBytes: 2000, mapRead: true, time: { ms: 50, cpuMs: 40 } },
        {
          name: 'big',
          bytes: BUNDLE_BUDGET.bytes + 1,
          mapBytes: 0,
          mapRead: false,
          time: { ms: BUNDLE_BUDGET.importMs + 1, cpuMs: 90 },
        },
      ],
      5,
    );
    expect(table).toContain('| small | 1.0 KB | 2.0 KB (yes) | 50 ms | 40 ms | met | met |');
    expect(table).toContain('| big | 600.0 KB | 0.0 KB (no) | 101 ms | 90 ms | NOT met | NOT met |');
  });
});
