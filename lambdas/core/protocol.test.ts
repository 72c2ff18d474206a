import { describe, expect, it } from '@jest/globals';
import { BadRequestError } from './errors.ts';
import { parseClientFrame, parseJsonFrame, refOf } from './protocol.ts';

function rejectionOf(fn: () => unknown): BadRequestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequestError) return err;
    throw err;
  }
  throw new Error('expected a BadRequestError');
}

describe('client frames', () => {
  it('accepts every documented action', () => {
    expect(parseClientFrame({ action: 'subscribe', group: 'chat:general', ref: '1' })).toEqual({
      action: 'subscribe',
      group: 'chat:general',
      ref: '1',
    });
    expect(parseClientFrame({ action: 'unsubscribe', group: 'a.b-c_d' }).action).toBe('unsubscribe');
    expect(parseClientFrame({ action: 'publish', group: 'g', data: null }).action).toBe('publish');
    expect(parseClientFrame({ action: 'ping' })).toEqual({ action: 'ping' });
  });

  it('rejects malformed JSON and non-objects with BAD_REQUEST', () => {
    expect(rejectionOf(() => parseJsonFrame('{nope')).message).toBe('frame is not valid JSON');
    expect(rejectionOf(() => parseJsonFrame('')).message).toBe('empty frame');
    expect(rejectionOf(() => parseClientFrame([1, 2])).message).toBe('frame must be a JSON object');
    expect(rejectionOf(() => parseClientFrame('ping')).message).toBe('frame must be a JSON object');
  });

  it('names a missing, wrong-typed or unknown action', () => {
    expect(rejectionOf(() => parseClientFrame({})).message).toBe("frame has no 'action'");
    expect(rejectionOf(() => parseClientFrame({ action: 7 })).message).toBe("'action' must be a string");
    expect(rejectionOf(() => parseClientFrame({ action: 'explode' })).message).toBe("unknown action 'explode'");
    expect(rejectionOf(() => parseClientFrame({ action: 'toString' })).message).toBe("unknown action 'toString'");
  });

  it('names the field that is missing, wrong-typed or not allowed', () => {
    expect(rejectionOf(() => parseClientFrame({ action: 'subscribe' })).message).toBe("'group' is required");
    expect(rejectionOf(() => parseClientFrame({ action: 'subscribe', group: 5 })).message).toBe(
      "'group' must be a string",
    );
    expect(rejectionOf(() => parseClientFrame({ action: 'publish', group: 'g' })).message).toContain('data');
    expect(rejectionOf(() => parseClientFrame({ action: 'ping', tenantId: 'globex' })).message).toBe(
      "unknown field 'tenantId'",
    );
    expect(rejectionOf(() => parseClientFrame(JSON.parse('{"action":"ping","__proto__":{"x":1}}'))).message).toBe(
      "unknown field '__proto__'",
    );
  });

  it('rejects group names outside the allowed pattern', () => {
    for (const group of ['', 'has space', 'T#globex#G#chat', 'x'.repeat(129), 'ünïcode', 'a/b']) {
      expect(rejectionOf(() => parseClientFrame({ action: 'subscribe', group })).message).toContain('group must match');
    }
    expect(parseClientFrame({ action: 'subscribe', group: 'x'.repeat(128) }).action).toBe('subscribe');
  });

  it("takes in a user group any user id of printable ASCII but '#', and nothing else beyond the plain names", () => {
    for (const group of ['user:auth0|5f3c', 'user:bob+tag@example.com', `user:${'u'.repeat(256)}`, 'user:a/b"c']) {
      expect(parseClientFrame({ action: 'subscribe', group }).action).toBe('subscribe');
    }
    for (const group of ['user:a#b', 'user:a b', 'user:ü', `user:${'u'.repeat(257)}`, 'chat:a|b', 'a@b']) {
      expect(rejectionOf(() => parseClientFrame({ action: 'subscribe', group })).message).toContain('group must match');
    }
  });

  it('echoes a usable ref even from an invalid frame', () => {
    expect(refOf({ action: 'nope', ref: 'r1' })).toBe('r1');
    expect(refOf({ ref: 5 })).toBeUndefined();
    expect(refOf({ ref: 'x'.repeat(129) })).toBeUndefined();
    expect(refOf(null)).toBeUndefined();
  });
});
