/**
 * AWS's limits end to end against the local runtime (docs/limits.md): data AWS cannot store refused before the ack on
 * both publish paths, poison messages set aside while their group goes on, a message id twice in one run, an entity
 * row too big for a frame, and an identity provider that cannot be reached (500, not 401).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type DeliveryMessage, deliverySendParams } from '../../lambdas/core/delivery.ts';
import type { LocalRuntime } from '../../local/runtime.ts';
import { runCli } from '../../scripts/tenantcast-cli.ts';
import {
  closeClients,
  eventually,
  httpApi,
  jsonOf,
  messages,
  openClient,
  STARTUP_TIMEOUT_MS,
  startQuietRuntime,
  tokenFor,
} from '../support/local-stack.ts';
import { type Frame, HandshakeError, type TestClient } from '../support/ws-client.ts';

let runtime: LocalRuntime;
let dir: string;
const functionLines: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tenantcast-aws-limits-'));
  runtime = await startQuietRuntime({
    sqsRetryDelaySeconds: 0,
    schedules: false,
    functionLogLevel: 'WARN',
    endpointsFile: join(dir, 'endpoints.json'),
    onFunctionLog: (_name, line) => functionLines.push(line),
  });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await closeClients();
  await runtime?.stop();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const member = (tenant = 'acme', user = 'mia') => tokenFor(runtime, tenant, user, ['member']);
const admin = () => tokenFor(runtime, 'acme', 'ops', ['admin']);

async function subscriber(group: string, token = member('acme', 'sam')): Promise<TestClient> {
  const c = await openClient(runtime, token);
  expect(await c.request({ action: 'subscribe', group })).toMatchObject({ type: 'ack' });
  return c;
}

function nested(levels: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

describe('an identity provider that cannot be reached', () => {
  // First in the file: the authorizer's sandboxes have not fetched (and cached) the JWKS yet.
  it('fails the handshake with 500 (the client retries), not 401, and admits again once it is back', async () => {
    runtime.identity.faults.jwksStatus = 503;
    try {
      const refused = await openClient(runtime, member()).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(HandshakeError);
      expect((refused as HandshakeError).status).toBe(500);
    } finally {
      runtime.identity.faults.jwksStatus = undefined;
    }
    const c = await openClient(runtime, member());
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  }, 30_000);
});

describe('published data that DynamoDB could not store', () => {
  /** `data` as JSON text: a 5,000-deep value is beyond what JSON.stringify manages on a test's stack. */
  const deep = (levels: number) => `${'['.repeat(levels)}"bottom"${']'.repeat(levels)}`;
  const cases: [string, string, RegExp][] = [
    ['nested 5,000 levels deep', deep(5000), /nested more than 32 levels/],
    ['nested 33 levels deep', deep(33), /nested more than 32 levels/],
    ['with an empty object key', '{"":1}', /empty object key/],
    ['with a number beyond 2^53', '{"n":9007199254740993}', /beyond ±\(2\^53 - 1\)/],
  ];

  it.each(cases)('is refused before the ack over WebSocket when %s', async (_what, data, why) => {
    const c = await openClient(runtime, member());
    c.send(`{"action":"publish","group":"chat:limits","data":${data},"ref":"deep"}`);
    const answer = await c.waitFor((f) => f.ref === 'deep');
    expect(answer).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    expect(String(answer.message)).toMatch(why);
  });

  it.each(cases)('is refused before the ack over HTTP when %s', async (_what, data, why) => {
    const answer = await httpApi(runtime, admin(), 'POST', '/v1/publish', `{"group":"chat:limits","data":${data}}`);
    expect(answer.status).toBe(400);
    expect(jsonOf<{ error: { code: string; message: string } }>(answer).error).toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringMatching(why),
    });
  });

  it('leaves the stack serving: the next valid message is delivered', async () => {
    const sub = await subscriber('chat:limits');
    const c = await openClient(runtime, member());
    expect(await c.request({ action: 'publish', group: 'chat:limits', data: { ok: 1 } })).toMatchObject({
      type: 'ack',
    });
    await eventually(() => messages(sub, 'chat:limits').length === 1, 10_000, 'the valid message');
    expect(messages(sub, 'chat:limits')[0]).toMatchObject({ data: { ok: 1 } });
  });
});

describe('published data holding characters SQS does not carry as they are', () => {
  // JSON.stringify leaves U+FFFE and U+FFFF raw, and SQS takes neither (lambdas/core/sqs-batches.ts, `sqsMessageBody`).
  const odd = { '\uFFFEkey': 'value \uFFFF', list: ['\uFFFE', '\uFFFF'] };

  it('arrives unchanged, published over WebSocket or HTTP', async () => {
    const sub = await subscriber('chat:odd');
    const c = await openClient(runtime, member());
    expect(await c.request({ action: 'publish', group: 'chat:odd', data: odd })).toMatchObject({ type: 'ack' });
    const answer = await httpApi(runtime, admin(), 'POST', '/v1/publish', { group: 'chat:odd', data: odd });
    expect(answer.status).toBe(202);
    await eventually(() => messages(sub, 'chat:odd').length === 2, 10_000, 'both messages');
    expect(messages(sub, 'chat:odd').map((m) => m.data)).toEqual([odd, odd]);
  });

  it('in an entity row, reaches the live feed unchanged', async () => {
    const alice = tokenFor(runtime, 'globex', 'alice', ['member']);
    const sub = await subscriber('entity:task', alice);
    const before = messages(sub, 'entity:task').length;
    const summary = 'odd \uFFFE\uFFFF';
    const created = await httpApi(runtime, alice, 'POST', '/v1/entities/task', { summary });
    expect(created.status).toBe(201);
    await eventually(() => messages(sub, 'entity:task').length > before, 15_000, 'the change');
    expect(messages(sub, 'entity:task').at(-1)?.data).toMatchObject({ op: 'insert', row: { summary } });
  }, 30_000);
});

