/** A scenario result for the bench's unit tests: a burst of 100 messages to 1000 connections, all delivered. */
import type { ScenarioResult } from './types.ts';

export function scenario(
  name: string,
  over: Partial<ScenarioResult> & { p99?: number; p50?: number } = {},
): ScenarioResult {
  const { p99 = 100, p50 = 50, ...rest } = over;
  return {
    name,
    system: name.startsWith('raw') ? 'raw-ws' : 'pipeline',
    connections: 1000,
    messages: 100,
    rate: 'burst',
    expected: 100_000,
    delivered: 100_000,
    duplicates: 0,
    frames: 1000,
    latency: { count: 1, p50, p95: p99, p99, max: p99, mean: p50 },
    deliveriesPerSecond: 100_000,
    seconds: 1,
    ...rest,
  };
}
