import { describe, expect, it } from '@jest/globals';
import { FakeDataApi } from '../../../test/support/fake-data-api.ts';
import type { ChangeEvent } from './events.ts';
import type { EntityCaller, EntityRules, SchemaSnapshot } from './model.ts';
import { EntityService, type TenantData, versionImages } from './service.ts';

const schema: SchemaSnapshot = {
  entities: {
    note: {
      primaryKey: 'id',
      fields: {
        id: { type: 'text', nullable: false },
        title: { type: 'text', nullable: false },
        owner: { type: 'text', nullable: true },
      },
    },
    secret: { primaryKey: 'id', fields: { id: { type: 'text', nullable: false } } },
  },
};
const rules: EntityRules = {
  note: {
    readRoles: ['member', 'viewer'],
    writeRoles: ['member', 'scribe'],
    rowFilter: { column: 'owner', equalsClaim: 'sub' },
    bypassRoles: ['admin'],
  },
};
const db = { clusterArn: 'arn:cluster', secretArn: 'arn:secret', databaseName: 'acme' };

const caller = (userId: string, roles: string[] = ['member']): EntityCaller => ({
  tenantId: 'acme',
  userId,
  roles,
  claims: { sub: userId },
});
const alice = caller('alice');

function setup() {
  const data = new FakeDataApi({ note: 'id', secret: 'id' });
  const published: ChangeEvent[][] = [];
  const publishErrors: unknown[] = [];
  const asked: string[] = [];
  let failPublish: Error | undefined;
  const service = new EntityService({
    data,
    tenantData: async (tenantId): Promise<TenantData> => {
      asked.push(tenantId);
      return { db, schema, rules };
    },
    publish: async (events) => {
      if (failPublish !== undefined) throw failPublish;
      published.push([...events]);
    },
    onPublishError: (err) => publishErrors.push(err),
  });
  return {
    data,
    service,
    published,
    publishErrors,
    asked,
    queueDown: (err = new Error('ServiceUnavailable')) => {
      failPublish = err;
    },
  };
}

