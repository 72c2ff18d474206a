/**
 * A large group end to end (docs/delivery.md, "Large groups"): 2000 real WebSocket members of one group, more than
 * the manifest's SPLIT_THRESHOLD (500), so every run goes through the split path: the broadcaster pages the group
 * onto the fan-out queue and the fanout function delivers the pages in parallel lanes.
 */
import { describe, expect, it } from '@jest/globals';
import { functions } from '../../lambdas/manifest.ts';
import { messages, sleep, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import { connect, type TestClient } from '../support/ws-client.ts';

const MEMBERS = 2000;
const MESSAGES = 5;
/** Handshakes (authorizer + connect) and subscribes in flight at once. */
const PARALLEL = 50;

const members: TestClient[] = [];

const runtime = useQuietRuntime(
  { sqsRetryDelaySeconds: 0, schedules: false, functionLogLevel: 'WARN' },
  {
    cleanup: async () => {
      // Closing 2000 connections would run 2000 $disconnects, which this file does not test (connection.test.ts and
      // realtime.test.ts do): the disconnect function stops first, so each fails at once (logged by the gateway).
      await runtime().functions.get('disconnect')?.close();
      for (let i = 0; i < members.length; i += 200) await Promise.all(members.slice(i, i + 200).map((c) => c.close()));
    },
  },
);

/** Runs `work` for 0..count-1 with at most `parallel` in flight. */
async function bounded(count: number, parallel: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

describe('a 2000-member group', () => {
  it('is delivered completely through the split path: every member gets every message once, in seq order', async () => {
    const broadcaster = functions.find((fn) => fn.name === 'broadcaster');
    const threshold = Number(broadcaster?.environment?.SPLIT_THRESHOLD);
    expect(MEMBERS).toBeGreaterThan(threshold);

    // The tenant's connection cap (catalog `limits.maxConnections`) must admit the whole group.
    const acme = await runtime().tenants.get('acme');
    await runtime().tenants.put({ ...acme, limits: { ...acme.limits, maxConnections: MEMBERS + 100 } });

    const group = 'chat:everyone';
    const started = Date.now();
    await bounded(MEMBERS, PARALLEL, async (i) => {
      const c = await connect(runtime().wsUrl, tokenFor(runtime(), 'acme', `m${i}`, ['member']));
      members.push(c);
      const ack = await c.request({ action: 'subscribe', group }, 20_000);
      if (ack.type !== 'ack') throw new Error(`member ${i} could not subscribe: ${JSON.stringify(ack)}`);
    });
    const joinedMs = Date.now() - started;

    const fanout = runtime().functions.get('fanout');
    if (fanout === undefined) throw new Error('no fanout function');
    const fanoutBefore = fanout.invocations;
    const postsBefore = runtime().gateway.stats.posts;
    const publisher = members[0] as TestClient;
    const ids: unknown[] = [];
    const publishedAt = Date.now();
    for (let i = 1; i <= MESSAGES; i++) {
      // U+FFFE and U+FFFF, which SQS does not carry raw, ride in the fan-out pages too (`sqsMessageBody`).
      const ack = await publisher.request({ action: 'publish', group, data: { i, text: `\uFFFE${i}\uFFFF` } });
      expect(ack).toMatchObject({ type: 'ack', id: expect.any(String) });
      ids.push(ack.id);
    }

    const deadline = Date.now() + 40_000;
    while (members.some((c) => messages(c, group).length < MESSAGES)) {
      if (Date.now() > deadline) {
        const short = members.filter((c) => messages(c, group).length < MESSAGES).length;
        throw new Error(`${short} of ${MEMBERS} members still miss messages after 40 s`);
      }
      await sleep(50);
    }
    const deliveredMs = Date.now() - publishedAt;
    // Anything repeated would arrive right after the originals.
    await sleep(500);
    console.log(
      `large group: ${MEMBERS} members joined in ${joinedMs} ms; ${MESSAGES} messages delivered to all in ${deliveredMs} ms ` +
        `(${runtime().gateway.stats.posts - postsBefore} posts, ${fanout.invocations - fanoutBefore} fanout invocations)`,
    );

    expect(fanout.invocations - fanoutBefore).toBeGreaterThan(0);
    const expectedSeqs = Array.from({ length: MESSAGES }, (_, i) => i + 1);
    for (const c of members) {
      const got = messages(c, group);
      expect(got.map((m) => m.seq)).toEqual(expectedSeqs);
      expect(got.map((m) => m.id)).toEqual(ids);
      expect(got.map((m) => m.data)).toEqual(expectedSeqs.map((i) => ({ i, text: `\uFFFE${i}\uFFFF` })));
    }
  }, 150_000);
});
