import { describe, expect, it } from '@jest/globals';
import { TenantcastClientError } from './errors.ts';
import { createSubscriptions, type SubscriptionFrame } from './subscriptions.ts';
import { collect, connect, message, reconnect, setup } from './testing.ts';
import type { AckFrame, Message, ResetEvent } from './types.ts';

interface Sock {
  open: boolean;
  role: string;
}

function setupGroups() {
  const socket: Sock = { open: true, role: 'primary' };
  const sent: { frame: SubscriptionFrame; settle: (answer: AckFrame | TenantcastClientError) => void }[] = [];
  const errors: TenantcastClientError[] = [];
  const resets: ResetEvent[] = [];
  const subs = createSubscriptions<Sock>(
    10,
    new Set([socket]),
    (_t, frame, settle) => sent.push({ frame, settle }),
    (error) => errors.push(error),
    (event) => resets.push(event),
  );
  return { socket, sent, errors, resets, subs };
}

const ack = (seq?: number): AckFrame => ({ type: 'ack', ...(seq !== undefined && { seq }) }) as AckFrame;
const msg = (group: string, id: string, seq: number) => ({ type: 'message', group, id, seq, data: id }) as Message;

describe('createSubscriptions', () => {
  it('subscribes a new group once on every usable socket, however many handlers it has', () => {
    const h = setupGroups();
    h.subs.add('g', () => undefined);
    h.subs.add('g', () => undefined);
    expect(h.sent.map((s) => s.frame)).toEqual([{ action: 'subscribe', group: 'g' }]);
  });

  it('does not subscribe on a socket that is draining', () => {
    const h = setupGroups();
    h.socket.role = 'draining';
    h.subs.add('g', () => undefined);
    expect(h.sent).toEqual([]);
  });

  it('resubscribes from the seq of the subscribe ack when no message was seen', () => {
    const h = setupGroups();
    h.subs.add('g', () => undefined);
    h.sent[0]?.settle(ack(7));
    void h.subs.resubscribe(h.socket);
    expect(h.sent[1]?.frame).toEqual({ action: 'subscribe', group: 'g', since: 7 });
  });

  it('delivers each message id once and keeps going when a handler throws', () => {
    const h = setupGroups();
    const seen: unknown[] = [];
    h.subs.add('g', () => {
      throw new Error('boom');
    });
    h.subs.add('g', (m) => seen.push(m.data));
    h.subs.deliver(msg('g', 'a', 1));
    h.subs.deliver(msg('g', 'a', 1));
    h.subs.deliver(msg('other', 'b', 1));
    expect(seen).toEqual(['a']);
    expect(h.errors.map((e) => e.code)).toEqual(['HANDLER_FAILED']);
  });

  it('drops a group the server refused, but keeps one whose subscribe timed out', async () => {
    const h = setupGroups();
    const refused = h.subs.add('refused', () => undefined);
    h.subs.add('slow', () => undefined);
    h.sent[0]?.settle(new TenantcastClientError('FORBIDDEN', 'no', 'refused'));
    h.sent[1]?.settle(new TenantcastClientError('TIMEOUT', 'late', 'slow'));
    await expect(refused.ready).rejects.toMatchObject({ code: 'FORBIDDEN' });
    void h.subs.resubscribe(h.socket);
    expect(h.sent.slice(2).map((s) => s.frame.group)).toEqual(['slow']);
  });

  it('tells the server when the last handler of a group leaves, and only then', () => {
    const h = setupGroups();
    const first = h.subs.add('g', () => undefined);
    const second = h.subs.add('g', () => undefined);
    first();
    expect(h.sent.map((s) => s.frame.action)).toEqual(['subscribe']);
    second();
    expect(h.sent.map((s) => s.frame.action)).toEqual(['subscribe', 'unsubscribe']);
  });

  it('passes a reset of a subscribed group to the app, and ignores one of another group', () => {
    const h = setupGroups();
    h.subs.add('g', () => undefined);
    h.subs.reset({ type: 'reset', group: 'g', reason: 'expired', seq: 5 });
    h.subs.reset({ type: 'reset', group: 'other', reason: 'expired', seq: 5 });
    expect(h.resets).toEqual([{ group: 'g', reason: 'expired', seq: 5 }]);
  });
});

