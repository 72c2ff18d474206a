/**
 * The whole machine's CPU use over a scenario, from Linux's /proc/stat: every process counts (gateway, function
 * sandboxes, stand-ins, the receivers' process), which is what bounds a pipeline that runs on one machine. Read by
 * hand: one line of a kernel file, no library needed.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface CpuSample {
  /** Clock ticks spent running anything (user, nice, system, irq, softirq, steal), all cores together. */
  readonly busy: number;
  /** Every clock tick, idle and iowait included. */
  readonly total: number;
}

export interface MachineCpu {
  /** Cores busy on average over the window (at most the machine's cores). */
  readonly busyCores: number;
  readonly cores: number;
  /** CPU time spent across the machine per delivery. */
  readonly cpuMicrosPerDelivery: number;
}

/** Parses the aggregate `cpu` line of /proc/stat. */
export function parseProcStat(text: string): CpuSample | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** Now, or undefined where /proc/stat does not exist (not Linux). */
export function sampleMachineCpu(read: () => string = () => readFileSync('/proc/stat', 'utf8')): CpuSample | undefined {
  try {
    return parseProcStat(read());
  } catch {
    return undefined;
  }
}

/** The machine's CPU use between two samples `seconds` apart, per delivery made in between. */
export function machineCpuBetween(
  before: CpuSample | undefined,
  after: CpuSample | undefined,
  seconds: number,
  deliveries: number,
  cores: number = availableParallelism(),
): MachineCpu | undefined {
  if (before === undefined || after === undefined || after.total <= before.total || deliveries <= 0) return undefined;
  const busyCores = ((after.busy - before.busy) / (after.total - before.total)) * cores;
  return {
    busyCores: Math.round(busyCores * 100) / 100,
    cores,
    cpuMicrosPerDelivery: Math.round(((busyCores * seconds) / deliveries) * 1e6 * 10) / 10,
  };
}
