/**
 * A tiny in-memory cache with a time to live, for per-container caching of tenant configuration.
 * Written by hand: Powertools has no general-purpose cache, and this one is a dozen lines.
 * Concurrent misses for the same key share one load; failed loads are not cached.
 */
export interface TtlCacheOptions<V = unknown> {
  readonly ttlMs: number;
  /** How long a loaded value lives, when it depends on the value (a miss shorter than a hit). @default ttlMs */
  readonly ttlOf?: (value: V) => number;
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
    private readonly options: TtlCacheOptions<V>,
  ) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 1000;
  }

  get(key: string): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > this.now()) return hit.value;
    const value = this.load(key);
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const loadedAt = this.now();
    const entry = { expiresAt: loadedAt + this.options.ttlMs, value };
    this.entries.set(key, entry);
    const { ttlOf } = this.options;
    value.then(
      (loaded) => {
        if (ttlOf !== undefined) entry.expiresAt = loadedAt + ttlOf(loaded);
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return value;
  }

  invalidate(key?: string): void {
    if (key === undefined) this.entries.clear();
    else this.entries.delete(key);
  }
}
