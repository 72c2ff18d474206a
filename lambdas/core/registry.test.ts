import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { expiryKeys } from './expiry.ts';
import { LEFT_ANNOUNCE_AFTER_SECONDS, LEFT_KEPT_SECONDS, Registry } from './registry.ts';

describe('the membership version of a group', () => {
  let client: DynamoDBDocumentClient;
  const tableName = 'registry-version-test';
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  const now = 1_800_000_000_000;
  let seq = 0;
  /** Every command sent, in order; `failVersion` makes raises of a membership version fail. */
  const recording = (options: { failVersion?: boolean } = {}) => {
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const wrapped = {
      send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        sent.push({ name: command.constructor.name, input: command.input });
        const key = command.input.Key as { pk?: string } | undefined;
        if (options.failVersion === true && command.constructor.name === 'UpdateCommand' && key?.pk?.endsWith('#V')) {
          return Promise.reject(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
        }
        return client.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    /** Index of the first command matching, -1 if none. */
    const at = (name: string, pk: (pk: string) => boolean) =>
      sent.findIndex((c) => {
        const { Key, Item } = c.input as { Key?: { pk?: string }; Item?: { pk?: string } };
        return c.name === name && pk(String(Key?.pk ?? Item?.pk));
      });
    return { wrapped, sent, at };
  };
  const setup = (sending: DynamoDBDocumentClient = client) => {
    const tenantId = `t${++seq}`;
    const registry = new Registry({ client: sending, tableName, now: () => now });
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

  it("says a subscribe's replay waits only while the membership waits for a replay from its since", async () => {
    const { tenantId, registry, caller } = setup();
    // Connection ids of their own: an unsubscribe's mark is kept per connection and group, whatever the tenant.
    await registry.putConnection(caller, 'r1', now);
    await registry.putConnection(caller, 'r2', now);
    await registry.subscribe(caller, 'r1', 'chat', now, { since: 4, at: now + 10 });
    expect(await registry.replayState(tenantId, 'chat', 'r1', 4)).toBe('waiting');
    // A later subscribe waiting from another since is taken, not this request's.
    await registry.subscribe(caller, 'r1', 'chat', now, { since: 1, at: now + 20 });
    expect(await registry.replayState(tenantId, 'chat', 'r1', 4)).toBe('taken');
    expect(await registry.replayState(tenantId, 'chat', 'r1', 1)).toBe('waiting');
    // An older request's completion leaves the newer wait alone.
    await registry.completeReplay(tenantId, 'chat', 'r1', 4);
    expect(await registry.replayState(tenantId, 'chat', 'r1', 1)).toBe('waiting');
    await registry.completeReplay(tenantId, 'chat', 'r1', 1);
    expect(await registry.replayState(tenantId, 'chat', 'r1', 1)).toBe('taken');
    await registry.unsubscribe(tenantId, 'r1', 'chat', now + 30);
    expect(await registry.replayState(tenantId, 'chat', 'r1', 1)).toBe('gone');
    // A later subscribe without since is live: taken.
    await registry.subscribe(caller, 'r2', 'chat', now, { since: 7, at: now + 40 });
    await registry.subscribe(caller, 'r2', 'chat', now, { at: now + 50 });
    expect(await registry.replayState(tenantId, 'chat', 'r2', 7)).toBe('taken');
  });

  it('ends, given the time it was written at, only that subscribe’s wait, not a newer one from the same since', async () => {
    const { tenantId, registry, caller } = setup();
    await registry.putConnection(caller, 'r3', now);
    await registry.subscribe(caller, 'r3', 'chat', now, { since: 4, at: now + 10 });
    // The client sent the subscribe again (its first timed out): a newer wait, from the same since.
    await registry.subscribe(caller, 'r3', 'chat', now, { since: 4, at: now + 20 });
    await registry.completeReplay(tenantId, 'chat', 'r3', 4, now + 10);
    expect(await registry.replayState(tenantId, 'chat', 'r3', 4)).toBe('waiting');
    await registry.completeReplay(tenantId, 'chat', 'r3', 4, now + 20);
    expect(await registry.replayState(tenantId, 'chat', 'r3', 4)).toBe('taken');
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

  it('is raised only after the member items changed: subscribe, unsubscribe and removal', async () => {
    const { wrapped, at } = recording();
    const { tenantId, registry, caller } = setup(wrapped);
    const group = (pk: string) => pk === `T#${tenantId}#G#chat`;
    const version = (pk: string) => pk === `T#${tenantId}#G#chat#V`;
    await registry.putConnection(caller, 'c1', now);
    await registry.subscribe(caller, 'c1', 'chat', now);
    expect(at('PutCommand', group)).toBeGreaterThanOrEqual(0);
    expect(at('UpdateCommand', version)).toBeGreaterThan(at('PutCommand', group));

    const unsubscribing = recording();
    await registryOver(unsubscribing.wrapped).unsubscribe(tenantId, 'c1', 'chat');
    expect(unsubscribing.at('UpdateCommand', version)).toBeGreaterThan(unsubscribing.at('DeleteCommand', group));

    await registry.subscribe(caller, 'c1', 'chat', now);
    const removing = recording();
    await registryOver(removing.wrapped).removeConnection('c1');
    const groupDeletes = removing.sent.findIndex((c) => c.name === 'BatchWriteCommand');
    expect(groupDeletes).toBeGreaterThanOrEqual(0);
    expect(removing.at('UpdateCommand', version)).toBeGreaterThan(groupDeletes);
  });

  it('a removal whose version raise fails still removes the connection (the raise is best effort there)', async () => {
    const { registry, caller, memberIds } = setup();
    await registry.putConnection(caller, 'c1', now);
    await registry.subscribe(caller, 'c1', 'chat', now);
    const failing = recording({ failVersion: true });
    await expect(registryOver(failing.wrapped).removeConnection('c1')).resolves.toEqual({ groups: 1 });
    expect(await memberIds()).toEqual([]);
  });

  it('a subscribe whose version raise fails is refused, so the client tries again', async () => {
    const failing = recording({ failVersion: true });
    const { registry, caller } = setup(failing.wrapped);
    await expect(registry.subscribe(caller, 'c1', 'chat', now)).rejects.toThrow('throttled');
  });

  it('reads the members with a strongly consistent Query when asked, and eventually consistent otherwise', async () => {
    const { wrapped, sent } = recording();
    const { tenantId, registry, caller } = setup(wrapped);
    await registry.subscribe(caller, 'c1', 'chat', now);
    for await (const _ of registry.members(tenantId, 'chat', { consistent: true })) {
      // drain
    }
    for await (const _ of registry.members(tenantId, 'chat')) {
      // drain
    }
    const queries = sent.filter((c) => c.name === 'QueryCommand').map((c) => c.input.ConsistentRead);
    expect(queries).toEqual([true, undefined]);
  });

  describe("a connection's subscribe and unsubscribe of one group, run concurrently", () => {
    it('an unsubscribe received before a subscribe that wrote first leaves that subscription, and says so', async () => {
      const { tenantId, registry, caller, version, memberIds } = setup();
      await registry.putConnection(caller, 'c1', now);
      await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 20 });
      const before = await version();
      expect(await registry.unsubscribe(tenantId, 'c1', 'chat', now + 10)).toBe(false);
      expect(await memberIds()).toEqual(['c1']);
      expect(await version()).toBe(before);
      // The connection side stayed too: a removal still finds the membership.
      expect(await registry.removeConnection('c1')).toEqual({ groups: 1 });
    });

    it('keeps a subscribe received in the same millisecond as the unsubscribe (no loss either way)', async () => {
      const { tenantId, registry, caller, memberIds } = setup();
      await registry.putConnection(caller, 'c1', now);
      await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 10 });
      expect(await registry.unsubscribe(tenantId, 'c1', 'chat', now + 10)).toBe(false);
      expect(await memberIds()).toEqual(['c1']);
    });

    it('an unsubscribe received after the subscribe removes it, as does one of a membership written without a time', async () => {
      const { tenantId, registry, caller, memberIds } = setup();
      await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 10 });
      expect(await registry.unsubscribe(tenantId, 'c1', 'chat', now + 20)).toBe(true);
      await registry.subscribe(caller, 'c2', 'chat', now);
      expect(await registry.unsubscribe(tenantId, 'c2', 'chat', now + 20)).toBe(true);
      expect(await memberIds()).toEqual([]);
    });

    it('an unsubscribe run wholly before a subscribe received earlier leaves no membership behind it', async () => {
      const { tenantId, registry, caller, memberIds } = setup();
      await registry.putConnection(caller, 'c1', now);
      expect(await registry.unsubscribe(tenantId, 'c1', 'chat', now + 20)).toBe(true);
      expect(await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 10 })).toBe(false);
      expect(await memberIds()).toEqual([]);
      expect(await registry.groupsOf('c1')).toEqual([]);
      // A subscribe received after that unsubscribe stands.
      expect(await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 30 })).toBe(true);
      expect(await memberIds()).toEqual(['c1']);
      expect(await registry.removeConnection('c1')).toEqual({ groups: 1 });
    });

    it('a subscribe landing after a later subscribe leaves that one as it was, so an unsubscribe between them is refused', async () => {
      const { tenantId, registry, caller, memberIds } = setup();
      await registry.putConnection(caller, 'c1', now);
      expect(await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 30 })).toBe(true);
      expect(await registry.subscribe(caller, 'c1', 'chat', now, { at: now + 10, since: 4 })).toBe(false);
      expect(await registry.unsubscribe(tenantId, 'c1', 'chat', now + 20)).toBe(false);
      expect(await memberIds()).toEqual(['c1']);
      const [member] = await allMembersOf(registry, tenantId);
      expect(member?.replayFrom).toBeUndefined();
    });

    it('writes no membership version for an unsubscribe of a group the connection never held', async () => {
      const { tenantId, registry, version } = setup();
      expect(await registry.unsubscribe(tenantId, 'c1', 'never-held', now + 5)).toBe(true);
      expect(await registry.unsubscribe(tenantId, 'c1', 'never-held-2')).toBe(true);
      expect(await version('never-held')).toBe(0);
      expect(await version('never-held-2')).toBe(0);
    });

    it('keeps only the newest unsubscribe mark, with an expiry past any running subscribe', async () => {
      const { tenantId, registry } = setup();
      await registry.unsubscribe(tenantId, 'c9', 'chat', now + 50);
      await registry.unsubscribe(tenantId, 'c9', 'chat', now + 40);
      const out = await client.send(new GetCommand({ TableName: tableName, Key: { pk: 'C#c9#UNSUB', sk: 'G#chat' } }));
      expect(out.Item).toMatchObject({ at: now + 50 });
      expect(Number(out.Item?.ttl) * 1000 - (now + 50)).toBeGreaterThan(15 * 60_000);
    });

    it("a later subscribe landing between an unsubscribe's two deletes keeps its connection-side item", async () => {
      const { tenantId, caller, memberIds } = setup();
      const direct = registryOver(client);
      await direct.putConnection(caller, 'c1', now);
      await direct.subscribe(caller, 'c1', 'chat', now, { at: now + 10 });
      let resubscribe: (() => Promise<boolean>) | undefined = () =>
        direct.subscribe(caller, 'c1', 'chat', now, { at: now + 30 });
      // Runs the later subscribe right before the unsubscribe's connection-side delete.
      const interleaved = {
        send: async (command: { constructor: { name: string }; input: { Key?: { pk?: string } } }) => {
          if (command.constructor.name === 'DeleteCommand' && command.input.Key?.pk === 'C#c1' && resubscribe) {
            const run = resubscribe;
            resubscribe = undefined;
            await run();
          }
          return client.send(command as never);
        },
      } as unknown as DynamoDBDocumentClient;
      expect(await registryOver(interleaved).unsubscribe(tenantId, 'c1', 'chat', now + 20)).toBe(true);
      expect(await memberIds()).toEqual(['c1']);
      expect(await direct.removeConnection('c1')).toEqual({ groups: 1 });
    });
  });

  it('says since when a connection is at the subscription cap: its first refusal since its last unsubscribe', async () => {
    const { tenantId, registry } = setup();
    expect(await registry.atCapSince('e1', now)).toBe(now);
    expect(await registry.atCapSince('e1', now + 70_000)).toBe(now);
    await registry.unsubscribe(tenantId, 'e1', 'chat', now + 80_000);
    expect(await registry.atCapSince('e1', now + 90_000)).toBe(now + 90_000);
    expect(await registry.atCapSince('e2', now + 90_000)).toBe(now + 90_000);
  });

  describe("a connection's subscribe run beside its removal ($disconnect runs beside the connection's last frames)", () => {
    it('a subscribe landing after the removal leaves nothing and does not stand', async () => {
      // Connection ids of their own: an unsubscribe's mark is kept per connection and group, whatever the tenant.
      const { registry, caller, memberIds } = setup();
      await registry.putConnection(caller, 'd1', now);
      await registry.removeConnection('d1');
      expect(await registry.subscribe(caller, 'd1', 'chat', now, { at: now + 10 })).toBe(false);
      expect(await memberIds()).toEqual([]);
      expect(await registry.groupsOf('d1')).toEqual([]);
    });

    it("a subscribe that writes after the removal's first look, and still finds the connection, is removed too", async () => {
      const { caller, memberIds } = setup();
      const direct = registryOver(client);
      await direct.putConnection(caller, 'd2', now);
      let subscribing: Promise<boolean> | undefined;
      // The subscribe runs whole right after the removal listed the connection's items, before META goes.
      const interleaved = {
        send: async (command: { constructor: { name: string }; input: { Key?: { pk?: string; sk?: string } } }) => {
          if (command.constructor.name === 'DeleteCommand' && command.input.Key?.sk === 'META' && !subscribing) {
            subscribing = direct.subscribe(caller, 'd2', 'chat', now, { at: now + 10 });
            expect(await subscribing).toBe(true);
          }
          return client.send(command as never);
        },
      } as unknown as DynamoDBDocumentClient;
      expect(await registryOver(interleaved).removeConnection('d2')).toEqual({ groups: 1 });
      expect(await memberIds()).toEqual([]);
      expect(await direct.groupsOf('d2')).toEqual([]);
    });
  });

  const allMembersOf = async (registry: Registry, tenantId: string) => {
    const members = [];
    for await (const page of registry.members(tenantId, 'chat')) members.push(...page);
    return members;
  };

  /** A registry sending through another client (the tenant's items are the table's). */
  const registryOver = (sending: DynamoDBDocumentClient) =>
    new Registry({ client: sending, tableName, now: () => now });
});

