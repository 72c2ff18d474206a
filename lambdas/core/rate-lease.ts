/**
 * What one sandbox remembers about a rate-limit key, and how many tokens it leases from the shared bucket at once
 * (lambdas/core/rate-limit.ts, docs/security.md "How the rates are enforced across instances"). Pure.
 *
 * A lease takes `size` tokens from the DynamoDB bucket with one conditional UpdateItem: one is spent by the request
 * that took it, the rest are spent from memory by later requests for the same key in this sandbox, until they run
 * out or the lease expires ({@link LEASE_MS} after it was taken; unspent tokens are then dropped, never returned).
 * Sizes adapt to the key's rate in this sandbox: 1 for a cold key (so a quiet key costs exactly what plain GCRA
 * costs), then at most 16× the previous lease, aiming to last its whole life at the rate seen, never more than
 * {@link maxLease}, and more than 1 only while the bucket keeps at least {@link leaseReserve} tokens after it.
 */
import type { RateSpec } from './rate-limit.ts';

/** How long leased tokens may be spent. */
export const LEASE_MS = 1000;
/** A lease is at most this many times the previous one. */
const GROWTH = 16;

/**
 * The largest lease of a bucket: a tenth of its burst, and no more than it refills in one lease lifetime; at least 1.
 * A bucket with a burst of {@link EXACT_BURST} or less is never leased from (every request is its own write, as with
 * plain GCRA): over-admission of up to a lease per sandbox would be a large share of so small a bucket (the default
 * frame bucket of a connection, 20, could let 8 sandboxes admit 8 more a second).
 */
export function maxLease(spec: RateSpec, leaseMs = LEASE_MS): number {
  if (spec.burst <= EXACT_BURST) return 1;
  return Math.max(1, Math.min(Math.floor(spec.burst / 10), Math.floor((spec.perSecond * leaseMs) / 1000)));
}

/** Buckets this small are exact (never leased from). */
export const EXACT_BURST = 20;

/** Tokens a lease of more than one must leave in the bucket: half its burst. Under pressure leases are single tokens. */
export function leaseReserve(spec: RateSpec): number {
  return Math.floor(Math.max(1, spec.burst) / 2);
}

/** One key as this sandbox knows it. */
export interface KeyMemory {
  /** A lower bound of the stored `tat` (it only grows), or 0 when the bucket was last seen full. */
  tat: number;
  /** Leased tokens not spent yet, spendable while `now < until`. */
  held: number;
  until: number;
  /** Size and time of the last lease: the key's rate in this sandbox. */
  leased: number;
  leasedAt: number;
}

/** Spends one held token if there is one still valid; true when it did. */
export function spendHeld(memory: KeyMemory | undefined, now: number): boolean {
  if (memory === undefined || memory.held <= 0 || now >= memory.until) return false;
  memory.held--;
  return true;
}

/**
 * Tokens the bucket holds at `now` if its `tat` is `tat` (a lower bound of `tat` gives an upper bound of the
 * tokens).
 */
export function tokensAvailable(tat: number, now: number, spec: RateSpec): number {
  const interval = 1000 / spec.perSecond;
  const tolerance = (Math.max(1, spec.burst) - 1) * interval;
  const base = Math.max(tat, now);
  return Math.max(0, Math.floor((now + tolerance - base) / interval + 1e-9) + 1);
}

/** The size of the next lease for a key (see the file comment). */
export function nextLeaseSize(memory: KeyMemory | undefined, now: number, spec: RateSpec, leaseMs = LEASE_MS): number {
  const cap = maxLease(spec, leaseMs);
  if (memory === undefined || cap === 1 || memory.leased < 1) return 1;
  const elapsed = now - memory.leasedAt;
  // Quiet here for two lease lifetimes: start again from one token.
  if (elapsed > 2 * leaseMs) return 1;
  const unspent = memory.held > 0 && now < memory.until ? memory.held : 0;
  const expired = memory.held > 0 && now >= memory.until ? memory.held : 0;
  const spent = memory.leased - unspent - expired;
  const perMs = spent / Math.max(1, elapsed);
  const wanted = Math.ceil(perMs * leaseMs);
  let size = Math.max(1, Math.min(wanted, cap, GROWTH * memory.leased));
  // Leave the reserve in the bucket (as far as this sandbox can tell: the real bucket may hold fewer).
  const room = tokensAvailable(memory.tat, now, spec) - leaseReserve(spec);
  if (size > 1) size = Math.max(1, Math.min(size, room));
  return size;
}

/**
 * Records a lease of `size` tokens taken at `now` (one of them spent at once) and the `tat` it left. A sandbox holds
 * at most `maxHeld` tokens: two leases taken at once (concurrent requests) keep no more than one would.
 */
export function recordLease(
  memory: KeyMemory | undefined,
  size: number,
  tat: number,
  now: number,
  maxHeld: number,
  leaseMs = LEASE_MS,
): KeyMemory {
  const stillHeld = memory !== undefined && memory.held > 0 && now < memory.until ? memory.held : 0;
  return {
    tat: Math.max(memory?.tat ?? 0, tat),
    held: Math.min(maxHeld, stillHeld + size - 1),
    // Tokens of two leases share the earlier expiry: none is ever spent later than its own lease allows.
    until: stillHeld > 0 ? Math.min(memory?.until ?? now + leaseMs, now + leaseMs) : now + leaseMs,
    leased: size,
    leasedAt: now,
  };
}
