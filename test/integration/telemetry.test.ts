/**
 * Telemetry end to end (docs/operations.md): correlation ids from the WebSocket frame through the SQS message
 * attributes to the broadcaster's delivery log line, no token in any line, and the ops page reflecting real
 * activity from the functions' EMF output.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { OpsSnapshot, SeriesSnapshot } from '../../local/ops.ts';
import { type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { devLimits } from '../../local/seed.ts';
import { STARTUP_TIMEOUT_MS } from '../support/local-stack.ts';
import { connect, type TestClient } from '../support/ws-client.ts';

let runtime: LocalRuntime;
const lines: { fn: string; line: string }[] = [];
const open: TestClient[] = [];
const tokens: string[] = [];

beforeAll(async () => {
  runtime = await startLocal({
    memoryDatabases: true,
    seedLimits: devLimits,
    port: 0,
    sqsRetryDelaySeconds: 0,
    // DEBUG: every line the functions can write is checked for tokens.
    functionLogLevel: 'DEBUG',
    onFunctionLog: (fn, line) => lines.push({ fn, line }),
    log: () => undefined,
    schedules: false,
  });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await runtime?.stop();
});

async function client(tenantId: string, userId: string): Promise<TestClient> {
  const { token } = runtime.identity.signToken({ tenantId, userId, roles: ['member'] });
  tokens.push(token);
  const c = await connect(runtime.wsUrl, token);
  open.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(find: () => T | undefined | Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}

type LogLine = Record<string, unknown>;
function jsonLines(fn: string): LogLine[] {
  return lines
    .filter((l) => l.fn === fn && l.line.startsWith('{'))
    .map((l) => JSON.parse(l.line) as LogLine)
    .filter((l) => !('_aws' in l));
}

async function ops(): Promise<OpsSnapshot> {
  return (await (await fetch(`${runtime.url}/ops/metrics.json`)).json()) as OpsSnapshot;
}
const series = (snapshot: OpsSnapshot, name: string, service: string): SeriesSnapshot | undefined =>
  snapshot.metrics.find((m) => m.name === name && m.dimensions.service === service);
const total = (snapshot: OpsSnapshot, name: string, service: string) => series(snapshot, name, service)?.total.sum ?? 0;

describe('a publish over a WebSocket', () => {
  it('is logged by the broadcaster with the publisher connection, tenant and message ids, and no token', async () => {
    const alice = await client('acme', 'alice');
    const bob = await client('acme', 'bob');
    for (const c of [alice, bob]) {
      expect(await c.request({ action: 'subscribe', group: 'chat:telemetry' })).toMatchObject({ type: 'ack' });
    }
    const ack = await alice.request({ action: 'publish', group: 'chat:telemetry', data: { text: 'trace me' } });
    expect(ack).toMatchObject({ type: 'ack' });
    const message = await bob.waitFor((f) => f.type === 'message' && f.group === 'chat:telemetry');

    const aliceConnection = await eventually(
      () => jsonLines('connect').find((l) => l.message === 'connected' && l.userId === 'alice')?.connectionId,
    );
    const delivered = await eventually(() =>
      jsonLines('broadcaster').find((l) => l.message === 'delivered' && l.messageId === message.id),
    );
    expect(delivered).toMatchObject({
      level: 'INFO',
      service: 'broadcaster',
      tenantId: 'acme',
      messageId: message.id,
      connectionId: aliceConnection,
      group: 'chat:telemetry',
      delivered: 2,
    });
    // The publishing route's own lines carry the same ids.
    expect(jsonLines('message').find((l) => l.message === 'enqueued' && l.messageId === message.id)).toMatchObject({
      connectionId: aliceConnection,
      tenantId: 'acme',
    });

    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) {
      const signature = token.split('.')[2] as string;
      expect(signature.length).toBeGreaterThan(20);
      expect(lines.filter((l) => l.line.includes(signature))).toEqual([]);
    }
    // Message data is not a log field either, and every function had metrics to flush.
    expect(lines.filter((l) => l.line.includes('trace me'))).toEqual([]);
    expect(lines.filter((l) => l.line.includes('No application metrics to publish'))).toEqual([]);
  });
});

describe('the ops page', () => {
  it('serves HTML that polls its metrics every second', async () => {
    const res = await fetch(`${runtime.url}/ops`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('/ops/metrics.json');
  });

  it('shows the metrics of a publish move: messages in, deliveries, latency, and the services around them', async () => {
    const alice = await client('globex', 'alice');
    const bob = await client('globex', 'bob');
    for (const c of [alice, bob]) {
      expect(await c.request({ action: 'subscribe', group: 'chat:ops' })).toMatchObject({ type: 'ack' });
    }
    const before = await ops();
    await alice.request({ action: 'publish', group: 'chat:ops', data: { n: 1 } });
    await bob.waitFor((f) => f.type === 'message' && f.group === 'chat:ops');

    const after = await eventually(async () => {
      const now = await ops();
      return total(now, 'Deliveries', 'broadcaster') >= total(before, 'Deliveries', 'broadcaster') + 2 &&
        total(now, 'MessagesIn', 'message') >= total(before, 'MessagesIn', 'message') + 1
        ? now
        : undefined;
    });
    expect(total(after, 'MessagesIn', 'message') - total(before, 'MessagesIn', 'message')).toBe(1);
    expect(total(after, 'Deliveries', 'broadcaster') - total(before, 'Deliveries', 'broadcaster')).toBe(2);
    expect(series(after, 'Deliveries', 'broadcaster')?.tenants.globex).toBe(2);
    const latency = series(after, 'DeliveryLatency', 'broadcaster');
    expect(latency).toMatchObject({ unit: 'Milliseconds' });
    expect(latency?.window.p50).toEqual(expect.any(Number));
    expect(latency?.window.p99).toBeGreaterThanOrEqual(latency?.window.p50 ?? Number.POSITIVE_INFINITY);
    expect(total(after, 'ConnectionsOpened', 'connect')).toBeGreaterThanOrEqual(2);
    expect(total(after, 'FramesIn', 'message')).toBeGreaterThan(total(before, 'FramesIn', 'message'));

    // What AWS's own service metrics would show: gateway, queues, function invocations.
    expect(after.gateway?.open).toBeGreaterThanOrEqual(2);
    expect(after.gateway?.posts).toBeGreaterThan(before.gateway?.posts ?? 0);
    expect(after.queues.map((q) => q.name).sort()).toEqual(Object.keys(runtime.queues).sort());
    for (const q of after.queues) expect(q.dlqMessages).toBe(0);
    const invocations = (s: OpsSnapshot) => s.functions.find((f) => f.name === 'broadcaster')?.invocations ?? 0;
    expect(invocations(after)).toBeGreaterThan(invocations(before));
  });

  it('counts connections closed and 410s from the functions', async () => {
    const carol = await client('acme', 'carol');
    const dave = await client('acme', 'dave');
    for (const c of [carol, dave]) {
      expect(await c.request({ action: 'subscribe', group: 'chat:gone' })).toMatchObject({ type: 'ack' });
    }
    const before = await ops();
    // Dave's connection vanishes without $disconnect: the broadcaster gets 410 and removes it.
    const daveId = await eventually(
      () => jsonLines('connect').find((l) => l.message === 'connected' && l.userId === 'dave')?.connectionId,
    );
    expect(runtime.gateway.dropConnection(String(daveId), { skipDisconnect: true })).toBe(true);
    await carol.request({ action: 'publish', group: 'chat:gone', data: { n: 2 } });
    await carol.waitFor((f) => f.type === 'message' && f.group === 'chat:gone');
    await carol.close();
    const after = await eventually(async () => {
      const now = await ops();
      return total(now, 'GoneConnections', 'broadcaster') > total(before, 'GoneConnections', 'broadcaster') &&
        total(now, 'ConnectionsClosed', 'disconnect') > total(before, 'ConnectionsClosed', 'disconnect')
        ? now
        : undefined;
    });
    expect(total(after, 'GoneConnections', 'broadcaster') - total(before, 'GoneConnections', 'broadcaster')).toBe(1);
    expect(after.gateway?.gone).toBeGreaterThan(before.gateway?.gone ?? 0);
  });
});
