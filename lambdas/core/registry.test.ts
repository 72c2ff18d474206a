import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { Registry } from './registry.ts';

describe('the membership version of a group', () => {
  let client: DynamoDBDocumentClient;
  const tableName = 'registry-version-test';
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  const now = 1_800_000_000_000;
  let seq = 0;
  const setup = () => {
    const tenantId = `t${++seq}`;
    const registry = new Registry({ client, tableName, now: () => now });
    const caller = { tenantId, userId: 'alice', roles: ['member'] };
    const version = (group = 'chat') => registry.membershipVersion(tenantId, group);
    const memberIds = async (group = 'chat') => {
      const ids: string[] = [];
      for await (const page of registry.members(tenantId, group)) ids.push(...page.map((m) => m.connectionId));
      return ids;
    };
    return { tenantId, registry, caller, version, memberIds };
  };

  it('is 0 for a group nobody joined', async () => {
    const { version } = setup();
    expect(await version()).toBe(0);
  });

  it('goes up with each subscribe and unsubscribe, after the member items changed', async () => {
    const { tenantId, registry, caller, version, memberIds } = setup();
    await registry.putConnection(caller, 'c1', now);
    await registry.subscribe(caller, 'c1', 'chat', now);
    const afterSubscribe = await version();
    expect(afterSubscribe).toBeGreaterThan(0);
    expect(await memberIds()).toEqual(['c1']);
    await registry.unsubscribe(tenantId, 'c1', 'chat');
    expect(await version()).toBeGreaterThan(afterSubscribe);
    expect(await memberIds()).toEqual([]);
  });

  it('goes up when a member ends its replay wait, and not for a member that already left', async () => {
    const { tenantId, registry, caller, version } = setup();
    await registry.subscribe(caller, 'c1', 'chat', now, { since: 0 });
    const waiting = await version();
    await registry.completeReplay(tenantId, 'chat', 'c1');
    const live = await version();
    expect(live).toBeGreaterThan(waiting);
    await registry.completeReplay(tenantId, 'chat', 'gone');
    expect(await version()).toBe(live);
  });

  it('goes up in every group of a removed connection, and only there', async () => {
    const { registry, caller, version, memberIds } = setup();
    await registry.putConnection(caller, 'c1', now);
    await registry.subscribe(caller, 'c1', 'one', now);
    await registry.subscribe(caller, 'c1', 'two', now);
    const before = { one: await version('one'), two: await version('two'), three: await version('three') };
    await registry.removeConnection('c1');
    expect(await version('one')).toBeGreaterThan(before.one);
    expect(await version('two')).toBeGreaterThan(before.two);
    expect(await version('three')).toBe(before.three);
    expect(await memberIds('one')).toEqual([]);
  });

  it('is kept per tenant: the same group name in another tenant does not move', async () => {
    const a = setup();
    const b = setup();
    await a.registry.subscribe(a.caller, 'c1', 'chat', now);
    expect(await a.version()).toBeGreaterThan(0);
    expect(await b.version()).toBe(0);
  });

  it('reads each member with its expiry', async () => {
    const { tenantId, registry, caller } = setup();
    await registry.subscribe(caller, 'c1', 'chat', now);
    const ttls: (number | undefined)[] = [];
    for await (const page of registry.members(tenantId, 'chat')) ttls.push(...page.map((m) => m.ttl));
    expect(ttls).toEqual([Registry.expiryOf(now)]);
  });
});
