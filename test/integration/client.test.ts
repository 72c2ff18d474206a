/**
 * The client SDK in Node (with `ws` as its WebSocket) against the local runtime: the same function code CDK deploys,
 * behind the API Gateway, DynamoDB and SQS stand-ins. Connections are cut, capped and their tokens expire while
 * numbered streams are published; the subscriber must see every message exactly once.
 */

import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import type { ClientState, Message, TenantcastClientError, WebSocketConstructor } from '../../client/src/index.ts';
import { type ClientOptions, createClient, type TenantcastClient } from '../../client/src/index.ts';
import { Registry } from '../../lambdas/core/registry.ts';
import { limits } from '../../lambdas/manifest.ts';
import { type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { defaultRoleRules, devLimits } from '../../local/seed.ts';
import { STARTUP_TIMEOUT_MS } from '../support/local-stack.ts';

/** Every frame the SDK sent, and every answer it got, by user: `ws` with its `send` and messages recorded. */
const sentBy = new Map<string, Record<string, unknown>[]>();
const answeredBy = new Map<string, Record<string, unknown>[]>();
function recordingWebSocket(userId: string): WebSocketConstructor {
  const sent: Record<string, unknown>[] = [];
  const answered: Record<string, unknown>[] = [];
  sentBy.set(userId, sent);
  answeredBy.set(userId, answered);
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener('message', (event) => {
        const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
        if (frame.ref !== undefined) answered.push(frame);
      });
      const send = this.send.bind(this);
      this.send = ((data: string) => {
        sent.push(JSON.parse(data) as Record<string, unknown>);
        send(data);
      }) as WebSocket['send'];
    }
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

interface Harness {
  runtime: LocalRuntime;
  clients: TenantcastClient[];
}

function harness(maxConnectionMs?: number): Harness {
  const h = { clients: [] } as unknown as Harness;
  beforeAll(async () => {
    h.runtime = await startLocal({
      seedLimits: devLimits,
      memoryDatabases: true,
      port: 0,
      sqsRetryDelaySeconds: 0,
      functionLogLevel: 'WARN',
      onFunctionLog: () => undefined,
      log: () => undefined,
      ...(maxConnectionMs !== undefined && { maxConnectionMs }),
    });
  }, STARTUP_TIMEOUT_MS);
  afterAll(async () => {
    for (const c of h.clients) c.close();
    await h.runtime?.stop();
  });
  return h;
}

interface Observed {
  client: TenantcastClient;
  states: ClientState[];
  errors: TenantcastClientError[];
  tokens: number;
}

function sdk(
  h: Harness,
  userId: string,
  roles: string[],
  options: Partial<ClientOptions> & { ttlSeconds?: number; tenantId?: string } = {},
) {
  const observed: Observed = { states: [], errors: [], tokens: 0 } as unknown as Observed;
  const { ttlSeconds, tenantId = 'acme', ...rest } = options;
  const client = createClient({
    url: h.runtime.wsUrl,
    WebSocket: recordingWebSocket(userId),
    getToken: () => {
      observed.tokens++;
      return h.runtime.identity.signToken({ tenantId, userId, roles, ...(ttlSeconds && { ttlSeconds }) });
    },
    backoff: { baseMs: 50, maxMs: 500 },
    ...rest,
  });
  client.on('state', (state) => observed.states.push(state));
  client.on('error', (error) => observed.errors.push(error));
  observed.client = client;
  h.clients.push(client);
  return observed;
}

const connectionsOf = (h: Harness, userId: string) =>
  [...h.runtime.gateway.connections.values()].filter((c) => c.authorizer?.userId === userId);

/** Publishes 0..count-1 one after the other, each acked before the next; calls `at(i)` before publish i. */
async function stream(client: TenantcastClient, group: string, count: number, gapMs: number, at?: (i: number) => void) {
  for (let i = 0; i < count; i++) {
    at?.(i);
    await client.publish(group, { n: i });
    await sleep(gapMs);
  }
}

function numbersOf(received: Message[]): number[] {
  return received.map((m) => (m.data as { n: number }).n);
}
const range = (count: number) => Array.from({ length: count }, (_, i) => i);
/** Groups swapped at the cap: enough that the frame burst (20) holds some unsubscribes back. */
const SWAP = 24;

describe('the client SDK against the local runtime', () => {
  const h = harness();

  it('connects, subscribes, publishes and receives, and reports refusals with the server code', async () => {
    const alice = sdk(h, 'alice', ['member']);
    const bob = sdk(h, 'bob', ['member']);
    await Promise.all([alice.client.connect(), bob.client.connect()]);
    const received: Message[] = [];
    await bob.client.subscribe('chat:sdk', (m) => received.push(m)).ready;

    const { id } = await alice.client.publish('chat:sdk', { text: 'hello' });
    await eventually(() => received.length === 1, 2000, 'bob receives the message');
    expect(received[0]).toMatchObject({ group: 'chat:sdk', id, data: { text: 'hello' }, from: 'alice' });

    await expect(alice.client.publish('announcements', 1)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(bob.client.subscribe('user:alice', () => undefined).ready).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(alice.client.state).toBe('connected');
  });

  it('delivers the publishes one sender makes in one tick in the order it made them', async () => {
    const erin = sdk(h, 'erin', ['member']);
    const frank = sdk(h, 'frank', ['member']);
    await Promise.all([erin.client.connect(), frank.client.connect()]);
    const received: number[] = [];
    await frank.client.subscribe('chat:order', (m) => received.push((m.data as { n: number }).n)).ready;
    await Promise.all(range(15).map((n) => erin.client.publish('chat:order', { n })));
    await eventually(() => received.length === 15, 10_000, 'frank receives all 15');
    // Until 2026-12-05 the SDK sent them at once, and API Gateway runs a connection's frames concurrently.
    expect(received).toEqual(range(15));
  });

  it('leaves no membership on the server for a subscription the app drops at once (a component mounted and gone)', async () => {
    const carol = sdk(h, 'carol', ['member']);
    await carol.client.connect();
    const groups = range(20).map((i) => `chat:blink-${i}`);
    for (const group of groups) carol.client.subscribe(group, () => undefined)();
    const answers = () => (answeredBy.get('carol') ?? []).filter((f) => f.type === 'ack').length;
    const sent = () => (sentBy.get('carol') ?? []).length;
    await eventually(() => sent() >= 2 * groups.length && answers() === sent(), 10_000, 'every frame answered');
    const registry = new Registry({
      client: DynamoDBDocumentClient.from(h.runtime.dynamo.client),
      tableName: h.runtime.tableName,
    });
    const held: string[] = [];
    for (const group of groups) {
      for await (const page of registry.members('acme', group)) if (page.length > 0) held.push(group);
    }
    // Until 2026-12-04 the SDK sent each unsubscribe with its subscribe still in flight: received in the same
    // millisecond, the subscribe counted as last and the membership stayed, delivered to and counted by the cap.
    expect(held).toEqual([]);
    const [connection] = connectionsOf(h, 'carol');
    expect(await registry.groupsOf(connection?.connectionId as string)).toEqual([]);
    expect(carol.errors).toEqual([]);
  });

  it('ends with exactly the groups it wants when it swaps groups at the subscription cap under the frame rate limit', async () => {
    // A tenant with the service's default limits (10 frames/s, burst 20), so a swap's frames are rate-limited.
    await h.runtime.tenants.put({ tenantId: 'paced', roleRules: defaultRoleRules });
    const dora = sdk(h, 'dora', ['member'], { tenantId: 'paced' });
    await dora.client.connect();
    const [connection] = connectionsOf(h, 'dora');
    const id = connection?.connectionId as string;
    const registry = new Registry({
      client: DynamoDBDocumentClient.from(h.runtime.dynamo.client),
      tableName: h.runtime.tableName,
    });
    // Memberships written straight to the registry (as if held), so the app's SWAP groups fill the cap of 100.
    const caller = { tenantId: 'paced', userId: 'dora', roles: ['member'], claims: {} };
    const held = range(limits.subscriptionsPerConnection - SWAP).map((i) => `chat:held-${i}`);
    await Promise.all(held.map((group) => registry.subscribe(caller, id, group, Date.now())));
    const old = range(SWAP).map((i) => `chat:old-${i}`);
    const leaves = old.map((group) => dora.client.subscribe(group, () => undefined));
    await Promise.all(leaves.map((leave) => leave.ready));

    // In one tick: subscribe as many others, then let go of them (subscribes first: the connection's unsubscribes
    // have written nothing yet when the first subscribes meet the cap).
    const wanted = range(SWAP).map((i) => `chat:new-${i}`);
    const readies = wanted.map((group) => dora.client.subscribe(group, () => undefined).ready);
    for (const leave of leaves) leave();
    await Promise.all(readies);
    const acked = (ref: unknown) => (answeredBy.get('dora') ?? []).some((a) => a.ref === ref && a.type === 'ack');
    const left = (group: string) =>
      (sentBy.get('dora') ?? []).some((f) => f.action === 'unsubscribe' && f.group === group && acked(f.ref));
    await eventually(() => old.every(left), 30_000, 'every unsubscribe acknowledged');
    expect((await registry.groupsOf(id)).sort()).toEqual([...held, ...wanted].sort());
  }, 60_000);

  it('loses and repeats nothing when the connection is cut in the middle of a stream', async () => {
    const publisher = sdk(h, 'pub-cut', ['member']);
    const subscriber = sdk(h, 'sub-cut', ['member']);
    await Promise.all([publisher.client.connect(), subscriber.client.connect()]);
    const received: Message[] = [];
    await subscriber.client.subscribe('chat:cut', (m) => received.push(m)).ready;

    const count = 40;
    await stream(publisher.client, 'chat:cut', count, 15, (i) => {
      if (i === 15) {
        const [connection] = connectionsOf(h, 'sub-cut');
        if (connection) h.runtime.gateway.dropConnection(connection.connectionId);
      }
    });
    await eventually(() => received.length >= count, 10_000, `all ${count} messages arrive`);
    await sleep(300);
    expect(subscriber.states).toContain('reconnecting');
    // The new connection resumed the group after the last seq seen, so the gap was replayed.
    const resubscribe = sentBy.get('sub-cut')?.filter((f) => f.action === 'subscribe')[1];
    expect(resubscribe).toMatchObject({ group: 'chat:cut', since: expect.any(Number) });
    expect(numbersOf(received).sort((a, b) => a - b)).toEqual(range(count));
  });

  it('keeps the connection alive past the token expiry by refreshing the token', async () => {
    const refreshed = sdk(h, 'refreshing', ['member'], { ttlSeconds: 3, refreshBeforeMs: 2000 });
    await refreshed.client.connect();
    const received: Message[] = [];
    await refreshed.client.subscribe('chat:refresh', (m) => received.push(m)).ready;
    const [first] = connectionsOf(h, 'refreshing');

    await sleep(4000);
    const { id } = await refreshed.client.publish('chat:refresh', 'after expiry');
    await eventually(() => received.some((m) => m.id === id), 2000, 'the message arrives after expiry');
    expect(refreshed.errors).toEqual([]);
    expect(refreshed.tokens).toBeGreaterThanOrEqual(3);
    expect(connectionsOf(h, 'refreshing').map((c) => c.connectionId)).toEqual([first?.connectionId]);
  }, 15_000);
});

describe('the client SDK against a gateway that caps connections at 2 seconds', () => {
  const h = harness(2000);

  it('rolls over to a new connection before the cap without losing or repeating a message', async () => {
    // Rolling over at 0.8 s leaves the old connection over a second to collect its publishes' acks before the cap
    // closes it (a publish whose ack the cap cuts off is sent again: at least once). At 1.2 s, a loaded machine's
    // ack latency passed the 0.8 s left about one run in two, on the code before issue #14 too.
    const publisher = sdk(h, 'pub-roll', ['member'], { rolloverAfterMs: 800 });
    const subscriber = sdk(h, 'sub-roll', ['member'], { rolloverAfterMs: 800 });
    await Promise.all([publisher.client.connect(), subscriber.client.connect()]);
    const received: Message[] = [];
    await subscriber.client.subscribe('chat:roll', (m) => received.push(m)).ready;
    const connectsBefore = h.runtime.gateway.stats.connects;

    const count = 100;
    await stream(publisher.client, 'chat:roll', count, 30);
    await eventually(() => received.length >= count, 10_000, `all ${count} messages arrive`);
    await sleep(300);
    expect(numbersOf(received).sort((a, b) => a - b)).toEqual(range(count));
    // Several rollovers happened, and none of them was a reconnect.
    expect(h.runtime.gateway.stats.connects - connectsBefore).toBeGreaterThanOrEqual(4);
    expect(subscriber.states).toEqual(['connecting', 'connected']);
    expect(publisher.states).toEqual(['connecting', 'connected']);
  }, 30_000);
});
