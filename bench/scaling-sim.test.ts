import { describe, expect, it } from '@jest/globals';
import {
  assumptions,
  type CpuConstants,
  cpuConstantsFrom,
  cpuShare,
  deliverGroup,
  largeGroupFigures,
  MB_PER_VCPU,
  model,
  profileFigures,
  profilesTable,
  unitCostsFrom,
  unitCostsOfRun,
} from './scaling-sim.ts';

/** As issue #14 measured on the bench machine: ~790 µs of SDK CPU per post. */
const cpu: CpuConstants = { cpuMsPerPost: 0.79, cpuMsPerPageQuery: 8, source: 'test' };
const at1GB = { ...assumptions, pageSize: 500, fanoutShards: 8, broadcasterMemoryMB: 1024, fanoutMemoryMB: 1024 };

describe('the CPU share of a Lambda function', () => {
  it('is memory over 1,769 MB, at most one vCPU for one posting thread', () => {
    expect(cpuShare(1024)).toBeCloseTo(0.579, 3);
    expect(cpuShare(MB_PER_VCPU)).toBe(1);
    expect(cpuShare(3008)).toBe(1);
  });

  it('comes with constants taken from the bench measurement, in ms, naming where they come from', () => {
    const constants = cpuConstantsFrom({
      measuredAt: '2026-12-02T05:35:00.000Z',
      machine: '2 × AMD EPYC',
      loadAverage: [3, 2, 1],
      quick: true,
      gatewayPostsPerSecond: 1400,
      sdkCeiling: {
        calls: 3000,
        inFlight: 32,
        postsPerSecond: 1500,
        cpuMicrosPerPost: 790,
        pageSize: 500,
        cpuMicrosPerPageQuery: 8000,
        cpuMsPerPage: 403,
      },
    });
    expect(constants).toEqual({
      cpuMsPerPost: 0.79,
      cpuMsPerPageQuery: 8,
      source: 'npm run bench --quick of 2026-12-02T05:35:00.000Z on 2 × AMD EPYC (load 3 / 2 / 1)',
    });
  });
});

describe('one message to a group of 100,000', () => {
  const d = deliverGroup(100_000, cpu, at1GB);

  it('is 200 pages over 8 lanes, 25 pages and 3 fanout invocations per lane, one post per member', () => {
    expect(d).toMatchObject({ pages: 200, lanes: 8, pagesPerLane: 25, fanoutInvocations: 24, posts: 100_000 });
  });

  it('is bound by CPU at 1 GB: each lane posts 1000 / (0.79 ms / 0.579) times a second, 8 lanes below the quota', () => {
    expect(d.laneBoundBy).toBe('CPU');
    expect(d.postsPerSecondPerLane).toBeCloseTo(1000 / (0.79 / (1024 / 1769)), 6);
    expect(d.accountQuotaShare).toBeCloseTo((8 * d.postsPerSecondPerLane) / 10_000, 6);
    expect(d.boundBy).toBe('8 lanes × 733 posts/s (CPU)');
    expect(d.postSeconds).toBeCloseTo(100_000 / (8 * d.postsPerSecondPerLane) + 0.02, 6);
  });

  it('reads the members at the pace of unmarshalling 200 pages on 0.579 vCPU', () => {
    expect(d.readSeconds).toBeCloseTo((200 * 8) / (1024 / 1769) / 1000, 6);
    expect(d.seconds).toBeCloseTo(d.readSeconds + d.postSeconds, 9);
  });

  it('reaches the account @connections quota at 1,769 MB', () => {
    const full = deliverGroup(100_000, cpu, { ...at1GB, broadcasterMemoryMB: 1769, fanoutMemoryMB: 1769 });
    expect(full.boundBy).toBe('@connections account quota');
    expect(full.postSeconds).toBeCloseTo(10 + 0.02, 6);
  });
});

