import { describe, expect, it } from '@jest/globals';
import { machineCpuBetween, parseProcStat, sampleMachineCpu } from './machine-cpu.ts';

/** /proc/stat of a two-core machine: the aggregate line and one line per core. */
const stat = (user: number, idle: number) =>
  `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${user / 2} 0 0 ${idle / 2} 0 0 0 0 0 0\ncpu1 ${user / 2} 0 0 ${idle / 2} 0 0 0 0 0 0\nintr 1 2 3\n`;

describe('machine CPU from /proc/stat', () => {
  it('reads busy and total ticks from the aggregate cpu line, and the cores from the per-core lines', () => {
    expect(parseProcStat('cpu  10 1 5 100 4 2 3 1 0 0\ncpu0 10 1 5 100 4 2 3 1 0 0\n', 7)).toEqual({
      busy: 22,
      total: 126,
      cores: 1,
      at: 7,
    });
    expect(parseProcStat(stat(0, 0))?.cores).toBe(2);
    expect(parseProcStat('nothing here')).toBeUndefined();
  });

  it("turns two samples into cores busy and CPU time per delivery, both over the samples' own window", () => {
    // 150 of 200 ticks busy on 2 cores: 1.5 cores; over 2 s that is 3 CPU-s, for 1,000 deliveries 3,000 µs each.
    const m = machineCpuBetween(parseProcStat(stat(100, 100), 0), parseProcStat(stat(250, 150), 2000), 1000);
    expect(m).toEqual({ busyCores: 1.5, cores: 2, cpuMicrosPerDelivery: 3000 });
  });

  it('gives nothing without both samples, an elapsed window or deliveries, and nothing where /proc/stat cannot be read', () => {
    const at = (user: number, ms: number) => parseProcStat(stat(user, user), ms);
    expect(machineCpuBetween(undefined, at(1, 1000), 10)).toBeUndefined();
    expect(machineCpuBetween(at(1, 0), at(2, 1000), 0)).toBeUndefined();
    expect(machineCpuBetween(at(1, 1000), at(2, 1000), 10)).toBeUndefined();
    expect(
      sampleMachineCpu(() => {
        throw new Error('ENOENT');
      }),
    ).toBeUndefined();
  });
});
