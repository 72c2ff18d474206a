import { describe, expect, it } from '@jest/globals';
import {
  appSyncEventsCost,
  crossoverDeliveriesPerConnectionMinute,
  packingWithin,
  perMillionDeliveries,
  profileBill,
  profiles,
  profileUsage,
  tenantcastCost,
  type Usage,
  writeUnitsOf,
} from './cost.ts';
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
    expect(cost.sqs).toBeCloseTo(0.015, 6); // FIFO: $0.50 per million requests
    expect(cost.dynamo).toBeCloseTo(0.0025 + 0.025, 6);
    expect(cost.total).toBeCloseTo(cost.apiGateway + cost.lambda + cost.sqs + cost.dynamo, 9);
  });

  it('prices AppSync Events at one operation per publish and per delivery plus connection-minutes', () => {
    expect(appSyncEventsCost(usage)).toBeCloseTo(1.02 + 0.08, 6);
    expect(perMillionDeliveries(2, 500_000)).toBe(4);
  });
});

describe('the workload profiles', () => {
  it('count a quiet minute: 10,000 connection-minutes, 10,000 deliveries of 1,000 messages, one post each', () => {
    const u = profileUsage(profiles.quiet);
    expect(u).toMatchObject({ connectionMinutes: 10_000, deliveries: 10_000, publishes: 1000, inboundMessages: 0 });
    expect(u.outboundMessageUnits).toBe(10_000);
    expect(u.lambdaInvocations).toBe(1000);
    expect(u.sqsRequests).toBe(3000);
    // Each of the 1,000 messages is a run of its own: its history item and rate-limit share, and the run's 3 writes.
    expect(u.dynamoWriteUnits).toBeCloseTo(1000 * 1.044 + 1000 * 3, 6);
  });

  it("split a run's write units into what each message writes and what each broadcaster run writes", () => {
    const split = writeUnitsOf({
      'PutItem T#*#G#*#H': 1,
      'UpdateItem T#*#G#*#S': 0.25,
      'UpdateItem T#*#G#*#P': 0.25,
      'UpdateItem T#*#USAGE': 0.25,
      'UpdateItem RL#C#*': 0.05,
      'GetItem T#*#G#*#V': 0.25,
    });
    expect(split).toEqual({ perMessage: 1.05, perRun: 3, messagesPerRun: 4 });
    expect(writeUnitsOf({ 'PutItem T#*#G#*#H': 1 })).toBeUndefined();
  });

  it('make AppSync Events cheaper for the quiet profile: nothing to pack, dearer connection-minutes', () => {
    const bill = profileBill(profiles.quiet);
    expect(bill.appSyncPerMinute).toBeCloseTo(0.011 + 0.0008, 9);
    expect(bill.ratio).toBeGreaterThan(1);
    expect(crossoverDeliveriesPerConnectionMinute(profiles.quiet)).toBe(Number.POSITIVE_INFINITY);
  });

  it('count the change feed upstream of every entity change', () => {
    const u = profileUsage(profiles.entityFeed);
    const changes = (5000 * 6) / 50;
    expect(u.publishes).toBe(changes);
    expect(u.sqsRequests).toBe(changes * 3 + changes * 3); // changes queue + delivery queue
    expect(u.lambdaInvocations).toBe(changes * 2); // changeFeed + broadcaster
  });

  it('put the crossover where the fixed gap of connection-minutes meets the saving per delivery', () => {
    const shape = profiles.busy;
    const at = (rate: number) => profileBill({ ...shape, deliveriesPerConnectionMinute: rate });
    const fixedGap = at(0).tenantcastPerMinute - at(0).appSyncPerMinute;
    const perDeliveryGap =
      at(1).appSyncPerMinute - at(0).appSyncPerMinute - (at(1).tenantcastPerMinute - at(0).tenantcastPerMinute);
    const expected = fixedGap / perDeliveryGap; // both for all the profile's connections
    // (0.25 − 0.08) per million connection-minutes ÷ about $0.79 saved per million deliveries.
    expect(expected).toBeGreaterThan(0.2);
    expect(expected).toBeLessThan(0.23);
    const found = crossoverDeliveriesPerConnectionMinute(shape);
    expect(found).toBeGreaterThanOrEqual(expected);
    expect(found).toBeLessThan(expected * 1.011);
  });

  it('find the first rate cheaper than AppSync Events when packing grows with the rate', () => {
    const packing = packingWithin(0.1);
    const rate = crossoverDeliveriesPerConnectionMinute(profiles.quiet, undefined, packing);
    const bill = (r: number) =>
      profileBill({
        ...profiles.quiet,
        deliveriesPerConnectionMinute: r,
        messagesPerFrame: packing(r),
        messagesPerRun: packing(r),
      });
    expect(bill(rate).ratio).toBeLessThanOrEqual(1);
    expect(bill(rate / 1.01).ratio).toBeGreaterThan(1);
    expect(packing(rate)).toBeGreaterThan(1); // unpacked, it never wins
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