describe('EntityService.create', () => {
  it('commits the row and its change-log entry together, publishes the change event, then marks it published', async () => {
    const { service, data, published, asked } = setup();
    const row = await service.create(alice, 'note', { id: 'n1', title: 'Hello' });
    expect(row).toEqual({ id: 'n1', title: 'Hello', owner: 'alice', _version: 1 });
    expect(asked).toEqual(['acme']);
    expect(published).toEqual([[{ tenantId: 'acme', entity: 'note', key: 'n1', version: 1 }]]);
    expect(data.log).toMatchObject([
      { entity: 'note', key: 'n1', version: 1, op: 'insert', changed_by: 'alice', published: true },
    ]);
    expect(data.log[0]?.diff).toEqual({ id: [null, 'n1'], title: [null, 'Hello'], owner: [null, 'alice'] });
    // The write (judged on the row as stored in its own RETURNING) and its change-log row ran in the transaction; the
    // mark after the commit.
    expect(data.statements.map((s) => s.inTransaction)).toEqual([true, true, true, false]);
  });

  it('still succeeds when the changes queue is unreachable, and leaves the change unpublished for the relay', async () => {
    const { service, data, published, publishErrors, queueDown } = setup();
    queueDown();
    const row = await service.create(alice, 'note', { id: 'n1', title: 'Hello' });
    expect(row).toMatchObject({ id: 'n1', _version: 1 });
    expect(published).toEqual([]);
    expect(publishErrors).toHaveLength(1);
    expect(data.log).toMatchObject([{ key: 'n1', version: 1, published: false }]);
    expect(data.tables.get('note')?.has('n1')).toBe(true);
  });

  it('still succeeds when marking the change published fails after it was sent (the relay sends it again, deduplicated downstream)', async () => {
    const { service, data, published, publishErrors } = setup();
    data.failWhen((sql) => sql.includes('SET published = true'));
    expect(await service.create(alice, 'note', { id: 'n1', title: 'Hello' })).toMatchObject({ _version: 1 });
    expect(published).toHaveLength(1);
    expect(publishErrors).toHaveLength(1);
    expect(data.log[0]?.published).toBe(false);
  });

  it('publishes nothing and keeps nothing when the transaction fails', async () => {
    const { service, data, published } = setup();
    data.failWhen((sql) => sql.startsWith('INSERT INTO "tenantcast_change_log"'));
    await expect(service.create(alice, 'note', { id: 'n1', title: 'Hello' })).rejects.toThrow('database unavailable');
    expect(published).toEqual([]);
    expect(data.tables.get('note')?.size).toBe(0);
    expect(data.log).toEqual([]);
  });

  it('continues the version sequence of a key that existed before', async () => {
    const { service, data } = setup();
    data.addChange({
      entity: 'note',
      key: 'n1',
      version: 4,
      op: 'delete',
      changed_by: 'bob',
      diff: {},
      published: true,
    });
    expect(await service.create(alice, 'note', { id: 'n1', title: 'Again' })).toMatchObject({ _version: 5 });
  });

  it('answers a writer without a read role with the key and version it wrote, none of the row', async () => {
    const { service } = setup();
    const sam = caller('sam', ['scribe']);
    await expect(service.get(sam, 'note', 'n1')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await service.create(sam, 'note', { id: 'n1', title: 'Sealed' })).toEqual({ id: 'n1', _version: 1 });
    expect(await service.update(sam, 'note', 'n1', { title: 'Still sealed' }, undefined)).toEqual({
      id: 'n1',
      _version: 2,
    });
    expect(await service.get(caller('ann', ['admin', 'member']), 'note', 'n1')).toMatchObject({
      title: 'Still sealed',
    });
  });

  it("refuses a row outside the caller's row filter, and a role without write rights, before touching the database", async () => {
    const { service, data } = setup();
    await expect(service.create(alice, 'note', { id: 'n1', title: 'x', owner: 'bob' })).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(service.create(caller('vic', ['viewer']), 'note', { id: 'n2', title: 'x' })).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(service.create(alice, 'secret', { id: 's1' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(service.create(alice, 'nope', { id: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(service.create(alice, 'note', { id: 'n3', title: 'x', bogus: 1 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    expect(data.statements).toEqual([]);
  });
});

describe('EntityService.update and remove', () => {
  it('updates with the next version and the diff of what changed', async () => {
    const { service, data, published } = setup();
    await service.create(alice, 'note', { id: 'n1', title: 'Draft' });
    const row = await service.update(alice, 'note', 'n1', { title: 'Final' }, 1);
    expect(row).toEqual({ id: 'n1', title: 'Final', owner: 'alice', _version: 2 });
    expect(data.log[1]).toMatchObject({ version: 2, op: 'update', diff: { title: ['Draft', 'Final'] } });
    expect(published.flat().map((e) => e.version)).toEqual([1, 2]);
  });

  it('refuses a stale If-Match with CONFLICT and changes nothing', async () => {
    const { service, data, published } = setup();
    await service.create(alice, 'note', { id: 'n1', title: 'Draft' });
    await service.update(alice, 'note', 'n1', { title: 'Second' }, undefined);
    await expect(service.update(alice, 'note', 'n1', { title: 'Third' }, 1)).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect(data.tables.get('note')?.get('n1')?.title).toBe('Second');
    expect(data.log).toHaveLength(2);
    expect(published).toHaveLength(2);
  });

  it("reports another user's row as not found, for update and delete alike", async () => {
    const { service } = setup();
    await service.create(alice, 'note', { id: 'n1', title: 'Mine' });
    const bob = caller('bob');
    await expect(service.update(bob, 'note', 'n1', { title: 'Ours' }, undefined)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(service.remove(bob, 'note', 'n1', undefined)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await service.get(caller('root', ['admin', 'member']), 'note', 'n1')).toMatchObject({ title: 'Mine' });
  });

  it('deletes with a delete change whose diff keeps the last values', async () => {
    const { service, data, published } = setup();
    await service.create(alice, 'note', { id: 'n1', title: 'Bye' });
    await service.remove(alice, 'note', 'n1', 1);
    expect(data.tables.get('note')?.has('n1')).toBe(false);
    expect(data.log[1]).toMatchObject({ version: 2, op: 'delete', diff: { title: ['Bye', null] } });
    expect(published.at(-1)).toEqual([{ tenantId: 'acme', entity: 'note', key: 'n1', version: 2 }]);
    await expect(service.get(alice, 'note', 'n1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('EntityService.schema', () => {
  it('lists only the entities the caller may read or write, without column internals', async () => {
    const { service } = setup();
    expect(await service.schema(alice)).toEqual({
      entities: {
        note: {
          primaryKey: 'id',
          fields: {
            id: { type: 'text', nullable: false },
            title: { type: 'text', nullable: false },
            owner: { type: 'text', nullable: true },
          },
          canRead: true,
          canWrite: true,
        },
      },
    });
    expect(await service.schema(caller('nobody', []))).toEqual({ entities: {} });
  });

  it('says which fields have a default, so a form can leave them out of a create', async () => {
    const withDefault: SchemaSnapshot = {
      entities: {
        note: {
          primaryKey: 'id',
          fields: {
            ...schema.entities.note?.fields,
            opened_at: { type: 'timestamptz', nullable: false, hasDefault: true },
          },
        },
      },
    };
    const service = new EntityService({
      data: new FakeDataApi({ note: 'id' }),
      tenantData: async () => ({ db, schema: withDefault, rules }),
      publish: async () => undefined,
    });
    expect((await service.schema(alice)).entities.note?.fields).toMatchObject({
      opened_at: { type: 'timestamptz', nullable: false, hasDefault: true },
      title: { type: 'text', nullable: false },
    });
    expect((await service.schema(alice)).entities.note?.fields.title).not.toHaveProperty('hasDefault');
  });

  it("says whether the caller's roles may write each entity, so a client can hide what a viewer cannot use", async () => {
    const { service } = setup();
    expect((await service.schema(caller('vic', ['viewer']))).entities.note).toMatchObject({
      canRead: true,
      canWrite: false,
    });
  });
});

describe('versionImages', () => {
  const entry = (version: number, op: 'insert' | 'update' | 'delete', diff: Record<string, [unknown, unknown]>) => ({
    version,
    op,
    changedBy: 'x',
    changedAt: '2026-01-01T00:00:00.000Z',
    diff,
  });

  it("rebuilds each version's row, keeping a deleted key's old history apart from its new one", () => {
    const items = [
      entry(1, 'insert', { id: [null, 't'], owner: [null, 'bob'], title: [null, 'bob v1'] }),
      entry(2, 'update', { title: ['bob v1', 'bob v2'] }),
      entry(3, 'delete', { id: ['t', null], owner: ['bob', null], title: ['bob v2', null] }),
      entry(4, 'insert', { id: [null, 't'], owner: [null, 'alice'], title: [null, 'alice v4'] }),
    ];
    expect(versionImages(items, { id: 't', owner: 'alice', title: 'alice v4', _version: 4 })).toEqual([
      { id: 't', owner: 'bob', title: 'bob v1' },
      { id: 't', owner: 'bob', title: 'bob v2' },
      { id: 't', owner: 'bob', title: 'bob v2' },
      { id: 't', owner: 'alice', title: 'alice v4', _version: 4 },
    ]);
  });

  it('knows the untouched fields of a row first written outside the API from the current row', () => {
    const images = versionImages([entry(1, 'update', { title: ['seeded', 'edited'] })], {
      id: 's',
      owner: 'carol',
      title: 'edited',
    });
    expect(images).toEqual([{ id: 's', owner: 'carol', title: 'edited' }]);
  });
});
