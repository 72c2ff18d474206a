import { describe, expect, it } from '@jest/globals';
import type { SequencedMessage } from './delivery.ts';
import { coalesce, packFrames, planDelivery, repackFrames } from './delivery-plan.ts';

let nextSeq = 0;
function msg(data: unknown, extra: Partial<SequencedMessage> = {}): SequencedMessage {
  const seq = ++nextSeq;
  return { v: 1, id: `m${seq}`, seq, tenantId: 'acme', group: 'g', data, from: 'u', ts: 1, ...extra };
}

describe('coalescing', () => {
  it('keeps only the newest version of each entity key, in seq order, and leaves other messages alone', () => {
    const a1 = msg({ entity: 'task', key: 1, version: 1 });
    const chat = msg({ text: 'hi' });
    const b1 = msg({ entity: 'task', key: 2, version: 7 });
    const a3 = msg({ entity: 'task', key: 1, version: 3 });
    const a2 = msg({ entity: 'task', key: 1, version: 2 });
    expect(coalesce([a1, chat, b1, a3, a2]).map((m) => m.id)).toEqual([chat.id, b1.id, a3.id]);
  });

  it('does not merge the same key of different entities', () => {
    const task = msg({ entity: 'task', key: 1, version: 1 });
    const note = msg({ entity: 'note', key: 1, version: 1 });
    expect(coalesce([task, note])).toHaveLength(2);
  });
});

describe('frame packing', () => {
  it('sends one message as a message frame with its seq', () => {
    const m = msg({ text: 'x' });
    expect(packFrames([m]).map((f) => JSON.parse(f))).toEqual([
      { type: 'message', group: 'g', id: m.id, seq: m.seq, data: { text: 'x' }, from: 'u', ts: 1 },
    ]);
  });

  it('packs several messages into batch frames no larger than the frame limit, in order', () => {
    const messages = Array.from({ length: 10 }, (_, i) => msg({ text: String(i).repeat(6000) }));
    const frames = packFrames(messages, 32 * 1024);
    expect(frames.length).toBe(2);
    for (const frame of frames) expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(32 * 1024);
    const ids = frames.flatMap((f) => (JSON.parse(f) as { messages: { id: string }[] }).messages.map((m) => m.id));
    expect(ids).toEqual(messages.map((m) => m.id));
  });
});

describe('a delivery plan', () => {
  it('gives each recipient only the messages its audience allows', () => {
    const open = msg('all');
    const admins = msg('admins', { audience: { roles: ['admin'] } });
    const plan = planDelivery(
      [open, admins],
      [
        { connectionId: 'c1', roles: ['admin'] },
        { connectionId: 'c2', roles: ['member'] },
      ],
    );
    const ids = (c: string) =>
      (plan.get(c) ?? []).flatMap((f) => {
        const frame = JSON.parse(f) as { id?: string; messages?: { id: string }[] };
        return frame.messages ? frame.messages.map((m) => m.id) : [frame.id];
      });
    expect(ids('c1')).toEqual([open.id, admins.id]);
    expect(ids('c2')).toEqual([open.id]);
  });

  it('shares one set of frames among recipients who may receive the same messages, whatever else their claims hold', () => {
    const team = msg('t1 only', { audience: { roles: ['member'], claim: { name: 'team', anyOf: ['t1'] } } });
    const open = msg('everyone');
    const recipients = Array.from({ length: 1000 }, (_, i) => ({
      connectionId: `c${i}`,
      roles: ['member'],
      claims: { email: `user${i}@example.com`, team: i % 2 === 0 ? 't1' : 't2' },
    }));
    const plan = planDelivery([team, open], recipients);
    expect(plan.size).toBe(1000);
    // Two audiences' worth of frames, not a thousand.
    expect(new Set(plan.values()).size).toBe(2);
    expect(plan.get('c0')).not.toBe(plan.get('c1'));
  });

  it('leaves out recipients that get nothing', () => {
    const secret = msg('x', { audience: { roles: ['admin'] } });
    expect(planDelivery([secret], [{ connectionId: 'c', roles: [] }]).size).toBe(0);
  });
});

