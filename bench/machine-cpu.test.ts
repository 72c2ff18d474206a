import { describe, expect, it } from '@jest/globals';
import { machineCpuBetween, parseProcStat, sampleMachineCpu } from './machine-cpu.ts';

const stat = (user: number, idle: number) =>
  `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${user / 2} 0 0 ${idle / 2} 0 0 0 0 0 0\nintr 1 2 3\n`;

describe('machine CPU from /proc/stat', () => {
  it('reads busy and total ticks from the aggregate cpu line', () => {
    expect(parseProcStat('cpu  10 1 5 100 4 2 3 1 0 0\n')).toEqual({ busy: 22, total: 126 });
    expect(parseProcStat('nothing here')).toBeUndefined();
  });

  it('turns two samples into cores busy and CPU time per delivery', () => {
    // 150 of 200 ticks busy on 2 cores over 1 s: 1.5 cores, 1.5 CPU-s for 1,000 deliveries = 1,500 µs each.
    const m = machineCpuBetween(parseProcStat(stat(100, 100)), parseProcStat(stat(250, 150)), 1, 1000, 2);
    expect(m).toEqual({ busyCores: 1.5, cores: 2, cpuMicrosPerDelivery: 1500 });
  });

  it('gives nothing without both samples or without deliveries, and nothing where /proc/stat cannot be read', () => {
    expect(machineCpuBetween(undefined, parseProcStat(stat(1, 1)), 1, 10)).toBeUndefined();
    expect(machineCpuBetween(parseProcStat(stat(1, 1)), parseProcStat(stat(2, 2)), 1, 0)).toBeUndefined();
    expect(
      sampleMachineCpu(() => {
        throw new Error('ENOENT');
      }),
    ).toBeUndefined();
  });
});
