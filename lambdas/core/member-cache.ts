/**
 * Member lists of groups kept between runs in one container (docs/delivery.md, "Member lists"): a list read after
 * the group's membership version (lambdas/core/registry.ts) is used again while the version stays the same, so a
 * busy group's runs read one small item instead of every member item. Expired members (their `ttl` passed since the
 * list was read) are left out at each use, as the registry leaves them out of a read.
 *
 * Written by hand: no kept library caches by a version read from the table, and this is a bounded Map.
 * Bounded by members held (least recently used lists go first), so a container serving many groups stays small.
 */
import type { Member } from './registry.ts';

export interface MemberCacheOptions {
  /** Most members held over all groups. @default 200000 */
  readonly maxMembers?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

interface Entry {
  readonly version: number;
  readonly members: readonly Member[];
}

export class MemberCache {
  private readonly entries = new Map<string, Entry>();
  private held = 0;
  private readonly maxMembers: number;
  private readonly now: () => number;

  constructor(options: MemberCacheOptions = {}) {
    this.maxMembers = options.maxMembers ?? 200_000;
    this.now = options.now ?? Date.now;
  }

  /** The group's members as read at `version`, or undefined if none are held for that version. */
  get(tenantId: string, group: string, version: number): Member[] | undefined {
    const key = keyOf(tenantId, group);
    const entry = this.entries.get(key);
    if (entry === undefined || entry.version !== version) return undefined;
    // Most recently used last, so eviction takes the oldest first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    const nowSeconds = this.now() / 1000;
    return entry.members.filter((m) => m.ttl === undefined || m.ttl > nowSeconds);
  }

  /** Keeps the members read after the group's membership version was `version`. */
  set(tenantId: string, group: string, version: number, members: readonly Member[]): void {
    const key = keyOf(tenantId, group);
    this.remove(key);
    if (members.length > this.maxMembers) return;
    while (this.held + members.length > this.maxMembers) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
    this.entries.set(key, { version, members });
    this.held += members.length;
  }

  /** Members held over all groups. */
  get size(): number {
    return this.held;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.held -= entry.members.length;
  }
}

const keyOf = (tenantId: string, group: string) => `${tenantId}\u0000${group}`;
