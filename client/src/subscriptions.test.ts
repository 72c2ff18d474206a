import { describe, expect, it } from '@jest/globals';
import { TenantcastClientError } from './errors.ts';
import { createSubscriptions, type SubscriptionFrame } from './subscriptions.ts';
import { collect, connect, FakeClock, message, reconnect, setup } from './testing.ts';
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
  const clock = new FakeClock();
  /** The delays of the retry timers armed, by group (one socket here). */
  const timers = new Map<object | string, number>();
  const subs = createSubscriptions<Sock>(
    10,
    new Set([socket]),
    (_t, frame, settle) => sent.push({ frame, settle }),
    (error) => errors.push(error),
    (event) => resets.push(event),
    (_t, name, ms, callback) => {
      timers.set(name, ms);
      clock.setTimeout(callback, ms);
    },
    (attempt) => 100 * 2 ** attempt,
  );
  return { socket, sent, errors, resets, subs, clock, timers };
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

  it('drops a group the server refused, but keeps (and retries) one whose subscribe timed out', async () => {
    const h = setupGroups();
    const refused = h.subs.add('refused', () => undefined);
    h.subs.add('slow', () => undefined);
    h.sent[0]?.settle(new TenantcastClientError('FORBIDDEN', 'no', 'refused'));
    h.sent[1]?.settle(new TenantcastClientError('TIMEOUT', 'late', 'slow'));
    await expect(refused.ready).rejects.toMatchObject({ code: 'FORBIDDEN' });
    void h.subs.resubscribe(h.socket);
    expect(h.sent.slice(2).map((s) => s.frame.group)).toEqual(['slow']);
  });

  it('sends a subscribe again after a transient error, waiting its backoff plus retryAfterMs, until it is answered', async () => {
    const h = setupGroups();
    const g = h.subs.add('g', () => undefined);
    h.sent[0]?.settle(new TenantcastClientError('RATE_LIMITED', 'slow down', 'g', 250));
    await h.clock.advance(349); // the first attempt's backoff (100 ms here) and the 250 ms the server asked for
    expect(h.sent).toHaveLength(1);
    await h.clock.advance(1);
    h.sent[1]?.settle(new TenantcastClientError('INTERNAL', 'internal error', 'g'));
    expect(h.timers.get([...h.timers.keys()][0] as object)).toBe(200); // the second attempt's backoff
    await h.clock.advance(200);
    h.sent[2]?.settle(ack());
    await expect(g.ready).resolves.toBeUndefined();
    expect(h.sent.map((s) => s.frame.action)).toEqual(['subscribe', 'subscribe', 'subscribe']);
    expect(h.errors.map((e) => e.code)).toEqual(['RATE_LIMITED', 'INTERNAL']);
  });

  it('does not send a subscribe again for a group unsubscribed meanwhile, or on a socket no longer usable', async () => {
    const h = setupGroups();
    const unsubscribe = h.subs.add('g', () => undefined);
    h.subs.add('h', () => undefined);
    h.sent[0]?.settle(new TenantcastClientError('TIMEOUT', 'late', 'g'));
    h.sent[1]?.settle(new TenantcastClientError('TIMEOUT', 'late', 'h'));
    unsubscribe();
    h.socket.role = 'draining';
    await h.clock.advance(1000);
    expect(h.sent.map((s) => `${s.frame.action} ${s.frame.group}`)).toEqual([
      'subscribe g',
      'subscribe h',
      'unsubscribe g',
    ]);
  });

  it('resolves ready of a subscription let go before its answer, whatever the answer then is', async () => {
    for (const answer of [
      new TenantcastClientError('FORBIDDEN', 'no', 'g'),
      new TenantcastClientError('INTERNAL', 'boom', 'g'),
      undefined,
    ]) {
      const h = setupGroups();
      const leave = h.subs.add('g', () => undefined);
      leave();
      await expect(leave.ready).resolves.toBeUndefined();
      if (answer !== undefined) h.sent[0]?.settle(answer);
      // Not retried once let go.
      await h.clock.advance(60_000);
      expect(h.sent.filter((s) => s.frame.action === 'subscribe')).toHaveLength(1);
    }
  });

  it('resolves ready of a subscription let go while it waits to be sent again, and does not send it again', async () => {
    const h = setupGroups();
    const leave = h.subs.add('g', () => undefined);
    const failure = new TenantcastClientError('RATE_LIMITED', 'slow down', 'g');
    h.sent[0]?.settle(failure);
    leave();
    await expect(leave.ready).resolves.toBeUndefined();
    await h.clock.advance(60_000);
    expect(h.sent.map((s) => `${s.frame.action} ${s.frame.group}`)).toEqual(['subscribe g', 'unsubscribe g']);
  });

  it('says an unsubscribe again after a transient failure, with backoff, until the server takes it', async () => {
    const h = setupGroups();
    const leave = h.subs.add('g', () => undefined);
    h.sent[0]?.settle(ack(1));
    leave();
    h.sent[1]?.settle(new TenantcastClientError('RATE_LIMITED', 'slow down', 'g', 500));
    expect(h.timers.get('#g')).toBe(100 + 500);
    await h.clock.advance(600);
    expect(h.sent.map((s) => `${s.frame.action} ${s.frame.group}`)).toEqual([
      'subscribe g',
      'unsubscribe g',
      'unsubscribe g',
    ]);
    h.sent[2]?.settle(ack());
    await h.clock.advance(60_000);
    expect(h.sent).toHaveLength(3);
  });

  it('does not say an unsubscribe again on a socket that is draining by then', async () => {
    const h = setupGroups();
    const leave = h.subs.add('g', () => undefined);
    h.sent[0]?.settle(ack(1));
    leave();
    h.socket.role = 'draining';
    h.sent[1]?.settle(new TenantcastClientError('RATE_LIMITED', 'slow down', 'g'));
    await h.clock.advance(60_000);
    expect(h.sent).toHaveLength(2);
  });

  it('does not say an unsubscribe again once the group is subscribed to again', async () => {
    const h = setupGroups();
    const leave = h.subs.add('g', () => undefined);
    h.sent[0]?.settle(ack(1));
    leave();
    h.sent[1]?.settle(new TenantcastClientError('TIMEOUT', 'no answer', 'g'));
    h.subs.add('g', () => undefined);
    await h.clock.advance(60_000);
    expect(h.sent.map((s) => s.frame.action)).toEqual(['subscribe', 'unsubscribe', 'subscribe']);
  });

  it('refuses at once, without retrying, a subscribe the client itself found too large to send', async () => {
    const h = setupGroups();
    const sub = h.subs.add('g', () => undefined);
    const tooLarge = new TenantcastClientError('TOO_LARGE', 'a subscribe frame over 32 KB', 'g');
    h.sent[0]?.settle(tooLarge);
    await expect(sub.ready).rejects.toBe(tooLarge);
    await h.clock.advance(60_000);
    expect(h.sent).toHaveLength(1);
  });

  it('resolves ready of a subscription let go before any socket could say it', async () => {
    const h = setupGroups();
    h.socket.open = false;
    const leave = h.subs.add('g', () => undefined);
    leave();
    await expect(leave.ready).resolves.toBeUndefined();
    expect(h.sent).toEqual([]);
  });

  it('tells the server when the last handler of a group leaves, and only then', () => {
    const h = setupGroups();
    const first = h.subs.add('g', () => undefined);
    const second = h.subs.add('g', () => undefined);
    h.sent[0]?.settle(ack(3));
    first();
    expect(h.sent.map((s) => s.frame.action)).toEqual(['subscribe']);
    second();
    expect(h.sent.map((s) => s.frame.action)).toEqual(['subscribe', 'unsubscribe']);
  });

  it("says a group's unsubscribe again once the subscribe it overtook is answered, unless the group was subscribed again", async () => {
    const h = setupGroups();
    const sent = () => h.sent.map((s) => `${s.frame.action} ${s.frame.group}`);
    const leave = h.subs.add('g', () => undefined);
    h.subs.add('other', () => undefined);
    leave();
    // At once (a later subscribe of another group must find the place free), and again after the answer: the two
    // frames may have reached the server in the same millisecond, which counts as subscribe last.
    expect(sent()).toEqual(['subscribe g', 'subscribe other', 'unsubscribe g']);
    h.sent[0]?.settle(ack(3));
    expect(sent().slice(3)).toEqual(['unsubscribe g']);
    await expect(leave.ready).resolves.toBeUndefined();
    // Left and joined again at once (a component mounted twice): the first answer finds the group there again.
    const again = h.subs.add('g', () => undefined);
    again();
    h.subs.add('g', () => undefined);
    expect(sent().slice(4)).toEqual(['subscribe g', 'unsubscribe g', 'subscribe g']);
    h.sent[4]?.settle(ack(4));
    h.sent[6]?.settle(ack(5));
    expect(sent()).toHaveLength(7);
    expect(h.errors).toEqual([]);
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
    socket.ackAll('subscribe', () => ({ seq: 6 }));
    a.subscription();
    expect(socket.framesOf('unsubscribe')).toEqual([]);
    b.subscription();
    expect(socket.lastOf('unsubscribe')).toMatchObject({ group: 'chat:general' });
    socket.receive(message('chat:general', 7));
    expect([...a.seen, ...b.seen]).toEqual([]);
  });

  it('let go while the subscribe is unanswered settle ready even when the socket then drops, and are not sent again', async () => {
    for (const when of ['in flight', 'waiting to be sent again'] as const) {
      const h = setup();
      const socket = await connect(h);
      const subscription = h.client.subscribe('chat:general', () => undefined);
      let settled = false;
      subscription.ready.then(
        () => (settled = true),
        () => (settled = true),
      );
      if (when === 'waiting to be sent again') {
        socket.receive({ type: 'error', ref: socket.lastOf('subscribe').ref, code: 'RATE_LIMITED', message: 'slow' });
      }
      subscription();
      socket.drop();
      const next = await reconnect(h, socket);
      await h.clock.advance(60_000);
      expect({ when, settled, subscribes: next.framesOf('subscribe').length }).toEqual({
        when,
        settled: true,
        subscribes: 0,
      });
    }
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

  it('answered RATE_LIMITED on a reconnect with more groups than the frame burst are retried and delivered', async () => {
    const h = setup();
    const seen = Array.from({ length: 25 }, (_, i) => collect(h, `g${i}`).seen);
    const first = await connect(h);
    first.ackAll('subscribe', () => ({ seq: 10 }));
    first.drop(1001);
    const second = await reconnect(h, first);
    // The server takes a burst of 20 frames, then answers RATE_LIMITED with retryAfterMs.
    for (const [i, f] of second.framesOf('subscribe').entries()) {
      second.answered.add(f.ref);
      second.receive(
        i < 20
          ? { type: 'ack', ref: f.ref }
          : { type: 'error', ref: f.ref, code: 'RATE_LIMITED', message: 'too many frames', retryAfterMs: 100 },
      );
    }
    await h.clock.advance(5_000);
    expect(
      second
        .framesOf('subscribe')
        .slice(25)
        .map((f) => f.group),
    ).toEqual(['g20', 'g21', 'g22', 'g23', 'g24']);
    second.ackAll('subscribe');
    second.receive(message('g24', 11));
    second.drop(1006);
    const third = await reconnect(h, second);
    expect(third.framesOf('subscribe').map((f) => f.group)).toContain('g24');
    third.ackAll('subscribe');
    third.receive(message('g24', 12));
    expect(seen[24]?.map((m) => m.seq)).toEqual([11, 12]);
  });

  it('answered INTERNAL are kept, not dropped: the app stays subscribed', async () => {
    const h = setup();
    const { seen } = collect(h, 'chat');
    const first = await connect(h);
    first.ackAll('subscribe', () => ({ seq: 1 }));
    first.receive(message('chat', 2));
    first.drop(1006);
    const second = await reconnect(h, first);
    const f = second.lastOf('subscribe');
    second.answered.add(f.ref);
    second.receive({ type: 'error', ref: f.ref, code: 'INTERNAL', message: 'internal error' });
    second.drop(1006);
    const third = await reconnect(h, second);
    expect(third.framesOf('subscribe').map((x) => x.group)).toEqual(['chat']);
    third.ackAll('subscribe');
    third.receive(message('chat', 3));
    expect(seen.map((m) => m.seq)).toEqual([2, 3]);
  });

  it('without an answer (API Gateway answers a failed route with a frame of its own) are sent again on the socket', async () => {
    const h = setup();
    collect(h, 'chat');
    const first = await connect(h);
    first.ackAll('subscribe', () => ({ seq: 5 }));
    first.drop(1006);
    const second = await reconnect(h, first);
    second.receive({ message: 'Internal server error', connectionId: 'c', requestId: 'r' });
    await h.clock.advance(15_000 + 1_000); // the request timeout, then the backoff
    expect(h.client.state).toBe('connected');
    expect(second.framesOf('subscribe').map((f) => f.since)).toEqual([5, 5]);
    expect(h.errors.map((e) => e.code)).toEqual(['INTERNAL', 'TIMEOUT']);
  });

  it('drop a repeat older than the id window by its seq, in a batch too', async () => {
    const h = setup({ dedupeWindow: 10 });
    const { seen } = collect(h, 'chat');
    const socket = await connect(h);
    socket.ackAll('subscribe', () => ({ seq: 0 }));
    for (let seq = 1; seq <= 11; seq++) socket.receive(message('chat', seq));
    socket.receive(message('chat', 1));
    socket.receive({ type: 'batch', messages: [message('chat', 2), message('chat', 12)] });
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('resume from a valid seq only: a message or reset carrying another one does not become `since`', async () => {
    const h = setup();
    collect(h, 'chat');
    const first = await connect(h);
    first.ackAll('subscribe', () => ({ seq: 4 }));
    first.receive(message('chat', 4.5));
    first.receive({ type: 'reset', group: 'chat', reason: 'HISTORY_EXPIRED', seq: '57' });
    first.drop(1006);
    const second = await reconnect(h, first);
    expect(second.lastOf('subscribe').since).toBe(4);
  });
});
