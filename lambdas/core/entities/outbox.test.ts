import { describe, expect, it } from '@jest/globals';
import { FakeDataApi } from '../../../test/support/fake-data-api.ts';
import type { ChangeEvent } from './events.ts';
import { type OutboxRelayDeps, relayUnpublished } from './outbox.ts';
import type { TenantData } from './service.ts';

const tenantData = (tenantId: string): TenantData => ({
  db: { clusterArn: 'arn:cluster', secretArn: `arn:secret:${tenantId}`, databaseName: tenantId },
  schema: { entities: {} },
  rules: {},
});

function setup(tenants: Record<string, FakeDataApi>) {
  const sent: ChangeEvent[][] = [];
  const logged: Record<string, unknown>[] = [];
  let queueDown = false;
  const deps: OutboxRelayDeps = {
    // One fake database per tenant, chosen by the database name.
    data: {
      execute: (db, sql, params) => (tenants[db.databaseName] as FakeDataApi).execute(db, sql, params),
      batchExecute: async () => ({ updated: 0 }),
      transaction: async () => {
        throw new Error('the relay needs no transaction');
      },
      executePaged: async () => {
        throw new Error('the relay does not page');
      },
    },
    tenantData: async (tenantId) => tenantData(tenantId),
    publish: async (events) => {
      if (queueDown) throw new Error('ServiceUnavailable');
      sent.push([...events]);
    },
    tenantIds: async () => Object.keys(tenants),
    log: (_message, details) => logged.push(details),
  };
  return {
    deps,
    sent,
    logged,
    setQueueDown: (down: boolean) => {
      queueDown = down;
    },
  };
}

const change = (key: string, version: number, published = false) => ({
  entity: 'task',
  key,
  version,
  op: 'insert',
  changed_by: 'alice',
  diff: {},
  published,
});

describe('relayUnpublished', () => {
  it('publishes every unpublished change of every tenant, oldest first, and marks them published', async () => {
    const acme = new FakeDataApi({});
    acme.addChange(change('a', 1));
    acme.addChange(change('b', 1, true));
    acme.addChange(change('a', 2));
    const globex = new FakeDataApi({});
    globex.addChange(change('g', 1));
    const { deps, sent } = setup({ acme, globex });

    expect(await relayUnpublished(deps, { graceSeconds: 0 })).toEqual({
      published: 3,
      failedTenants: [],
      skippedTenants: 0,
    });
    expect(sent).toEqual([
      [
        { tenantId: 'acme', entity: 'task', key: 'a', version: 1 },
        { tenantId: 'acme', entity: 'task', key: 'a', version: 2 },
      ],
      [{ tenantId: 'globex', entity: 'task', key: 'g', version: 1 }],
    ]);
    expect([...acme.log, ...globex.log].every((c) => c.published)).toBe(true);
    expect(await relayUnpublished(deps, { graceSeconds: 0 })).toEqual({
      published: 0,
      failedTenants: [],
      skippedTenants: 0,
    });
  });

  it('leaves changes younger than the grace period to their writer', async () => {
    const acme = new FakeDataApi({});
    acme.addChange(change('a', 1));
    const { deps, sent } = setup({ acme });
    expect(await relayUnpublished(deps, { graceSeconds: 5 })).toEqual({
      published: 0,
      failedTenants: [],
      skippedTenants: 0,
    });
    expect(sent).toEqual([]);
  });

  it('pages through a backlog, up to maxPages per run', async () => {
    const acme = new FakeDataApi({});
    for (let i = 1; i <= 7; i++) acme.addChange(change(`k${i}`, 1));
    const { deps, sent } = setup({ acme });
    expect(await relayUnpublished(deps, { graceSeconds: 0, pageSize: 2, maxPages: 3 })).toEqual({
      published: 6,
      failedTenants: [],
      skippedTenants: 0,
    });
    expect(sent.map((page) => page.length)).toEqual([2, 2, 2]);
    expect(await relayUnpublished(deps, { graceSeconds: 0, pageSize: 2, maxPages: 3 })).toMatchObject({ published: 1 });
  });

  it('keeps the changes unpublished while the queue is down and reports the tenant, then publishes them', async () => {
    const acme = new FakeDataApi({});
    acme.addChange(change('a', 1));
    const { deps, sent, logged, setQueueDown } = setup({ acme });
    setQueueDown(true);
    expect(await relayUnpublished(deps, { graceSeconds: 0 })).toEqual({
      published: 0,
      failedTenants: ['acme'],
      skippedTenants: 0,
    });
    expect(acme.log[0]?.published).toBe(false);
    expect(logged).toEqual([{ tenantId: 'acme', error: 'ServiceUnavailable' }]);
    setQueueDown(false);
    expect(await relayUnpublished(deps, { graceSeconds: 0 })).toEqual({
      published: 1,
      failedTenants: [],
      skippedTenants: 0,
    });
    expect(sent).toHaveLength(1);
  });

  it('starts no tenant without time left, and starts where the run says, so the tail is reached later', async () => {
    const dbs = Object.fromEntries(
      ['a', 'b', 'c'].map((t) => {
        const db = new FakeDataApi({});
        db.addChange(change(`${t}1`, 1));
        return [t, db];
      }),
    );
    const { deps, sent } = setup(dbs);
    let left = 12_000;
    // Each tenant takes 2 s of the invocation's time: after a, 10 s are left, after b 8 s (under the 10 s reserve).
    const publish = deps.publish;
    const timed = {
      ...deps,
      publish: async (events: readonly ChangeEvent[]) => {
        left -= 2_000;
        await publish(events);
      },
    };
    expect(await relayUnpublished(timed, { graceSeconds: 0, remainingMs: () => left })).toMatchObject({
      published: 2,
      skippedTenants: 1,
    });
    expect(sent.map(([e]) => e?.tenantId)).toEqual(['a', 'b']);
    // The next run (the next minute) starts one further on: c first.
    left = 12_000;
    expect(await relayUnpublished(timed, { graceSeconds: 0, remainingMs: () => left, startAt: 2 })).toMatchObject({
      published: 1,
    });
    expect(sent.map(([e]) => e?.tenantId)).toEqual(['a', 'b', 'c']);
  });

  it("does not let one tenant's failing database stop the others", async () => {
    const broken = new FakeDataApi({});
    broken.failWhen(() => true, new Error('cluster paused'), 10);
    const acme = new FakeDataApi({});
    acme.addChange(change('a', 1));
    const { deps } = setup({ broken, acme });
    expect(await relayUnpublished(deps, { graceSeconds: 0 })).toEqual({
      published: 1,
      failedTenants: ['broken'],
      skippedTenants: 0,
    });
  });
});
