import { describe, expect, it } from '@jest/globals';
import { Session } from './session.ts';

function tokenServer(status = 200) {
  const requests: unknown[] = [];
  let issued = 0;
  const fetchImpl = async (_input: RequestInfo | URL, init?: RequestInit) => {
    requests.push(JSON.parse(String(init?.body)));
    issued++;
    const body =
      status === 200
        ? { token: `t${issued}`, expiresAt: 1000 + 3600 }
        : { error: { code: 'BAD_REQUEST', message: 'roles must be an array of non-empty strings' } };
    return new Response(JSON.stringify(body), { status });
  };
  return { fetch: fetchImpl as typeof fetch, requests };
}

describe('a demo session', () => {
  const identity = { tenantId: 'acme', userId: 'alice', roles: ['member'] };

  it('asks the identity provider for a token of its identity and reuses it while it has time left', async () => {
    const server = tokenServer();
    let now = 1000_000;
    const session = new Session({ identity, fetch: server.fetch, now: () => now });
    const [a, b] = await Promise.all([session.token(), session.token()]);
    expect(a).toEqual({ token: 't1', expiresAt: 4600 });
    expect(b).toBe(a);
    now += 3000_000; // 600 s left
    expect((await session.token()).token).toBe('t1');
    expect(server.requests).toEqual([{ tenantId: 'acme', userId: 'alice', roles: ['member'], ttlSeconds: 3600 }]);
  });

  it('says the token service is unavailable after no answer or a 5xx, and not after a 4xx or an answer', async () => {
    const server = tokenServer();
    let answer: 'none' | 503 | 400 | 200 = 'none';
    const fetchImpl = ((input: RequestInfo | URL, init?: RequestInit) =>
      answer === 'none'
        ? Promise.reject(new TypeError('Failed to fetch'))
        : answer === 200
          ? server.fetch(input, init)
          : Promise.resolve(new Response('{}', { status: answer }))) as typeof fetch;
    const session = new Session({ identity, fetch: fetchImpl, now: () => 1000_000 });
    expect(session.unavailable).toBe(false);
    await expect(session.token()).rejects.toMatchObject({ code: 'NETWORK' });
    expect(session.unavailable).toBe(true);
    answer = 400;
    await expect(session.token()).rejects.toMatchObject({ status: 400 });
    expect(session.unavailable).toBe(false);
    answer = 503;
    await expect(session.token()).rejects.toMatchObject({ status: 503 });
    expect(session.unavailable).toBe(true);
    answer = 200;
    await session.token();
    expect(session.unavailable).toBe(false);
  });

  it('fetches a new token within two minutes of expiry, before the SDK would refresh', async () => {
    const server = tokenServer();
    let now = 1000_000;
    const session = new Session({ identity, fetch: server.fetch, now: () => now });
    await session.token();
    now = (4600 - 119) * 1000;
    expect((await session.token()).token).toBe('t2');
  });

  it('issues a new token when asked for a fresh one, even while the cached one has time left', async () => {
    const server = tokenServer();
    const session = new Session({ identity, fetch: server.fetch, now: () => 1000_000 });
    expect((await session.token()).token).toBe('t1');
    expect((await session.token(true)).token).toBe('t2');
    expect((await session.token()).token).toBe('t2');
  });

  it("reports the identity provider's refusal with its code", async () => {
    const session = new Session({ identity, fetch: tokenServer(400).fetch });
    await expect(session.token()).rejects.toMatchObject({ code: 'BAD_REQUEST', status: 400 });
  });
});
