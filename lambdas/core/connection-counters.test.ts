import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { ensureTable, type LocalDynamo } from '../../local/dynamo.ts';
import { useLocalTable } from '../../test/support/local-table.ts';
import { ConnectionCounters, counterKeys, numberAttribute, recountDue, userKeyPart } from './connection-counters.ts';
import { rateKeys } from './rate-limit.ts';
import { Registry } from './registry.ts';
import { disconnectAll, liveUserCount, TenantConnections } from './revocation.ts';

const caps = { maxConnections: 5, maxConnectionsPerUser: 2 };

describe('connection counters', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBDocumentClient;
  const tableName = 'connection-counters-test';
  let now = 1_800_000_000_000;
  const clock = () => now;
  let tenantSeq = 0;
  /** A tenant of its own per test, so tests share one dynalite. */
  const freshTenant = () => `t${++tenantSeq}`;

  useLocalTable(tableName, (table) => {
    dynamo = table.dynamo;
    client = table.client;
  });

  type Count = (tenantId: string, userId?: string) => Promise<number>;
  /** `count`: how a refusing counter recounts, given the registered connections; @default counting the records. */
  const setup = (table = tableName, count?: (live: TenantConnections, registry: Registry) => Count) => {
    const tableName = table;
    const live = new TenantConnections({ client, tableName, now: clock });
    const registry = new Registry({ client, tableName, now: clock });
    const counters = new ConnectionCounters({
      client,
      tableName,
      now: clock,
      count: count?.(live, registry) ?? ((tenantId, userId) => live.count(tenantId, userId)),
    });
    let connSeq = 0;
    /** What `$connect` does: acquire, then register the connection as counted. */
    const connect = async (tenantId: string, userId: string) => {
      const refused = await counters.acquire(tenantId, userId, caps);
      if (refused !== undefined) return { refused };
      const connectionId = `${tenantId}-c${++connSeq}`;
      await registry.putConnection({ tenantId, userId, roles: [] }, connectionId, now, { counted: true });
      return { connectionId };
    };
    return { counters, registry, connect, live };
  };

  it('counts each admitted connection once per user and once per tenant', async () => {
    const { counters, connect } = setup();
    const tenant = freshTenant();
    await connect(tenant, 'alice');
    await connect(tenant, 'bob');
    await connect(tenant, 'alice');
    expect(await counters.current(tenant, 'alice')).toBe(2);
    expect(await counters.current(tenant, 'bob')).toBe(1);
    expect(await counters.current(tenant)).toBe(3);
  });

  it('refuses the user above their cap with the current count, and does not count the refused connection', async () => {
    const { counters, connect } = setup();
    const tenant = freshTenant();
    await connect(tenant, 'alice');
    await connect(tenant, 'alice');
    expect(await connect(tenant, 'alice')).toEqual({ refused: 'user has 2 open connections; the limit is 2' });
    expect(await counters.current(tenant, 'alice')).toBe(2);
    expect(await counters.current(tenant)).toBe(2);
  });

  it('refuses at the tenant cap and gives back the user place it had taken', async () => {
    const { counters, connect } = setup();
    const tenant = freshTenant();
    for (const user of ['a', 'b', 'c', 'd', 'e']) expect(await connect(tenant, user)).toHaveProperty('connectionId');
    expect(await connect(tenant, 'f')).toEqual({ refused: 'tenant has 5 open connections; the limit is 5' });
    expect(await counters.current(tenant, 'f')).toBe(0);
    expect(await counters.current(tenant)).toBe(5);
  });

  it('releases a removed connection exactly once, however often it is removed', async () => {
    const { counters, registry, connect } = setup();
    const tenant = freshTenant();
    const first = await connect(tenant, 'alice');
    await connect(tenant, 'alice');
    const connectionId = String(first.connectionId);
    await Promise.all([registry.removeConnection(connectionId), registry.removeConnection(connectionId)]);
    await registry.removeConnection(connectionId);
    expect(await counters.current(tenant, 'alice')).toBe(1);
    expect(await counters.current(tenant)).toBe(1);
    expect(await connect(tenant, 'alice')).toHaveProperty('connectionId');
  });

  it('does not release a connection that was registered without being counted, nor go below zero', async () => {
    const { counters, registry } = setup();
    const tenant = freshTenant();
    await registry.putConnection({ tenantId: tenant, userId: 'alice', roles: [] }, `${tenant}-uncounted`, now);
    await registry.removeConnection(`${tenant}-uncounted`);
    expect(await counters.current(tenant)).toBe(0);
    await counters.release(tenant, 'alice');
    expect(await counters.current(tenant, 'alice')).toBe(0);
  });

  it('heals a counter left high by lost disconnects when it refuses, once the last check is old enough', async () => {
    const { counters, connect } = setup();
    const tenant = freshTenant();
    await connect(tenant, 'alice');
    await connect(tenant, 'alice');
    // Both connections end without their $disconnect: the items go (as TTL would remove them), the counters stay.
    await client.send(
      new PutCommand({ TableName: tableName, Item: { ...counterKeys.user(tenant, 'alice'), n: 2, checkedAt: now } }),
    );
    for (const c of [1, 2]) await deleteMeta(`${tenant}-c${c}`);
    expect(await connect(tenant, 'alice')).toEqual({ refused: 'user has 2 open connections; the limit is 2' });
    now += 61_000;
    expect(await connect(tenant, 'alice')).toHaveProperty('connectionId');
    expect(await counters.current(tenant, 'alice')).toBe(1);
  });

  it("recounts a user's own connections only, not those of a user whose id continues it ('alice#1234')", async () => {
    const { connect, registry } = setup();
    const tenant = freshTenant();
    for (let i = 0; i < 2; i++) expect(await connect(tenant, 'alice#1234')).toHaveProperty('connectionId');
    const mine = [await connect(tenant, 'alice'), await connect(tenant, 'alice')];
    expect(await connect(tenant, 'alice')).toHaveProperty('refused');
    now += 61_000;
    // Refused again, and recounted: alice's own 2, not 4.
    expect(await connect(tenant, 'alice')).toMatchObject({ refused: expect.anything() });
    for (const c of mine) await registry.removeConnection(String(c.connectionId));
    now += 61_000;
    expect(await connect(tenant, 'alice')).toEqual({ connectionId: expect.any(String) });
  });

  describe('whose $disconnects AWS lost (API Gateway no longer has the connections)', () => {
    /** As lambdas/handlers/connect.ts counts: a user's registered connections that API Gateway still has. */
    const setupAsked = (gone: Set<string>) => {
      const asked: string[] = [];
      let deps!: Parameters<typeof liveUserCount>[2];
      const { connect, live } = setup(tableName, (connections, registry) => {
        deps = {
          connections,
          now: clock,
          isConnected: async (id: string) => {
            asked.push(id);
            return !gone.has(id);
          },
          forget: async (id: string) => void (await registry.removeConnection(id)),
        };
        return (tenantId, userId) =>
          userId === undefined ? connections.count(tenantId) : liveUserCount(tenantId, userId, deps);
      });
      return { connect, asked, live, deps };
    };

    it('admits the user at the next recount, a minute later, and forgets the connections API Gateway lost', async () => {
      const gone = new Set<string>();
      const { connect, asked, live } = setupAsked(gone);
      const tenant = freshTenant();
      const lost = [await connect(tenant, 'alice'), await connect(tenant, 'alice')];
      for (const c of lost) gone.add(String(c.connectionId));
      // Both sockets dropped and no $disconnect ran: the records stay (ttl: 2 h 5 min).
      expect(await connect(tenant, 'alice')).toHaveProperty('refused');
      now += 61_000;
      expect(await connect(tenant, 'alice')).toEqual({ connectionId: expect.any(String) });
      expect(asked.sort()).toEqual(lost.map((c) => String(c.connectionId)).sort());
      expect((await live.list(tenant, 'alice')).map((c) => c.connectionId)).not.toContain(lost[0]?.connectionId);
    });

    it('still refuses when the connections are there, and counts one in its handshake without asking', async () => {
      const { connect, asked } = setupAsked(new Set());
      const tenant = freshTenant();
      const first = await connect(tenant, 'bob');
      now += 61_000;
      await connect(tenant, 'bob');
      now += 1_000;
      // A recount is due: the first is asked about (and is there); the second, a second old, may still be in its
      // handshake (API Gateway would not know it yet) and counts without asking. The refusal stands.
      expect(await connect(tenant, 'bob')).toHaveProperty('refused');
      expect(asked).toEqual([first.connectionId]);
    });

    it('counts a connection it cannot ask about as live, never admitting over the cap', async () => {
      const { deps } = setupAsked(new Set());
      const tenant = freshTenant();
      const registry = new Registry({ client, tableName, now: clock });
      await registry.putConnection({ tenantId: tenant, userId: 'cy', roles: [] }, `${tenant}-x`, now - 120_000);
      const failing = { ...deps, isConnected: async () => Promise.reject(new Error('API unreachable')) };
      expect(await liveUserCount(tenant, 'cy', failing)).toBe(1);
    });

    it('are forgotten by an admin disconnect, which finds them gone', async () => {
      const gone = new Set<string>();
      const { connect, live, deps } = setupAsked(gone);
      const tenant = freshTenant();
      const lost = await connect(tenant, 'dee');
      gone.add(String(lost.connectionId));
      const result = await disconnectAll(tenant, 'dee', {
        connections: live,
        close: async (id) => !gone.has(id),
        forget: deps.forget,
      });
      expect(result).toEqual({ disconnected: 1, failed: 0, remaining: 0 });
      expect(await live.list(tenant, 'dee')).toEqual([]);
    });
  });

  it('recounts a refusing counter at most once per minute, however many handshakes it refuses', async () => {
    let recounts = 0;
    const live = new TenantConnections({ client, tableName, now: clock });
    const counters = new ConnectionCounters({
      client,
      tableName,
      now: clock,
      count: (tenantId, userId) => {
        recounts++;
        return live.count(tenantId, userId);
      },
    });
    const tenant = freshTenant();
    const user = counterKeys.user(tenant, 'alice');
    // At the cap, checked just now (the counter is right: two live connections it cannot see are not needed here).
    await client.send(new PutCommand({ TableName: tableName, Item: { ...user, n: 2, checkedAt: now } }));
    for (let i = 0; i < 12; i++) {
      now += 1000;
      expect(await counters.acquire(tenant, 'alice', caps)).toMatch(/^user has 2 open connections/);
    }
    expect(recounts).toBe(0);
    now += 60_000;
    await counters.acquire(tenant, 'alice', caps);
    expect(recounts).toBe(1);
  });

  it('reads counter numbers both plain and as DynamoDB returns them in a failed condition', () => {
    expect(numberAttribute({ n: 3 }, 'n')).toBe(3);
    expect(numberAttribute({ n: { N: '1800000000000' } }, 'n')).toBe(1_800_000_000_000);
    expect(numberAttribute({ n: { S: '3' } }, 'n')).toBeUndefined();
    expect(numberAttribute(undefined, 'n')).toBeUndefined();
  });

  it('recounts the least recently checked tenants first, a bounded number per run, and sets their exact count', async () => {
    const table = 'connection-counters-recount';
    await ensureTable(dynamo.client, table);
    const { counters, connect } = setup(table);
    const tenants = [freshTenant(), freshTenant(), freshTenant()];
    for (const tenant of tenants) {
      await connect(tenant, 'alice');
      await connect(tenant, 'bob');
    }
    expect([...(await counters.due(10))].sort()).toEqual([...tenants].sort());
    for (const tenant of tenants) {
      now += 1000;
      await counters.recount(tenant);
    }
    expect(await counters.due(10)).toEqual(tenants);
    const [oldest, middle] = tenants as [string, string, string];
    await deleteMeta(`${oldest}-c1`, table); // a lost $disconnect: its counter stays at 2
    await deleteMeta(`${middle}-c3`, table);
    now += 1000;
    expect(await recountDue(counters, 1, () => {})).toEqual({ recounted: 1, failed: 0 });
    now += 1000;
    expect(await counters.current(oldest)).toBe(1);
    expect(await counters.current(middle)).toBe(2);
    await recountDue(counters, 2, () => {});
    for (const tenant of tenants) expect(await counters.current(tenant)).toBe(tenant === tenants[2] ? 2 : 1);
  });

  async function deleteMeta(connectionId: string, table = tableName) {
    const key = { pk: `C#${connectionId}`, sk: 'META' };
    const before = await client.send(new GetCommand({ TableName: table, Key: key }));
    expect(before.Item).toBeDefined();
    await client.send(new DeleteCommand({ TableName: table, Key: key }));
  }
});

