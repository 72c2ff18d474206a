/**
 * Multi-region delivery end to end (docs/multi-region.md): two local regions of one stage side by side, each a
 * complete runtime with its own gateway, table, queues and functions, connected only through each other's delivery
 * queue URLs, as CDK connects deployed regions. Real WebSockets in both.
 */
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { homeRegionOf } from '../../lambdas/core/replication.ts';
import { Publisher } from '../../lambdas/sdk/publisher.ts';
import { type LocalStage, startLocalStage } from '../../local/multi-region.ts';
import type { LocalRuntime } from '../../local/runtime.ts';
import { devLimits, seedTenants } from '../../local/seed.ts';
import { STARTUP_TIMEOUT_MS } from '../support/local-stack.ts';
import { connect, type Frame, type TestClient } from '../support/ws-client.ts';

const REGIONS = ['eu-west-1', 'us-east-1'];
const TENANT = 'acme';
const GROUP = 'chat:x';
/** acme's home (where its seqs are assigned) and the other region, whichever they are. */
const HOME = homeRegionOf(TENANT, REGIONS);
const PEER = REGIONS.find((r) => r !== HOME) as string;

let stage: LocalStage;
let home: LocalRuntime;
let peer: LocalRuntime;
const open: TestClient[] = [];

beforeAll(async () => {
  stage = await startLocalStage({
    regions: REGIONS.map((region) => ({ region })),
    // The tenant catalog only: no tenant databases, which these tests do not use.
    seed: false,
    schedules: false,
    sqsRetryDelaySeconds: 0,
    functionLogLevel: 'WARN',
    onFunctionLog: () => undefined,
    log: () => undefined,
  });
  home = stage.region(HOME);
  peer = stage.region(PEER);
  for (const runtime of stage.regions.values()) {
    for (const tenant of seedTenants) await runtime.tenants.put({ ...tenant, limits: devLimits });
  }
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await stage?.stop();
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(runtime: LocalRuntime, userId: string): Promise<TestClient> {
  const token = runtime.identity.signToken({ tenantId: TENANT, userId, roles: ['member'] }).token;
  const c = await connect(runtime.wsUrl, token);
  open.push(c);
  return c;
}

async function subscriber(runtime: LocalRuntime, userId: string, since?: number): Promise<TestClient> {
  const c = await client(runtime, userId);
  const ack = await c.request({ action: 'subscribe', group: GROUP, ...(since !== undefined && { since }) });
  expect(ack.type).toBe('ack');
  return c;
}

/** Every message a client got in the group, in arrival order, batch frames unpacked. */
function messages(c: TestClient): Frame[] {
  return c.frames
    .flatMap((f) => (f.type === 'batch' ? (f.messages as Frame[]) : f.type === 'message' ? [f] : []))
    .filter((m) => m.group === GROUP);
}

const summary = (c: TestClient) => messages(c).map((m) => ({ id: m.id, seq: m.seq, text: (m.data as Frame).text }));

async function publish(c: TestClient, text: string): Promise<string> {
  const ack = await c.request({ action: 'publish', group: GROUP, data: { text } });
  expect(ack).toMatchObject({ type: 'ack' });
  return ack.id as string;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

const hasIds = (c: TestClient, ids: readonly string[]) => () => {
  const got = new Set(messages(c).map((m) => m.id));
  return ids.every((id) => got.has(id));
};

describe(`two regions of a stage (acme's home: ${HOME}, peer: ${PEER})`, () => {
  let atHome: TestClient;
  let atPeer: TestClient;
  let publisherAtHome: TestClient;
  let publisherAtPeer: TestClient;

  beforeAll(async () => {
    atHome = await subscriber(home, 'hana');
    atPeer = await subscriber(peer, 'piet');
    publisherAtHome = await client(home, 'hugo');
    publisherAtPeer = await client(peer, 'pia');
  }, 30_000);

  it('delivers a message published in the home region to a subscriber in the peer region once, with the same id and seq', async () => {
    const id = await publish(publisherAtHome, 'from home');
    await until(hasIds(atHome, [id]), 'home delivery');
    await until(hasIds(atPeer, [id]), 'peer delivery');
    // Anything duplicated would have arrived by now (every queue here polls continuously).
    await sleep(500);

    expect(summary(atPeer)).toEqual([{ id, seq: 1, text: 'from home' }]);
    expect(summary(atPeer)).toEqual(summary(atHome));
  });

  it('sequences a message published in the peer region at the home and delivers it in both regions', async () => {
    const id = await publish(publisherAtPeer, 'from peer');
    await until(hasIds(atHome, [id]), 'home delivery');
    await until(hasIds(atPeer, [id]), 'peer delivery');
    await sleep(500);

    expect(summary(atHome).at(-1)).toEqual({ id, seq: 2, text: 'from peer' });
    expect(summary(atPeer)).toEqual(summary(atHome));
  });

  it('keeps one sequence for the group while both regions publish at once', async () => {
    const texts = Array.from({ length: 6 }, (_, i) => `${i % 2 === 0 ? 'home' : 'peer'} ${i}`);
    const ids = await Promise.all(
      texts.map((text, i) => publish(i % 2 === 0 ? publisherAtHome : publisherAtPeer, text)),
    );
    await until(hasIds(atHome, ids), 'home delivery');
    await until(hasIds(atPeer, ids), 'peer delivery');
    await sleep(500);

    const seen = summary(atPeer);
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(seen.map((m) => m.id)).size).toBe(8);
    expect(seen).toEqual(summary(atHome));
  });

  it("recovers with since in the peer region from the peer's own history, the home being unreachable", async () => {
    const refuse = home.sqs.failSends(true);
    try {
      const late = await subscriber(peer, 'paul', 5);
      await until(() => messages(late).length >= 3, 'replay');
      await sleep(300);

      expect(summary(late)).toEqual(summary(atPeer).filter((m) => (m.seq as number) > 5));
    } finally {
      refuse();
    }
    const history = await peer.dynamo.client.send(
      new QueryCommand({
        TableName: peer.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `T#${TENANT}#G#${GROUP}#H` } },
      }),
    );
    expect(history.Items?.map((item) => Number(item.seq?.N))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('holds back only the replication to a peer that is down, which catches up in order, once, when it is back', async () => {
    const refuse = peer.sqs.failSends(peer.queues.delivery.name);
    let ids: string[];
    try {
      ids = [];
      for (const text of ['outage 1', 'outage 2', 'outage 3']) ids.push(await publish(publisherAtHome, text));
      await until(hasIds(atHome, ids), 'home delivery during the outage');
      await sleep(300);
      expect(messages(atPeer).filter((m) => ids.includes(m.id as string))).toEqual([]);
    } finally {
      refuse();
    }
    await until(hasIds(atPeer, ids), 'peer delivery after the outage', 15_000);
    await sleep(500);

    expect(summary(atPeer).slice(-3)).toEqual([
      { id: ids[0], seq: 9, text: 'outage 1' },
      { id: ids[1], seq: 10, text: 'outage 2' },
      { id: ids[2], seq: 11, text: 'outage 3' },
    ]);
    expect(summary(atPeer)).toEqual(summary(atHome));
  }, 30_000);

  it('delivers a published id shaped like `<id>@<seq>` in both regions: a replica’s dedup id is none such', async () => {
    // Until 2026-12-04 a replica's dedup id in the peer's queue was `<id>@<seq>`: a publish of `x@1` in the peer after
    // `x`'s replica (seq 1) was acknowledged and dropped by SQS, and `z`'s replica after a publish of `z@<its seq>` too.
    const group = 'chat:ids';
    const inGroup = (c: TestClient) => () =>
      c.frames
        .flatMap((f) => (f.type === 'batch' ? (f.messages as Frame[]) : f.type === 'message' ? [f] : []))
        .filter((m) => m.group === group)
        .map((m) => ({ id: m.id as string, seq: m.seq as number }));
    const [idsHome, idsPeer] = [await client(home, 'ida'), await client(peer, 'ivo')];
    for (const c of [idsHome, idsPeer]) expect((await c.request({ action: 'subscribe', group })).type).toBe('ack');
    const sdk = new Publisher({ queueUrl: peer.queues.delivery.url, client: peer.sqs.client });
    const pub = (id: string) => sdk.publish({ tenantId: TENANT, group, id, data: { text: id } });
    const got = (c: TestClient, id: string) => () => inGroup(c)().some((m) => m.id === id);
    await pub('x');
    await until(got(idsPeer, 'x'), 'x in the peer');
    const seqX = inGroup(idsPeer)().find((m) => m.id === 'x')?.seq as number;
    await pub(`x@${seqX}`);
    // `z@<n>` takes seq n - 1, then `z` takes n: its replica's dedup id was `z@<n>`, the publish's own.
    const next = seqX + 3;
    await pub(`z@${next}`);
    await pub('z');
    for (const c of [idsHome, idsPeer]) {
      for (const id of [`x@${seqX}`, `z@${next}`, 'z'])
        await until(got(c, id), `${id} in ${c === idsHome ? HOME : PEER}`);
    }
    expect(inGroup(idsPeer)().find((m) => m.id === 'z')?.seq).toBe(next);
  }, 60_000);
});