describe('a connection removed by delivery or a presence check (remember)', () => {
  let client: DynamoDBDocumentClient;
  const tableName = 'registry-left-test';
  useLocalTable(tableName, (table) => {
    client = table.client;
  });
  let clock = 1_800_000_000_000;
  let seq = 0;
  const setup = async (groups: readonly string[]) => {
    const tenantId = `t${++seq}`;
    const connectionId = `c${seq}`;
    const registry = new Registry({ client, tableName, now: () => clock });
    const caller = { tenantId, userId: 'alice', roles: ['member'] };
    await registry.putConnection(caller, connectionId, clock);
    for (const group of groups) await registry.subscribe(caller, connectionId, group, clock);
    return { tenantId, connectionId, registry };
  };
  const leftItem = (connectionId: string) =>
    client
      .send(new GetCommand({ TableName: tableName, Key: { pk: `C#${connectionId}`, sk: 'LEFT' } }))
      .then((out) => out.Item);

  it('keeps the groups it was in for its $disconnect, and removes every membership', async () => {
    const { tenantId, connectionId, registry } = await setup(['room:a', 'room:b']);
    expect(await registry.removeConnection(connectionId, { remember: true })).toEqual({ groups: 2 });
    expect(await registry.groupsOf(connectionId)).toEqual([]);
    expect((await registry.groupsLeft(connectionId, tenantId)).sort()).toEqual(['room:a', 'room:b']);
  });

  it('keeps them through a second removal that remembers, and its $disconnect (a plain removal) deletes them', async () => {
    const { tenantId, connectionId, registry } = await setup(['room:a']);
    await registry.removeConnection(connectionId, { remember: true });
    // A second 410 of the same connection finds no membership: it writes nothing and deletes nothing.
    expect(await registry.removeConnection(connectionId, { remember: true })).toEqual({ groups: 0 });
    expect(await registry.groupsLeft(connectionId, tenantId)).toEqual(['room:a']);
    await registry.removeConnection(connectionId);
    expect(await leftItem(connectionId)).toBeUndefined();
    expect(await registry.groupsLeft(connectionId, tenantId)).toEqual([]);
  });

  it('writes nothing for a connection with no membership, nor on a plain removal', async () => {
    const none = await setup([]);
    await none.registry.removeConnection(none.connectionId, { remember: true });
    expect(await leftItem(none.connectionId)).toBeUndefined();
    const plain = await setup(['room:a']);
    await plain.registry.removeConnection(plain.connectionId);
    expect(await leftItem(plain.connectionId)).toBeUndefined();
  });

  /** A client sending through the table's, with `before`/`after` hooks around each command. */
  type Sent = { constructor: { name: string }; input: Record<string, unknown> };
  const hooked = (before: (cmd: Sent) => Promise<void> | void, after: (cmd: Sent) => Promise<void> | void = () => {}) =>
    ({
      send: async (cmd: never) => {
        await before(cmd);
        const out = await client.send(cmd);
        await after(cmd);
        return out;
      },
    }) as unknown as DynamoDBDocumentClient;

  it('keeps every group when two removals run at once, one reading between the other’s deletes', async () => {
    const groups = Array.from({ length: 30 }, (_, i) => `room:${String(i).padStart(2, '0')}`);
    const { tenantId, connectionId, registry } = await setup(groups);
    // Its own items go 25 to a BatchWriteItem: the second removal (a second run meeting the 410) looks in between.
    let second: Promise<unknown> | undefined;
    const first = new Registry({
      client: hooked(
        () => undefined,
        async (cmd) => {
          if (cmd.constructor.name !== 'BatchWriteCommand' || second !== undefined) return;
          const requests = Object.values(
            cmd.input.RequestItems as Record<string, { DeleteRequest: { Key: { pk: string } } }[]>,
          )[0];
          if (requests?.[0]?.DeleteRequest.Key.pk !== `C#${connectionId}`) return;
          second = registry.removeConnection(connectionId, { remember: true });
          await second;
        },
      ),
      tableName,
      now: () => clock,
    });
    await first.removeConnection(connectionId, { remember: true });
    expect(second).toBeDefined();
    // Until review the second replaced the item with the 5 groups it still saw.
    expect((await registry.groupsLeft(connectionId, tenantId)).sort()).toEqual(groups);
  });

  it('keeps a group whose membership only its second look found (a subscribe landing beside it)', async () => {
    const { tenantId, connectionId, registry } = await setup(['room:a']);
    const caller = { tenantId, userId: 'alice', roles: ['member'] };
    let landed = false;
    const remover = new Registry({
      client: hooked(async (cmd) => {
        // After its first look, before anything is removed: the subscribe still finds META and stands.
        const { Key, Item } = cmd.input as { Key?: { sk?: string }; Item?: { sk?: string } };
        if (landed || (Key ?? Item)?.sk !== 'LEFT') return;
        landed = true;
        await registry.subscribe(caller, connectionId, 'room:c', clock, { at: clock + 5 });
      }),
      tableName,
      now: () => clock,
    });
    await remover.removeConnection(connectionId, { remember: true });
    expect(landed).toBe(true);
    expect(await registry.groupsOf(connectionId)).toEqual([]);
    expect((await registry.groupsLeft(connectionId, tenantId)).sort()).toEqual(['room:a', 'room:c']);
  });

  it('looks consistently first, so a membership acknowledged just before is among the groups kept', async () => {
    const { tenantId, connectionId, registry } = await setup(['room:a', 'room:c']);
    // A replica that has not applied the room:c subscribe yet answers an eventually consistent Query without it.
    const replica = new Registry({
      client: {
        send: async (cmd: never) => {
          const out = (await client.send(cmd)) as { Items?: { sk: string }[] };
          const sent = cmd as { constructor: { name: string }; input: { ConsistentRead?: boolean } };
          if (sent.constructor.name !== 'QueryCommand' || sent.input.ConsistentRead === true) return out;
          return { ...out, Items: out.Items?.filter((item) => item.sk !== 'G#room:c') };
        },
      } as unknown as DynamoDBDocumentClient,
      tableName,
      now: () => clock,
    });
    await replica.removeConnection(connectionId, { remember: true });
    expect((await registry.groupsLeft(connectionId, tenantId)).sort()).toEqual(['room:a', 'room:c']);
  });

  it('indexes the item for the reaper a while ahead, once, with its user, and lets it be read and forgotten', async () => {
    const { tenantId, connectionId, registry } = await setup(['room:a']);
    await registry.removeConnection(connectionId, { remember: true });
    const item = await leftItem(connectionId);
    const due = Math.floor(clock / 1000) + LEFT_ANNOUNCE_AFTER_SECONDS;
    expect(item).toMatchObject({ userId: 'alice', connectionId, exp: due, ...expiryKeys(connectionId, due) });
    expect(await registry.leftConnection(connectionId)).toEqual({
      connectionId,
      tenantId,
      userId: 'alice',
      groups: ['room:a'],
    });
    await registry.forgetLeft(connectionId);
    expect(await registry.leftConnection(connectionId)).toBeUndefined();
  });

  it('keeps the first removal’s time for the reaper when another adds to the item later', async () => {
    const { connectionId, registry } = await setup(['room:a']);
    await registry.removeConnection(connectionId, { remember: true });
    const first = await leftItem(connectionId);
    const caller = { tenantId: String(first?.tenantId), userId: 'alice', roles: ['member'] };
    // A minute later a second remembering removal finds a membership (written here as a subscribe landing late would
    // be): it adds its group and moves nothing of the reaper's.
    clock += 60_000;
    await registry.putConnection(caller, connectionId, clock);
    await registry.subscribe(caller, connectionId, 'room:b', clock);
    await registry.removeConnection(connectionId, { remember: true });
    const second = await leftItem(connectionId);
    expect({ exp: second?.exp, gsi2pk: second?.gsi2pk }).toEqual({ exp: first?.exp, gsi2pk: first?.gsi2pk });
    expect([...((second?.groups as Set<string> | undefined) ?? [])].sort()).toEqual(['room:a', 'room:b']);
  });

  it('names no group to another tenant, nor once the item expired', async () => {
    const { tenantId, connectionId, registry } = await setup(['room:a']);
    await registry.removeConnection(connectionId, { remember: true });
    expect(await registry.groupsLeft(connectionId, `${tenantId}-other`)).toEqual([]);
    const item = await leftItem(connectionId);
    expect(item?.ttl).toBe(Math.floor(clock / 1000) + LEFT_KEPT_SECONDS);
    clock += LEFT_KEPT_SECONDS * 1000;
    expect(await registry.groupsLeft(connectionId, tenantId)).toEqual([]);
  });
});
