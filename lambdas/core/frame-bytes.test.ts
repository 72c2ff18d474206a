import { describe, expect, it } from '@jest/globals';
import { FrameBytes } from './frame-bytes.ts';

describe('FrameBytes', () => {
  it('encodes a frame as UTF-8, multi-byte characters included', () => {
    const frame = '{"type":"message","data":{"name":"Zoë ✓ 😀"}}';
    expect(Buffer.from(new FrameBytes().of(frame)).toString('utf8')).toBe(frame);
    expect(new FrameBytes().of(frame).byteLength).toBe(Buffer.byteLength(frame, 'utf8'));
  });

  it('gives the same bytes for the same frame text, built separately, without encoding it again', () => {
    const bytes = new FrameBytes();
    const first = bytes.of(JSON.stringify({ type: 'message', seq: 1 }));
    expect(bytes.of(JSON.stringify({ type: 'message', seq: 1 }))).toBe(first);
    expect(bytes.of(JSON.stringify({ type: 'message', seq: 2 }))).not.toBe(first);
  });

  it('holds at most maxFrames, dropping the one encoded longest ago', () => {
    const bytes = new FrameBytes(2);
    const a = bytes.of('a');
    bytes.of('b');
    bytes.of('c');
    expect(bytes.size).toBe(2);
    expect(bytes.of('a')).not.toBe(a);
    expect(Buffer.from(bytes.of('a')).toString()).toBe('a');
  });
});
