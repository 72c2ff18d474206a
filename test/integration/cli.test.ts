/**
 * The admin CLI `npx tenantcast` (docs/cli.md) against the local runtime started in-process (its endpoints file):
 * help, tenants, connections with a real WebSocket, publish to a real subscriber, usage, and a dead-lettered message
 * redriven to its subscriber. AWS mode reads stack outputs from an injected fake CloudFormation client.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { deliverySendParams } from '../../lambdas/core/delivery.ts';
import { type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { devLimits } from '../../local/seed.ts';
import { ttyProgress } from '../../scripts/cli-progress.ts';
import { awsTarget } from '../../scripts/cli-target.ts';
import { runCli } from '../../scripts/tenantcast-cli.ts';
import { STARTUP_TIMEOUT_MS } from '../support/local-stack.ts';
import { connect, type Frame, type TestClient } from '../support/ws-client.ts';

let runtime: LocalRuntime;
let dir: string;
let endpointsFile: string;
const open: TestClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tenantcast-admin-cli-'));
  endpointsFile = join(dir, 'endpoints.json');
  runtime = await startLocal({
    memoryDatabases: true,
    seedLimits: devLimits,
    port: 0,
    sqsRetryDelaySeconds: 0,
    schedules: false,
    web: false,
    functionLogLevel: 'WARN',
    log: () => undefined,
    onFunctionLog: () => undefined,
    endpointsFile,
  });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await runtime?.stop();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli([...argv, '--endpoints', endpointsFile], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    cwd: join(import.meta.dirname, '..', '..'),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function client(tenantId: string, userId: string): Promise<TestClient> {
  const token = runtime.identity.signToken({ tenantId, userId, roles: ['member'] }).token;
  const c = await connect(runtime.wsUrl, token);
  open.push(c);
  return c;
}

const isMessage = (group: string, text: string) => (f: Frame) => {
  const messages = f.type === 'batch' ? (f.messages as Frame[]) : f.type === 'message' ? [f] : [];
  return messages.some((m) => m.group === group && (m.data as { text?: string } | undefined)?.text === text);
};

describe('tenantcast --help', () => {
  it('lists every command and the target options', async () => {
    const { code, out } = await cli('--help');
    expect(code).toBe(0);
    for (const command of ['tenants', 'connections list', 'connections disconnect', 'publish', 'usage', 'dlq show']) {
      expect(out).toContain(command);
    }
    expect(out).toMatch(/--stage <stage> --region <region> \[--profile <name>\]/);
  });

  it('is answered by every command, and an unknown command gets usage and exit code 2', async () => {
    expect((await cli('tenants', '--help')).out).toMatch(/Usage: tenantcast tenants <command>/);
    expect((await cli('connections', '--help')).out).toMatch(/Usage: tenantcast connections <list\|disconnect>/);
    expect((await cli('publish', '--help')).out).toMatch(/Usage: tenantcast publish <tenantId> <group> <json>/);
    expect((await cli('usage', '--help')).out).toMatch(/Usage: tenantcast usage <tenantId>/);
    expect((await cli('dlq', '--help')).out).toMatch(/Usage: tenantcast dlq <show\|redrive>/);
    expect(await cli('nonsense')).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command 'nonsense'/) });
  });
});

describe('tenantcast tenants', () => {
  it('lists the seeded tenants in a table', async () => {
    const { code, out } = await cli('tenants', 'list');
    expect(code).toBe(0);
    expect(out).toMatch(/^CLUSTER\s+TENANT\s+DATABASE\s+SCHEMA\s+ENTITIES/);
    expect(out).toMatch(/acme\s+tenant_acme\s+1\s+/);
    expect(out).toMatch(/globex\s+tenant_globex\s+1\s+/);
  });
});

describe('tenantcast connections', () => {
  it("lists a tenant's live connections, or one user's", async () => {
    await client('acme', 'cli-ann');
    await client('acme', 'cli-bob');
    const all = await cli('connections', 'list', 'acme');
    expect(all.code).toBe(0);
    expect(all.out).toMatch(/CONNECTION\s+USER\s+CONNECTED AT/);
    expect(all.out).toContain('cli-ann');
    expect(all.out).toContain('cli-bob');
    const one = await cli('connections', 'list', 'acme', '--user', 'cli-ann');
    expect(one.out).toMatch(/acme user cli-ann: 1 live connection/);
    expect(one.out).not.toContain('cli-bob');
    expect((await cli('connections', 'list', 'globex')).out).not.toContain('cli-ann');
  });

  it('says that a tenant does not exist instead of listing, disconnecting or metering nothing, and fails', async () => {
    for (const argv of [
      ['connections', 'list', 'nosuch'],
      ['connections', 'disconnect', 'nosuch'],
      ['usage', 'nosuch'],
    ]) {
      const answered = await cli(...argv);
      expect(answered).toMatchObject({ code: 1, out: '' });
      expect(answered.err).toContain("error: unknown tenant 'nosuch' (tenants: acme, globex)");
    }
  });

  it('takes no name every object has for a tenants command', async () => {
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const answered = await cli('tenants', name);
      expect(answered.code).toBe(2);
      expect(answered.err).toContain(`unknown command '${name}'`);
    }
  });

  it('names the missing tenant with the help of the command given, not of another CLI', async () => {
    for (const [argv, help] of [
      [['usage', '--from', '2026-01-01'], 'Usage: tenantcast usage <tenantId>'],
      [['connections', 'disconnect'], 'Usage: tenantcast connections'],
    ] as const) {
      const answered = await cli(...argv);
      expect(answered.code).toBe(2);
      expect(answered.err).toContain('needs <tenantId>');
      expect(answered.err).toContain(help);
      expect(answered.err).not.toContain('create');
    }
  });

  it("disconnects one user's connections and leaves the others open", async () => {
    const carl = await client('acme', 'cli-carl');
    const dana = await client('acme', 'cli-dana');
    const result = await cli('connections', 'disconnect', 'acme', '--user', 'cli-carl');
    expect(result).toMatchObject({
      code: 0,
      out: expect.stringMatching(/acme user cli-carl: 1 disconnected, 0 failed/),
    });
    await carl.closed;
    expect(dana.ws.readyState).toBe(dana.ws.OPEN);
  });
});

describe('tenantcast publish', () => {
  it('reaches a subscriber of the group through the delivery queue', async () => {
    const group = 'chat:cli';
    const sub = await client('acme', 'cli-sub');
    expect(await sub.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
    const result = await cli('publish', 'acme', group, '{"text":"from the cli"}', '--from', 'ops');
    expect(result).toMatchObject({ code: 0, out: expect.stringMatching(/^published \S+ to acme chat:cli$/) });
    const frame = await sub.waitFor(isMessage(group, 'from the cli'), 8000);
    expect(JSON.stringify(frame)).toContain('"from":"ops"');
  });

  it('refuses data that is not JSON with usage, and an invalid group with the SDK error', async () => {
    expect(await cli('publish', 'acme', 'chat:cli', '{oops')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/<json> is not JSON/),
    });
    expect(await cli('publish', 'acme', '', '1')).toMatchObject({ code: 1, err: expect.stringMatching(/^error: /) });
  });

  it("refuses a system group (a table's live feed) and a tenant that does not exist, as every publish path does", async () => {
    const forged = '{"op":"update","entity":"task","key":"t1","version":99,"row":{"title":"forged"}}';
    expect(await cli('publish', 'acme', 'entity:task', forged)).toMatchObject({
      code: 1,
      err: expect.stringMatching(/system group/),
    });
    expect(await cli('publish', 'nosuch', 'chat:general', '{}')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/unknown tenant 'nosuch'/),
    });
  });
});

describe('a CLI whose endpoints file is left from a stopped stack', () => {
  it('says to start the local stack when nothing answers', async () => {
    const stale = join(dirname(endpointsFile), 'stale-endpoints.json');
    await writeFile(stale, (await readFile(endpointsFile, 'utf8')).replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:1'));
    const err: string[] = [];
    const code = await runCli(['usage', 'acme', '--endpoints', stale], {
      out: () => undefined,
      err: (l) => err.push(l),
      cwd: join(import.meta.dirname, '..', '..'),
    });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/ECONNREFUSED.*is the local stack running\? start it with npm start/);
  });
});

describe('tenantcast usage', () => {
  it("shows the tenant's metered days as a table", async () => {
    const { code, out } = await cli('usage', 'acme');
    expect(code).toBe(0);
    expect(out).toMatch(/acme: usage from \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}/);
    expect(out).toMatch(/^DAY\s+connections/m);
  });
});

describe('tenantcast dlq', () => {
  it('shows a dead-lettered message and redrives it to the group subscriber', async () => {
    const group = 'chat:redrive';
    const sub = await client('acme', 'cli-redrive');
    expect(await sub.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
    const message = { v: 1, id: 'dead-1', tenantId: 'acme', group, data: { text: 'back again' }, from: 'x', ts: 1 };
    await runtime.sqs.client.send(
      new SendMessageCommand(deliverySendParams(runtime.queues.delivery.dlqUrl, message as never)),
    );

    const shown = await cli('dlq', 'show', 'delivery');
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/delivery\s+1/);
    expect(shown.out).toMatch(/acme#chat:redrive/);
    expect(shown.out).toContain('"id":"dead-1"');

    const redriven = await cli('dlq', 'redrive', 'delivery');
    expect(redriven).toMatchObject({ code: 0, out: expect.stringMatching(/delivery\s+1/) });
    await sub.waitFor(isMessage(group, 'back again'), 8000);
    expect((await cli('dlq', 'show')).out).toMatch(/delivery\s+0/);
  });

  it('names the known queues when given an unknown one', async () => {
    expect(await cli('dlq', 'show', 'nope')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/unknown queue 'nope'; the target has delivery, fanout, changes, replication/),
    });
  });
});

describe('targeting AWS', () => {
  it("reads names, queues and clusters from the stage's stack outputs", async () => {
    const asked: string[] = [];
    const outputs: Record<string, Record<string, string>> = {
      'tenantcast-dev-eu-west-1': {
        TableName: 'dev-table',
        CallbackUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/dev',
        DeliveryQueueUrl: 'https://sqs/q/delivery.fifo',
        DeliveryDeadLetterQueueUrl: 'https://sqs/q/delivery-dlq.fifo',
        ChangesQueueUrl: 'https://sqs/q/changes',
        ChangesDeadLetterQueueUrl: 'https://sqs/q/changes-dlq',
      },
      'tenantcast-dev-eu-west-1-data': {
        Clusters: JSON.stringify([{ id: 'c1', clusterArn: 'arn:c1', adminSecretArn: 'arn:s1' }]),
      },
    };
    const cloudFormation = {
      send: async (command: { input: { StackName?: string } }) => {
        const name = command.input.StackName ?? '';
        asked.push(name);
        return {
          Stacks: [
            {
              Outputs: Object.entries(outputs[name] ?? {}).map(([OutputKey, OutputValue]) => ({
                OutputKey,
                OutputValue,
              })),
            },
          ],
        };
      },
    };
    const target = await awsTarget({ stage: 'dev', region: 'eu-west-1', cloudFormation: cloudFormation as never });
    expect(asked.sort()).toEqual(['tenantcast-dev-eu-west-1', 'tenantcast-dev-eu-west-1-data']);
    expect(target).toMatchObject({
      stage: 'dev',
      region: 'eu-west-1',
      tableName: 'dev-table',
      connectionsEndpoint: 'https://abc.execute-api.eu-west-1.amazonaws.com/dev',
      clusters: [{ id: 'c1', clusterArn: 'arn:c1', adminSecretArn: 'arn:s1' }],
      queues: {
        delivery: { url: 'https://sqs/q/delivery.fifo', dlqUrl: 'https://sqs/q/delivery-dlq.fifo' },
        changes: { url: 'https://sqs/q/changes', dlqUrl: 'https://sqs/q/changes-dlq' },
      },
    });
    expect(target.clientConfig('sqs')).toEqual({ region: 'eu-west-1' });
  });

  it('needs both --stage and --region, and says what it got', async () => {
    expect(await cli('dlq', 'show', '--stage', 'dev')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/needs both --stage and --region; got stage dev, region \(none\)/),
    });
  });
});

describe('the progress indicator', () => {
  it('draws on a terminal and clears its line when done, and stays silent on a pipe', () => {
    const written: string[] = [];
    const stream = (isTTY: boolean) => ({ isTTY, write: (s: string) => written.push(s) }) as never;
    const bar = ttyProgress(stream(true))('redriving delivery');
    bar.setTotal(2);
    bar.tick();
    bar.done();
    expect(written.join('')).toContain('redriving delivery 1/2');
    expect(written.at(-1)).toBe('\r\x1b[2K');
    written.length = 0;
    const silent = ttyProgress(stream(false))('redriving delivery');
    silent.tick();
    silent.done();
    expect(written).toEqual([]);
  });
});
