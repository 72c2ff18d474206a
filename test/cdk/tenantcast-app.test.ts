import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../lib/config.ts';
import { addRealtimeStacks } from '../../lib/tenantcast-app.ts';
import { newApp } from './support.ts';

describe('the CDK app', () => {
  it('creates one stack per stage and region in cdk.json, named tenantcast-{stage}-{region}', () => {
    const stacks = addRealtimeStacks(newApp());
    expect(stacks.map((s) => [s.stackName, s.region, s.stage.name])).toEqual([
      ['tenantcast-dev-eu-west-1', 'eu-west-1', 'dev'],
      ['tenantcast-prod-eu-west-1', 'eu-west-1', 'prod'],
      ['tenantcast-prod-us-east-1', 'us-east-1', 'prod'],
    ]);
  });

  it('creates only the stacks of the stage selected with -c stage=dev', () => {
    const stacks = addRealtimeStacks(newApp({ context: { stage: 'dev' } }));
    expect(stacks.map((s) => s.stackName)).toEqual(['tenantcast-dev-eu-west-1']);
  });

  it('deploys to the account of the stage when one is configured', () => {
    const app = newApp({
      context: {
        stage: 'prod',
        tenantcast: {
          stages: {
            prod: {
              regions: ['eu-west-1'],
              account: '123456789012',
              auth: {
                issuer: 'https://idp.example.com/',
                audience: 'tenantcast',
                jwksUri: 'https://idp.example.com/jwks',
              },
            },
          },
        },
      },
    });
    expect(addRealtimeStacks(app).map((s) => s.account)).toEqual(['123456789012']);
  });

  it('refuses an invalid configuration before creating any stack', () => {
    const app = newApp({ context: { tenantcast: { stages: { prod: { regions: [] } } } } });
    expect(() => addRealtimeStacks(app)).toThrow(ConfigError);
    expect(() => addRealtimeStacks(app)).toThrow("stage 'prod' has no regions (got [])");
    expect(app.node.children).toHaveLength(0);
  });
});
