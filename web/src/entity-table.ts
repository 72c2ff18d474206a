/**
 * The rows of one entity as the page shows them, kept current from two sources that race: API answers (the list,
 * a write's response) and live change events (at-least-once, possibly late). The version decides: a key only ever
 * moves forward, a delete leaves a tombstone so a late older update cannot bring the row back, and a reload keeps
 * whatever arrived live while it was in flight.
 */
import { type ChangeEvent, type EntitySpec, type Row, VERSION, versionOf } from './schema.ts';

export class EntityTable {
  readonly #rows = new Map<string, Row>();
  /** Highest version seen per key, deletes included. */
  readonly #seen = new Map<string, number>();
  /** Keys changed live since the last `load`, so a reload started before them does not drop them. */
  readonly #live = new Set<string>();

  constructor(readonly spec: EntitySpec) {}

  keyOf(row: Row): string {
    return String(row[this.spec.primaryKey]);
  }

  get size(): number {
    return this.#rows.size;
  }

  get(key: string): Row | undefined {
    return this.#rows.get(key);
  }

  /** The rows in primary-key order (numeric keys numerically). */
  rows(): Row[] {
    const numeric = this.spec.fields[this.spec.primaryKey]?.type === 'int';
    const keyed = [...this.#rows.entries()];
    keyed.sort(([a], [b]) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
    return keyed.map(([, row]) => row);
  }

  /**
   * Replaces the rows with a fresh list from the API, keeping what changed live meanwhile where it is newer. Anything
   * else the list decides, even at a lower version: the API is the truth, and after a stack restarted without its
   * data versions start again (until 2026-12-03 the page kept the old rows, refused the new versions and every save
   * conflicted).
   */
  /** Forgets every row, listed or live: none of them is there any more (the tenant itself is gone). */
  clear(): void {
    this.#rows.clear();
    this.#live.clear();
    this.#seen.clear();
  }

  load(list: readonly Row[]): void {
    const listed = new Set<string>();
    const next = new Map<string, Row>();
    const seen = new Map<string, number>();
    for (const key of this.#live) seen.set(key, this.#seen.get(key) ?? -1);
    for (const row of list) {
      const key = this.keyOf(row);
      listed.add(key);
      if ((seen.get(key) ?? -1) > versionOf(row)) {
        const current = this.#rows.get(key);
        if (current !== undefined) next.set(key, current);
        continue;
      }
      seen.set(key, versionOf(row));
      next.set(key, row);
    }
    for (const key of this.#live) {
      const current = this.#rows.get(key);
      if (!listed.has(key) && current !== undefined) next.set(key, current);
    }
    this.#live.clear();
    this.#seen.clear();
    for (const [key, version] of seen) this.#seen.set(key, version);
    this.#rows.clear();
    for (const [key, row] of next) this.#rows.set(key, row);
  }

  /**
   * Applies a live change; false when it is not newer than what the table has (a duplicate or a late one). A change
   * announced without its row (`rowOmitted`) changes nothing here: the caller reads the row and `upsert`s it.
   */
  apply(change: ChangeEvent): boolean {
    const key = String(change.key);
    if ((this.#seen.get(key) ?? -1) >= change.version) return false;
    if (change.rowOmitted === true) return true;
    this.#seen.set(key, change.version);
    this.#live.add(key);
    if (change.op === 'delete' || change.row === null) this.#rows.delete(key);
    else this.#rows.set(key, { ...change.row, [VERSION]: change.version });
    return true;
  }

  /**
   * Takes a delete the API answered (204) at `version`, the delete's own: the row goes, and the key is marked as the
   * live delete marks it (which then changes nothing); false when the table already has a newer change of the key.
   */
  remove(key: string, version: number): boolean {
    if ((this.#seen.get(key) ?? -1) >= version) return false;
    this.#seen.set(key, version);
    this.#live.add(key);
    this.#rows.delete(key);
    return true;
  }

  /** Takes a row the API answered with (a create or an update); false when the table already has a newer one. */
  upsert(row: Row): boolean {
    const key = this.keyOf(row);
    const version = versionOf(row);
    if ((this.#seen.get(key) ?? -1) >= version) return false;
    this.#seen.set(key, version);
    this.#live.add(key);
    this.#rows.set(key, row);
    return true;
  }
}
