/**
 * The whole machine's CPU use over a scenario, from Linux's /proc/stat: every process counts (gateway, function
 * sandboxes, stand-ins, the receivers' process), which is what bounds a pipeline that runs on one machine. Read by
 * hand: one line of a kernel file, no library needed.
 */
import { readFileSync } from 'node:fs';

export interface CpuSample {
  /** Clock ticks spent running anything (user, nice, system, irq, softirq, steal), all cores together. */
  readonly busy: number;
  /** Every clock tick, idle and iowait included. */
  readonly total: number;
  /** The CPUs /proc/stat counts (its `cpuN` lines): the cores `busy` and `total` are summed over. */
  readonly cores: number;
  /** When it was read (ms, any fixed origin). */
  readonly at: number;
}

export interface MachineCpu {
  /** Cores busy on average over the window (at most the machine's cores). */
  readonly busyCores: number;
  readonly cores: number;
  /** CPU time spent across the machine per delivery. */
  readonly cpuMicrosPerDelivery: number;
}

/** Parses /proc/stat: the aggregate `cpu` line and the count of `cpuN` lines. */
export function parseProcStat(text: string, at = 0): CpuSample | undefined {
  const lines = text.split('\n');
  const line = lines.find((l) => l.startsWith('cpu '));
  if (line === undefined) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  const cores = lines.filter((l) => /^cpu\d+ /.test(l)).length || 1;
  return { busy, total: busy + idle + iowait, cores, at };
}

/** Now, or undefined where /proc/stat does not exist (not Linux). */
export function sampleMachineCpu(
  read: () => string = () => readFileSync('/proc/stat', 'utf8'),
  now: () => number = () => performance.now(),
): CpuSample | undefined {
  try {
    return parseProcStat(read(), now());
  } catch {
    return undefined;
  }
}

/**
 * The machine's CPU use between two samples, and per delivery made in between. Both figures come from the samples'
 * own window: the busy share of every tick times the cores is the cores busy, and that times the window is the CPU
 * time spent.
 */
export function machineCpuBetween(
  before: CpuSample | undefined,
  after: CpuSample | undefined,
  deliveries: number,
): MachineCpu | undefined {
  if (before === undefined || after === undefined || after.total <= before.total || after.at <= before.at)
    return undefined;
  if (deliveries <= 0) return undefined;
  const busyCores = ((after.busy - before.busy) / (after.total - before.total)) * after.cores;
  const cpuSeconds = busyCores * ((after.at - before.at) / 1000);
  return {
    busyCores: Math.round(busyCores * 100) / 100,
    cores: after.cores,
    cpuMicrosPerDelivery: Math.round((cpuSeconds / deliveries) * 1e6 * 10) / 10,
  };
}
