import { describe, expect, it } from '@jest/globals';
import { createKeepalive } from './keepalive.ts';
import { settingsFor } from './options.ts';
import { FakeClock, FakeSocket, fakeJwt, fakeWebSocket } from './testing.ts';
import { createRequests, createTransport, type Transport } from './transport.ts';

function setupKeepalive() {
  const clock = new FakeClock();
  const s = settingsFor({
    url: 'wss://x',
    getToken: () => fakeJwt(clock.now() / 1000 + 3600),
    WebSocket: fakeWebSocket().WebSocket,
    clock,
    heartbeatMs: 1000,
    pongTimeoutMs: 100,
    rolloverAfterMs: 50_000,
    refreshBeforeMs: 60_000,
  });
  const ended: Transport[] = [];
  let rollovers = 0;
  const requests = createRequests(
    clock,
    () => undefined,
    () => undefined,
  );
  const activate = createKeepalive(
    s,
    requests,
    (t) => ended.push(t),
    () => rollovers++,
    () => undefined,
  );
  const ws = new FakeSocket('wss://x', undefined);
  ws.readyState = 1;
  const t = {
    ...createTransport('primary'),
    ws,
    open: true,
    expiresAt: clock.now() + 120_000,
    openedAt: clock.now(),
    heardAt: clock.now(),
  };
  return { clock, requests, activate, t, ws, ended, rollovers: () => rollovers };
}

describe('createKeepalive', () => {
  it("arms the primary's heartbeat, token refresh and rollover, each on its own timer of the transport", () => {
    const h = setupKeepalive();
    h.activate(h.t);
    expect([...h.t.timers.keys()].sort()).toEqual(['heartbeat', 'refresh', 'rollover']);
    h.requests.disarm(h.t);
    expect(h.clock.pending).toBe(0);
  });

  it('ends the primary when a ping goes unanswered, and rolls over at rolloverAfterMs', async () => {
    const h = setupKeepalive();
    h.activate(h.t);
    await h.clock.advance(1100);
    expect(h.ws.framesOf('ping')).toHaveLength(1);
    expect(h.ended).toEqual([h.t]);
    await h.clock.advance(50_000 - 1100);
    expect(h.rollovers()).toBe(1);
  });
});