describe('the naive pattern switches', () => {
  const m = (seq: number, version: number): SequencedMessage => ({
    v: 1,
    id: `m${seq}`,
    tenantId: 'acme',
    group: 'entity:task',
    data: { entity: 'task', key: 'k', version },
    from: 'alice',
    ts: 1,
    seq,
  });

  it('send one frame per message when packing is off', () => {
    expect(packFrames([m(1, 1), m(2, 2)], undefined, { packing: false }).map((f) => JSON.parse(f).type)).toEqual([
      'message',
      'message',
    ]);
  });

  it('keep superseded versions when coalescing is off', () => {
    const plan = planDelivery([m(1, 1), m(2, 2)], [{ connectionId: 'c', roles: [] }], undefined, {
      coalescing: false,
      packing: false,
    });
    expect(plan.get('c')?.map((f) => JSON.parse(f).seq)).toEqual([1, 2]);
  });
});

describe('re-packing frames of consecutive fan-out pages', () => {
  const idsOf = (frames: readonly string[]) =>
    frames.map((f) => {
      const frame = JSON.parse(f) as { type: string; id?: string; messages?: { id: string }[] };
      return frame.type === 'batch'
        ? (frame.messages ?? []).map((m) => m.id)
        : frame.type === 'message'
          ? frame.id
          : 'reset';
    });

  it('turns the frames of two pages into one batch frame when they fit, messages in order and unchanged', () => {
    const [a, b, c] = [msg({ text: 'a' }), msg({ text: 'b' }), msg({ text: 'c' })] as [
      SequencedMessage,
      SequencedMessage,
      SequencedMessage,
    ];
    const frames = repackFrames([...packFrames([a, b]), ...packFrames([c])]);
    expect(frames).toEqual(packFrames([a, b, c]));
    expect(idsOf(frames)).toEqual([[a.id, b.id, c.id]]);
  });

  it('splits what does not fit into frames of at most 32 KB, in order', () => {
    const pages = Array.from({ length: 3 }, () =>
      packFrames(Array.from({ length: 4 }, (_, i) => msg({ text: String(i).repeat(5000) }))),
    );
    const separate = pages.flat();
    const frames = repackFrames(separate, 32 * 1024);
    expect(separate).toHaveLength(3);
    expect(frames).toHaveLength(2);
    for (const frame of frames) expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(32 * 1024);
    expect(idsOf(frames).flat()).toEqual(idsOf(separate).flat());
  });

  it('keeps a reset frame on its own, in place, and packs the messages on each side of it', () => {
    const [a, b, c] = [msg('a'), msg('b'), msg('c')] as [SequencedMessage, SequencedMessage, SequencedMessage];
    const reset = JSON.stringify({ type: 'reset', group: 'g', reason: 'HISTORY_EXPIRED', seq: 9 });
    const frames = repackFrames([...packFrames([a]), ...packFrames([b]), reset, ...packFrames([c])]);
    expect(frames[1]).toBe(reset);
    expect(idsOf(frames)).toEqual([[a.id, b.id], 'reset', c.id]);
  });

  it('sends a message that comes again in a later page once', () => {
    const [a, b] = [msg('a'), msg('b')] as [SequencedMessage, SequencedMessage];
    expect(idsOf(repackFrames([...packFrames([a]), ...packFrames([a, b])]))).toEqual([[a.id, b.id]]);
  });

  it('keeps one frame per message when packing is off', () => {
    const [a, b] = [msg('a'), msg('b')] as [SequencedMessage, SequencedMessage];
    const separate = [
      ...packFrames([a], undefined, { packing: false }),
      ...packFrames([b], undefined, { packing: false }),
    ];
    expect(repackFrames(separate, undefined, { packing: false })).toEqual(separate);
  });
});
