/**
 * Multi-region delivery's wiring (docs/multi-region.md) in prod's two regions from cdk.json: each region's stack names
 * its delivery queue so the other can address it, gives the broadcaster and the replicator the peer's queue URL and
 * sqs:SendMessage on the peer's queue ARN, and has its own replication queue (FIFO + DLQ) feeding the replicator.
 * No cross-stack references: the regions deploy in any order.
 */
import { describe, expect, it } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import { queues } from '../../lambdas/manifest.ts';
import { deliveryQueueNameOf, StagePeers } from '../../lib/stage-peers.ts';
import { addRealtimeStacks } from '../../lib/tenantcast-app.ts';
import { cdkJsonContext, type SynthesizedStack, stageConfig, synthStack } from './support.ts';

const prodRegions = stageConfig('prod').regions;
const [first, second] = prodRegions as [string, string];
const stacks = new Map<string, SynthesizedStack>(prodRegions.map((region) => [region, synthStack('prod', region)]));
const dev = synthStack('dev', 'eu-west-1');
const peerOf = (region: string) => (region === first ? second : first);

type Resource = { Type: string; Properties: Record<string, unknown> };

function at(region: string): SynthesizedStack {
  const synthesized = stacks.get(region);
  if (!synthesized) throw new Error(`no prod stack in ${region}`);
  return synthesized;
}