describe('subscriptions', () => {
  it('subscribe once the server acks and deliver the group messages to the handler', async () => {
    const h = setup();
    const socket = await connect(h);
    const { seen, subscription } = collect(h, 'chat:general');
    expect(socket.lastOf('subscribe')).toEqual({ action: 'subscribe', group: 'chat:general', ref: expect.any(String) });
    socket.ackAll('subscribe');
    await expect(subscription.ready).resolves.toBeUndefined();
    socket.receive(message('chat:general', 1, 'hi'));
    socket.receive(message('chat:other', 1, 'not mine'));
    expect(seen.map((m) => m.data)).toEqual(['hi']);
  });

  it('made before connecting are sent once the socket opens', async () => {
    const h = setup();
    collect(h, 'chat:a');
    collect(h, 'chat:b');
    const socket = await connect(h);
    expect(socket.framesOf('subscribe').map((f) => f.group)).toEqual(['chat:a', 'chat:b']);
  });

  it('refused by the server reject ready with its code, surface an error and are not retried', async () => {
    const h = setup();
    const socket = await connect(h);
    const { subscription } = collect(h, 'admin:only');
    const frame = socket.lastOf('subscribe');
    socket.receive({ type: 'error', ref: frame.ref, code: 'FORBIDDEN', message: 'not allowed' });
    await expect(subscription.ready).rejects.toMatchObject({ code: 'FORBIDDEN', group: 'admin:only' });
    expect(h.errors).toEqual([expect.any(TenantcastClientError)]);
    socket.drop();
    const next = await reconnect(h, socket);
    expect(next.framesOf('subscribe')).toEqual([]);
  });

  it('resume after a reconnect from the last seq seen, and a replayed message reaches the handler once', async () => {
    const h = setup();
    const socket = await connect(h);
    const { seen } = collect(h, 'chat:general');
    socket.ackAll('subscribe');
    socket.receive(message('chat:general', 1));
    socket.receive(message('chat:general', 2));
    socket.drop();
    const next = await reconnect(h, socket);
    expect(next.lastOf('subscribe')).toMatchObject({ group: 'chat:general', since: 2 });
    next.ackAll('subscribe');
    // The server replays after `since`; a redelivered message (at-least-once) is dropped by id.
    for (const seq of [2, 3, 4, 3]) next.receive(message('chat:general', seq));
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });

  it('without any message seen resume from the seq the subscribe ack reported', async () => {
    const h = setup();
    const socket = await connect(h);
    collect(h, 'chat:quiet');
    socket.ackAll('subscribe', () => ({ seq: 41 }));
    socket.drop();
    const next = await reconnect(h, socket);
    expect(next.lastOf('subscribe')).toMatchObject({ since: 41 });
  });

  it('stop after the last handler unsubscribes, telling the server', async () => {
    const h = setup();
    const socket = await connect(h);
    const a = collect(h, 'chat:general');
    const b = collect(h, 'chat:general');
    expect(socket.framesOf('subscribe')).toHaveLength(1);
    a.subscription();
    expect(socket.framesOf('unsubscribe')).toEqual([]);
    b.subscription();
    expect(socket.lastOf('unsubscribe')).toMatchObject({ group: 'chat:general' });
    socket.receive(message('chat:general', 7));
    expect([...a.seen, ...b.seen]).toEqual([]);
  });

  it('keep delivering to the other handlers when one throws, and report the throw', async () => {
    const h = setup();
    const socket = await connect(h);
    h.client.subscribe('chat:general', () => {
      throw new Error('app bug');
    });
    const { seen } = collect(h, 'chat:general');
    socket.receive(message('chat:general', 1));
    expect(seen).toHaveLength(1);
    expect(h.errors.map((e) => e.code)).toEqual(['HANDLER_FAILED']);
  });
});
