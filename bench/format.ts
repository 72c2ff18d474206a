/** Figures as the bench's report, its target checks and `npm run scaling` print them. */

/** Bytes as kilobytes of 1,000, one decimal: `564.9 KB`. */
export function kilobytes(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} KB`;
}

/** A rate per connection-minute (a crossover): `never` when no rate qualifies (null or Infinity). */
export function perConnectionMinute(rate: number | null): string {
  return rate === null || !Number.isFinite(rate) ? 'never' : rate.toFixed(rate < 10 ? 2 : 0);
}

/** Whether a function's bundle is within the cold-start budget, size and import time apart. */
export function withinBudget(
  f: { readonly bytes: number; readonly importMs: number },
  budget: { readonly bytes: number; readonly importMs: number },
): { readonly bytes: boolean; readonly importMs: boolean } {
  return { bytes: f.bytes <= budget.bytes, importMs: f.importMs <= budget.importMs };
}
