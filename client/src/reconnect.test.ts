import { describe, expect, it, jest } from '@jest/globals';
import type { TenantcastClientError } from './errors.ts';
import { createReconnect, STAYED_OPEN_MS } from './reconnect.ts';
import { connect, FakeClock, reconnect, settle, setup } from './testing.ts';

/** `times` connection attempts that never open (dropped before the handshake ends), each followed by the backoff. */
async function failOpens(h: ReturnType<typeof setup>, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await settle();
    h.server.last().drop();
    await h.clock.advance(30_000);
  }
}

function setupReconnect() {
  const clock = new FakeClock();
  let retries = 0;
  const auth: TenantcastClientError[] = [];
  const retry = createReconnect(
    clock,
    () => 0.999,
    { baseMs: 1000, maxMs: 4000 },
    undefined,
    () => retries++,
    (error) => auth.push(error),
  );
  return { clock, retry, auth, retries: () => retries };
}

describe('createReconnect', () => {
  it('asks for a fresh token from the second attempt on, until a socket opens', () => {
    const { retry } = setupReconnect();
    expect([retry.fresh(), retry.fresh(), retry.fresh()]).toEqual([false, true, true]);
    retry.opened();
    expect(retry.fresh()).toBe(false);
  });

  it('retries once after a backoff that doubles per attempt up to its cap, and starts again when restarted', async () => {
    const { clock, retry, retries } = setupReconnect();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      delays.push(retry.delay());
      retry.later();
      retry.later(); // already scheduled: no second retry
      await clock.advance(4000);
    }
    expect(delays).toEqual([999, 1998, 3996, 3996]);
    expect(retries()).toBe(4);
    retry.cancel(true);
    expect(retry.delay()).toBe(999);
  });

  it('does not retry once cancelled', async () => {
    const { clock, retry, retries } = setupReconnect();
    retry.later();
    retry.cancel();
    await clock.advance(10_000);
    expect(retries()).toBe(0);
  });

  it('does not ask anything about tokens without an authCheckUrl', () => {
    const { retry, auth } = setupReconnect();
    for (let i = 0; i < 5; i++) retry.fresh();
    expect(() => retry.check('token')).not.toThrow();
    expect(auth).toEqual([]);
  });
});

describe('tokens after the server closed a connection whose token expired', () => {
  it('asks getToken for a fresh token on the first attempt, not for the expired one it cached', async () => {
    const expiresAt = (1_700_000_000_000 + 60_000) / 1000;
    const getToken = jest.fn(async (request?: { readonly fresh: boolean }) =>
      request?.fresh ? { token: 'new', expiresAt: expiresAt + 3600 } : { token: 'cached', expiresAt },
    );
    // Refreshing 1 ms before expiry, the cached token comes back and a fresh one is asked for a second later: the
    // server closes the connection in between (as when a sleeping laptop misses its refresh).
    const h = setup({ getToken, refreshBeforeMs: 1 });
    const socket = await connect(h);
    await h.clock.advance(60_500);
    socket.drop();
    await reconnect(h, socket);
    expect(getToken.mock.calls.map(([options]) => options)).toEqual([
      { fresh: false },
      { fresh: false },
      { fresh: true },
    ]);
    expect(h.server.last().token).toBe('new');
  });

  it('asks for a fresh token even when a standby still waiting for its own token ends after the primary', async () => {
    const expiresAt = (1_700_000_000_000 + 60_000) / 1000;
    const calls: unknown[] = [];
    const getToken = jest.fn((request?: { readonly fresh: boolean }) => {
      calls.push(request);
      // The second call is the standby's: the auth server does not answer in time (a laptop just woke, say).
      if (calls.length === 2) return new Promise<never>(() => undefined);
      return Promise.resolve(
        request?.fresh ? { token: 'new', expiresAt: expiresAt + 3600 } : { token: 'cached', expiresAt },
      );
    });
    // The rollover opens a standby at 59.9 s; the token expires at 60 s and the server closes the primary at 60.5 s,
    // before the standby's getToken answered (the lost primary cancels the rollover, which ends the standby).
    const h = setup({ getToken, refreshBeforeMs: 1, rolloverAfterMs: 59_900 });
    const socket = await connect(h);
    await h.clock.advance(60_500);
    await settle();
    expect(calls).toHaveLength(3); // the primary's, the standby's (pending), the refresh's (the cached one again)
    socket.drop();
    await reconnect(h, socket);
    expect(calls.at(-1)).toEqual({ fresh: true });
    expect(h.server.last().token).toBe('new');
  });
});

