import { describe, expect, it } from '@jest/globals';
import { MessageTooLargeError, messageBytes, sqsBatches } from './sqs-batches.ts';

const entry = (bytes: number, tag = 'x') => ({ MessageBody: tag.repeat(bytes) });

describe('SQS batches', () => {
  it('counts the body and every attribute name, type and value in bytes', () => {
    expect(
      messageBytes({ MessageBody: 'é', MessageAttributes: { tenantId: { DataType: 'String', StringValue: 'acme' } } }),
    ).toBe(2 + 8 + 6 + 4);
  });

  it('keeps ten entries at most per batch, in order', () => {
    const batches = sqsBatches(Array.from({ length: 23 }, (_, i) => ({ MessageBody: String(i) })));
    expect(batches.map((b) => b.length)).toEqual([10, 10, 3]);
    expect(batches.flat().map((e) => e.MessageBody)).toEqual(Array.from({ length: 23 }, (_, i) => String(i)));
  });

  it('starts a new batch before the total would pass 1 MiB', () => {
    const batches = sqsBatches(Array.from({ length: 10 }, () => entry(200 * 1024)));
    expect(batches.map((b) => b.length)).toEqual([5, 5]);
    for (const batch of batches) {
      expect(batch.reduce((n, e) => n + messageBytes(e), 0)).toBeLessThanOrEqual(1024 * 1024);
    }
  });

  it('refuses, by name, a single message over 256 KiB instead of letting SQS refuse the batch', () => {
    expect(() => sqsBatches([entry(10), entry(256 * 1024 + 1)])).toThrow(MessageTooLargeError);
    expect(() => sqsBatches([entry(256 * 1024)])).not.toThrow();
  });
});
