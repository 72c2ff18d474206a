/**
 * A tiny in-memory cache with a time to live, for per-container caching of tenant configuration.
 * Written by hand: Powertools has no general-purpose cache, and this one is a dozen lines.
 * Concurrent misses for the same key share one load; failed loads are not cached.
 */
export interface TtlCacheOptions {
  readonly ttlMs: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default 1000 */
  readonly maxEntries?: number;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, { expiresAt: number; value: Promise<V> }>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(
    private readonly load: (key: string) => Promise<V>,
    private readonly options: TtlCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 1000;
  }

  get(key: string): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > this.now()) return hit.value;
    const value = this.load(key);
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { expiresAt: this.now() + this.options.ttlMs, value });
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  invalidate(key?: string): void {
    if (key === undefined) this.entries.clear();
    else this.entries.delete(key);
  }
}