describe('a poison message in the middle of a group', () => {
  const group = 'chat:poison';
  const queued = (id: string, data: unknown): DeliveryMessage => ({
    v: 1,
    id,
    tenantId: 'acme',
    group,
    data,
    from: 'server',
    ts: Date.now(),
  });

  /** Puts entries on the delivery queue in one batch, in order (a publisher that skipped the publish checks). */
  async function enqueue(entries: { body: string; dedup: string }[]): Promise<void> {
    const base = deliverySendParams(runtime.queues.delivery.url, queued('x', 1));
    const out = await runtime.sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: runtime.queues.delivery.url,
        Entries: entries.map(({ body, dedup }, i) => ({
          Id: `e${i}`,
          MessageBody: body,
          MessageGroupId: base.MessageGroupId,
          MessageDeduplicationId: dedup,
          MessageAttributes: { tenantId: { DataType: 'String', StringValue: 'acme' } },
        })),
      }),
    );
    expect(out.Failed ?? []).toEqual([]);
  }

  it('is set aside with its reason while the messages after it arrive in order, without waiting for a redrive', async () => {
    const sub = await subscriber(group);
    const started = Date.now();
    await enqueue([
      { body: JSON.stringify(queued('p-before', { n: 1 })), dedup: 'p-before' },
      { body: JSON.stringify(queued('p-poison', nested(40))), dedup: 'p-poison' },
      { body: JSON.stringify(queued('p-after', { n: 2 })), dedup: 'p-after' },
      { body: 'not json at all', dedup: 'p-garbage' },
      { body: JSON.stringify(queued('p-last', { n: 3 })), dedup: 'p-last' },
    ]);
    await eventually(() => messages(sub, group).length >= 3, 15_000, 'the three valid messages');
    const got = messages(sub, group);
    expect(got.map((m) => m.id)).toEqual(['p-before', 'p-after', 'p-last']);
    const seqs = got.map((m) => Number(m.seq));
    expect(seqs).toEqual([seqs[0], (seqs[0] ?? 0) + 1, (seqs[0] ?? 0) + 2]);
    // Far sooner than three receives with a visibility timeout would take.
    expect(Date.now() - started).toBeLessThan(10_000);

    const lines: string[] = [];
    const shown = await runCli(['dlq', 'show', 'delivery', '--endpoints', join(dir, 'endpoints.json')], {
      out: (line) => lines.push(line),
      err: (line) => lines.push(line),
      cwd: join(import.meta.dirname, '..', '..'),
    });
    expect(shown).toBe(0);
    const text = lines.join('\n');
    expect(text).toMatch(/delivery\s+2/);
    expect(text).toMatch(/p-poison/);
    expect(text).toMatch(/nested more than 32 levels/);
    expect(text).toMatch(/not a delivery message/);
    await eventually(
      () => functionLines.some((l) => /"level":"ERROR"/.test(l) && /poison record set aside/.test(l)),
      5000,
      'an error-level log line',
    );
  }, 30_000);

  it('delivers a message id that comes twice in one run once', async () => {
    const sub = await subscriber('chat:twice');
    const twice = { ...queued('same-id', { n: 1 }), group: 'chat:twice' };
    const base = deliverySendParams(runtime.queues.delivery.url, twice);
    await runtime.sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: runtime.queues.delivery.url,
        Entries: ['a', 'b'].map((suffix) => ({
          Id: suffix,
          MessageBody: base.MessageBody,
          MessageGroupId: base.MessageGroupId,
          MessageDeduplicationId: `same-id-${suffix}`,
        })),
      }),
    );
    await eventually(() => messages(sub, 'chat:twice').length >= 1, 10_000, 'the message');
    const sent = await openClient(runtime, member());
    await sent.request({ action: 'publish', group: 'chat:twice', data: { n: 2 } });
    await eventually(() => messages(sub, 'chat:twice').length >= 2, 10_000, 'the next message');
    expect(messages(sub, 'chat:twice').map((m) => m.id)).toEqual(['same-id', expect.any(String)]);
  }, 30_000);
});

describe('an entity row too big for a frame', () => {
  it('reaches subscribers as a change without its row, readable over HTTP, and the next change arrives too', async () => {
    const alice = tokenFor(runtime, 'globex', 'alice', ['member']);
    const sub = await subscriber('entity:task', alice);
    // 48 KB: over the 32 KB frame (and the 16 KB a change carries), under the 63 KB a row may have (docs/entities.md).
    const tags = Array.from({ length: 4 }, (_, i) => String(i).repeat(12_000));
    const created = await httpApi(runtime, alice, 'POST', '/v1/entities/task', { summary: 'big', tags });
    expect(created.status).toBe(201);
    const id = jsonOf<{ id: number }>(created).id;
    const small = await httpApi(runtime, alice, 'POST', '/v1/entities/task', { summary: 'small' });
    expect(small.status).toBe(201);
    await eventually(() => messages(sub, 'entity:task').length >= 2, 15_000, 'both changes');
    const [big, next] = messages(sub, 'entity:task').map((m) => m.data as Frame);
    expect(big).toMatchObject({ op: 'insert', key: id, row: null, rowOmitted: true });
    expect(next).toMatchObject({ op: 'insert', row: { summary: 'small' } });
    const read = await httpApi(runtime, alice, 'GET', `/v1/entities/task/${id}`);
    expect(jsonOf<{ tags: string[] }>(read).tags).toEqual(tags);
  }, 30_000);
});
