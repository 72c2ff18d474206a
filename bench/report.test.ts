import { describe, expect, it } from '@jest/globals';
import { bundlesSection, burstRuns, largeGroupSection, profilesSection, targetStatus } from './report.ts';
import { largeGroupFixture, scenario } from './scenario-fixture.ts';
import type { ScenarioResult } from './types.ts';

const burst = (system: ScenarioResult['system'], median: number, measured: number[]): ScenarioResult =>
  scenario(`${system} burst`, { system, deliveriesPerSecond: median, runs: { warmUps: [40_000], measured } });

describe('the report of repeated bursts', () => {
  it('lists every run, the spread of the measured ones, and the range of the ratio over them', () => {
    const lines = burstRuns([
      burst('raw-ws', 100_000, [90_000, 100_000, 120_000]),
      burst('pipeline', 50_000, [49_000, 50_000, 51_000]),
    ]);
    expect(lines).toContain(
      "- raw-ws burst: warm-ups 40000; measured 90000, 100000, 120000 (median 100000; spread 30 % of it: more than 10 %, the machine's speed moved within the scenario)",
    );
    expect(lines).toContain(
      '- pipeline burst: warm-ups 40000; measured 49000, 50000, 51000 (median 50000; spread 4 % of it)',
    );
    expect(lines).toContain(
      '- the burst ratio over the measured runs, any pipeline run against any plain `ws` run: 0.408× to 0.567×',
    );
  });

  it('says nothing when no scenario ran more than once', () => {
    expect(burstRuns([{ ...burst('raw-ws', 1, [1]), runs: undefined }])).toEqual([]);
  });
});

describe('the report sections of the modeled targets', () => {
  it('tell a target met by being reported from one met against its threshold, and from one not met', () => {
    const t = { target: 't', measured: 'm', reason: '' };
    expect(targetStatus({ ...t, met: true })).toBe('met');
    expect(targetStatus({ ...t, met: true, reported: true })).toBe('reported (no threshold)');
    expect(targetStatus({ ...t, met: false, reported: true, reason: 'why' })).toBe('**not met**');
  });

  it('price each profile with its crossover, "never" where no rate wins, and say where the unit costs came from', () => {
    const costs = {
      lambdaMsPerPost: 0.632,
      dynamoWriteUnitsPerMessage: 1.044,
      dynamoWriteUnitsPerRun: 3,
      writesFromRun: true,
    };
    const lines = profilesSection(
      [
        {
          name: 'quiet',
          deliveriesPerMinute: 10_000,
          messagesPerFrame: 1,
          tenantcastPerMinute: 0.0158,
          appSyncPerMinute: 0.0118,
          ratio: 1.34,
          crossover: null,
          crossoverPackedWithinHalfSecond: 150.4,
        },
      ],
      costs,
    );
    expect(lines[0]).toBe('## Cost across workloads');
    expect(lines).toContain('| quiet | 10,000 | 1 | 0.0158 | 0.0118 | 1.34 | never | 150 |');
    expect(lines.join(' ')).toContain(
      '1.044 DynamoDB write units per message and 3 per broadcaster run from the cost run',
    );
    const defaults = profilesSection([], { ...costs, writesFromRun: false });
    expect(defaults).toEqual([]);
  });

  it('mark each function within or over the cold-start budget', () => {
    const lines = bundlesSection({
      runs: 5,
      budget: { bytes: 600_000, importMs: 100 },
      runtime: 'nodejs24.x',
      functions: [
        { name: 'fanout', bytes: 390_800, importMs: 39 },
        { name: 'big', bytes: 700_000, importMs: 120 },
      ],
    });
    expect(lines).toContain('| fanout | 390.8 KB | met | 39 ms | met |');
    expect(lines).toContain('| big | 700.0 KB | **not met** | 120 ms | **not met** |');
  });

  it('say how long the modeled large group takes and what bounds it', () => {
    const lines = largeGroupSection(largeGroupFixture).join(' ');
    expect(lines).toContain('200 pages in 8 lanes');
    expect(lines).toContain('**11.5 s**');
    expect(lines).toContain('bound by that quota');
  });

  it('leave a section out when the run has no figures for it', () => {
    expect([...profilesSection(undefined), ...bundlesSection(undefined), ...largeGroupSection(undefined)]).toEqual([]);
  });
});
