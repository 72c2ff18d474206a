import { describe, expect, it } from '@jest/globals';
import { attributeId, deliverySendParams, fanoutLaneGroupId, messageGroupIdOf, sqsId } from './delivery.ts';

describe('queue message groups', () => {
  it('name a group by tenant and group, and hash a group whose name would pass 128 characters', () => {
    expect(messageGroupIdOf('acme', 'chat:room')).toBe('acme#chat:room');
    const long = `chat:${'x'.repeat(124)}`;
    expect(messageGroupIdOf('acme', long)).toMatch(/^acme#h#[A-Za-z0-9_-]{43}$/);
  });

  it('never give a group the hashed id of a long one, whatever its name', () => {
    const long = `room.${'x'.repeat(123)}`;
    const hashed = messageGroupIdOf('acme', long);
    const lookalike = hashed.slice('acme#'.length);
    // The old hashed form, `h:<hash>`, was a valid group name; `#` is not part of any.
    expect(messageGroupIdOf('acme', lookalike.replace('h#', 'h:'))).not.toBe(hashed);
    expect(messageGroupIdOf('acme', lookalike.replace('h#', 'h:'))).toBe(`acme#${lookalike.replace('h#', 'h:')}`);
  });

  it('give each fan-out lane its own group, and never let two long groups with the same beginning share a lane', () => {
    expect(fanoutLaneGroupId('acme', 'chat:room', 3)).toBe('acme#chat:room#3');
    const a = `chat:${'x'.repeat(116)}a`;
    const b = `chat:${'x'.repeat(116)}b`;
    const laneA = fanoutLaneGroupId('t'.repeat(64), a, 7);
    const laneB = fanoutLaneGroupId('t'.repeat(64), b, 7);
    expect(laneA).not.toBe(laneB);
    expect(laneA.length).toBeLessThanOrEqual(128);
    expect(laneA).toMatch(/#7$/);
  });
});

describe('ids as SQS takes them', () => {
  it('are kept when they are 1 to 128 printable ASCII characters, and hashed otherwise, each to its own', () => {
    expect(sqsId('chg:acme:item:boston:1')).toBe('chg:acme:item:boston:1');
    const odd = ['chg:acme:item:new york:1', 'chg:acme:item:Zürich:1', 'x'.repeat(129), ''];
    const hashed = odd.map(sqsId);
    for (const id of hashed) expect(id).toMatch(/^h:[A-Za-z0-9_-]{43}$/);
    expect(new Set(hashed).size).toBe(odd.length);
    expect(sqsId('chg:acme:item:new york:1')).toBe(hashed[0]);
    // Ids that differ only in half a surrogate pair (or a U+FFFD) stay apart (a reviewing helper's find).
    const halves = ['order\uD800', 'order\uDBFF', 'order\uDC00', 'order\uFFFD'].map(sqsId);
    expect(new Set(halves).size).toBe(4);
  });

  it('go in the messageId attribute as they are where SQS takes the characters, and hashed where it does not', () => {
    expect(attributeId('Zürich 😀')).toBe('Zürich 😀');
    for (const id of ['ctl\u0001x', 'nonchar\uFFFF', 'half\uD800']) {
      expect(attributeId(id)).toBe(sqsId(id));
      const params = deliverySendParams('q', {
        v: 1,
        id,
        tenantId: 'acme',
        group: 'chat:x',
        data: 1,
        from: 'u',
        ts: 1,
      });
      expect(params.MessageAttributes.messageId.StringValue).toMatch(/^h:/);
      expect(params.MessageDeduplicationId).toBe(sqsId(id));
    }
  });
});
