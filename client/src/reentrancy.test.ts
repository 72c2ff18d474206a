/**
 * Listeners and handlers that call back into the client (found by a review, 2026-12-04): a `close()` or `connect()`
 * made from inside a `state`, `error` or message callback leaves nothing behind and starts from a clean session.
 */
import { describe, expect, it } from '@jest/globals';
import { collect, connect, FakeNetwork, fakeJwt, message, settle, setup } from './testing.ts';

describe('a listener that calls back into the client', () => {
  it('close() from a "connected" listener leaves no timer: no ping, no getToken, hours later', async () => {
    const exp = Math.floor(1_700_000_000_000 / 1000) + 3600;
    let issued = 0;
    const h = setup({ getToken: async () => fakeJwt(exp + issued++) });
    h.client.on('state', (state) => {
      if (state === 'connected') h.client.close();
    });
    const socket = await connect(h);
    expect(h.client.state).toBe('disconnected');
    expect(socket.closed).toBe(true);
    expect(h.clock.pending).toBe(0);
    const before = issued;
    await h.clock.advance(3 * 3600_000);
    expect({ pings: socket.framesOf('ping').length, getTokenCalls: issued - before }).toEqual({
      pings: 0,
      getTokenCalls: 0,
    });
  });

  it('close() from an "error" listener, told of a subscribe answered RATE_LIMITED, leaves no retry armed', async () => {
    const h = setup();
    const socket = await connect(h);
    h.client.on('error', (e) => {
      if (e.code === 'RATE_LIMITED') h.client.close();
    });
    collect(h, 'g');
    const sub = socket.lastOf('subscribe');
    socket.receive({ type: 'error', ref: sub.ref, code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 1000 });
    await settle();
    expect(h.client.state).toBe('disconnected');
    expect(h.clock.pending).toBe(0);
  });

  it('connect() from a "disconnected" listener starts clean: it connects and follows the network again', async () => {
    const network = new FakeNetwork();
    const h = setup({ network });
    await connect(h);
    let restarted = false;
    h.client.on('state', (state) => {
      if (state === 'disconnected' && !restarted) {
        restarted = true;
        void h.client.connect();
      }
    });
    h.client.close();
    await settle();
    const socket = h.server.last();
    socket.accept();
    await settle();
    expect(h.client.state).toBe('connected');
    network.set(false);
    expect({ state: h.client.state, closed: socket.closed }).toEqual({ state: 'reconnecting', closed: true });
  });

  it('close() from a message handler delivers nothing more of the batch it was in', async () => {
    const h = setup();
    const socket = await connect(h);
    const seen: number[] = [];
    h.client.subscribe('g', (m) => {
      seen.push(m.seq as number);
      h.client.close();
    });
    socket.ackAll('subscribe');
    socket.receive({ type: 'batch', messages: [message('g', 1), message('g', 2), message('g', 3)] });
    expect(seen).toEqual([1]);
  });
});