function environmentOf(synthesized: SynthesizedStack, name: string): Record<string, unknown> {
  const fn = synthesized.stack.functions.get(name);
  if (!fn) throw new Error(`no function '${name}'`);
  const resource = synthesized.template.toJSON().Resources[synthesized.logicalIdOf(fn.functionName)] as Resource;
  return (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** The peer delivery queue's URL and ARN as CloudFormation renders them (account and URL suffix resolved at deploy). */
const peerUrl = (peer: string) => ({
  'Fn::Join': [
    '',
    [
      `${peer}=https://sqs.${peer}.`,
      { Ref: 'AWS::URLSuffix' },
      '/',
      { Ref: 'AWS::AccountId' },
      `/${deliveryQueueNameOf('prod')}`,
    ],
  ],
});
const peerArn = (peer: string) => ({
  'Fn::Join': ['', [`arn:aws:sqs:${peer}:`, { Ref: 'AWS::AccountId' }, `:${deliveryQueueNameOf('prod')}`]],
});

/** The roles whose policies allow sqs:SendMessage on `resource` (alone, or among a statement's resources). */
function sendersTo(synthesized: SynthesizedStack, resource: unknown): unknown[] {
  const target = JSON.stringify(resource);
  const policies = Object.values(synthesized.template.findResources('AWS::IAM::Policy')) as Resource[];
  return policies
    .filter((policy) =>
      (policy.Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement.some(
        (statement) =>
          [statement.Action].flat().includes('sqs:SendMessage') &&
          [statement.Resource].flat().some((r) => JSON.stringify(r) === target),
      ),
    )
    .flatMap((policy) => policy.Properties.Roles as unknown[]);
}

function roleOf(synthesized: SynthesizedStack, name: string) {
  return { Ref: synthesized.logicalIdOf(synthesized.stack.functions.get(name)?.role?.roleArn ?? '') };
}

describe.each(prodRegions)('the prod stack in %s', (region) => {
  const synthesized = at(region);
  const peer = peerOf(region);

  it('names its delivery queue the same in every region, so peers can address it', () => {
    synthesized.template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: deliveryQueueNameOf('prod'),
      FifoQueue: true,
    });
  });

  it("tells the broadcaster and the replicator the stage's regions and the peer's delivery queue URL", () => {
    for (const name of ['broadcaster', 'replicator']) {
      expect(environmentOf(synthesized, name)).toMatchObject({
        STAGE_REGIONS: prodRegions.join(' '),
        PEER_DELIVERY_QUEUES: peerUrl(peer),
      });
    }
    const replication = synthesized.stack.queues.get('replication')?.queue.queueUrl ?? '';
    expect(environmentOf(synthesized, 'broadcaster')).toMatchObject({
      REPLICATION_QUEUE_URL: { Ref: synthesized.logicalIdOf(replication) },
    });
  });

  it("lets the broadcaster and the replicator send to the peer's delivery queue, and nothing else may", () => {
    const roles = sendersTo(synthesized, peerArn(peer));
    expect(roles).toEqual(
      expect.arrayContaining([roleOf(synthesized, 'broadcaster'), roleOf(synthesized, 'replicator')]),
    );
    expect(roles).toHaveLength(2);
    expect(roles).toHaveLength(2);
  });

  it('has a FIFO replication queue with its DLQ, consumed by the replicator with partial batch responses', () => {
    const replication = synthesized.stack.queues.get('replication');
    if (!replication) throw new Error('no replication queue');
    const queue = synthesized.template.toJSON().Resources[synthesized.logicalIdOf(replication.queue.queueArn)];
    expect(queue.Properties).toMatchObject({
      FifoQueue: true,
      VisibilityTimeout: queues.replication.visibilityTimeoutSeconds,
      RedrivePolicy: {
        maxReceiveCount: queues.replication.maxReceiveCount,
        deadLetterTargetArn: {
          'Fn::GetAtt': [synthesized.logicalIdOf(replication.deadLetterQueue.queueArn), 'Arn'],
        },
      },
    });
    synthesized.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: synthesized.logicalIdOf(synthesized.stack.functions.get('replicator')?.functionName ?? '') },
      EventSourceArn: { 'Fn::GetAtt': [synthesized.logicalIdOf(replication.queue.queueArn), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('lets only the broadcaster queue replication jobs', () => {
    const replication = synthesized.stack.queues.get('replication')?.queue.queueArn ?? '';
    expect(sendersTo(synthesized, { 'Fn::GetAtt': [synthesized.logicalIdOf(replication), 'Arn'] })).toEqual([
      roleOf(synthesized, 'broadcaster'),
    ]);
  });
});

describe('the prod app', () => {
  it('builds one stack per region with no reference between them, so they deploy in any order', () => {
    const app = new App({ context: { ...cdkJsonContext, 'aws:cdk:bundling-stacks': [], stage: 'prod' } });
    const built = addRealtimeStacks(app);
    expect(built.map((s) => s.region)).toEqual([...prodRegions]);
    for (const stack of built) expect(stack.dependencies).toEqual([]);
    const assembly = app.synth();
    for (const stack of built) {
      expect(JSON.stringify(assembly.getStackByName(stack.stackName).template)).not.toContain('Fn::ImportValue');
    }
  });
});

describe('a single-region stage', () => {
  it('gives its functions no peers and grants no cross-region sends', () => {
    expect(environmentOf(dev, 'broadcaster')).toMatchObject({ STAGE_REGIONS: 'eu-west-1', PEER_DELIVERY_QUEUES: '' });
    expect(JSON.stringify(dev.template.toJSON())).not.toMatch(/:sqs:[a-z0-9-]+:/);
  });
});

describe('StagePeers', () => {
  it("refuses a stack whose region is not one of the stage's, saying what was given", () => {
    const stack = new Stack(new App(), 'S', { env: { region: 'ap-south-1' } });
    expect(() => new StagePeers(stack, 'Peers', { stageName: 'prod', regions: ['eu-west-1', 'us-east-1'] })).toThrow(
      'S/Peers: the stack\'s region (ap-south-1) must be one of the stage\'s regions (got ["eu-west-1","us-east-1"])',
    );
  });

  it('refuses a stack without a region when the stage has several', () => {
    const stack = new Stack(new App(), 'S');
    expect(() => new StagePeers(stack, 'Peers', { stageName: 'prod', regions: ['eu-west-1', 'us-east-1'] })).toThrow(
      "S/Peers: a stage with several regions (eu-west-1, us-east-1) needs the stack's region (env.region) to know its peers",
    );
  });
});
