/**
 * `DATA_DIR` keeps data between runs (README, "Run it locally"): a stack stopped and started again on the same data
 * directory seeds nothing twice and comes back with its tenants, their rows and their change log, and still accepts
 * the tokens it issued before (its dev signing key is kept there too).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LocalRuntime } from '../../local/runtime.ts';
import { httpApi, jsonOf, startQuietRuntime, tokenFor } from '../support/local-stack.ts';

let dataDir: string;
let runtime: LocalRuntime | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tenantcast-restart-'));
});

afterAll(async () => {
  await runtime?.stop();
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

const start = (port = 0) => startQuietRuntime({ dataDir, schedules: false, port });
const asAlice = (rt: LocalRuntime) => tokenFor(rt, 'acme', 'alice', ['admin']);

describe('a stack restarted with the same DATA_DIR', () => {
  const taskId = randomUUID();

  it('starts again without seeding twice, and has the tenants (indexing an older catalog), rows and change log it had', async () => {
    runtime = await start();
    const created = await httpApi(runtime, asAlice(runtime), 'POST', '/v1/entities/task', {
      id: taskId,
      title: 'Survive a restart',
      status: 'open',
    });
    expect(created.status).toBe(201);
    const patched = await httpApi(runtime, asAlice(runtime), 'PATCH', `/v1/entities/task/${taskId}`, {
      status: 'done',
    });
    expect(patched.status).toBe(200);
    const tenantsBefore = (await runtime.tenants.list()).map((t) => t.tenantId).sort();
    // As a data directory written before the tenant catalog was indexed: acme's items lose their index keys, so the
    // catalog no longer lists acme, until the restart below indexes them again (and seeding leaves acme alone).
    const documentClient = DynamoDBDocumentClient.from(runtime.dynamo.client);
    for (const sk of ['CONFIG', 'SCHEMA']) {
      await documentClient.send(
        new UpdateCommand({
          TableName: runtime.tableName,
          Key: { pk: 'T#acme', sk },
          UpdateExpression: 'REMOVE gsi2pk, gsi2sk',
        }),
      );
    }
    expect((await runtime.tenants.list()).map((t) => t.tenantId)).not.toContain('acme');
    const issuedBefore = asAlice(runtime);
    const port = runtime.port;
    await runtime.stop();

    // On the same port, as `npm start` restarts (the token's issuer is the runtime's URL).
    runtime = await start(port);
    expect((await runtime.tenants.list()).map((t) => t.tenantId).sort()).toEqual(tenantsBefore);
    expect(tenantsBefore).toEqual(['acme', 'globex']);
    const acme = (await runtime.tenants.list()).find((t) => t.tenantId === 'acme');
    expect(Object.keys(acme?.schema?.entities ?? {}).sort()).toEqual(['campaign', 'task']);

    const tasks = jsonOf<{ items: { id: string; title: string }[] }>(
      await httpApi(runtime, asAlice(runtime), 'GET', '/v1/entities/task?limit=500'),
    );
    // The three seeded tasks once each, and the one written before the restart.
    expect(tasks.items.map((t) => t.title).sort()).toEqual([
      'Book the venue',
      'Design the banners',
      'Survive a restart',
      'Write the press release',
    ]);
    const changes = jsonOf<{ items: { version: number; op: string }[] }>(
      await httpApi(runtime, asAlice(runtime), 'GET', `/v1/entities/task/${taskId}/changes`),
    );
    expect(changes.items.map((c) => [c.version, c.op])).toEqual([
      [1, 'insert'],
      [2, 'update'],
    ]);
    // The dev signing key is kept in the data directory: a token issued before the restart is still accepted.
    expect((await httpApi(runtime, issuedBefore, 'GET', '/v1/schema')).status).toBe(200);
    const globex = await runtime.tenants.get('globex');
    expect(globex.entityRules?.task?.rowFilter).toEqual({ column: 'owner', equalsClaim: 'sub' });
  }, 120_000);
});
