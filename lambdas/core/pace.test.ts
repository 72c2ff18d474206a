import { describe, expect, it } from '@jest/globals';
import { paceDelayMs } from './pace.ts';

const options = { minRunMs: 40, batchSize: 10 };
const run = (size: number, direct = true) => ({ size, direct });

describe("paceDelayMs: how long a busy small group's invocation still waits", () => {
  it('waits out the least length when the one run had several messages, delivered directly', () => {
    expect(paceDelayMs({ records: 2, units: 1, runs: [run(2)] }, 12, options)).toBe(28);
    expect(paceDelayMs({ records: 9, units: 1, runs: [run(9)] }, 0, options)).toBe(40);
  });

  it('does not wait once the invocation already lasted that long', () => {
    expect(paceDelayMs({ records: 3, units: 1, runs: [run(3)] }, 40, options)).toBe(0);
    expect(paceDelayMs({ records: 3, units: 1, runs: [run(3)] }, 75, options)).toBe(0);
  });

  it('never delays a lone message: a quiet group gets it at once', () => {
    expect(paceDelayMs({ records: 1, units: 1, runs: [run(1)] }, 5, options)).toBe(0);
  });

  it('does not wait after a full batch, which may have a backlog behind it, of one group or several', () => {
    expect(paceDelayMs({ records: 10, units: 1, runs: [run(10)] }, 5, options)).toBe(0);
    expect(paceDelayMs({ records: 10, units: 2, runs: [run(5), run(5)] }, 5, options)).toBe(0);
  });

  it('does not wait after a run that went to the fan-out lanes', () => {
    expect(paceDelayMs({ records: 4, units: 1, runs: [run(4, false)] }, 5, options)).toBe(0);
  });

  it('does not hold a quiet group, a replay or a set-aside record that shares the batch', () => {
    expect(paceDelayMs({ records: 5, units: 2, runs: [run(4), run(1)] }, 5, options)).toBe(0);
    expect(paceDelayMs({ records: 5, units: 2, runs: [run(4)] }, 5, options)).toBe(0);
    expect(paceDelayMs({ records: 7, units: 2, runs: [run(4), run(3)] }, 5, options)).toBe(35);
  });

  it('is off at 0 and for an empty batch', () => {
    expect(paceDelayMs({ records: 4, units: 1, runs: [run(4)] }, 5, { ...options, minRunMs: 0 })).toBe(0);
    expect(paceDelayMs({ records: 0, units: 0, runs: [] }, 5, options)).toBe(0);
  });
});
