/**
 * Retries with "full jitter" exponential backoff (delay = random(0, min(cap, base * 2^attempt)), AWS Architecture
 * Blog, "Exponential Backoff And Jitter"). Written by hand: the SDK's retry strategy covers SDK calls only and
 * Powertools has no generic retry helper; the broadcaster needs one around each @connections post.
 */
export interface BackoffOptions {
  /** Attempts in all, the first included. @default 4 */
  readonly attempts?: number;
  /** @default 25 */
  readonly baseMs?: number;
  /** @default 1000 */
  readonly capMs?: number;
  /** Only errors for which this is true are retried; others are thrown at once. */
  readonly isRetryable: (err: unknown) => boolean;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The delay before retry number `attempt` (1 = the first retry). */
export function fullJitterDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function withBackoff<T>(fn: () => Promise<T>, options: BackoffOptions): Promise<T> {
  const attempts = options.attempts ?? 4;
  if (!Number.isInteger(attempts) || attempts < 1)
    throw new RangeError(`attempts must be at least 1 (got ${attempts})`);
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !options.isRetryable(err)) throw err;
      await sleep(fullJitterDelay(attempt, options.baseMs ?? 25, options.capMs ?? 1000, random));
    }
  }
}
