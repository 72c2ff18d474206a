/**
 * `tenantcast dlq redrive` of messages that reached some members before they were dead-lettered (found by an attacking
 * pass, 2026-12-04): the redriven copy is a redelivery, so the members it reached are not sent it again. Real SQS
 * stand-in, real broadcaster and fan-out, @connections faults injected for one member until the message is
 * dead-lettered.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { type FanoutJob, fanoutLaneGroupId, type SequencedMessage } from '../../lambdas/core/delivery.ts';
import { packFrames } from '../../lambdas/core/delivery-plan.ts';
import { runCli } from '../../scripts/tenantcast-cli.ts';
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

const dir = await mkdtemp(join(tmpdir(), 'tenantcast-redrive-'));
const endpointsFile = join(dir, 'endpoints.json');
const runtime = useQuietRuntime({
  sqsRetryDelaySeconds: 0,
  schedules: false,
  functionLogLevel: 'ERROR',
  faultInjection: true,
  endpointsFile,
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Two members of `group`; posts to the second fail with 500 until `deadLettered` finds the DLQ holding the message. */
async function twoMembers(group: string, status: 413 | 500 = 500) {
  const ids = () => [...runtime().gateway.connections.keys()];
  const a = await openClient(runtime(), tokenFor(runtime(), 'acme', 'ra', ['admin']));
  const aId = ids().at(-1) as string;
  await a.request({ action: 'subscribe', group });
  const b = await openClient(runtime(), tokenFor(runtime(), 'acme', 'rb', ['admin']));
  const bId = ids().at(-1) as string;
  await b.request({ action: 'subscribe', group });
  const stop = runtime().gateway.injectFaults({ status, connectionIds: [bId], count: 100_000 });
  const deadLettered = async (dlqUrl: string) => {
    await eventually(() => messages(a, group).length >= 1, 20_000, 'the first member got it');
    const deadline = Date.now() + 90_000;
    while ((await queueDepth(runtime(), dlqUrl)) === 0 && Date.now() < deadline) await sleep(300);
    stop();
  };
  return { a, aId, b, bId, deadLettered };
}

const seen = (c: TestClient, group: string) => messages(c, group).map((m) => `${m.id}@${m.seq}`);

async function redrive(queue: string) {
  const out: string[] = [];
  const code = await runCli(['dlq', 'redrive', queue, '--endpoints', endpointsFile], {
    out: (l) => out.push(l),
    err: (l) => out.push(l),
  });
  expect([code, out.join('\n')]).toEqual([0, expect.stringMatching(new RegExp(`${queue}\\s+1`))]);
}

describe('a redriven message', () => {
  it('of the delivery queue keeps its seq and reaches only the members it had not reached', async () => {
    const group = 'chat:redrive-once';
    const { a, b, deadLettered } = await twoMembers(group);
    expect(await a.request({ action: 'publish', group, data: { text: 'once' } })).toMatchObject({ type: 'ack' });
    await deadLettered(runtime().queues.delivery.dlqUrl);
    await redrive('delivery');
    await eventually(() => messages(b, group).length >= 1, 20_000, 'the second member got it after the redrive');
    await sleep(1_000);
    expect(seen(a, group)).toHaveLength(1);
    expect(seen(b, group)).toEqual(seen(a, group));
  });

  it.each([
    ['dead-lettered by SQS after its receives', 500 as const],
    ['set aside by the fan-out (a 413, which no retry changes)', 413 as const],
  ])('of the fan-out queue, %s, reaches only the members its page had not reached', async (_how, status) => {
    const group = `chat:redrive-page-${status}`;
    const { a, aId, b, bId, deadLettered } = await twoMembers(group, status);
    const message: SequencedMessage = {
      v: 1,
      id: 'page-m1',
      tenantId: 'acme',
      group,
      data: { n: 1 },
      from: 'x',
      ts: Date.now(),
      seq: 1,
    };
    const job: FanoutJob = {
      v: 1,
      kind: 'fanout',
      tenantId: 'acme',
      group,
      batchSeq: 1,
      frames: packFrames([message]),
      recipients: { [aId]: [0], [bId]: [0] },
    };
    await runtime().sqs.client.send(
      new SendMessageCommand({
        QueueUrl: runtime().queues.fanout.url,
        MessageBody: JSON.stringify(job),
        MessageGroupId: fanoutLaneGroupId('acme', group, 0),
        MessageDeduplicationId: `redrive-page-${status}`,
      }),
    );
    await deadLettered(runtime().queues.fanout.dlqUrl);
    await redrive('fanout');
    await eventually(() => messages(b, group).length >= 1, 20_000, 'the second member got the page after the redrive');
    await sleep(1_000);
    expect(seen(a, group)).toEqual(['page-m1@1']);
    expect(seen(b, group)).toEqual(['page-m1@1']);
  });
});
