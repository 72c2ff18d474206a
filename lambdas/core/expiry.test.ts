import { describe, expect, it } from '@jest/globals';
import { FetchError, JwtInvalidSignatureError } from 'aws-jwt-verify/error';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import { ForbiddenError, UnauthorizedError } from './errors.ts';
import { bucketOf, type DueConnection, REAP_CONCURRENCY, reapExpired, verifyRefreshToken } from './expiry.ts';

function store(connections: Record<string, number>, cursor?: number) {
  const state = { cursor, queried: [] as number[] };
  return {
    state,
    store: {
      inBucket: async (bucket: number): Promise<DueConnection[]> => {
        state.queried.push(bucket);
        return Object.entries(connections)
          .filter(([, exp]) => bucketOf(exp) === bucket)
          .map(([connectionId, exp]) => ({ connectionId, exp }));
      },
      currentExp: async (id: string) =>
        connections[id] === undefined
          ? undefined
          : { exp: connections[id] as number, tenantId: 'acme', userId: 'alice', connectedAt: 0 },
      cursor: async () => state.cursor,
      setCursor: async (bucket: number) => {
        state.cursor = bucket;
      },
    },
  };
}

const now = 6_000 * 60 * 1000 + 30_000; // 30 s into minute 6000

describe('the reaper', () => {
  it('expires connections whose token has passed, keeps the rest, and advances its cursor a minute behind the last past bucket', async () => {
    const { store: s, state } = store({ old: 6000 * 60 - 5, thisMinute: 6000 * 60 + 10, later: 6000 * 60 + 50 }, 5990);
    const expired: string[] = [];
    const result = await reapExpired({
      store: s,
      now: () => now,
      expire: async (c) => void expired.push(c.connectionId),
    });
    expect(expired.sort()).toEqual(['old', 'thisMinute']);
    expect(result).toMatchObject({ expired: 2, failed: 0, buckets: 10 });
    expect(state.queried).toEqual([5991, 5992, 5993, 5994, 5995, 5996, 5997, 5998, 5999, 6000]);
    expect(state.cursor).toBe(5998);
  });

  it('announces the leaves of a connection removed without its $disconnect once due, and never expires it as a token', async () => {
    // `gone` still has an expired token in the fake store: a LEFT item of it must not close it as one.
    const { store: s } = store({ live: 6000 * 60 + 50, gone: 6000 * 60 - 5 }, 5990);
    const lefts: DueConnection[] = [
      { connectionId: 'gone', exp: 6000 * 60 - 5, announceLeaves: true },
      { connectionId: 'notYet', exp: 6000 * 60 + 50, announceLeaves: true },
      { connectionId: 'disconnected', exp: 6000 * 60 - 5, announceLeaves: true },
    ];
    const withLefts = {
      ...s,
      // Only the LEFT items are indexed: were one taken for a token, `currentExp` would find it expired.
      inBucket: async (bucket: number) => lefts.filter((l) => bucketOf(l.exp) === bucket),
    };
    const announced: string[] = [];
    const expired: string[] = [];
    const result = await reapExpired({
      store: withLefts,
      now: () => now,
      expire: async (c) => void expired.push(c.connectionId),
      // Its $disconnect came meanwhile: nothing left to announce.
      announceLeft: async (id) => {
        announced.push(id);
        return id !== 'disconnected';
      },
    });
    expect(announced.sort()).toEqual(['disconnected', 'gone']);
    expect(expired).toEqual([]);
    expect(result).toMatchObject({ expired: 0, failed: 0, leavesAnnounced: 1 });
  });

  it('reaps a connection indexed just after the sweep that passed the minute its token expired in', async () => {
    const connections: Record<string, number> = {};
    const { store: s } = store(connections, 5990);
    const expired: string[] = [];
    const sweep = (at: number) =>
      reapExpired({ store: s, now: () => at, expire: async (c) => void expired.push(c.connectionId) });
    // Minute 6000 begins; the sweep at 0.3 s reads minute 5999, where nothing is indexed yet.
    await sweep(6000 * 60_000 + 300);
    // $connect indexes a token that expired at 59.5 s of minute 5999 (its authorizer ran just before).
    connections.late = 6000 * 60 - 1;
    await sweep(6001 * 60_000 + 300);
    expect(expired).toEqual(['late']);
  });

  it('closes the expired connections of a bucket several at a time, at most REAP_CONCURRENCY, and every one of them', async () => {
    const connections = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`c${i}`, 6000 * 60 - 5]));
    const { store: s } = store(connections, 5998);
    let inFlight = 0;
    let most = 0;
    const expired: string[] = [];
    const result = await reapExpired({
      store: s,
      now: () => now,
      expire: async (c) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        expired.push(c.connectionId);
      },
    });
    expect(result).toMatchObject({ checked: 40, expired: 40, failed: 0 });
    expect(expired).toHaveLength(40);
    expect(most).toBe(REAP_CONCURRENCY);
  });

  it('skips a connection refreshed since the index was written', async () => {
    const connections = { refreshed: 6000 * 60 - 5 };
    const { store: s } = store(connections, 5998);
    s.currentExp = async () => ({ exp: 6000 * 60 + 600, tenantId: 'acme', userId: 'alice', connectedAt: 0 });
    const expired: string[] = [];
    await reapExpired({ store: s, now: () => now, expire: async (c) => void expired.push(c.connectionId) });
    expect(expired).toEqual([]);
  });

  it('keeps the cursor before a bucket whose close failed, so the next sweep retries it', async () => {
    const { store: s, state } = store({ failing: 5995 * 60 + 1, fine: 5997 * 60 }, 5990);
    const errors: unknown[] = [];
    const result = await reapExpired({
      store: s,
      now: () => now,
      expire: async (c) => {
        if (c.connectionId === 'failing') throw new Error('management API down');
      },
      onError: (err) => errors.push(err),
    });
    expect(result).toMatchObject({ expired: 1, failed: 1 });
    expect(errors).toHaveLength(1);
    expect(state.cursor).toBe(5994);
  });

  it('looks back at most the longest connection lifetime when it has no cursor yet', async () => {
    const { store: s, state } = store({});
    await reapExpired({ store: s, now: () => now, expire: async () => undefined });
    expect(state.queried.length).toBeLessThanOrEqual(2 * 60 + 11);
    expect(state.queried.at(-1)).toBe(6000);
  });
});

