/**
 * What a client has seen of one group: the highest `seq` (where to resume with `since`), and the highest `seq`
 * delivered with a bounded set of recent message ids, so a message that arrives twice (at-least-once delivery,
 * replay after a reconnect, the overlap of two connections during a rollover) reaches the handlers once.
 */
export class GroupCursor {
  // Declared here and assigned in the constructor, not class fields: an ES2020 bundle then needs no field helper.
  declare private readonly capacity: number;
  declare private readonly ids: Set<string>;
  /**
   * The `seq` of the last message accepted. Apart from lastSeq: a live subscribe's ack moves the resume point, but
   * messages at or below the ack may still arrive (docs/delivery.md) and are handed on.
   */
  declare private deliveredSeq: number | undefined;
  /** Highest `seq` seen, or undefined before the first message (or reset) that carried one. */
  declare lastSeq: number | undefined;

  constructor(capacity = 1000) {
    Object.assign(this, { capacity, ids: new Set<string>() });
  }

  /**
   * Records a message; false if it was seen already (a duplicate to drop): its id is among the recent ones, or its
   * `seq` is not above the last one accepted (protocol.md, "Recovery"), however long ago its id left the window.
   * Messages come in `seq` order on every socket, and a socket resubscribed `since` continues the others' order.
   */
  accept(id: string, seq: number | undefined): boolean {
    if (this.ids.has(id) || (seq as number) <= (this.deliveredSeq as number)) return false;
    this.ids.add(id);
    // A Set iterates in insertion order, so the first entry is the oldest one.
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    this.deliveredSeq = seq;
    this.advance(seq);
    return true;
  }

  /** Moves the resume point forward (never back) to `seq`, if it is one (a non-negative integer). */
  advance(seq: number | undefined): void {
    if (Number.isSafeInteger(seq) && (seq as number) > (this.lastSeq ?? -1)) this.lastSeq = seq;
  }

  /**
   * After a reset the history is gone: resume from the server's current position `seq`, if it is one, and take live
   * messages after it, even where it is below what was delivered before (history lost).
   */
  resetTo(seq: number): void {
    if (Number.isSafeInteger(seq) && seq >= 0) this.lastSeq = this.deliveredSeq = seq;
  }
}
