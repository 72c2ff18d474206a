/**
 * Frames as UTF-8 bytes, each encoded once however many connections it is posted to while it is held (the memo is
 * per container: it spans pages and invocations). Every connection of a page (or of a busy group) is usually sent
 * the same frame text; given a string, the AWS SDK encodes the body again on every `PostToConnection` (a 20 KB frame
 * posted to 1,000 connections is 20 MB of copies and garbage). Written by hand: a memo of a few entries, which no
 * kept library offers in this shape.
 */
export class FrameBytes {
  private readonly held = new Map<string, Uint8Array>();
  private readonly encoder = new TextEncoder();

  /** @param maxFrames frames kept at once, the most recently encoded (a run or unit rarely has more than a few). */
  constructor(private readonly maxFrames = 32) {}

  /** The frame's UTF-8 bytes: the same array for the same text while it is held. */
  of(frame: string): Uint8Array {
    const held = this.held.get(frame);
    if (held !== undefined) return held;
    const bytes = this.encoder.encode(frame);
    if (this.held.size >= this.maxFrames) {
      const oldest = this.held.keys().next();
      if (!oldest.done) this.held.delete(oldest.value);
    }
    this.held.set(frame, bytes);
    return bytes;
  }

  /** Frames held now. */
  get size(): number {
    return this.held.size;
  }
}