describe('a refresh token', () => {
  const caller = { tenantId: 'acme', userId: 'alice', roles: ['member'] };
  const claimNames = { tenant: 'tenant_id', user: 'sub', roles: 'roles' };
  const verifying = (payload: JwtPayload) => ({ verify: async () => payload });

  it('of the same user and tenant gives its expiry', async () => {
    const deps = { verifier: verifying({ sub: 'alice', tenant_id: 'acme', roles: ['member'], exp: 123 }), claimNames };
    expect(await verifyRefreshToken('t', caller, deps)).toBe(123);
  });

  it('that grants other roles or claims than the connection has is FORBIDDEN (the client rolls over to it)', async () => {
    const withTeams = { ...caller, roles: ['member'], claims: { sub: 'alice', teams: ['t1'] } };
    const refresh = (payload: JwtPayload) =>
      verifyRefreshToken('t', withTeams, { verifier: verifying(payload), claimNames });
    const same = { sub: 'alice', tenant_id: 'acme', roles: ['member'], teams: ['t1'], exp: 9 };
    expect(await refresh(same)).toBe(9);
    // What an identity provider sets anew on every token, and the registered claims, are not rights.
    expect(await refresh({ ...same, at_hash: 'x', nonce: 'n', aio: 'e', iat: 5, jti: 'j' })).toBe(9);
    await expect(refresh({ ...same, teams: ['t2'] })).rejects.toThrow('other roles or claims');
    const { teams: _, ...withoutTeams } = same;
    await expect(refresh(withoutTeams)).rejects.toBeInstanceOf(ForbiddenError);
    await expect(refresh({ ...same, roles: ['member', 'admin'] })).rejects.toBeInstanceOf(ForbiddenError);
    await expect(refresh({ ...same, plan: 'gold' })).rejects.toBeInstanceOf(ForbiddenError);
    // Order does not grant anything.
    expect(await refresh({ ...same, roles: 'member' })).toBe(9);
    // A claim is compared as audiences and row filters read it.
    expect(await refresh({ ...same, teams: 't1' })).toBe(9);
    expect(await refresh({ ...same, teams: ['t1', 't1'] })).toBe(9);
    await expect(refresh({ ...same, teams: ['t2', 't1'] })).rejects.toBeInstanceOf(ForbiddenError);
    // A session id stays across one session's tokens, and a row filter may read it (equalsClaim: 'sid').
    const session = { ...withTeams, claims: { ...withTeams.claims, sid: 's1', level: 5 } };
    const again = (payload: JwtPayload) =>
      verifyRefreshToken('t', session, { verifier: verifying(payload), claimNames });
    expect(await again({ ...same, sid: 's1', level: '5' })).toBe(9);
    await expect(again({ ...same, sid: 's2', level: 5 })).rejects.toBeInstanceOf(ForbiddenError);
  });

  it('of another user or tenant is FORBIDDEN, one that does not verify UNAUTHORIZED', async () => {
    const other = { verifier: verifying({ sub: 'bob', tenant_id: 'acme', exp: 1 }), claimNames };
    await expect(verifyRefreshToken('t', caller, other)).rejects.toBeInstanceOf(ForbiddenError);
    const foreign = { verifier: verifying({ sub: 'alice', tenant_id: 'globex', exp: 1 }), claimNames };
    await expect(verifyRefreshToken('t', caller, foreign)).rejects.toBeInstanceOf(ForbiddenError);
    const broken = {
      verifier: {
        verify: async () => {
          throw new JwtInvalidSignatureError('bad signature');
        },
      },
      claimNames,
    };
    await expect(verifyRefreshToken('t', caller, broken)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('that cannot be checked (the JWKS unreachable) is not called invalid: the error goes on, as INTERNAL', async () => {
    const unreachable = new FetchError('https://idp.example/jwks.json', 'fetch failed');
    const deps = {
      verifier: {
        verify: async () => {
          throw unreachable;
        },
      },
      claimNames,
    };
    await expect(verifyRefreshToken('t', caller, deps)).rejects.toBe(unreachable);
  });
});
