import { describe, expect, it } from '@jest/globals';
import { TenantcastClientError } from './errors.ts';
import type { QueuedPublish } from './outbox.ts';
import { FakeClock, FakeSocket } from './testing.ts';
import { type Answer, createRequests, createTransport, type Transport } from './transport.ts';

function setupRequests() {
  const clock = new FakeClock();
  const failed: Transport[] = [];
  const settled: Transport[] = [];
  const requests = createRequests(
    clock,
    (t) => failed.push(t),
    (t) => settled.push(t),
  );
  const transport = (): Transport => {
    const ws = new FakeSocket('wss://example.test/ws', undefined);
    ws.readyState = 1;
    return { ...createTransport('primary'), ws, open: true };
  };
  return { clock, failed, settled, requests, transport };
}

const publish = (order: number) => ({ order, group: 'g', data: order }) as unknown as QueuedPublish;

describe('createRequests', () => {
  it('sends each frame with a new ref and settles it with the answer that names it', () => {
    const h = setupRequests();
    const t = h.transport();
    const answers: Answer[] = [];
    h.requests.send(t, { action: 'ping' }, 100, (a) => answers.push(a));
    h.requests.send(t, { action: 'ping' }, 100, (a) => answers.push(a));
    const refs = (t.ws as FakeSocket).sent.map((f) => f.ref);
    expect(new Set(refs).size).toBe(2);
    h.requests.answer(t, refs[1] ?? '', { type: 'ack', ref: refs[1] });
    expect(answers).toEqual([{ type: 'ack', ref: refs[1] }]);
    expect(h.settled).toEqual([t]);
    expect(t.pending.size).toBe(1);
  });

  it('ignores an answer arriving on another socket than the request', () => {
    const h = setupRequests();
    const [a, b] = [h.transport(), h.transport()];
    const answers: Answer[] = [];
    h.requests.send(a, { action: 'ping' }, 100, (x) => answers.push(x));
    const ref = (a.ws as FakeSocket).sent[0]?.ref ?? '';
    expect(h.requests.answer(b, ref, { type: 'ack', ref })).toBe(false);
    expect(answers).toEqual([]);
    expect(a.pending.size).toBe(1);
  });

  it('settles a request answered by an error frame with an error naming its group', () => {
    const h = setupRequests();
    const t = h.transport();
    const answers: Answer[] = [];
    h.requests.send(t, { action: 'subscribe', group: 'g' }, 100, (x) => answers.push(x), {
      group: 'g',
    });
    const ref = (t.ws as FakeSocket).sent[0]?.ref ?? '';
    expect(
      h.requests.answer(t, ref, { type: 'error', ref, code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 100 }),
    ).toBe(true);
    expect(answers).toMatchObject([{ code: 'RATE_LIMITED', group: 'g', retryAfterMs: 100 }]);
    expect(answers[0]).toBeInstanceOf(TenantcastClientError);
  });

  it('settles a request left unanswered with TIMEOUT naming its group', async () => {
    const h = setupRequests();
    const t = h.transport();
    const answers: Answer[] = [];
    h.requests.send(t, { action: 'subscribe', group: 'g' }, 100, (x) => answers.push(x), { group: 'g' });
    await h.clock.advance(100);
    expect(answers).toMatchObject([{ code: 'TIMEOUT', group: 'g' }]);
    expect(t.pending.size).toBe(0);
  });

  it('refuses a frame over 32 KB (UTF-8) with TOO_LARGE without sending it, so API Gateway does not close the socket', () => {
    const h = setupRequests();
    const t = h.transport();
    const answers: Answer[] = [];
    // 16,400 characters but 32,800 bytes: the frame is measured in UTF-8, as API Gateway counts it.
    h.requests.send(t, { action: 'publish', group: 'g', data: '\u00e9'.repeat(16_400) }, 100, (x) => answers.push(x), {
      group: 'g',
    });
    h.requests.send(t, { action: 'publish', group: 'g', data: 'x'.repeat(32_000) }, 100, (x) => answers.push(x));
    expect(answers).toMatchObject([{ code: 'TOO_LARGE', group: 'g' }]);
    expect((t.ws as FakeSocket).sent.map((f) => (f.data as string).length)).toEqual([32_000]);
    expect(t.pending.size).toBe(1);
    expect(h.failed).toEqual([]);
  });

  it('reports a socket that cannot send', () => {
    const h = setupRequests();
    const t = h.transport();
    (t.ws as FakeSocket).readyState = 3;
    h.requests.send(t, { action: 'ping' }, 100, () => undefined);
    expect(h.failed).toEqual([t]);
  });

  it('hands back the publishes in flight on a dropped socket and forgets its requests', async () => {
    const h = setupRequests();
    const t = h.transport();
    const answers: Answer[] = [];
    h.requests.send(t, { action: 'publish', group: 'g', data: 1 }, 100, (x) => answers.push(x), {
      publish: publish(1),
    });
    h.requests.send(t, { action: 'ping' }, 100, (x) => answers.push(x));
    expect(h.requests.drop(t).map((p) => p.order)).toEqual([1]);
    await h.clock.advance(1000);
    expect(answers).toEqual([]);
  });

  it('arms named timers, re-arming replaces, and disarming without a name clears them all', async () => {
    const h = setupRequests();
    const t = h.transport();
    const fired: string[] = [];
    h.requests.arm(t, 'a', 10, () => fired.push('a1'));
    h.requests.arm(t, 'a', 20, () => fired.push('a2'));
    h.requests.arm(t, 'b', 30, () => fired.push('b'));
    await h.clock.advance(25);
    expect(fired).toEqual(['a2']);
    h.requests.disarm(t);
    await h.clock.advance(100);
    expect(fired).toEqual(['a2']);
    expect(t.timers.size).toBe(0);
  });
});
