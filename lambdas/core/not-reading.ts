/**
 * Connections a run left out as not reading and owed its frames best effort only (a `user:` group's connection that
 * never subscribed: lambdas/core/lagging.ts), remembered per sandbox for `ttlMs`: their next posts get one attempt
 * instead of the backoff's, so a tab asleep does not hold every run of its user's group behind its retries (~90 ms
 * here) for as long as it sleeps (until 2026-12-05 it did). A post it takes forgets it. Written by hand: a Map with
 * expiry, which no kept library offers for this.
 */
export interface NotReadingOptions {
  /** How long a connection is remembered after its last refusal, ms. @default 60_000 */
  readonly ttlMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** At most this many are remembered (past it, all are forgotten). @default 10_000 */
  readonly maxEntries?: number;
}

export class NotReading {
  private readonly until = new Map<string, number>();

  constructor(private readonly options: NotReadingOptions = {}) {}

  has(connectionId: string): boolean {
    const until = this.until.get(connectionId);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.delete(connectionId);
    return false;
  }

  add(connectionId: string): void {
    if (this.until.size >= (this.options.maxEntries ?? 10_000)) this.until.clear();
    this.until.set(connectionId, this.now() + (this.options.ttlMs ?? 60_000));
  }

  delete(connectionId: string): void {
    this.until.delete(connectionId);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
