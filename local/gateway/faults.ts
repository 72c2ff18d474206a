/**
 * Fault injection for `@connections` posts (local only, for tests and the benchmark, only with the `faultInjection`
 * option): the set of active faults, adding one (validated), and picking the fault that applies to a post. The
 * signed `/local/faults` endpoint that drives it from outside is in management-api.ts.
 */
import type { ActiveFault, FaultSpec } from './types.ts';

/** The error type API Gateway names for each injectable status. */
export const FAULT_TYPES = {
  410: 'GoneException',
  413: 'PayloadTooLargeException',
  429: 'LimitExceededException',
  500: 'InternalServerErrorException',
} as const;

/** Adds a fault (throws when fault injection is off or the spec is invalid); returns a function that removes it. */
export function addFault(faults: Set<ActiveFault>, enabled: boolean, spec: FaultSpec): () => void {
  if (!enabled) throw new Error('fault injection is off: start the gateway (or runtime) with faultInjection');
  const rate = spec.rate ?? 1;
  if (!(rate >= 0 && rate <= 1)) throw new Error(`fault rate must be between 0 and 1 (got ${spec.rate})`);
  if (spec.status !== undefined && !(spec.status in FAULT_TYPES)) {
    throw new Error(`fault status must be 410, 413, 429 or 500 (got ${spec.status})`);
  }
  const fault = { spec, left: spec.count ?? Number.POSITIVE_INFINITY };
  faults.add(fault);
  return () => faults.delete(fault);
}

/** The fault that applies to this post, if any (consumes one of its `count`). `random` is in [0, 1). */
export function faultFor(
  faults: Set<ActiveFault>,
  connectionId: string,
  random: () => number = Math.random,
): FaultSpec | undefined {
  for (const fault of faults) {
    if (fault.spec.connectionIds !== undefined && !fault.spec.connectionIds.includes(connectionId)) continue;
    if (random() >= (fault.spec.rate ?? 1)) continue;
    if (--fault.left <= 0) faults.delete(fault);
    return fault.spec;
  }
  return undefined;
}
