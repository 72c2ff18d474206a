import { describe, expect, it } from '@jest/globals';
import { httpIdentity } from '../../test/support/http-identity.ts';
import { defaultClaimNames } from './auth.ts';
import { disconnectAll } from './revocation.ts';
import { DISCONNECT_BUDGET_MS, handleAdminRequest } from './revocation-http.ts';

/** `n` live connections of one tenant, each close taking `closeMs` on a clock that only the closes move. */
function tenantOf(n: number, closeMs: number) {
  let clock = 1_000_000;
  const closed: string[] = [];
  const deps = {
    connections: {
      list: async () => Array.from({ length: n }, (_, i) => ({ connectionId: `c${i}`, userId: 'u', connectedAt: 0 })),
    },
    close: async (connectionId: string) => {
      clock += closeMs;
      closed.push(connectionId);
      return true;
    },
    forget: async () => undefined,
    now: () => clock,
  };
  return { deps, closed };
}

describe('disconnecting a tenant', () => {
  it('closes every connection without a budget', async () => {
    const { deps, closed } = tenantOf(40, 1000);
    expect(await disconnectAll('acme', undefined, deps)).toEqual({ disconnected: 40, failed: 0, remaining: 0 });
    expect(closed).toHaveLength(40);
  });

  it('closes none past its deadline, and counts them as remaining for the caller to ask again', async () => {
    const { deps, closed } = tenantOf(40, 1000);
    const result = await disconnectAll('acme', undefined, deps, { deadline: deps.now() + 10_000, now: deps.now });
    expect(result.disconnected).toBe(closed.length);
    expect(result.disconnected).toBeLessThan(40);
    expect(result.disconnected + result.remaining).toBe(40);
  });

  it('over HTTP answers within the integration timeout, with what remains', async () => {
    const { deps } = tenantOf(100, 1000);
    const identity = httpIdentity({ iss: 'i', exp: 2_000_000_000, tenant_id: 'acme', sub: 'root', roles: ['admin'] });
    const answer = await handleAdminRequest(
      { ...identity, operation: 'disconnect', query: {}, body: '{}', isBase64Encoded: false, timeLeftMs: 29_000 },
      { ...deps, usage: { read: async () => [] }, claimNames: defaultClaimNames },
    );
    const body = JSON.parse(String(answer.body)) as { disconnected: number; remaining: number };
    // 16 closes run at once: those started before the deadline end up to one close (1 s) after it, 16 of them.
    expect(body.disconnected).toBeLessThanOrEqual(DISCONNECT_BUDGET_MS / 1000 + 16);
    expect(body.disconnected + body.remaining).toBe(100);
    expect(body.remaining).toBeGreaterThan(0);
  });
});
