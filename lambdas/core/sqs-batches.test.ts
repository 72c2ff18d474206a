import { describe, expect, it } from '@jest/globals';
import { MessageTooLargeError, messageBytes, sqsBatches, sqsMessageBody } from './sqs-batches.ts';

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

describe('sqsMessageBody', () => {
  /** What SQS takes in a message body (SendMessage API reference). */
  const SQS_CHARACTERS = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

  it('writes U+FFFE and U+FFFF, in keys and values, as escapes that read back as the same characters', () => {
    const value = { '\uFFFEk': ['\uFFFF', 'a\uFFFEb\uFFFFc'], n: 1 };
    const body = sqsMessageBody(value);
    expect(body).toBe('{"\\ufffek":["\\uffff","a\\ufffeb\\uffffc"],"n":1}');
    expect(body).toMatch(SQS_CHARACTERS);
    expect(JSON.parse(body)).toEqual(value);
  });

  it('leaves every other character as JSON.stringify writes it, and each call alike', () => {
    const value = { text: 'tab\t é \uFFFD \u{1F600} \u0000 \uD800', deep: [{ x: null }] };
    expect(sqsMessageBody(value)).toBe(JSON.stringify(value));
    expect(sqsMessageBody(value)).toMatch(SQS_CHARACTERS);
    expect(sqsMessageBody({ a: '\uFFFF' })).toBe(sqsMessageBody({ a: '\uFFFF' }));
  });
});
