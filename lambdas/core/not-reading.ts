/**
 * Connections a run left out as not reading and owed its frames best effort only (a `user:` group's connection that
 * never subscribed: lambdas/core/lagging.ts), remembered per sandbox for `ttlMs`, by tenant, group and connection: the
 * group's next live posts to it are not retried when refused 429 (lambdas/core/broadcast.ts, `deliverFrames`), so a
 * tab asleep does not hold every run of its user's group behind its retries (~90 ms here) for as long as it sleeps
 * (until 2026-12-05 it did). Other groups' posts to the same connection, where it may be a member owed everything, and
 * retries of a 5xx are not changed (a review found a first version keyed by connection only, which cut a reading
 * member's retries in every group). A post it takes forgets it. Written by hand: a Map with expiry, which no kept
 * library offers for this.
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

  has(tenantId: string, group: string, connectionId: string): boolean {
    // Asked for every connection of every live run: nothing remembered, nothing to build a key for.
    if (this.until.size === 0) return false;
    const key = keyOf(tenantId, group, connectionId);
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.delete(key);
    return false;
  }

  add(tenantId: string, group: string, connectionId: string): void {
    if (this.until.size >= (this.options.maxEntries ?? 10_000)) this.until.clear();
    this.until.set(keyOf(tenantId, group, connectionId), this.now() + (this.options.ttlMs ?? 60_000));
  }

  delete(tenantId: string, group: string, connectionId: string): void {
    this.until.delete(keyOf(tenantId, group, connectionId));
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

const keyOf = (tenantId: string, group: string, connectionId: string) =>
  `${tenantId}\u0000${group}\u0000${connectionId}`;
