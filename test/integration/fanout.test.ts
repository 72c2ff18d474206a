/**
 * The fanout function over real WebSockets (docs/delivery.md, "Large groups"): consecutive pages of one lane that
 * arrive in one fan-out batch are delivered as one unit, re-packed into fewer frames, and a unit that fails is
 * redelivered together, skipping the connections each page already reached.
 */
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from '@jest/globals';
import type { FanoutJob, SequencedMessage } from '../../lambdas/core/delivery.ts';
import { fanoutLaneGroupId } from '../../lambdas/core/delivery.ts';
import { packFrames } from '../../lambdas/core/delivery-plan.ts';
import {
  eventually,
  messages,
  openClient,
  queueDepth,
  sleep,
  tokenFor,
  useQuietRuntime,
} from '../support/local-stack.ts';
import type { TestClient } from '../support/ws-client.ts';

const runtime = useQuietRuntime({
  sqsRetryDelaySeconds: 0,
  schedules: false,
  functionLogLevel: 'WARN',
  faultInjection: true,
  // A sleeper woken on purpose is not closed first on a loaded machine (lambdas/core/lagging.ts).
  functionEnv: { LAG_CLOSE_AFTER_MS: '30000' },
});

/** `count` connected clients of acme and their connection ids. */
async function members(count: number): Promise<{ client: TestClient; connectionId: string }[]> {
  const out: { client: TestClient; connectionId: string }[] = [];
  for (let i = 0; i < count; i++) {
    const client = await openClient(runtime(), tokenFor(runtime(), 'acme', `fan-${Date.now()}-${i}`, ['member']));
    out.push({ client, connectionId: [...runtime().gateway.connections.keys()].at(-1) as string });
  }
  return out;
}

/** One page per seq, as the broadcaster makes them for runs of one message: every connection gets that message. */
function pages(group: string, seqs: readonly number[], connectionIds: readonly string[]) {
  return seqs.map((seq) => {
    const message: SequencedMessage = {
      v: 1,
      id: `${group}-m${seq}`,
      tenantId: 'acme',
      group,
      data: { seq },
      from: 'alice',
      ts: Date.now(),
      seq,
    };
    const job: FanoutJob = {
      v: 1,
      kind: 'fanout',
      tenantId: 'acme',
      group,
      batchSeq: seq,
      frames: packFrames([message]),
      recipients: Object.fromEntries(connectionIds.map((id) => [id, [0]])),
    };
    return { job, id: `${group.replace(/\W/g, '-')}-${seq}-${seq}-0-0` };
  });
}

/** Sends the pages onto lane 0 of the group. */
async function send(group: string, jobs: readonly { job: FanoutJob; id: string }[]): Promise<void> {
  await runtime().sqs.client.send(
    new SendMessageBatchCommand({
      QueueUrl: runtime().queues.fanout.url,
      Entries: jobs.map(({ job, id }, i) => ({
        Id: `e${i}`,
        MessageBody: JSON.stringify(job),
        MessageGroupId: fanoutLaneGroupId('acme', group, 0),
        MessageDeduplicationId: id,
      })),
    }),
  );
}

/**
 * Sends `jobs` (pages of seqs after 1) while the lane is busy with a slow page of seq 1 (its post held 500 ms), so
 * they queue up behind it and the fanout function receives them in one batch, as under load.
 */
async function sendBehindSlowPage(group: string, jobs: readonly { job: FanoutJob; id: string }[]): Promise<void> {
  const stats = fanoutStats();
  const [slow] = await members(1);
  if (slow === undefined) throw new Error('no slow member');
  runtime().gateway.injectFaults({ delayMs: 500, count: 1, connectionIds: [slow.connectionId] });
  const received = stats.received;
  await send(group, pages(group, [1], [slow.connectionId]));
  await eventually(() => stats.received > received, 5_000, 'the slow page received');
  await send(group, jobs);
  await eventually(() => messages(slow.client, group).length > 0, 5_000, 'the slow page delivered');
}

function fanoutStats() {
  const stats = runtime().pollers.get('fanout')?.stats;
  if (stats === undefined) throw new Error('no fanout poller');
  return stats;
}

/** Message and batch frames a client received for `group`. */
const framesOf = (c: TestClient, group: string) =>
  c.frames.filter((f) =>
    f.type === 'batch' ? (f.messages as { group?: unknown }[]).some((m) => m.group === group) : f.group === group,
  );

