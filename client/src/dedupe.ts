/**
 * What a client has seen of one group: the highest `seq` (where to resume with `since`) and a bounded set of
 * recent message ids, so a message that arrives twice (at-least-once delivery, replay after a reconnect, the
 * overlap of two connections during a rollover) reaches the handlers once.
 */
export class GroupCursor {
  // Declared here and assigned in the constructor, not class fields: an ES2020 bundle then needs no field helper.
  declare private readonly capacity: number;
  declare private readonly ids: Set<string>;
  /** Highest `seq` seen, or undefined before the first message (or reset) that carried one. */
  declare lastSeq: number | undefined;

  constructor(capacity = 1000) {
    Object.assign(this, { capacity, ids: new Set<string>(), lastSeq: undefined });
  }

  /** Records a message; false if its id was already seen (a duplicate to drop). */
  accept(id: string, seq: number | undefined): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    // A Set iterates in insertion order, so the first entry is the oldest one.
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    this.advance(seq);
    return true;
  }

  /** Moves the resume point forward (never back). */
  advance(seq: number | undefined): void {
    if (typeof seq === 'number' && Number.isFinite(seq) && (this.lastSeq === undefined || seq > this.lastSeq)) {
      this.lastSeq = seq;
    }
  }

  /** After a reset the history is gone: resume from the server's current position. */
  resetTo(seq: number): void {
    this.lastSeq = seq;
  }
}
