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

  it('takes the live messages after a reset to a lower seq (history lost), which were below what it had delivered', () => {
    const cursor = new GroupCursor();
    for (let seq = 1; seq <= 10; seq++) cursor.accept(`old${seq}`, seq);
    cursor.resetTo(3);
    expect(cursor.accept('new4', 4)).toBe(true);
    expect(cursor.accept('new5', 5)).toBe(true);
    expect(cursor.accept('new4', 4)).toBe(false);
    expect(cursor.lastSeq).toBe(5);
  });

  it('refuses a message whose seq is not above the last one accepted, even once its id left the window', () => {
    const cursor = new GroupCursor(10);
    for (let seq = 1; seq <= 11; seq++) cursor.accept(`m${seq}`, seq);
    // m1 is no longer among the ten ids remembered: an at-least-once repeat of it is known by its seq.
    expect(cursor.accept('m1', 1)).toBe(false);
    expect(cursor.accept('m12', 12)).toBe(true);
  });

  it('hands on a message at or below a live subscribe ack: an ack moves the resume point, not the repeat bound', () => {
    const cursor = new GroupCursor();
    cursor.advance(10);
    expect(cursor.accept('m8', 8)).toBe(true);
    expect(cursor.lastSeq).toBe(10);
    expect(cursor.accept('m7', 7)).toBe(false);
  });

  it('takes only a non-negative integer as a seq to resume from, by a message or by a reset', () => {
    const cursor = new GroupCursor();
    cursor.accept('m4', 4);
    for (const seq of [4.5, -1, Number.NaN, '57' as unknown as number]) {
      cursor.accept(`m${seq}`, seq);
      cursor.resetTo(seq);
    }
    expect(cursor.lastSeq).toBe(4);
    cursor.resetTo(0);
    expect(cursor.lastSeq).toBe(0);
  });
});
