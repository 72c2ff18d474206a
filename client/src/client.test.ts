import { describe, expect, it } from '@jest/globals';
import { collect, connect, FakeNetwork, message, reconnect, settle, setup } from './testing.ts';

describe('the connection state', () => {
  it('goes from disconnected to connecting to connected, and offers the token as a subprotocol', async () => {
    const h = setup();
    expect(h.client.state).toBe('disconnected');
    const socket = await connect(h);
    expect(h.states).toEqual(['connecting', 'connected']);
    expect(socket.url).toBe('wss://example.test/ws');
    expect(socket.protocols).toEqual(['tenantcast.v1', 'token-1']);
  });

  it('becomes reconnecting when the connection drops, then connected again with a fresh token', async () => {
    const h = setup();
    const first = await connect(h);
    first.drop();
    expect(h.client.state).toBe('reconnecting');
    const second = await reconnect(h, first);
    expect(h.states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect(second.token).toBe('token-2');
  });

  it('is disconnected after close, closes the socket, and never reconnects on its own', async () => {
    const h = setup();
    const socket = await connect(h);
    h.client.close();
    expect(h.client.state).toBe('disconnected');
    expect(socket.closedByClient).toEqual({ code: 1000, reason: 'client closing' });
    await h.clock.advance(600_000);
    expect(h.server.sockets).toHaveLength(1);
    expect(h.clock.pending).toBe(0);
  });

  it('can connect again after close', async () => {
    const h = setup();
    await connect(h);
    h.client.close();
    await connect(h);
    expect(h.client.state).toBe('connected');
    expect(h.server.sockets).toHaveLength(2);
  });

  it('gives up on a socket that neither opens nor fails, and tries another', async () => {
    const h = setup({ connectTimeoutMs: 5000 });
    void h.client.connect();
    await settle();
    const stuck = h.server.last();
    await h.clock.advance(5000);
    expect(stuck.closed).toBe(true);
    expect(h.client.state).toBe('reconnecting');
    await h.clock.advance(1000);
    expect(h.server.sockets).toHaveLength(2);
  });

  it('retries when getToken fails, reporting it as UNAUTHORIZED', async () => {
    const h = setup();
    h.getToken.mockRejectedValueOnce(new Error('login expired'));
    void h.client.connect();
    await settle();
    expect(h.server.sockets).toHaveLength(0);
    expect(h.errors.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
    await h.clock.advance(1000);
    expect(h.server.sockets).toHaveLength(1);
  });
});

describe('rollover before the connection cap', () => {
  it('opens the new connection, resubscribes it, and only then closes the old one, with no state change', async () => {
    const h = setup({ rolloverAfterMs: 100_000 });
    const old = await connect(h);
    const { seen } = collect(h, 'chat:general');
    old.ackAll('subscribe');
    old.receive(message('chat:general', 1));
    await h.clock.advance(100_000);
    const next = h.server.last();
    expect(next).not.toBe(old);
    expect(next.token).toBe('token-2');
    next.accept();
    expect(next.lastOf('subscribe')).toMatchObject({ group: 'chat:general', since: 1 });
    // Until the new connection is subscribed, the old one keeps delivering; both deliver the overlap.
    old.receive(message('chat:general', 2));
    next.receive(message('chat:general', 2));
    expect(old.closed).toBe(false);
    next.ackAll('subscribe');
    await settle();
    expect(old.closed).toBe(true);
    next.receive(message('chat:general', 3));
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(h.states).toEqual(['connecting', 'connected']);
  });

  it('sends new publishes on the new connection and lets the old one finish its outstanding acks', async () => {
    const h = setup({ rolloverAfterMs: 100_000 });
    const old = await connect(h);
    await h.clock.advance(99_000);
    const early = h.client.publish('chat:general', 'early');
    await h.clock.advance(1000);
    const next = h.server.last();
    next.accept();
    await settle();
    expect(old.closed).toBe(false);
    const late = h.client.publish('chat:general', 'late');
    expect(next.framesOf('publish').map((f) => f.data)).toEqual(['late']);
    old.ackAll('publish', () => ({ id: 'e' }));
    next.ackAll('publish', () => ({ id: 'l' }));
    await expect(Promise.all([early, late])).resolves.toEqual([{ id: 'e' }, { id: 'l' }]);
    expect(old.closed).toBe(true);
  });

  it('switches to the new connection at once if the old one is cut before the new one is subscribed', async () => {
    const h = setup({ rolloverAfterMs: 100_000 });
    const old = await connect(h);
    collect(h, 'chat:general');
    await h.clock.advance(100_000);
    const next = h.server.last();
    next.accept();
    old.drop(1001);
    expect(h.client.state).toBe('connected');
    h.client.publish('chat:general', 'x').catch(() => undefined);
    expect(next.framesOf('publish')).toHaveLength(1);
  });

  it('tries again later when the new connection fails, keeping the old one', async () => {
    const h = setup({ rolloverAfterMs: 100_000 });
    const old = await connect(h);
    await h.clock.advance(100_000);
    h.server.last().drop();
    expect(old.closed).toBe(false);
    await h.clock.advance(1000);
    expect(h.server.sockets).toHaveLength(3);
  });
});

describe('the network status', () => {
  it('closes the connection when offline, waits, and reconnects at once when online', async () => {
    const network = new FakeNetwork();
    const h = setup({ network });
    const socket = await connect(h);
    network.set(false);
    expect(socket.closed).toBe(true);
    expect(h.client.state).toBe('reconnecting');
    await h.clock.advance(600_000);
    expect(h.server.sockets).toHaveLength(1);
    network.set(true);
    await settle();
    expect(h.server.sockets).toHaveLength(2);
  });

  it('does not try to connect while offline', async () => {
    const network = new FakeNetwork();
    network.online = false;
    const h = setup({ network });
    void h.client.connect();
    await settle();
    expect(h.client.state).toBe('reconnecting');
    expect(h.server.sockets).toHaveLength(0);
    network.set(true);
    await settle();
    expect(h.server.sockets).toHaveLength(1);
  });
});
