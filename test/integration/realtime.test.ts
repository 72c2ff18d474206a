/**
 * The real-time path end to end, over real WebSockets, against the local runtime started in-process: the same
 * function code CDK deploys, behind the API Gateway, DynamoDB and SQS stand-ins.
 */

import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createSigningKey } from '../../local/identity.ts';
import { type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { devLimits } from '../../local/seed.ts';
import { STARTUP_TIMEOUT_MS } from '../support/local-stack.ts';
import { connect, type Frame, handshakeStatus, type TestClient } from '../support/ws-client.ts';

let runtime: LocalRuntime;
const functionLogs: string[] = [];
const open: TestClient[] = [];

beforeAll(async () => {
  runtime = await startLocal({
    memoryDatabases: true,
    seedLimits: devLimits,
    port: 0,
    sqsRetryDelaySeconds: 0,
    functionLogLevel: 'INFO',
    onFunctionLog: (_name, line) => functionLogs.push(line),
    log: () => undefined,
  });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await runtime?.stop();
});

function token(
  tenantId: string,
  userId: string,
  roles: string[],
  extra: Parameters<LocalRuntime['identity']['signToken']>[0] = { tenantId, userId, roles },
) {
  return runtime.identity.signToken({ ...extra, tenantId, userId, roles }).token;
}

async function client(tenantId: string, userId: string, roles: string[]): Promise<TestClient> {
  const c = await connect(runtime.wsUrl, token(tenantId, userId, roles));
  open.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const messagesOf = (c: TestClient) => c.frames.filter((f) => f.type === 'message');

async function itemsOf(pk: string): Promise<number> {
  return (await sortKeysOf(pk)).length;
}

async function sortKeysOf(pk: string): Promise<string[]> {
  const out = await runtime.dynamo.client.send(
    new QueryCommand({
      TableName: runtime.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: pk } },
    }),
  );
  return (out.Items ?? []).map((item) => String(item.sk?.S));
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error('condition not met in time');
}

