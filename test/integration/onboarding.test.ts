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

describe("an operator's mistakes", () => {
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  it('a create that fails on the schema file undoes itself, so the same command runs again once it is fixed', async () => {
    const broken = await file('typo.sql', 'CREATE TABLE note (id text PRIMARY KEY, body txet);');
    const failed = await tenants('create', 'hooli', '--schema', broken);
    expect(failed.code).not.toBe(0);
    expect(failed.err).toContain('txet');
    const fixed = await file('fixed.sql', 'CREATE TABLE note (id text PRIMARY KEY, body text);');
    expect(await tenants('create', 'hooli', '--schema', fixed)).toMatchObject({ code: 0, err: '' });
    const admin = tokenFor(runtime(), 'hooli', 'gavin', ['admin']);
    expect((await httpApi(runtime(), admin, 'POST', '/v1/entities/note', { id: 'n1', body: 'hi' })).status).toBe(201);
  });

  it('warns of foreign keys the API cannot keep to its rules: ON DELETE and ON UPDATE actions, a second key', async () => {
    const schema = await file(
      'keys.sql',
      [
        'CREATE TABLE task (id text PRIMARY KEY);',
        'CREATE TABLE task2 (id text PRIMARY KEY);',
        'CREATE TABLE comment (id text PRIMARY KEY, task_id text REFERENCES task (id) ON DELETE CASCADE,',
        '  parent_id text REFERENCES comment (id) ON DELETE SET NULL, plain_id text REFERENCES task (id),',
        '  both_id text REFERENCES task (id) REFERENCES task2 (id),',
        '  moved_id text REFERENCES task (id) ON UPDATE CASCADE);',
      ].join('\n'),
    );
    const created = await tenants('create', 'keys', '--schema', schema);
    expect(created).toMatchObject({ code: 0, err: '' });
    const warnings = created.out
      .split('\n')
      .filter((line) => line.startsWith('warning: comment.'))
      .sort();
    expect(warnings).toEqual([
      expect.stringMatching(/^warning: comment\.both_id has more than one foreign key/),
      expect.stringMatching(/^warning: comment\.moved_id references task\.id ON UPDATE CASCADE: an update of id /),
      expect.stringMatching(/^warning: comment\.parent_id references comment\.id ON DELETE SET NULL: /),
      expect.stringMatching(/^warning: comment\.task_id references task\.id ON DELETE CASCADE: /),
    ]);
    // refresh-schema says it again.
    const refreshed = await tenants('refresh-schema', 'keys');
    expect(
      refreshed.out
        .split('\n')
        .filter((line) => line.startsWith('warning: comment.'))
        .sort(),
    ).toEqual(warnings);
  });

  it('a schema file with tagged dollar quotes, escape strings and SQL-standard function bodies is taken whole', async () => {
    const schema = await file(
      'forms.sql',
      [
        "CREATE TABLE note (id int PRIMARY KEY, body text DEFAULT E'it\\'s; fine');",
        'CREATE FUNCTION one() RETURNS int LANGUAGE plpgsql AS $f1$ BEGIN RETURN 1; END $f1$;',
        'CREATE FUNCTION two(x int) RETURNS int LANGUAGE sql',
        '  BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT 2; END;',
      ].join('\n'),
    );
    expect(await tenants('create', 'forms', '--schema', schema)).toMatchObject({ code: 0, err: '' });
    const admin = tokenFor(runtime(), 'forms', 'fay', ['admin']);
    const created = await httpApi(runtime(), admin, 'POST', '/v1/entities/note', { id: 1 });
    expect(jsonOf<{ body: string }>(created).body).toBe("it's; fine");
  });

  it('a rules file with a misspelt limit or a __proto__ key is refused, and the tenant keeps its rules', async () => {
    // hooli: onboarded by the first case of this block.
    const before = await runtime().tenants.get('hooli');
    for (const [name, text] of [
      ['misspelt.json', '{"limits":{"maxConnectionPerUser":1}}'],
      ['proto.json', '{"roleRules":{"__proto__":{"subscribe":["*"],"publish":["*"]}}}'],
    ]) {
      const refused = await tenants('set-rules', 'hooli', '--rules', await file(name as string, text as string));
      expect(refused.code).not.toBe(0);
      expect(refused.err).toMatch(/maxConnectionPerUser|__proto__/);
    }
    const after = await runtime().tenants.get('hooli');
    expect([after.roleRules, after.limits]).toEqual([before.roleRules, before.limits]);
  });

  it('presence groups are set with a rules file, and kept when a real-time tenant gains a database', async () => {
    await runtime().tenants.put({ tenantId: 'pied', roleRules: { admin: { subscribe: ['*'], publish: ['*'] } } });
    const rules = await file('presence.json', '{"presenceGroups":["room:*"]}');
    expect(await tenants('set-rules', 'pied', '--rules', rules)).toMatchObject({ code: 0 });
    const schema = await file('pied.sql', 'CREATE TABLE note (id text PRIMARY KEY);');
    expect(await tenants('create', 'pied', '--schema', schema)).toMatchObject({ code: 0, err: '' });
    expect((await runtime().tenants.get('pied')).presenceGroups).toEqual(['room:*']);
  });
});
