/**
 * Member lists of groups kept between runs in one container (docs/delivery.md, "Member lists"): a list read after
 * the group's membership version (lambdas/core/registry.ts) is used again while the version stays the same, so a
 * busy group's runs read one small item instead of every member item. Expired members (their `ttl` passed since the
 * list was read) are left out at each use, as the registry leaves them out of a read.
 *
 * Two safety nets: a list is used for at most `maxAgeMs` whatever the version says (a change whose version raise
 * failed, after its member write succeeded, is picked up within that time), and the lists held are bounded by an
 * estimate of their bytes (least recently used first out; a list over a quarter of the bound is not kept), so one
 * tenant's many or large groups cannot fill the container's memory.
 *
 * Written by hand: no kept library caches by a version read from the table, and this is a bounded Map.
 */
import type { Member } from './registry.ts';

export interface MemberCacheOptions {
  /** Most bytes (estimated) of member lists held over all groups. @default 64 MiB */
  readonly maxBytes?: number;
  /** Longest a list is used after it was read, whatever the version. @default 30000 */
  readonly maxAgeMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

interface Entry {
  readonly version: number;
  readonly members: readonly Member[];
  readonly bytes: number;
  readonly readAt: number;
}

/** A member's estimated size in memory: its strings and claims as JSON, plus object overhead. */
export function memberBytes(member: Member): number {
  let bytes = 160 + 2 * (member.connectionId.length + member.userId.length);
  for (const role of member.roles) bytes += 40 + 2 * role.length;
  const claims = Object.keys(member.claims).length === 0 ? 0 : JSON.stringify(member.claims).length;
  return bytes + 3 * claims;
}

export class MemberCache {
  private readonly entries = new Map<string, Entry>();
  private held = 0;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(options: MemberCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.maxAgeMs = options.maxAgeMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** The group's members as read at `version`, or undefined if none are held for that version (or they are too old). */
  get(tenantId: string, group: string, version: number): Member[] | undefined {
    const key = keyOf(tenantId, group);
    const entry = this.entries.get(key);
    if (entry === undefined || entry.version !== version) return undefined;
    const now = this.now();
    if (now - entry.readAt >= this.maxAgeMs) {
      this.remove(key);
      return undefined;
    }
    // Most recently used last, so eviction takes the oldest first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    const nowSeconds = now / 1000;
    return entry.members.filter((m) => m.ttl === undefined || m.ttl > nowSeconds);
  }

  /** Keeps the members read after the group's membership version was `version`. */
  set(tenantId: string, group: string, version: number, members: readonly Member[]): void {
    const key = keyOf(tenantId, group);
    this.remove(key);
    let bytes = 0;
    for (const member of members) bytes += memberBytes(member);
    if (bytes > this.maxBytes / 4) return;
    while (this.held + bytes > this.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
    this.entries.set(key, { version, members, bytes, readAt: this.now() });
    this.held += bytes;
  }

  /** Estimated bytes held over all groups. */
  get bytes(): number {
    return this.held;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.held -= entry.bytes;
  }
}

const keyOf = (tenantId: string, group: string) => `${tenantId}\u0000${group}`;