describe('the scaling model', () => {
  it('posts a small group directly from the broadcaster, in one lane with no fanout invocation', () => {
    const d = deliverGroup(50, cpu, at1GB);
    expect(d).toMatchObject({ pages: 1, lanes: 1, fanoutInvocations: 0, posts: 50 });
  });

  it('makes a reconnect storm last connections / the new-connection quota', () => {
    expect(model(1_000_000, 50, cpu, at1GB).reconnectStormSeconds).toBe(2000);
  });

  it('costs about a fifth of the naive pattern per delivery when five messages share a frame', () => {
    const p = model(1_000, 50, cpu, at1GB);
    expect(p.costPerMillionPacked / p.costPerMillionNaive).toBeGreaterThan(0.19);
    expect(p.costPerMillionPacked / p.costPerMillionNaive).toBeLessThan(0.22);
  });
});

describe('the workload profiles in docs/scaling.md', () => {
  it("bill Lambda for the measured CPU per post over the broadcaster's CPU share", () => {
    expect(unitCostsFrom(cpu, at1GB).lambdaMsPerPost).toBeCloseTo(0.79 / (1024 / 1769), 9);
  });

  it('say the quiet profile never becomes cheaper than AppSync Events unless its messages are packed', () => {
    const quiet = profilesTable(unitCostsFrom(cpu, at1GB))
      .split('\n')
      .find((row) => row.startsWith('| quiet'));
    expect(quiet).toMatch(/\| never \| \d+ \| \d+ \|$/);
  });
});

describe("a bench run's own unit costs and figures", () => {
  // The busy group's writes per message in a run of ~4.1 messages per broadcaster run.
  const unitsByKind = {
    'PutItem T#*#G#*#H': 1,
    'UpdateItem T#*#USAGE': 0.242,
    'GetItem T#*#G#*#S': 0.242,
    'UpdateItem T#*#G#*#S': 0.242,
    'UpdateItem T#*#G#*#P': 0.242,
    'UpdateItem RL#C#*': 0.022,
  };

  it('take Lambda time per post from the CPU per post, and write units per message and per run from the cost run', () => {
    const run = unitCostsOfRun(cpu, unitsByKind, at1GB);
    expect(run.writesFromRun).toBe(true);
    expect(run.dynamoWriteUnitsPerMessage).toBe(1.022);
    expect(run.dynamoWriteUnitsPerRun).toBe(3);
    expect(run.costs.lambdaMsPerPost).toBeCloseTo(0.79 / (1024 / 1769), 9);
  });

  it("keep the model's write units, and say so, when the cost run counted none", () => {
    const run = unitCostsOfRun(cpu, undefined, at1GB);
    expect(run.writesFromRun).toBe(false);
    expect(run.costs.dynamoWriteUnitsPerRun).toBe(3);
  });

  it('price every profile, with null for a crossover no rate reaches', () => {
    const figures = profileFigures(unitCostsOfRun(cpu, unitsByKind, at1GB).costs);
    expect(figures.map((f) => f.name)).toEqual([
      'busy group: 50 members, 100 msg/s',
      'quiet: 10,000 connections, 1 msg/min each',
      'entity feed: 100 tenants × 50 users, 6 changes/min each',
    ]);
    expect(figures[1]?.crossover).toBeNull();
    expect(figures[1]?.ratio).toBeGreaterThan(1);
    expect(figures[0]?.ratio).toBeLessThan(1);
  });

  it('give the large group as the model delivers it, with the quota and vCPU size it assumed', () => {
    const g = largeGroupFigures(100_000, cpu, at1GB);
    expect(g).toMatchObject({ pages: 200, lanes: 8, fanoutInvocations: 24, mbPerVcpu: 1769 });
    expect(g.accountRequestsPerSecond).toBe(10_000);
    expect(g.seconds).toBeCloseTo(deliverGroup(100_000, cpu, at1GB).seconds, 2);
  });
});