describe('tokens after a connection that failed to open', () => {
  it('asks getToken for a fresh token before retrying, and for its cache otherwise', async () => {
    const h = setup();
    void h.client.connect();
    await settle();
    h.server.last().drop(); // the handshake was refused: a browser sees only the close
    await h.clock.advance(1000);
    h.server.last().accept();
    await settle();
    expect(h.client.state).toBe('connected');
    expect(h.getToken.mock.calls).toEqual([[{ fresh: false }], [{ fresh: true }]]);
    h.server.last().drop(); // an open connection lost: its first retry may use the cache again
    await reconnect(h, h.server.last());
    expect(h.getToken.mock.calls.at(-1)).toEqual([{ fresh: false }]);
  });

  it('reports auth once when fresh tokens keep failing and the HTTP API answers 401 to them', async () => {
    const checked: string[] = [];
    const fetchSpy = jest.spyOn(globalThis, 'fetch').mockImplementation(async (_url, init) => {
      checked.push(String((init?.headers as Record<string, string> | undefined)?.authorization));
      return new Response('{"message":"Unauthorized"}', { status: 401 });
    });
    try {
      const h = setup({ authCheckUrl: 'https://api.example.test/v1/schema' });
      const auth: TenantcastClientError[] = [];
      h.client.on('auth', (error) => auth.push(error));
      void h.client.connect();
      await failOpens(h, 5);
      expect(auth.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
      expect(checked[0]).toBe('Bearer token-3'); // the second fresh token, after the first fresh one failed
      expect(h.client.state).toBe('reconnecting'); // it keeps trying: a new sign-in makes getToken work again
    } finally {
      fetchSpy.mockRestore();
    }
  });

  it('reports nothing while the HTTP API accepts the token (the stack is down or starting, not the token)', async () => {
    const fetchSpy = jest
      .spyOn(globalThis, 'fetch')
      .mockImplementation(async () => new Response('{}', { status: 503 }));
    try {
      const h = setup({ authCheckUrl: 'https://api.example.test/v1/schema' });
      const auth: TenantcastClientError[] = [];
      h.client.on('auth', (error) => auth.push(error));
      void h.client.connect();
      await failOpens(h, 5);
      expect(fetchSpy).toHaveBeenCalled();
      expect(auth).toEqual([]);
    } finally {
      fetchSpy.mockRestore();
    }
  });
});

describe('reconnecting', () => {
  it('waits a full-jitter delay that grows with every failed attempt and resets after a success', async () => {
    const h = setup({ random: () => 0.999, backoff: { baseMs: 1000, maxMs: 60_000 } });
    let socket = await connect(h);
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      socket.drop();
      const before = h.server.sockets.length;
      let waited = 0;
      while (h.server.sockets.length === before) {
        await h.clock.advance(10);
        waited += 10;
      }
      waits.push(waited);
      socket = h.server.last();
    }
    // Drops before the socket ever opened count as consecutive failures: about 1 s, 2 s, 4 s, 8 s.
    expect(waits.map((w) => Math.round(w / 1000))).toEqual([1, 2, 4, 8]);
    socket.accept();
    await h.clock.advance(STAYED_OPEN_MS);
    socket.drop();
    let waited = 0;
    while (h.server.sockets.length === 5) {
      await h.clock.advance(10);
      waited += 10;
    }
    expect(Math.round(waited / 1000)).toBe(1);
  });
});

describe('a connection the server closes as soon as it opens', () => {
  it('does not start the backoff again, so reconnecting slows down instead of looping', async () => {
    const h = setup({ random: () => 0.999, backoff: { baseMs: 1000, maxMs: 60_000 } });
    let socket = await connect(h);
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      socket.drop(1009, 'Message too big');
      const before = h.server.sockets.length;
      let waited = 0;
      while (h.server.sockets.length === before) {
        await h.clock.advance(10);
        waited += 10;
      }
      waits.push(Math.round(waited / 1000));
      socket = h.server.last();
      socket.accept();
      await settle();
    }
    expect(waits).toEqual([1, 2, 4, 8]);
  });
});
