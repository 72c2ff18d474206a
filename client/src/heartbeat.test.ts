import { describe, expect, it } from '@jest/globals';
import { TenantcastClientError } from './errors.ts';
import { createHeartbeat } from './heartbeat.ts';
import { connect, FakeClock, setup } from './testing.ts';
import type { Transport } from './transport.ts';

function setupBeat() {
  const clock = new FakeClock();
  const t = { role: 'primary' } as Transport;
  const timers = new Map<Transport, unknown>();
  const pings: ((answer: unknown) => void)[] = [];
  const dead: Transport[] = [];
  const beat = createHeartbeat(
    { heartbeatMs: 1000, pongTimeoutMs: 100 },
    {
      arm: (conn, _name, ms, callback) => {
        clock.clearTimeout(timers.get(conn));
        timers.set(conn, clock.setTimeout(callback, ms));
      },
      send: (_conn, _frame, _timeoutMs, answered) => {
        pings.push(answered as (answer: unknown) => void);
      },
    },
    (conn) => dead.push(conn),
  );
  return { clock, t, beat, pings, dead };
}

describe('createHeartbeat', () => {
  it('pings once nothing has come from the server for heartbeatMs', async () => {
    const h = setupBeat();
    h.beat(h.t);
    await h.clock.advance(999);
    expect(h.pings).toHaveLength(0);
    await h.clock.advance(1);
    expect(h.pings).toHaveLength(1);
  });

  it('is put off by a frame received: it pings a whole heartbeatMs after the look that saw it', async () => {
    const h = setupBeat();
    h.beat(h.t);
    await h.clock.advance(600);
    h.t.heard = true;
    await h.clock.advance(400);
    expect(h.pings).toHaveLength(0);
    await h.clock.advance(999);
    expect(h.pings).toHaveLength(0);
    await h.clock.advance(1);
    expect(h.pings).toHaveLength(1);
  });

  it('declares the connection dead only when a ping times out', async () => {
    const h = setupBeat();
    h.beat(h.t);
    await h.clock.advance(1000);
    h.pings[0]?.({ type: 'pong' });
    h.pings[0]?.(new TenantcastClientError('INTERNAL', 'refused'));
    expect(h.dead).toHaveLength(0);
    h.pings[0]?.(new TenantcastClientError('TIMEOUT', 'no pong'));
    expect(h.dead).toEqual([h.t]);
  });

  it('stops once the connection is no longer the primary', async () => {
    const h = setupBeat();
    h.beat(h.t);
    h.t.role = 'draining';
    await h.clock.advance(5000);
    expect(h.pings).toHaveLength(0);
  });
});

describe('the heartbeat', () => {
  it('pings when a whole heartbeatMs passed without a frame from the server, looking every heartbeatMs', async () => {
    const h = setup({ heartbeatMs: 60_000 });
    const socket = await connect(h);
    await h.clock.advance(40_000);
    socket.receive({ type: 'pong' });
    // The look at 60 s saw that frame: the next, at 120 s, pings.
    await h.clock.advance(79_999);
    expect(socket.framesOf('ping')).toEqual([]);
    await h.clock.advance(1);
    expect(socket.framesOf('ping')).toHaveLength(1);
    socket.ackAll('ping');
    await h.clock.advance(60_000);
    expect(socket.framesOf('ping')).toHaveLength(1);
    await h.clock.advance(60_000);
    expect(socket.framesOf('ping')).toHaveLength(2);
  });

  it('is not postponed by frames sent without an answer: a socket whose sends go nowhere is found dead', async () => {
    const h = setup({ heartbeatMs: 60_000, pongTimeoutMs: 5000 });
    const socket = await connect(h);
    for (let i = 0; i < 5; i++) {
      h.client.publish('chat:general', i).catch(() => undefined);
      await h.clock.advance(12_000);
    }
    expect(socket.framesOf('ping')).toHaveLength(1);
    await h.clock.advance(5000);
    expect(socket.closed).toBe(true);
  });

  it('treats a ping without a pong as a dead connection and reconnects', async () => {
    const h = setup({ heartbeatMs: 60_000, pongTimeoutMs: 5000 });
    const socket = await connect(h);
    await h.clock.advance(60_000);
    expect(socket.framesOf('ping')).toHaveLength(1);
    await h.clock.advance(5000);
    expect(socket.closed).toBe(true);
    expect(h.client.state).toBe('reconnecting');
  });

  it('counts elapsed time, not the wall clock: a clock set back an hour, or frozen, still lets it ping in time', async () => {
    // Until 2026-12-04 it compared Date.now()s: set back, it sent no ping for the hour, and API Gateway closed the
    // idle connection after 10 minutes; frozen, it never pinged.
    for (const step of [(c: SteppedClock) => (c.offset = -3600_000), (c: SteppedClock) => (c.frozenAt = c.now())]) {
      const clock = new SteppedClock();
      const h = setup({ clock });
      const socket = await connect(h);
      await clock.advance(60_000);
      step(clock);
      await clock.advance(540_000);
      expect(socket.framesOf('ping').length).toBeGreaterThan(0);
    }
  });
});

/** A wall clock that can be stepped or frozen while timers keep firing by elapsed time, as the platform's do. */
class SteppedClock extends FakeClock {
  offset = 0;
  frozenAt: number | undefined;
  override now(): number {
    return this.frozenAt ?? super.now() + this.offset;
  }
}
