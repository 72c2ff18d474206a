/**
 * The change log is the outbox (docs/entities.md): a change committed while the changes queue is unreachable still
 * reaches subscribers once it is back. Real HTTP through the HTTP API stand-in, real SQL in the tenant's PGlite
 * database, the SQS stand-in refusing sends (`sqs.failSends`), and a real WebSocket subscriber of `entity:task`.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { changeLog } from '../../lambdas/core/entities/sql.ts';
import { localDataPorts } from '../../local/tenant-data.ts';
import { eventually, httpApi, jsonOf, openClient, sleep, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import type { Frame, TestClient } from '../support/ws-client.ts';

const functionLogs: string[] = [];

const runtime = useQuietRuntime(
  {
    sqsRetryDelaySeconds: 0,
    schedules: false,
    functionEnv: { TENANT_CACHE_TTL_SECONDS: '0', OUTBOX_GRACE_SECONDS: '0' },
    onFunctionLog: (_name, line) => functionLogs.push(line),
  },
  {
    cleanup: async () => {
      runtime().sqs.restoreSends();
    },
  },
);

async function createTask(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await httpApi(
    runtime(),
    tokenFor(runtime(), 'acme', 'alice', ['member']),
    'POST',
    '/v1/entities/task',
    body,
  );
  return { status: answer.status, body: jsonOf(answer) };
}

/** The `published` flag of a change-log row, read straight from acme's database through the Data API. */
async function publishedFlag(key: string, version: number): Promise<boolean | undefined> {
  const database = (await runtime().tenants.get('acme')).database;
  if (database === undefined) throw new Error('acme has no database');
  const { dataApi } = localDataPorts(runtime().dataApi.endpoint, 'us-east-1');
  const { rows } = await dataApi.execute(
    { clusterArn: database.clusterArn, secretArn: database.secretArn, databaseName: database.databaseName },
    `SELECT published FROM "${changeLog.table}" WHERE entity = 'task' AND key = :key AND version = :version`,
    { key, version },
  );
  const value = rows[0]?.published;
  return value === undefined ? undefined : value === true || value === 't';
}

const changesFor = (c: TestClient, key: string) =>
  c.frames
    .flatMap((f) => (f.type === 'batch' ? (f.messages as Frame[]) : [f]))
    .filter((f) => f.type === 'message' && f.group === 'entity:task' && (f.data as { key?: unknown }).key === key);

describe('a change committed while the changes queue is unreachable', () => {
  it('still commits (201), stays unpublished, and reaches the subscriber exactly once after the relay runs', async () => {
    const watcher = await openClient(runtime(), tokenFor(runtime(), 'acme', 'walt', ['viewer']));
    expect(await watcher.request({ action: 'subscribe', group: 'entity:task' })).toMatchObject({ type: 'ack' });

    const refusedBefore = runtime().sqs.refusedSends();
    const restore = runtime().sqs.failSends(runtime().queues.changes.name);
    const id = randomUUID();
    const created = await createTask({ id, title: 'Written during an outage', status: 'open' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id, _version: 1 });
    expect(runtime().sqs.refusedSends()).toBeGreaterThan(refusedBefore);
    expect(functionLogs.some((l) => l.includes('change committed but not published'))).toBe(true);
    expect(await publishedFlag(id, 1)).toBe(false);

    // While the queue is still down, the relay cannot publish either, and leaves the row for its next run.
    expect(await runtime().runScheduled('outboxRelay')).toMatchObject({ published: 0, failedTenants: ['acme'] });
    expect(await publishedFlag(id, 1)).toBe(false);
    await sleep(300);
    expect(changesFor(watcher, id)).toEqual([]);

    restore();
    expect(await runtime().runScheduled('outboxRelay')).toMatchObject({ published: 1, failedTenants: [] });
    expect(await publishedFlag(id, 1)).toBe(true);
    await eventually(() => changesFor(watcher, id).length > 0, 10_000);
    // A later relay run finds nothing left; nothing arrives twice.
    expect(await runtime().runScheduled('outboxRelay')).toMatchObject({ published: 0 });
    await sleep(500);
    const changes = changesFor(watcher, id);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ seq: expect.any(Number), data: { op: 'insert', version: 1, row: { id } } });
  }, 40_000);
});
