import { describe, expect, it, jest } from '@jest/globals';
import type { ClientEvents } from './client.ts';
import { settingsFor } from './options.ts';
import { createOutbox } from './outbox.ts';
import { createReconnect } from './reconnect.ts';
import { createSession, type Session } from './session.ts';
import type { Subscriptions } from './subscriptions.ts';
import { connect, FakeClock, FakeNetwork, fakeWebSocket, reconnect, settle, setup } from './testing.ts';
import { createRequests, type Transport } from './transport.ts';
import type { Network } from './types.ts';

/** A session wired to fakes: real requests, outbox and reconnect units, no groups, events recorded. */
function setupSession(
  overrides: { network?: Network | null; connectTimeoutMs?: number; heartbeatMs?: number; pongTimeoutMs?: number } = {},
) {
  const server = fakeWebSocket();
  const clock = new FakeClock();
  let issued = 0;
  const getToken = jest.fn(async (): Promise<string> => `token-${++issued}`);
  const s = settingsFor({
    url: 'wss://example.test/ws',
    getToken,
    WebSocket: server.WebSocket,
    clock,
    random: () => 0.5,
    network: null,
    ...overrides,
  });
  const transports = new Set<Transport>();
  const states: string[] = [];
  const emit = (event: keyof ClientEvents, ...args: unknown[]) => {
    if (event === 'state') states.push(String(args[0]));
  };
  const requests = createRequests(
    clock,
    (t) => session.end(t),
    (t) => session.settled(t),
  );
  const subscriptions = { resubscribe: () => [], deliver: () => undefined, reset: () => undefined };
  const outbox = createOutbox(10);
  const retry = createReconnect(
    clock,
    s.random,
    undefined,
    undefined,
    () => session.reopen(),
    () => undefined,
  );
  const session: Session = createSession(s, {
    transports,
    requests,
    subscriptions: subscriptions as unknown as Subscriptions<Transport>,
    outbox,
    reconnect: retry,
    emit: emit as never,
  });
  const primary = () => [...transports].find((t) => t.role === 'primary');
  /** start() and let the server accept the socket. */
  const open = async () => {
    session.start();
    await settle();
    server.last().accept();
    const t = primary();
    if (!t) throw new Error('no primary');
    return t;
  };
  /** A publish sent on the primary and not answered yet. */
  const publishInFlight = () => {
    outbox.add(
      'g',
      'in flight',
      () => undefined,
      () => undefined,
    );
    session.flush();
  };
  return { server, clock, getToken, transports, states, requests, outbox, session, primary, open, publishInFlight };
}

describe('the state funnel', () => {
  it('emits every change once, from disconnected to connecting, connected, reconnecting and back', async () => {
    const h = setupSession();
    const t = await h.open();
    h.session.start(); // not a change: nothing is emitted
    h.server.last().drop();
    await h.clock.advance(1000);
    h.server.last().accept();
    h.session.stop();
    h.session.stop();
    expect(h.states).toEqual(['connecting', 'connected', 'reconnecting', 'connected', 'disconnected']);
    expect(t.dead).toBe(true);
  });
});

describe('the one teardown path', () => {
  type Harness = ReturnType<typeof setupSession>;
  const ways: [string, (h: Harness, network: FakeNetwork) => Promise<void> | void][] = [
    ['the socket closes', (h) => h.server.last().drop()],
    ['a ping goes unanswered', (h) => h.clock.advance(1000 + 100)],
    [
      'a send fails',
      (h) => {
        h.server.last().readyState = 3;
        h.requests.send(h.primary() as Transport, { action: 'ping' }, 1000, () => undefined);
      },
    ],
    ['the session stops', (h) => h.session.stop()],
    ['the network goes away', (_h, network) => network.set(false)],
  ];

  it.each(ways)(
    'ends a socket the same way when %s: timers, handlers and socket gone, publishes in flight back in the outbox',
    async (_way, endIt) => {
      const network = new FakeNetwork();
      const h = setupSession({ network, heartbeatMs: 1000, pongTimeoutMs: 100 });
      const t = await h.open();
      h.publishInFlight();
      await endIt(h, network);
      expect(t.dead).toBe(true);
      expect(h.transports.has(t)).toBe(false);
      expect(t.timers.size).toBe(0);
      expect(t.pending.size).toBe(0);
      expect(t.ws.onmessage).toBeNull();
      expect(t.ws.readyState).toBe(3);
      expect(h.outbox.take().map((p) => p.data)).toContain('in flight');
    },
  );

  it('gives up on a socket that does not open within connectTimeoutMs, through the same path', async () => {
    const h = setupSession({ connectTimeoutMs: 5000 });
    h.session.start();
    await settle();
    const t = [...h.transports][0] as Transport;
    await h.clock.advance(5000);
    expect(t.dead).toBe(true);
    expect(h.server.last().closedByClient).toEqual({ code: 1000 });
    expect(h.states).toEqual(['connecting', 'reconnecting']);
  });

  it('gives up on a getToken that does not answer within connectTimeoutMs, and tries again', async () => {
    const h = setupSession({ connectTimeoutMs: 5000 });
    const answers: ((token: string) => void)[] = [];
    h.getToken.mockImplementation(() => new Promise<string>((resolve) => answers.push(resolve)));
    h.session.start();
    await h.clock.advance(5000);
    expect(h.states).toEqual(['connecting', 'reconnecting']);
    await h.clock.advance(1000);
    expect(answers).toHaveLength(2);
    answers[0]?.('late'); // the abandoned attempt's token comes too late: no socket is opened with it
    answers[1]?.('in time');
    await settle();
    expect(h.server.sockets.map((socket) => socket.token)).toEqual(['in time']);
    h.server.last().accept();
    expect(h.states).toEqual(['connecting', 'reconnecting', 'connected']);
  });

  it('opens no socket when stopped while getToken is still answering', async () => {
    const h = setupSession();
    h.session.start();
    h.session.stop();
    await settle();
    expect(h.server.sockets).toHaveLength(0);
    expect(h.clock.pending).toBe(0);
  });
});

describe('the network status', () => {
  it('ends every socket when offline and opens one at once when online', async () => {
    const network = new FakeNetwork();
    const h = setupSession({ network });
    const t = await h.open();
    network.set(false);
    expect(t.dead).toBe(true);
    expect(h.states).toEqual(['connecting', 'connected', 'reconnecting']);
    await h.clock.advance(600_000);
    expect(h.server.sockets).toHaveLength(1);
    network.set(true);
    await settle();
    expect(h.server.sockets).toHaveLength(2);
  });
});

// Through createClient (moved from client.test.ts).

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
    expect(socket.closedByClient).toEqual({ code: 1000 });
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

describe('the network status, through the client', () => {
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
