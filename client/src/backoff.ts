/**
 * Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"): the n-th retry waits
 * a uniformly random time in [0, min(maxMs, baseMs · 2^n)). Pure: the random source is an argument.
 */
export interface BackoffOptions {
  /** Cap of the first retry's delay. @default 500 */
  readonly baseMs?: number;
  /** Largest delay. @default 20_000 */
  readonly maxMs?: number;
}

export function backoffCeiling(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 20_000;
  // 2^31 already exceeds any sensible cap; clamping the exponent keeps the arithmetic finite.
  return Math.min(max, base * 2 ** Math.min(Math.max(attempt, 0), 31));
}

/** The delay before retry number `attempt` (0-based); `random` returns a number in [0, 1). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeiling(attempt, options));
}