describe('a publish in one tenant', () => {
  it('reaches the other subscriber of the tenant within a second and never the other tenant', async () => {
    const alice = await client('acme', 'alice', ['member']);
    const bob = await client('acme', 'bob', ['member']);
    const carol = await client('globex', 'carol', ['admin']);
    for (const c of [alice, bob, carol]) {
      expect(await c.request({ action: 'subscribe', group: 'chat:general' })).toMatchObject({ type: 'ack' });
    }

    const started = Date.now();
    const ack = await alice.request({ action: 'publish', group: 'chat:general', data: { text: 'hello' } });
    expect(ack).toMatchObject({ type: 'ack', id: expect.any(String) });
    const received = await bob.waitFor((f) => f.type === 'message', 1000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(received).toEqual({
      type: 'message',
      group: 'chat:general',
      id: ack.id,
      seq: 1,
      data: { text: 'hello' },
      from: 'alice',
      ts: expect.any(Number),
    });
    // The publisher is subscribed too, so it gets its own message.
    await alice.waitFor((f) => f.type === 'message' && f.id === ack.id, 1000);

    // Globex's chat:general is another group: carol gets nothing, even after a publish of her own arrives.
    const own = await carol.request({ action: 'publish', group: 'chat:general', data: 'globex only' });
    await carol.waitFor((f) => f.type === 'message' && f.id === own.id, 1000);
    expect(messagesOf(carol).map((m) => m.id)).toEqual([own.id]);
    await sleep(200);
    expect(messagesOf(bob).map((m) => m.id)).toEqual([ack.id]);
  });

  it('is refused with FORBIDDEN for a viewer', async () => {
    const vera = await client('acme', 'vera', ['viewer']);
    expect(await vera.request({ action: 'subscribe', group: 'chat:general' })).toMatchObject({ type: 'ack' });
    expect(await vera.request({ action: 'publish', group: 'chat:general', data: 1 })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
  });

  it('to a group outside chat:* is refused for a member and allowed for an admin', async () => {
    const member = await client('acme', 'mia', ['member']);
    const admin = await client('acme', 'ada', ['admin']);
    expect(await member.request({ action: 'publish', group: 'announcements', data: 1 })).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(await admin.request({ action: 'publish', group: 'announcements', data: 1 })).toMatchObject({ type: 'ack' });
  });
});

describe('user groups', () => {
  it('can be subscribed by their own user only', async () => {
    const alice = await client('acme', 'alice', ['admin']);
    expect(await alice.request({ action: 'subscribe', group: 'user:bob' })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    expect(await alice.request({ action: 'subscribe', group: 'user:alice' })).toMatchObject({ type: 'ack' });
  });
});

describe('unsubscribe', () => {
  it('stops delivery to that connection', async () => {
    const pub = await client('acme', 'pat', ['member']);
    const sub = await client('acme', 'sam', ['member']);
    await sub.request({ action: 'subscribe', group: 'chat:unsub' });
    await pub.request({ action: 'subscribe', group: 'chat:unsub' });
    await sub.request({ action: 'unsubscribe', group: 'chat:unsub' });
    const ack = await pub.request({ action: 'publish', group: 'chat:unsub', data: 'after' });
    await pub.waitFor((f) => f.id === ack.id);
    await sleep(150);
    expect(messagesOf(sub)).toEqual([]);
  });
});

describe('bad input', () => {
  const cases: [string, unknown, string][] = [
    ['malformed JSON', '{"action":"publish",', 'frame is not valid JSON'],
    ['a JSON array', '[1,2,3]', 'frame must be a JSON object'],
    ['no action', { group: 'g' }, "frame has no 'action'"],
    ['an unknown action', { action: 'explode' }, "unknown action 'explode'"],
    ['a missing group', { action: 'subscribe' }, "'group' is required"],
    ['a wrong-typed group', { action: 'subscribe', group: 42 }, "'group' must be a string"],
    ['a bad group name', { action: 'subscribe', group: 'no spaces' }, 'group must match'],
    ['a tenantId in the body', { action: 'subscribe', group: 'g', tenantId: 'globex' }, "unknown field 'tenantId'"],
    ['a publish without data', { action: 'publish', group: 'chat:x' }, 'data'],
  ];

  it.each(cases)('answers %s with BAD_REQUEST and keeps the connection usable', async (_what, frame, message) => {
    const c = await client('acme', 'fuzzy', ['member']);
    c.send(frame);
    const error = await c.waitFor((f) => f.type === 'error');
    expect(error).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    expect(String(error.message)).toContain(message);
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await c.close();
  });

  it('echoes the ref of a rejected frame', async () => {
    const c = await client('acme', 'fuzzy', ['member']);
    expect(await c.request({ action: 'subscribe', group: '' })).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
  });

  it('answers publish data over 16 KB with TOO_LARGE', async () => {
    const c = await client('acme', 'big', ['member']);
    const reply = await c.request({ action: 'publish', group: 'chat:big', data: 'x'.repeat(16 * 1024 + 1) });
    expect(reply).toMatchObject({ type: 'error', code: 'TOO_LARGE' });
    expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('closes the connection with 1009 on a frame over 32 KB', async () => {
    const c = await client('acme', 'huge', ['member']);
    c.send({ action: 'publish', group: 'chat:big', data: 'x'.repeat(33 * 1024) });
    expect((await c.closed).code).toBe(1009);
  });
});

describe('the handshake', () => {
  it('accepts the token as a subprotocol, selecting tenantcast.v1, or as a query parameter', async () => {
    const viaProtocol = await client('acme', 'alice', ['member']);
    expect(viaProtocol.ws.protocol).toBe('tenantcast.v1');
    const viaQuery = await connect(runtime.wsUrl, token('acme', 'alice', ['member']), 'query');
    open.push(viaQuery);
    expect(await viaQuery.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('is refused with 401 without a token', async () => {
    expect(await handshakeStatus(runtime.wsUrl, undefined)).toBe(401);
  });

  it('is refused with 401 for an expired token', async () => {
    const expired = runtime.identity.signToken({
      tenantId: 'acme',
      userId: 'alice',
      roles: ['member'],
      ttlSeconds: 60,
      now: Math.floor(Date.now() / 1000) - 3600,
    }).token;
    expect(await handshakeStatus(runtime.wsUrl, expired)).toBe(401);
  });

  it('is refused with 401 for a wrong issuer, a wrong audience, a foreign key or garbage', async () => {
    const base = { tenantId: 'acme', userId: 'alice', roles: ['member'] };
    const wrongIssuer = runtime.identity.signToken({ ...base, extraClaims: { iss: 'https://evil.example' } }).token;
    const wrongAudience = runtime.identity.signToken({ ...base, extraClaims: { aud: 'someone-else' } }).token;
    const foreignKey = runtime.identity.signToken({ ...base, key: createSigningKey(runtime.identity.kid) }).token;
    for (const bad of [wrongIssuer, wrongAudience, foreignKey, 'not-a-jwt']) {
      expect(await handshakeStatus(runtime.wsUrl, bad, 'query')).toBe(401);
    }
  });

  it('is refused with 403 for a verified token without a tenant', async () => {
    const noTenant = runtime.identity.signToken({
      tenantId: 'acme',
      userId: 'alice',
      roles: [],
      extraClaims: { tenant_id: undefined },
    }).token;
    expect(await handshakeStatus(runtime.wsUrl, noTenant)).toBe(403);
  });

  it('never writes the token to a function log', async () => {
    const secret = token('acme', 'alice', ['member']);
    const c = await connect(runtime.wsUrl, secret, 'query');
    await c.request({ action: 'ping' });
    await c.close();
    await handshakeStatus(runtime.wsUrl, `${secret}x`, 'query');
    expect(functionLogs.length).toBeGreaterThan(0);
    expect(functionLogs.join('\n')).not.toContain(secret.split('.')[2]);
  });
});

describe('the connection registry', () => {
  it('forgets a connection and its memberships on $disconnect', async () => {
    const c = await client('acme', 'dora', ['member']);
    await c.request({ action: 'subscribe', group: 'chat:bye' });
    const id = [...runtime.gateway.connections.keys()].at(-1) as string;
    expect(await itemsOf(`C#${id}`)).toBe(2);
    await c.close();
    await eventually(async () => (await itemsOf(`C#${id}`)) === 0 && (await itemsOf(`T#acme#G#chat:bye`)) === 0);
  });

  it('removes a connection that vanished without $disconnect on the next delivery (410 Gone)', async () => {
    const ghost = await client('acme', 'ghost', ['member']);
    await ghost.request({ action: 'subscribe', group: 'chat:ghost' });
    const ghostId = [...runtime.gateway.connections.keys()].at(-1) as string;
    runtime.gateway.dropConnection(ghostId, { skipDisconnect: true });
    expect(await itemsOf('T#acme#G#chat:ghost')).toBe(1);

    const goneBefore = runtime.gateway.stats.gone;
    const pub = await client('acme', 'pub', ['member']);
    await pub.request({ action: 'subscribe', group: 'chat:ghost' });
    const ack = await pub.request({ action: 'publish', group: 'chat:ghost', data: 'anyone?' });
    await pub.waitFor((f) => f.id === ack.id);
    // Only the groups it was removed from stay, for a `$disconnect` that may still come (its presence leaves), until
    // their ttl: docs/data-model.md, `LEFT`.
    await eventually(async () => (await sortKeysOf(`C#${ghostId}`)).join() === 'LEFT');
    expect(await itemsOf('T#acme#G#chat:ghost')).toBe(1);
    expect(runtime.gateway.stats.gone).toBeGreaterThan(goneBefore);
  });
});

describe('the delivery queue', () => {
  it('sends a poison message to the DLQ while the rest of its batch is delivered', async () => {
    const c = await client('acme', 'quinn', ['member']);
    await c.request({ action: 'subscribe', group: 'chat:poison' });
    const good = {
      v: 1,
      id: 'good-1',
      tenantId: 'acme',
      group: 'chat:poison',
      data: 'ok',
      from: 'svc',
      ts: Date.now(),
    };
    await runtime.sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: runtime.queues.delivery.url,
        Entries: [
          {
            Id: 'poison',
            MessageBody: '{"this is": "not a delivery message"',
            MessageGroupId: 'acme#chat:poison-source',
            MessageDeduplicationId: 'poison-1',
          },
          {
            Id: 'good',
            MessageBody: JSON.stringify(good),
            MessageGroupId: 'acme#chat:poison',
            MessageDeduplicationId: 'good-1',
          },
        ],
      }),
    );
    const delivered: Frame = await c.waitFor((f) => f.id === 'good-1', 3000);
    expect(delivered).toMatchObject({ type: 'message', data: 'ok' });

    const dlq: string[] = [];
    await eventually(async () => {
      const out = await runtime.sqs.client.send(
        new ReceiveMessageCommand({
          QueueUrl: runtime.queues.delivery.dlqUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
        }),
      );
      dlq.push(...(out.Messages ?? []).map((m) => m.Body ?? ''));
      return dlq.length > 0;
    }, 10_000);
    expect(dlq).toEqual(['{"this is": "not a delivery message"']);
    await sleep(200);
    expect(c.frames.filter((f) => f.id === 'good-1')).toHaveLength(1);
  });
});
