import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { TenantDirectory } from './tenants.ts';

interface Sent {
  readonly name: string;
  readonly input: Record<string, unknown>;
}

/** A document client that records each command and answers Queries of index gsi2 from `pages` (by `gsi2sk` prefix). */
function fakeClient(pages: Record<string, Record<string, unknown>[][]>) {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const { name } = command.constructor;
      sent.push({ name, input: command.input });
      if (name !== 'QueryCommand') return {};
      const values = command.input.ExpressionAttributeValues as Record<string, string>;
      const kind = values[':kind'] ?? '';
      const page = Number((command.input.ExclusiveStartKey as { page?: number } | undefined)?.page ?? 0);
      const all = pages[kind] ?? [];
      return {
        Items: all[page] ?? [],
        ...(page + 1 < all.length && { LastEvaluatedKey: { page: page + 1 } }),
      };
    },
  };
  return { client: client as unknown as DynamoDBDocumentClient, sent };
}

const config = (tenantId: string) => ({
  pk: `T#${tenantId}`,
  sk: 'CONFIG',
  type: 'tenant',
  gsi2pk: 'TENANTS',
  gsi2sk: `C#${tenantId}`,
  tenantId,
  roleRules: {},
});
const snapshot = { version: 3, hash: 'h', introspectedAt: '2026-12-02T00:00:00Z', entities: {}, skipped: {} };
const schemaItem = (tenantId: string) => ({
  pk: `T#${tenantId}`,
  sk: 'SCHEMA',
  gsi2pk: 'TENANTS',
  gsi2sk: `S#${tenantId}`,
  snapshot: JSON.stringify(snapshot),
});

describe('the tenant catalog', () => {
  it('is listed with Queries of its index partition, every page, never a Scan', async () => {
    const { client, sent } = fakeClient({
      'C#': [[config('globex')], [config('acme')]],
      'S#': [[schemaItem('acme')]],
    });
    const tenants = await new TenantDirectory({ client, tableName: 't' }).list();

    expect(tenants.map((t) => [t.tenantId, t.schema?.version])).toEqual([
      ['acme', 3],
      ['globex', undefined],
    ]);
    expect(sent.map((s) => s.name)).toEqual(['QueryCommand', 'QueryCommand', 'QueryCommand']);
    for (const { input } of sent) {
      expect(input).toMatchObject({
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk AND begins_with(gsi2sk, :kind)',
      });
      expect((input.ExpressionAttributeValues as Record<string, string>)[':pk']).toBe('TENANTS');
    }
  });

  it('reads no schema snapshot when listed without schemas (the outbox relay)', async () => {
    const { client, sent } = fakeClient({ 'C#': [[config('acme')]], 'S#': [[schemaItem('acme')]] });
    const tenants = await new TenantDirectory({ client, tableName: 't' }).list({ schemas: false });

    expect(tenants.map((t) => [t.tenantId, t.schema])).toEqual([['acme', undefined]]);
    expect(sent.map((s) => (s.input.ExpressionAttributeValues as Record<string, string>)[':kind'])).toEqual(['C#']);
  });

  it('leaves out and names a tenant whose items do not parse when asked to, and fails the listing otherwise', async () => {
    const broken = { ...config('broken'), roleRules: 'not rules' };
    const { client } = fakeClient({
      'C#': [[config('acme'), broken, config('globex')]],
      'S#': [[{ ...schemaItem('globex'), snapshot: '{not json' }]],
    });
    const directory = new TenantDirectory({ client, tableName: 't' });
    const invalid: string[] = [];
    const listed = await directory.list({ onInvalid: (tenantId) => invalid.push(tenantId) });
    // Until 2026-12-04 one such item failed the outbox relay's listing, so no tenant's outbox was relayed.
    expect(listed.map((t) => t.tenantId)).toEqual(['acme']);
    expect(invalid).toEqual(['broken', 'globex']);
    await expect(directory.list()).rejects.toThrow();
  });

  it('finds one tenant with a strongly consistent read of its own items, past the cache', async () => {
    const { client, sent } = fakeClient({});
    expect(await new TenantDirectory({ client, tableName: 't' }).find('acme')).toBeUndefined();
    expect(sent).toEqual([
      {
        name: 'QueryCommand',
        input: expect.objectContaining({ ExpressionAttributeValues: { ':pk': 'T#acme' }, ConsistentRead: true }),
      },
    ]);
  });

  it('forgets within seconds that a tenant was not configured, and keeps a configured one for the cache time', async () => {
    let items: Record<string, unknown>[] = [];
    let queries = 0;
    const client = {
      send: async () => {
        queries++;
        return { Items: items };
      },
    } as unknown as DynamoDBDocumentClient;
    let now = 1_000_000;
    const tenants = new TenantDirectory({ client, tableName: 't', now: () => now });
    await expect(tenants.get('hooli')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // Onboarded just after its users' first (refused) requests.
    items = [config('hooli')];
    now += 4_000;
    await expect(tenants.get('hooli')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    now += 2_000;
    await expect(tenants.get('hooli')).resolves.toMatchObject({ tenantId: 'hooli' });
    const asked = queries;
    now += 50_000;
    await tenants.get('hooli');
    expect(queries).toBe(asked);
  });

  it('writes a config and its schema with their index keys', async () => {
    const { client, sent } = fakeClient({});
    await new TenantDirectory({ client, tableName: 't' }).put({ tenantId: 'acme', roleRules: {}, schema: snapshot });

    const items = sent.filter((s) => s.name === 'PutCommand').map((s) => s.input.Item as Record<string, unknown>);
    expect(items.map((i) => [i.sk, i.gsi2pk, i.gsi2sk])).toEqual([
      ['SCHEMA', 'TENANTS', 'S#acme'],
      ['CONFIG', 'TENANTS', 'C#acme'],
    ]);
  });
});
