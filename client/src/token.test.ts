import { describe, expect, it } from '@jest/globals';
import { TenantcastClientError } from './errors.ts';
import { connect, FakeClock, fakeJwt, type Harness, settle, setup } from './testing.ts';
import { createRefresh, readToken, tokenExpiry } from './token.ts';
import type { Transport } from './transport.ts';

describe('reading tokens', () => {
  it("takes a JWT's exp as its expiry", () => {
    expect(tokenExpiry(fakeJwt(1234))).toBe(1234);
    expect(readToken(fakeJwt(1234))).toEqual({ token: fakeJwt(1234), expiresAt: 1_234_000 });
  });

  it('prefers the expiresAt getToken gives over the JWT', () => {
    expect(readToken({ token: fakeJwt(1234), expiresAt: 99 })).toEqual({ token: fakeJwt(1234), expiresAt: 99_000 });
  });

  it('knows no expiry for a token that is not a JWT', () => {
    expect(tokenExpiry('opaque')).toBeUndefined();
    expect(tokenExpiry('a.not-base64-json.c')).toBeUndefined();
    expect(readToken('opaque')).toEqual({ token: 'opaque', expiresAt: undefined });
  });
});

function setupRefresh(tokens: (() => string)[], asked: unknown[] = []) {
  const clock = new FakeClock();
  const t = { dead: false, role: 'primary', expiresAt: clock.now() + 10_000 } as Transport;
  const sent: { token: string; answered: (answer: unknown) => void }[] = [];
  const errors: TenantcastClientError[] = [];
  let rollovers = 0;
  let timer: unknown;
  const schedule = createRefresh(
    {
      refreshBeforeMs: 1000,
      requestTimeoutMs: 100,
      clock,
      getToken: (request) => {
        asked.push(request);
        const next = tokens.shift();
        if (!next) throw new Error('no token');
        return next();
      },
    },
    {
      arm: (_t, _name, ms, callback) => {
        clock.clearTimeout(timer);
        timer = clock.setTimeout(callback, ms);
      },
      disarm: () => {
        clock.clearTimeout(timer);
        timer = undefined;
      },
      send: (_t, frame, _timeoutMs, answered) =>
        sent.push({ token: (frame as { token: string }).token, answered: answered as (answer: unknown) => void }),
    },
    (error) => errors.push(error),
    () => rollovers++,
  );
  return { clock, t, sent, errors, schedule, rollovers: () => rollovers };
}