describe('consecutive pages of a lane in one fan-out batch', () => {
  it('reach each connection as one frame holding every page, in seq order', async () => {
    const group = 'chat:merged';
    const all = await members(4);
    await sendBehindSlowPage(
      group,
      pages(
        group,
        [2, 3, 4],
        all.map((m) => m.connectionId),
      ),
    );
    await eventually(() => all.every(({ client }) => messages(client, group).length >= 3), 10_000, 'all pages');
    for (const { client } of all) {
      expect(messages(client, group).map((m) => m.seq)).toEqual([2, 3, 4]);
      expect(framesOf(client, group)).toHaveLength(1);
    }
  }, 20_000);

  it('fail together when a connection is left out, and come back together for that connection only', async () => {
    const group = 'chat:merged-retry';
    const all = await members(3);
    const flaky = all[0] as (typeof all)[number];
    const stats = fanoutStats();
    const before = { failed: stats.failed, succeeded: stats.succeeded };
    // Every attempt of the first delivery fails for this connection (4 tries with backoff), then it recovers.
    runtime().gateway.injectFaults({ status: 500, count: 4, connectionIds: [flaky.connectionId] });
    await sendBehindSlowPage(
      group,
      pages(
        group,
        [2, 3],
        all.map((m) => m.connectionId),
      ),
    );
    await eventually(() => messages(flaky.client, group).length >= 2, 15_000, 'the redelivery');
    await eventually(() => stats.succeeded >= before.succeeded + 3, 5_000, 'every page deleted');
    // Both pages failed the first time (one unit), and both were then delivered.
    expect(stats.failed - before.failed).toBe(2);
    for (const { client } of all) {
      expect(messages(client, group).map((m) => m.seq)).toEqual([2, 3]);
      expect(framesOf(client, group)).toHaveLength(1);
    }
  }, 30_000);
});

describe('a record on a lane that is not a page', () => {
  it('is set aside at once, and the pages behind it are delivered, in order', async () => {
    const group = 'chat:poison-page';
    const all = await members(2);
    const [p1, p2, p3] = pages(
      group,
      [1, 2, 3],
      all.map((m) => m.connectionId),
    );
    if (p1 === undefined || p2 === undefined || p3 === undefined) throw new Error('no pages');
    const setAside = await queueDepth(runtime(), runtime().queues.fanout.dlqUrl);
    // A body that is JSON but no page, as a newer broadcaster's page would be to an older fan-out function.
    await runtime().sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: runtime().queues.fanout.url,
        Entries: [
          JSON.stringify(p1.job),
          '{"v":1,"kind":"fanout","not":"a page"}',
          JSON.stringify(p2.job),
          JSON.stringify(p3.job),
        ].map((MessageBody, i) => ({
          Id: `e${i}`,
          MessageBody,
          MessageGroupId: fanoutLaneGroupId('acme', group, 0),
          MessageDeduplicationId: `poison-page-${i}`,
        })),
      }),
    );
    await eventually(() => all.every(({ client }) => messages(client, group).length >= 3), 15_000, 'pages 1-3');
    for (const { client } of all) expect(messages(client, group).map((m) => m.seq)).toEqual([1, 2, 3]);
    // Only the poison record reached the dead-letter queue (until 2026-12-04 it was retried there and took the
    // lane's pages behind it with it).
    await sleep(500);
    expect((await queueDepth(runtime(), runtime().queues.fanout.dlqUrl)) - setAside).toBe(1);
  }, 30_000);
});

