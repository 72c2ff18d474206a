/**
 * Recent `GetConnection` outcomes, per container, so presence checks each connection at most once per `ttlMs`
 * however often it is asked (docs/protocol.md, "Presence"): without it every `presence` frame made one Management
 * API call per member of the group, and a viewer repeating the frame slowed every tenant's invocations.
 * Concurrent checks of one connection share one call; a failed check is not remembered.
 *
 * Written by hand: TtlCache (ttl-cache.ts) caches values but cannot tell when an entry was last checked, which the
 * least-recently-checked-first order of presence needs.
 */
export interface ConnectionChecksOptions {
  /** How long an outcome stands. */
  readonly ttlMs: number;
  /** Outcomes kept at most (the oldest go first). @default 10 000 */
  readonly maxEntries?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export class ConnectionChecks {
  private readonly entries = new Map<string, { checkedAt: number; connected: Promise<boolean> }>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(private readonly options: ConnectionChecksOptions) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** When the connection was last checked (epoch ms), fresh or not; undefined if never (or forgotten). */
  lastChecked(connectionId: string): number | undefined {
    return this.entries.get(connectionId)?.checkedAt;
  }

  /** Whether an outcome for the connection is still fresh (a check in flight counts). */
  isFresh(connectionId: string): boolean {
    const entry = this.entries.get(connectionId);
    return entry !== undefined && this.now() - entry.checkedAt < this.options.ttlMs;
  }

  /** The fresh outcome, or a new check with `isConnected` (remembered once it succeeds). */
  check(connectionId: string, isConnected: (connectionId: string) => Promise<boolean>): Promise<boolean> {
    const entry = this.entries.get(connectionId);
    if (entry !== undefined && this.now() - entry.checkedAt < this.options.ttlMs) return entry.connected;
    const connected = isConnected(connectionId);
    const fresh = { checkedAt: this.now(), connected };
    // Re-inserted so the map stays in check order and the oldest entry is the first one.
    this.entries.delete(connectionId);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(connectionId, fresh);
    connected.catch(() => {
      if (this.entries.get(connectionId) === fresh) this.entries.delete(connectionId);
    });
    return connected;
  }
}