describe('createRefresh', () => {
  it('sends a new token refreshBeforeMs before the current one expires, then follows the new expiry', async () => {
    const h = setupRefresh([() => fakeJwt(1_700_000_020), () => fakeJwt(1_700_000_030)]);
    h.schedule(h.t);
    await h.clock.advance(8999);
    expect(h.sent).toHaveLength(0);
    await h.clock.advance(1);
    expect(h.sent.map((s) => s.token)).toEqual([fakeJwt(1_700_000_020)]);
    h.sent[0]?.answered({ type: 'ack' });
    expect(h.t.expiresAt).toBe(1_700_000_020_000);
    await h.clock.advance(10_000);
    expect(h.sent).toHaveLength(2);
  });

  it('asks for a fresh token a second later, without sending it, when the answer expires no later', async () => {
    // exp has whole seconds: a token issued in the same second as the current one expires with it.
    const asked: unknown[] = [];
    const h = setupRefresh([() => fakeJwt(1_700_000_010), () => fakeJwt(1_700_000_011)], asked);
    h.schedule(h.t); // the current token expires at 1_700_000_010 s, in 10 s; the refresh asks at 9 s
    await h.clock.advance(9000);
    expect(h.sent).toHaveLength(0);
    await h.clock.advance(999);
    expect(asked).toEqual([{ fresh: false }]);
    await h.clock.advance(1);
    expect(asked).toEqual([{ fresh: false }, { fresh: true }]);
    expect(h.sent.map((s) => s.token)).toEqual([fakeJwt(1_700_000_011)]);
  });

  it('asks again every second while the same token comes back, then follows the later one as usual', async () => {
    const asked: unknown[] = [];
    const same = () => fakeJwt(1_700_000_010);
    const h = setupRefresh([same, same, same, () => fakeJwt(1_700_000_030), () => fakeJwt(1_700_000_040)], asked);
    h.schedule(h.t);
    await h.clock.advance(9000 + 2000);
    expect(h.sent).toHaveLength(0);
    await h.clock.advance(1000);
    expect(asked).toEqual([{ fresh: false }, { fresh: true }, { fresh: true }, { fresh: true }]);
    h.sent[0]?.answered({ type: 'ack' });
    await h.clock.advance(16_999); // the new token expires 18 s later: its refresh is due 17 s later
    expect(asked).toHaveLength(4);
    await h.clock.advance(1);
    expect(asked.at(-1)).toEqual({ fresh: false });
  });

  it('refreshes a token living less than refreshBeforeMs at most once a second', async () => {
    let issued = 1_700_000_000;
    const h = setupRefresh(Array.from({ length: 20 }, () => () => fakeJwt(++issued)));
    const sent = h.sent.push.bind(h.sent);
    h.sent.push = (...entries) => {
      for (const entry of entries) entry.answered({ type: 'ack' }); // the server acks at once
      return sent(...entries);
    };
    h.t.expiresAt = 1_700_000_000_500; // due at once: refreshBeforeMs is 1000, each new token lives 1 s more
    h.schedule(h.t);
    await h.clock.advance(4000);
    expect(h.sent).toHaveLength(5);
    expect(h.rollovers()).toBe(0);
  });

  it('does not schedule again for a token whose expiry is unknown', async () => {
    const h = setupRefresh([() => 'opaque']);
    h.schedule(h.t);
    await h.clock.advance(9000);
    h.sent[0]?.answered({ type: 'ack' });
    await h.clock.advance(60_000);
    expect(h.sent).toHaveLength(1);
  });

  it('falls back to a rollover when getToken fails or the server refuses the token', async () => {
    const failing = setupRefresh([]);
    failing.schedule(failing.t);
    await failing.clock.advance(9000);
    expect(failing.errors.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
    expect(failing.rollovers()).toBe(1);

    const refused = setupRefresh([() => 'next']);
    refused.schedule(refused.t);
    await refused.clock.advance(9000);
    refused.sent[0]?.answered(new TenantcastClientError('UNAUTHORIZED', 'bad token'));
    expect(refused.rollovers()).toBe(1);
  });

  it('falls back to a rollover, as for a failure, when getToken answers with no token at all', async () => {
    for (const answer of [null, {}, 42]) {
      const h = setupRefresh([() => answer as never]);
      h.schedule(h.t);
      await h.clock.advance(9000);
      expect(h.errors.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
      expect(h.rollovers()).toBe(1);
      expect(h.sent).toHaveLength(0);
    }
  });

  it('says nothing and rolls nothing over when the answer comes after the connection stopped being primary', async () => {
    for (const answer of [null, 'next']) {
      const h: ReturnType<typeof setupRefresh> = setupRefresh([
        () => {
          h.t.role = 'draining';
          return answer as never;
        },
      ]);
      h.schedule(h.t);
      await h.clock.advance(9000);
      expect([h.errors, h.rollovers(), h.sent]).toEqual([[], 0, []]);
    }
  });

  it('does nothing for a connection whose token has no known expiry', async () => {
    const h = setupRefresh([() => 'next']);
    h.t.expiresAt = undefined;
    h.schedule(h.t);
    await h.clock.advance(60_000);
    expect(h.sent).toHaveLength(0);
  });
});

describe('token refresh', () => {
  const inSeconds = (h: Harness, s: number) => Math.floor(h.clock.now() / 1000) + s;

  it('sends a fresh token refreshBeforeMs before the current one expires, and again for the new one', async () => {
    const h = setup({ refreshBeforeMs: 60_000, heartbeatMs: 3_600_000 });
    h.getToken.mockImplementation(async () => fakeJwt(inSeconds(h, 600)));
    const socket = await connect(h);
    await h.clock.advance(539_000);
    expect(socket.framesOf('refresh')).toEqual([]);
    await h.clock.advance(1000);
    const refresh = socket.lastOf('refresh');
    expect(refresh.token).toBe(fakeJwt(inSeconds(h, 600)));
    socket.ackAll('refresh');
    await h.clock.advance(540_000);
    expect(socket.framesOf('refresh')).toHaveLength(2);
    expect(h.server.sockets).toHaveLength(1);
  });

  it('takes the expiry from getToken when it gives one', async () => {
    const h = setup({ refreshBeforeMs: 10_000, heartbeatMs: 3_600_000 });
    h.getToken.mockImplementation(async () => ({ token: 'opaque', expiresAt: inSeconds(h, 30) }) as never);
    const socket = await connect(h);
    await h.clock.advance(20_000);
    expect(socket.lastOf('refresh')).toMatchObject({ token: 'opaque' });
  });

  it('falls back to a rollover with the new token when the server refuses the refresh', async () => {
    const h = setup({ refreshBeforeMs: 60_000, heartbeatMs: 3_600_000 });
    h.getToken.mockImplementation(async () => fakeJwt(inSeconds(h, 120)));
    const old = await connect(h);
    await h.clock.advance(60_000);
    const refresh = old.lastOf('refresh');
    old.receive({ type: 'error', ref: refresh.ref, code: 'BAD_REQUEST', message: "unknown action 'refresh'" });
    await settle();
    expect(h.errors.map((e) => e.code)).toEqual(['BAD_REQUEST']);
    const next = h.server.last();
    expect(next).not.toBe(old);
    next.accept();
    await settle();
    expect(old.closed).toBe(true);
    expect(h.client.state).toBe('connected');
  });
});

describe('a refresh whose getToken never answers', () => {
  it('turns into a rollover after requestTimeoutMs, so the connection is replaced before its token expires', async () => {
    const clock = new FakeClock();
    const exp = Math.floor(clock.now() / 1000) + 3600;
    let calls = 0;
    const h = setup({
      clock,
      rolloverAfterMs: 6 * 3600_000,
      heartbeatMs: 6 * 3600_000,
      getToken: () => {
        calls++;
        // The refresh's call hangs (a fetch without a timeout); the others answer.
        if (calls === 2) return new Promise<string>(() => undefined);
        return Promise.resolve(fakeJwt(exp + (calls - 1) * 3600));
      },
    });
    await connect(h);
    await clock.advance(3600_000 - 60_000);
    await settle();
    expect(calls).toBe(2);
    // Until 2026-12-04 nothing followed: the server closed the connection at expiry and the app saw `reconnecting`.
    await clock.advance(20_000);
    await settle();
    expect(calls).toBe(3);
    const standby = h.server.last();
    expect(h.server.sockets).toHaveLength(2);
    standby.accept();
    await settle();
    expect(h.server.sockets[0]?.closed).toBe(true);
    expect(h.client.state).toBe('connected');
  });
});
