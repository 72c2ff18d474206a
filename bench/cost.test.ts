import { describe, expect, it } from '@jest/globals';
import { appSyncEventsCost, perMillionDeliveries, tenantcastCost, type Usage } from './cost.ts';
import { percentile, summarize } from './stats.ts';

const usage: Usage = {
  deliveries: 1_000_000,
  inboundMessages: 20_000,
  outboundMessageUnits: 100_000,
  connectionMinutes: 1_000_000,
  lambdaInvocations: 10_000,
  lambdaGbSeconds: 100,
  sqsRequests: 30_000,
  dynamoReadUnits: 20_000,
  dynamoWriteUnits: 40_000,
  publishes: 20_000,
};

describe('the cost model', () => {
  it('prices each service from the counted usage', () => {
    const cost = tenantcastCost(usage);
    expect(cost.apiGateway).toBeCloseTo(0.12 + 0.25, 6);
    expect(cost.lambda).toBeCloseTo(0.002 + 100 * 0.0000133334, 6);
    expect(cost.sqs).toBeCloseTo(0.012, 6);
    expect(cost.dynamo).toBeCloseTo(0.0025 + 0.025, 6);
    expect(cost.total).toBeCloseTo(cost.apiGateway + cost.lambda + cost.sqs + cost.dynamo, 9);
  });

  it('prices AppSync Events at one operation per publish and per delivery plus connection-minutes', () => {
    expect(appSyncEventsCost(usage)).toBeCloseTo(1.02 + 0.08, 6);
    expect(perMillionDeliveries(2, 500_000)).toBe(4);
  });
});

describe('latency statistics', () => {
  it('use nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(summarize([3, 1, 2])).toMatchObject({ count: 3, p50: 2, max: 3, mean: 2 });
  });
});