describe('a user id in a key', () => {
  it('is percent-encoded, and hashed only where that would not fit, so every key stays within DynamoDB’s', () => {
    expect(userKeyPart('alice#1')).toBe('alice%231');
    // An id whose key fitted before keeps it (its counter and buckets are found after an upgrade).
    expect(userKeyPart('é'.repeat(256))).toBe(encodeURIComponent('é'.repeat(256)));
    const long = '€'.repeat(256);
    expect(userKeyPart(long)).toMatch(/^%h[A-Za-z0-9_-]{43}$/);
    expect(userKeyPart(long)).not.toBe(userKeyPart('€'.repeat(255)));
    // No id spells another's hash: percent-encoding never writes `%h`, and a `~` stays a `~`.
    const hash = userKeyPart(long);
    expect(userKeyPart(hash)).not.toBe(hash);
    expect(userKeyPart(`~${hash.slice(2)}`)).not.toBe(hash);
    for (const key of [counterKeys.user('t'.repeat(64), long).pk, rateKeys.userHttp('t'.repeat(64), long)]) {
      expect(Buffer.byteLength(key)).toBeLessThan(2048);
    }
    expect(Buffer.byteLength(counterKeys.user('t'.repeat(64), '😀'.repeat(128)).pk)).toBeLessThan(2048);
  });
});
