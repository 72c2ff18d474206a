import { describe, expect, it } from '@jest/globals';
import { GroupCursor } from './dedupe.ts';

describe('a group cursor', () => {
  it('accepts a message id once and refuses it after that', () => {
    const cursor = new GroupCursor();
    expect(cursor.accept('m1', 1)).toBe(true);
    expect(cursor.accept('m2', 2)).toBe(true);
    expect(cursor.accept('m1', 1)).toBe(false);
  });

  it('remembers only the most recent ids, up to its capacity', () => {
    const cursor = new GroupCursor(3);
    for (const id of ['a', 'b', 'c', 'd']) cursor.accept(id, undefined);
    expect(cursor.accept('a', undefined)).toBe(true);
    expect(cursor.accept('d', undefined)).toBe(false);
  });

  it('resumes after the highest seq seen, even when messages arrive out of order', () => {
    const cursor = new GroupCursor();
    expect(cursor.lastSeq).toBeUndefined();
    cursor.accept('m5', 5);
    cursor.accept('m3', 3);
    cursor.accept('m4', undefined);
    expect(cursor.lastSeq).toBe(5);
  });

  it('does not move forward on a duplicate', () => {
    const cursor = new GroupCursor();
    cursor.accept('m1', 1);
    expect(cursor.accept('m1', 99)).toBe(false);
    expect(cursor.lastSeq).toBe(1);
  });

  it('jumps to the server position after a reset, even backwards', () => {
    const cursor = new GroupCursor();
    cursor.accept('m9', 9);
    cursor.resetTo(4);
    expect(cursor.lastSeq).toBe(4);
  });
});
