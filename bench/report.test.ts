import { describe, expect, it } from '@jest/globals';
import { burstRuns } from './report.ts';
import { scenario } from './scenario-fixture.ts';
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
