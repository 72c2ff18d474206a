/**
 * The reaper's announcing of leaves for connections removed without their `$disconnect` (`createLeftAnnouncer`), on
 * DynamoDB Local, with API Gateway and the tenant directory faked.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { createConnectionRemoval, createLeftAnnouncer } from './connection-removal.ts';
import { ForbiddenError } from './errors.ts';
import { Registry } from './registry.ts';

describe('announcing the leaves of a connection whose $disconnect never came', () => {
  let client: DynamoDBDocumentClient;
  useLocalTable('connection-removal-test', (table) => {
    client = table.client;
  });
  const now = 1_800_000_000_000;
  let seq = 0;

  async function world(
    options: { tenants?: () => Promise<unknown>; failReads?: () => boolean; failLeftRead?: boolean } = {},
  ) {
    const tenantId = `t${++seq}`;
    const registry = new Registry({ client, tableName: 'connection-removal-test', now: () => now });
    const kim = { tenantId, userId: 'kim', roles: ['member'] };
    const leo = { tenantId, userId: 'leo', roles: ['member'] };
    const kimC = `${tenantId}-kim`;
    const leoC = `${tenantId}-leo`;
    for (const [caller, id] of [
      [kim, kimC],
      [leo, leoC],
    ] as const) {
      await registry.putConnection(caller, id, now);
      await registry.subscribe(caller, id, 'room:a', now, { at: now });
    }
    // Delivery met leo's 410.
    await registry.removeConnection(leoC, { remember: true });
    const posted: { to: string; group: string; event: string; userId: string }[] = [];
    // The registry, with its member reads failing while `failReads` says so, and its read of the groups left if asked.
    const throttled = () => Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
    const reading: Registry = Object.assign(Object.create(registry), {
      members: (...args: Parameters<Registry['members']>) => {
        if (options.failReads?.()) throw throttled();
        return registry.members(...args);
      },
      groupsLeft: (...args: Parameters<Registry['groupsLeft']>) =>
        options.failLeftRead === true ? Promise.reject(throttled()) : registry.groupsLeft(...args),
    });
    const ports = (tenants: () => Promise<unknown>) => ({
      registry: reading,
      connections: {
        post: async (to: string, data: string) => {
          posted.push({ to, ...JSON.parse(data) });
          return true;
        },
        isConnected: async () => true,
      } as never,
      tenants: { get: tenants } as never,
      onError: () => undefined,
    });
    const configured = async () => ({ presenceGroups: ['room:*'] });
    const announce = createLeftAnnouncer(ports(options.tenants ?? configured));
    /** Leo's `$disconnect`, reading the tenant with `tenants`. */
    const disconnect = (tenants: () => Promise<unknown> = configured) =>
      createConnectionRemoval(ports(tenants))({ tenantId, userId: 'leo', connectionId: leoC });
    return { tenantId, registry, kimC, leoC, posted, announce, disconnect };
  }

  it('announces the leave where the user has no other connection, then forgets the item', async () => {
    const { registry, leoC, kimC, posted, announce } = await world();
    await expect(announce(leoC)).resolves.toBe(true);
    expect(posted).toEqual([{ to: kimC, type: 'presence', group: 'room:a', event: 'leave', userId: 'leo' }]);
    expect(await registry.leftConnection(leoC)).toBeUndefined();
    await expect(announce(leoC)).resolves.toBe(false);
  });

  it('keeps the item and throws when a group cannot be read, so the next sweep tries again', async () => {
    let failing = true;
    const { registry, leoC, posted, announce } = await world({ failReads: () => failing });
    // Until review the error was logged and the item deleted: the leave was lost for good.
    await expect(announce(leoC)).rejects.toThrow('throttled');
    expect(await registry.leftConnection(leoC)).toBeDefined();
    failing = false;
    await expect(announce(leoC)).resolves.toBe(true);
    expect(posted.map((p) => p.event)).toEqual(['leave']);
  });

  it('keeps the item when the tenant cannot be read, and forgets it for a tenant no longer configured', async () => {
    const flaky = await world({ tenants: () => Promise.reject(new Error('ServiceUnavailable')) });
    await expect(flaky.announce(flaky.leoC)).rejects.toThrow('ServiceUnavailable');
    expect(await flaky.registry.leftConnection(flaky.leoC)).toBeDefined();
    const gone = await world({ tenants: () => Promise.reject(new ForbiddenError("tenant 'x' is not configured")) });
    await expect(gone.announce(gone.leoC)).resolves.toBe(false);
    expect(await gone.registry.leftConnection(gone.leoC)).toBeUndefined();
  });

  it('says it announced nothing when the user is back in the group on another connection', async () => {
    const { tenantId, registry, leoC, posted, announce } = await world();
    const back = { tenantId, userId: 'leo', roles: ['member'] };
    await registry.putConnection(back, `${leoC}-2`, now);
    await registry.subscribe(back, `${leoC}-2`, 'room:a', now, { at: now });
    // Until review the sweep counted it as announced.
    await expect(announce(leoC)).resolves.toBe(false);
    expect(posted).toEqual([]);
  });

  it('is not needed after the $disconnect came: it announced the leave and took the item', async () => {
    const { registry, leoC, posted, disconnect, announce } = await world();
    await disconnect();
    expect(posted.map((p) => `${p.event}:${p.group}`)).toEqual(['leave:room:a']);
    expect(await registry.leftConnection(leoC)).toBeUndefined();
    await expect(announce(leoC)).resolves.toBe(false);
  });

  it('is left to the reaper by a $disconnect that cannot read the tenant', async () => {
    const { registry, leoC, posted, disconnect, announce } = await world();
    // Until review the $disconnect deleted the item all the same, and the leave was lost for good.
    await disconnect(() => Promise.reject(new Error('ServiceUnavailable')));
    expect(posted).toEqual([]);
    expect((await registry.leftConnection(leoC))?.groups).toEqual(['room:a']);
    await expect(announce(leoC)).resolves.toBe(true);
    expect(posted.map((p) => `${p.event}:${p.group}`)).toEqual(['leave:room:a']);
  });

  it('is left to the reaper by a $disconnect that cannot read the groups kept for it', async () => {
    const { registry, leoC, posted, disconnect, announce } = await world({ failLeftRead: true });
    await disconnect();
    expect(posted).toEqual([]);
    expect((await registry.leftConnection(leoC))?.groups).toEqual(['room:a']);
    await expect(announce(leoC)).resolves.toBe(true);
    expect(posted.map((p) => `${p.event}:${p.group}`)).toEqual(['leave:room:a']);
  });
});
