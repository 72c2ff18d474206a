import { describe, expect, it } from '@jest/globals';
import { limits } from '../manifest.ts';
import { DeliveryFailedError } from './broadcast.ts';
import { FanoutJob } from './delivery.ts';
import { isPermanent, setAsideMessageAttributes } from './poison.ts';
import { messageBytes } from './sqs-batches.ts';

const own = (n: number) =>
  Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`attr${i}`, { DataType: 'String', StringValue: `value-${i}` }]),
  );
const max = limits.queueMessageBytes;

describe('a set-aside copy', () => {
  it('keeps up to 8 of the record’s own attributes, then the reason and the function', () => {
    const attributes = setAsideMessageAttributes('{"small":1}', own(12), 'TOO_LARGE data', 'broadcaster', max);
    expect(Object.keys(attributes)).toHaveLength(10);
    expect(attributes).toMatchObject({
      failureReason: { StringValue: 'TOO_LARGE data' },
      failedBy: { StringValue: 'broadcaster' },
    });
  });

  it('stays within SQS’s limit for a record near it: fewer own attributes, then a shorter reason, then none', () => {
    const reason = 'r'.repeat(400);
    for (const room of [2_000, 300, 100, 10]) {
      const body = 'b'.repeat(max - room);
      const attributes = setAsideMessageAttributes(body, own(8), reason, 'broadcaster', max);
      expect(messageBytes({ MessageBody: body, MessageAttributes: attributes })).toBeLessThanOrEqual(max);
    }
    const tight = setAsideMessageAttributes('b'.repeat(max - 100), own(8), reason, 'broadcaster', max);
    expect(Object.keys(tight).sort()).toEqual(['failedBy', 'failureReason']);
    expect(tight.failureReason?.StringValue.endsWith('…')).toBe(true);
    expect(setAsideMessageAttributes('b'.repeat(max - 10), own(8), reason, 'broadcaster', max)).toEqual({});
  });
});

describe('a permanent failure', () => {
  it('includes a delivery that failed with a 413 (a frame over API Gateway’s limit), not one that failed with a 503', () => {
    const status = (code: number) => Object.assign(new Error(`HTTP ${code}`), { $metadata: { httpStatusCode: code } });
    expect(isPermanent(new DeliveryFailedError({ delivered: 0, gone: 0, failed: 1 }, status(413)))).toBe(true);
    expect(isPermanent(new DeliveryFailedError({ delivered: 0, gone: 0, failed: 1 }, status(503)))).toBe(false);
    // One connection's 413 and another's 503: retried, so the second gets another try.
    const mixed = new DeliveryFailedError({ delivered: 0, gone: 0, failed: 2 }, status(413), [
      status(413),
      status(503),
    ]);
    expect(isPermanent(mixed)).toBe(false);
  });

  it('includes the validation error of the schemas the functions parse with (zod 4 names it $ZodError)', () => {
    let thrown: unknown;
    try {
      FanoutJob.parse({ v: 1, kind: 'fanout', not: 'a page' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeDefined();
    expect(isPermanent(thrown)).toBe(true);
    expect(isPermanent(new Error('socket hang up'))).toBe(false);
  });

  it('cuts a long reason without leaving half a surrogate pair', () => {
    const reason = '😀'.repeat(200);
    for (let room = 40; room < 80; room++) {
      const body = 'b'.repeat(max - room - 44);
      const why = setAsideMessageAttributes(body, {}, reason, 'broadcaster', max).failureReason?.StringValue ?? '';
      expect(why).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    }
  });
});
