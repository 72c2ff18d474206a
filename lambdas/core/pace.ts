/**
 * Pacing a busy small group (docs/delivery.md, "Pacing a busy group"). Lambda offers no batching window for FIFO
 * queues, and a group gets its next batch only once this one is deleted, after the invocation returns. So a group
 * whose runs end quickly gets a frame per member every few milliseconds with two messages in it, each run paying its
 * fixed writes (the counter, a progress record, usage) and every frame billed. An invocation whose every unit was
 * such a run lasts at least `minRunMs` instead, and the group's next batch holds what arrived meanwhile.
 */

export interface PaceRun {
  /** Messages in the run. */
  readonly size: number;
  /** Whether the broadcaster posted it itself (false: it went to the fan-out lanes, which read ahead past it at once). */
  readonly direct: boolean;
}

export interface PacedInvocation {
  /** Records in the batch: a full batch may have a backlog behind it. */
  readonly records: number;
  /** Units of the batch (runs of a group, replay requests, replicas, set-aside records). */
  readonly units: number;
  /** The runs that were delivered, as they ended. */
  readonly runs: readonly PaceRun[];
}

export interface PaceOptions {
  /** The least time an invocation of busy runs lasts, ms. 0: no pacing. */
  readonly minRunMs: number;
  /** The queue's batch size (10 for FIFO at most): a full batch may have more waiting behind it, so it is not paced. */
  readonly batchSize: number;
}

/**
 * How long the invocation should still wait before returning, ms: `minRunMs` less what it already took, when its
 * batch was not full and every unit of it was a run delivered directly with at least two messages (they arrive
 * faster than runs end); otherwise 0. So a lone message (a quiet group) never waits, nor does a full batch (a
 * backlog), a split group's run, a replay, a replica or a forwarded run, nor any group sharing the batch with one.
 */
export function paceDelayMs(invocation: PacedInvocation, elapsedMs: number, options: PaceOptions): number {
  const { records, units, runs } = invocation;
  if (options.minRunMs <= 0 || records >= options.batchSize || units === 0 || runs.length !== units) return 0;
  const busy = runs.every((run) => run.direct && run.size >= 2);
  return busy ? Math.max(0, options.minRunMs - elapsedMs) : 0;
}
