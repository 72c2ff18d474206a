import { describe, expect, it, jest } from '@jest/globals';
import { TenantcastClientError } from './errors.ts';
import { createOutbox } from './outbox.ts';
import { connect, reconnect, setup } from './testing.ts';

function waiting(outbox: ReturnType<typeof createOutbox>, group: string) {
  const resolve = jest.fn();
  const reject = jest.fn<(error: TenantcastClientError) => void>();
  const queued = outbox.add(group, { n: group }, resolve, reject);
  return { queued, resolve, reject };
}

describe('the outbox', () => {
  it('hands over waiting publishes oldest first, and is empty afterwards', () => {
    const outbox = createOutbox(10);
    waiting(outbox, 'a');
    waiting(outbox, 'b');
    expect(outbox.take().map((item) => item.group)).toEqual(['a', 'b']);
    expect(outbox.take()).toEqual([]);
  });

  it('refuses a publish beyond its bound with QUEUE_FULL, keeping the ones already waiting', () => {
    const outbox = createOutbox(1);
    expect(waiting(outbox, 'a').queued).toBe(true);
    const refused = waiting(outbox, 'b');
    expect(refused.queued).toBe(false);
    expect(refused.reject.mock.calls[0]?.[0]).toMatchObject({ code: 'QUEUE_FULL', group: 'b' });
    expect(outbox.take().map((item) => item.group)).toEqual(['a']);
  });

  it('puts publishes that were in flight back before newer ones, in their original order', () => {
    const outbox = createOutbox(10);
    waiting(outbox, 'a');
    waiting(outbox, 'b');
    const inFlight = outbox.take();
    waiting(outbox, 'c');
    outbox.requeue([...inFlight].reverse());
    expect(outbox.take().map((item) => item.group)).toEqual(['a', 'b', 'c']);
  });

  it('rejects every waiting publish with CLOSED when closed', () => {
    const outbox = createOutbox(10);
    const a = waiting(outbox, 'a');
    outbox.close();
    expect(a.reject.mock.calls[0]?.[0]).toMatchObject({ code: 'CLOSED', group: 'a' });
    expect(a.resolve).not.toHaveBeenCalled();
    expect(outbox.take()).toEqual([]);
  });
});