describe('a small group under a backlog (docs/delivery.md, "Pack from the log")', () => {
  it('takes the lanes once its runs wait, and every member still gets every message once, in seq order', async () => {
    const group = 'chat:backlog';
    const all = await members(3);
    for (const { client } of all) await client.request({ action: 'subscribe', group });
    const publisher = await openClient(runtime(), tokenFor(runtime(), 'acme', `pub-${Date.now()}`, ['admin']));
    const fanouts = runtime().functions.get('fanout')?.invocations ?? 0;
    await publisher.request({ action: 'publish', group, data: { n: 1 } });
    await eventually(() => all.every(({ client }) => messages(client, group).length === 1), 10_000, 'message 1');
    // The next run's post to one member is held 2.5 s: the messages published meanwhile wait in the queue.
    runtime().gateway.injectFaults({
      delayMs: 2500,
      count: 1,
      connectionIds: [(all[0] as (typeof all)[number]).connectionId],
    });
    for (let n = 2; n <= 40; n++) await publisher.request({ action: 'publish', group, data: { n } });
    await eventually(() => all.every(({ client }) => messages(client, group).length >= 40), 20_000, 'all 40');
    await sleep(300);
    for (const { client } of all) {
      expect(messages(client, group).map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(messages(client, group).map((m) => (m.data as { n: number }).n)).toEqual(
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
    }
    // The small group went through the fan-out lanes (it has 3 members, far below the split threshold).
    expect((runtime().functions.get('fanout')?.invocations ?? 0) - fanouts).toBeGreaterThan(0);
  }, 40_000);
});

describe('a split group with a member whose client stops reading (docs/delivery.md, "Faults")', () => {
  it('goes on in its lane without it, and it gets everything, in order, once it reads again', async () => {
    const group = 'chat:lane-asleep';
    const all = await members(3);
    for (const { client } of all) await client.request({ action: 'subscribe', group });
    const publisher = await openClient(runtime(), tokenFor(runtime(), 'acme', `pub-${Date.now()}`, ['admin']));
    const publish = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) await publisher.request({ action: 'publish', group, data: { n } });
    };
    const [awake1, awake2, sleeper] = all as [(typeof all)[number], (typeof all)[number], (typeof all)[number]];
    // A backlog puts the group on the lanes (for 15 minutes): one post held 2.5 s while messages wait.
    runtime().gateway.injectFaults({ delayMs: 2500, count: 1, connectionIds: [awake1.connectionId] });
    await publish(1, 10);
    await eventually(() => all.every(({ client }) => messages(client, group).length >= 10), 20_000, 'the first 10');
    const fanouts = runtime().functions.get('fanout')?.invocations ?? 0;
    const dlq = await queueDepth(runtime(), runtime().queues.fanout.dlqUrl);
    // Its posts are answered 429 now, as API Gateway answers a client whose buffer is full.
    const wake = runtime().gateway.injectFaults({ status: 429, connectionIds: [sleeper.connectionId] });
    await publish(11, 15);
    for (const { client } of [awake1, awake2]) {
      await eventually(() => messages(client, group).length >= 15, 10_000, 'the lane goes on');
    }
    expect((runtime().functions.get('fanout')?.invocations ?? 0) - fanouts).toBeGreaterThan(0);
    await sleep(2000);
    wake();
    await eventually(() => messages(sleeper.client, group).length >= 15, 10_000, 'what it missed, once it reads');
    await publish(16, 16);
    await eventually(() => all.every(({ client }) => messages(client, group).length >= 16), 10_000, 'live again');
    await sleep(300);
    for (const { client } of all) {
      expect(messages(client, group).map((m) => m.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    }
    expect(await queueDepth(runtime(), runtime().queues.fanout.dlqUrl)).toBe(dlq);
  }, 60_000);
});

describe('usage of fan-out deliveries (docs/security.md, "Usage metering")', () => {
  /** acme's `deliveriesOut` of today. */
  async function deliveriesOut(): Promise<number> {
    const today = new Date().toISOString().slice(0, 10);
    const response = await fetch(`${runtime().url}/v1/usage?from=${today}&to=${today}`, {
      headers: { authorization: `Bearer ${tokenFor(runtime(), 'acme', 'usage-reader', ['admin'])}` },
    });
    const body = (await response.json()) as { days: { deliveriesOut?: number }[] };
    return body.days[0]?.deliveriesOut ?? 0;
  }

  it("counts every connection a unit reached, written once the fan-out's batch is done", async () => {
    const group = 'chat:metered';
    const all = await members(3);
    const before = await deliveriesOut();
    await send(
      group,
      pages(
        group,
        [1],
        all.map((m) => m.connectionId),
      ),
    );
    await eventually(() => all.every(({ client }) => messages(client, group).length === 1), 10_000, 'the page');
    await runtime().gateway.whenIdle();
    let after = before;
    for (let i = 0; i < 50 && after < before + 3; i++) {
      await sleep(100);
      after = await deliveriesOut();
    }
    expect(after).toBe(before + 3);
  }, 20_000);
});
