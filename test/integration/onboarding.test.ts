/**
 * A newcomer onboards a tenant exactly as docs/tenants.md says (issue #13): `create initech --schema
 * examples/initech.sql` with the shipped example, then `set-rules` with the shipped rules file. The new tenant's admin
 * can read and write its entity over HTTP and live at once; the skipped table is named with its reason.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runTenantsCli } from '../../scripts/tenants-cli.ts';
import { httpApi, jsonOf, openClient, tokenFor, useQuietRuntime } from '../support/local-stack.ts';

const dir = mkdtempSync(join(tmpdir(), 'tenantcast-onboarding-'));
const endpointsFile = () => join(dir, 'endpoints.json');

const runtime = useQuietRuntime(
  {
    endpointsFile: endpointsFile(),
    schedules: false,
    sqsRetryDelaySeconds: 0,
    functionEnv: { TENANT_CACHE_TTL_SECONDS: '0' },
  },
  180_000,
); // starting takes over a minute on this machine when it is loaded
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tenants(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTenantsCli([...argv, '--endpoints', endpointsFile()], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    cwd: join(import.meta.dirname, '..', '..'),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const as = (userId: string, roles: string[]) => tokenFor(runtime(), 'initech', userId, roles);

describe('a tenant onboarded from the documented example', () => {
  it('is created from examples/initech.sql, saying which table is skipped and why', async () => {
    const created = await tenants('create', 'initech', '--schema', 'examples/initech.sql');
    expect(created).toMatchObject({ code: 0, err: '' });
    expect(created.out).toContain(
      'skipped table ticket_watcher: composite primary key (an entity needs a single-column primary key',
    );
    expect(created.out).toMatch(/ticket\s+id\s+id:uuid! subject:text!/);
  });

  it('lets its admin write and read an entity over HTTP, and see the change live', async () => {
    const admin = as('ada', ['admin']);
    const watcher = await openClient(runtime(), admin);
    expect(await watcher.request({ action: 'subscribe', group: 'entity:ticket' })).toMatchObject({ type: 'ack' });

    const id = randomUUID();
    const created = await httpApi(runtime(), admin, 'POST', '/v1/entities/ticket', { id, subject: 'Printer on fire' });
    expect(created.status).toBe(201);
    const read = await httpApi(runtime(), admin, 'GET', `/v1/entities/ticket/${id}`);
    expect(jsonOf(read)).toMatchObject({ id, subject: 'Printer on fire', _version: 1 });
    const change = await watcher.waitFor(
      (f) => f.type === 'message' && f.group === 'entity:ticket' && (f.data as { key?: unknown }).key === id,
      8000,
    );
    expect(change.data).toMatchObject({ entity: 'ticket', op: 'insert', version: 1 });
  });

  it('gives other roles nothing until rules say so, and set-rules with the example rules file does', async () => {
    const member = as('milton', ['member']);
    expect((await httpApi(runtime(), member, 'GET', '/v1/entities/ticket')).status).toBe(403);

    const set = await tenants('set-rules', 'initech', '--rules', 'examples/initech.rules.json');
    expect(set).toMatchObject({ code: 0, err: '' });
    expect(set.out).toMatch(/ticket\s+admin,member,viewer\s+admin,member/);
    expect((await httpApi(runtime(), member, 'GET', '/v1/entities/ticket')).status).toBe(200);
    const config = await runtime().tenants.get('initech');
    expect(config.limits).toEqual({ maxConnectionsPerUser: 20 });
    // The file's entity rules replace the default '*' rule; they name admin for ticket, so the admin keeps it.
    expect((await httpApi(runtime(), as('ada', ['admin']), 'GET', '/v1/entities/ticket')).status).toBe(200);
  });

  it('refuses rules for a table that is not an entity, naming why, and changes nothing', async () => {
    const file = join(dir, 'bad-rules.json');
    await writeFile(file, JSON.stringify({ entityRules: { ticket_watcher: { readRoles: ['admin'] } } }));
    const refused = await tenants('set-rules', 'initech', '--rules', file);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("'ticket_watcher' is not an entity (composite primary key)");
    expect(Object.keys((await runtime().tenants.get('initech')).entityRules ?? {})).toEqual(['ticket']);
  });

  it('takes its rules at creation with --rules', async () => {
    const created = await tenants(
      'create',
      'initech2',
      '--schema',
      'examples/initech.sql',
      '--rules',
      'examples/initech.rules.json',
    );
    expect(created).toMatchObject({ code: 0, err: '' });
    const viewer = tokenFor(runtime(), 'initech2', 'vic', ['viewer']);
    expect((await httpApi(runtime(), viewer, 'GET', '/v1/entities/ticket')).status).toBe(200);
  });
});