describe('publish', () => {
  it('resolves with the message id when the server acks', async () => {
    const h = setup();
    const socket = await connect(h);
    const published = h.client.publish('chat:general', { text: 'hi' });
    const frame = socket.lastOf('publish');
    expect(frame).toMatchObject({ group: 'chat:general', data: { text: 'hi' } });
    socket.receive({ type: 'ack', ref: frame.ref, id: 'msg-1' });
    await expect(published).resolves.toEqual({ id: 'msg-1' });
  });

  it("rejects with a typed error carrying the server's code", async () => {
    const h = setup();
    const socket = await connect(h);
    const published = h.client.publish('announcements', 1);
    socket.receive({ type: 'error', ref: socket.lastOf('publish').ref, code: 'FORBIDDEN', message: 'no' });
    const error = await published.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TenantcastClientError);
    expect(error).toMatchObject({ code: 'FORBIDDEN', message: 'no', group: 'announcements' });
  });

  it('rejects with TIMEOUT when no answer comes', async () => {
    const h = setup({ requestTimeoutMs: 2000 });
    await connect(h);
    const outcome = expect(h.client.publish('chat:general', 1)).rejects.toMatchObject({ code: 'TIMEOUT' });
    await h.clock.advance(2000);
    await outcome;
  });

  it('made while disconnected are queued and sent in order once connected', async () => {
    const h = setup();
    const first = await connect(h);
    first.drop();
    const results = [h.client.publish('chat:general', 'a'), h.client.publish('chat:general', 'b')];
    const next = await reconnect(h, first);
    // One at a time: the next goes once the previous is answered (API Gateway runs a connection's frames at once).
    expect(next.framesOf('publish').map((f) => f.data)).toEqual(['a']);
    next.ackAll('publish', (f) => ({ id: `id-${String(f.data)}` }));
    expect(next.framesOf('publish').map((f) => f.data)).toEqual(['a', 'b']);
    next.ackAll('publish', (f) => ({ id: `id-${String(f.data)}` }));
    await expect(Promise.all(results)).resolves.toEqual([{ id: 'id-a' }, { id: 'id-b' }]);
  });

  it('made in one tick are sent one at a time, each once the previous is answered, so they are sequenced in order', async () => {
    const h = setup();
    const socket = await connect(h);
    const results = ['a', 'b', 'c'].map((data) => h.client.publish('chat:general', data));
    const sentBefore = (answers: number) => {
      for (let i = 0; i < answers; i++) socket.ackAll('publish', (f) => ({ id: String(f.data) }));
      return socket.framesOf('publish').map((f) => f.data);
    };
    expect(sentBefore(0)).toEqual(['a']);
    expect(sentBefore(1)).toEqual(['a', 'b']);
    expect(sentBefore(2)).toEqual(['a', 'b', 'c']);
    await expect(Promise.all(results)).resolves.toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
  });

  it('answered with an error still let the next one go', async () => {
    const h = setup();
    const socket = await connect(h);
    const first = h.client.publish('chat:general', 'refused');
    const second = h.client.publish('chat:general', 'next');
    socket.receive({ type: 'error', ref: socket.lastOf('publish').ref, code: 'FORBIDDEN', message: 'no' });
    await expect(first).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(socket.lastOf('publish')).toMatchObject({ data: 'next' });
    socket.ackAll('publish', () => ({ id: 'n' }));
    await expect(second).resolves.toEqual({ id: 'n' });
  });

  it('in flight when the connection drops are sent again on the next connection, before newer ones', async () => {
    const h = setup();
    const first = await connect(h);
    const lost = h.client.publish('chat:general', 'in flight');
    first.drop();
    const later = h.client.publish('chat:general', 'later');
    const next = await reconnect(h, first);
    next.ackAll('publish', () => ({ id: 'x' }));
    next.ackAll('publish', () => ({ id: 'x' }));
    expect(next.framesOf('publish').map((f) => f.data)).toEqual(['in flight', 'later']);
    await expect(Promise.all([lost, later])).resolves.toHaveLength(2);
  });

  it('over 32 KB reject with TOO_LARGE and leave the connection alone, instead of being sent again on every one', async () => {
    const h = setup();
    const socket = await connect(h);
    await expect(h.client.publish('chat:general', { text: 'x'.repeat(40_000) })).rejects.toMatchObject({
      code: 'TOO_LARGE',
      group: 'chat:general',
    });
    expect(socket.framesOf('publish')).toEqual([]);
    expect(socket.closed).toBe(false);
    const next = h.client.publish('chat:general', 'small');
    socket.ackAll('publish', () => ({ id: 'p1' }));
    await expect(next).resolves.toEqual({ id: 'p1' });
    expect(h.server.sockets).toHaveLength(1);
  });

  it.each([
    [
      'a cycle',
      () => {
        const data: Record<string, unknown> = {};
        data.self = data;
        return data;
      },
    ],
    ['a BigInt', () => ({ n: 1n })],
  ])('with data JSON cannot encode (%s) reject with BAD_REQUEST and leave the connection alone', async (_, data) => {
    const h = setup();
    const socket = await connect(h);
    await expect(h.client.publish('chat:general', data())).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      group: 'chat:general',
    });
    expect(socket.framesOf('publish')).toEqual([]);
    expect(socket.closed).toBe(false);
    const next = h.client.publish('chat:general', 'fine');
    socket.ackAll('publish', () => ({ id: 'p1' }));
    await expect(next).resolves.toEqual({ id: 'p1' });
    expect(h.server.sockets).toHaveLength(1);
  });

  it('queues only up to its bound and refuses more with QUEUE_FULL', async () => {
    const h = setup({ maxQueuedPublishes: 2 });
    const queued = Promise.allSettled([h.client.publish('chat:general', 1), h.client.publish('chat:general', 2)]);
    await expect(h.client.publish('chat:general', 3)).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    h.client.close();
    const socket = await connect(h);
    expect(socket.framesOf('publish')).toEqual([]);
    await expect(queued).resolves.toEqual([
      { status: 'rejected', reason: expect.objectContaining({ code: 'CLOSED' }) },
      { status: 'rejected', reason: expect.objectContaining({ code: 'CLOSED' }) },
    ]);
  });

  it('queued before connect are sent by the first connection', async () => {
    const h = setup();
    const published = h.client.publish('chat:general', 'early');
    const socket = await connect(h);
    socket.ackAll('publish', () => ({ id: 'e' }));
    await expect(published).resolves.toEqual({ id: 'e' });
  });
});
