/**
 * Fuzzing the running local stack (docs/security.md): more than 10,000 generated WebSocket frames and HTTP bodies —
 * invalid JSON, wrong types, deep nesting, huge strings, invalid UTF-8, control characters, prototype-pollution
 * keys, and frames that are almost valid. Every input gets an answer with an error code (or a valid ack for inputs
 * that happen to be valid), no handler crashes, and a bystander connection keeps answering throughout.
 * fast-check generates the inputs from a fixed seed, so a failure reproduces.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { errorCodes } from '../../lambdas/core/errors.ts';
import { openClient, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import { connect, type Frame, type TestClient } from '../support/ws-client.ts';

const SEED = 20250611;
const FRAMES = 8_700;
const CONNECTIONS = 6;
const HTTP_BODIES = 1_500;

const runtime = useQuietRuntime({ sqsRetryDelaySeconds: 0, schedules: false });

const token = (tenantId: string, userId: string, roles: string[]) => tokenFor(runtime(), tenantId, userId, roles);

const actions = ['subscribe', 'unsubscribe', 'publish', 'ping', 'refresh', 'PING', 'sendmessage', '$default', ''];
const pollutingKeys = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ unit: fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c)), maxLength: 32 }),
  fc.constantFrom('#', 'T#globex#G#chat', 'user:someone', '\u0000', '\ud800', '%00', '../..', 'chat:general'),
  fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'x'.repeat(n)),
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  nasty,
  fc.constantFrom(null, true, -1, 1e308, Number.MAX_SAFE_INTEGER + 2, 0.5),
);
/** An object that looks like a frame: a known or odd action, known and unknown fields, polluting keys. */
const frameLike = fc
  .record(
    {
      action: fc.oneof(fc.constantFrom(...actions), value),
      group: value,
      data: value,
      since: value,
      ref: value,
      token: value,
      extra: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...pollutingKeys, 'tenantId'), fc.string()), value), {
        maxLength: 3,
      }),
    },
    { requiredKeys: [] },
  )
  .map(({ extra, ...fields }) => {
    // JSON.parse creates own "__proto__" keys, so the text must be built by hand.
    const parts = Object.entries({ ...fields }).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`);
    for (const [k, v] of extra ?? []) parts.push(`${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`);
    return `{${parts.join(',')}}`;
  });
const deepNesting = fc
  .tuple(fc.integer({ min: 100, max: 5_000 }), fc.constantFrom('[', '{"a":'), fc.boolean())
  .map(([depth, open, closed]) => {
    const close = open === '[' ? ']' : '}';
    return open.repeat(depth) + (closed ? `1${close.repeat(depth)}` : '');
  });
const textFrame: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 5, arbitrary: frameLike },
    { weight: 2, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: deepNesting },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', ' ', 'null', '[]', '{}', '{"action":', '"ping"', '{"action":"ping"}x'),
    },
    // Frames over 32 KB close the connection with 1009 (tested in limits.test.ts); here every frame must be answered.
  )
  .filter((text) => Buffer.byteLength(text) < 32 * 1024);
/** Binary frames (API Gateway closes the connection on one, with 1003): invalid UTF-8 among them. */
const binaryFrame = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 200 }),
  fc.constantFrom(
    Uint8Array.from([0xc3, 0x28]),
    Uint8Array.from([0xff, 0xfe, 0xfd]),
    Uint8Array.from([0xed, 0xa0, 0x80]),
  ),
);

function isAnswer(frame: Frame): boolean {
  return frame.type === 'error' || frame.type === 'ack' || frame.type === 'pong';
}

describe('the running stack under generated input', () => {
  it(`answers ${FRAMES} WebSocket text frames each with an error code or an ack, without a crash`, async () => {
    const frames = fc.sample(textFrame, { numRuns: FRAMES, seed: SEED });
    const clients: TestClient[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = await openClient(runtime(), token('acme', `fuzzer${i}`, ['member']));
      clients.push(c);
    }
    const bystander = await openClient(runtime(), token('acme', 'bystander', ['member']));
    expect(await bystander.request({ action: 'subscribe', group: 'chat:bystander' })).toMatchObject({ type: 'ack' });

    // Every client sends its share in windows of 50 frames in flight, then waits for as many answers (small windows
    // keep every frame well inside API Gateway's 29 s integration timeout even on a loaded machine).
    const inputs: string[] = frames;
    let bystanderPongs = 0;
    await Promise.all(
      clients.map(async (c, n) => {
        const mine = inputs.filter((_, i) => i % CONNECTIONS === n);
        for (let i = 0; i < mine.length; i += 50) {
          const window = mine.slice(i, i + 50);
          const expected = c.frames.filter(isAnswer).length + window.length;
          for (const input of window) c.ws.send(input);
          const deadline = Date.now() + 60_000;
          while (c.frames.filter(isAnswer).length < expected) {
            if (Date.now() > deadline || c.ws.readyState !== c.ws.OPEN) {
              throw new Error(
                `client ${n}: ${c.frames.filter(isAnswer).length} of ${expected} answers, state ${c.ws.readyState}`,
              );
            }
            await new Promise((r) => setTimeout(r, 10));
          }
          if (n === 0 && (await bystander.request({ action: 'ping' }, 5000)).type === 'pong') bystanderPongs++;
        }
      }),
    );

    const answers = clients.flatMap((c) => c.frames.filter(isAnswer));
    expect(answers).toHaveLength(inputs.length);
    const codes = new Set(answers.filter((f) => f.type === 'error').map((f) => f.code));
    for (const code of codes) expect(errorCodes).toContain(code);
    expect(codes.has('INTERNAL')).toBe(false);
    expect(answers.filter((f) => f.type === 'error').length).toBeGreaterThan(inputs.length * 0.9);
    // Nothing crashed, every connection is still open and the bystander answered between every window.
    expect(runtime().gateway.stats.handlerErrors).toBe(0);
    for (const c of clients) expect(await c.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    expect(bystanderPongs).toBeGreaterThan(20);
    const own = await bystander.request({ action: 'publish', group: 'chat:bystander', data: 'still here' });
    await bystander.waitFor((f) => f.type === 'message' && f.id === own.id, 5000);
  }, 300_000);

  it('closes only the offending connection on a binary frame, with 1003, as API Gateway does', async () => {
    const other = await openClient(runtime(), token('acme', 'calm', ['member']));
    for (const input of fc.sample(binaryFrame, { numRuns: 5, seed: SEED + 1 })) {
      const bad = await connect(runtime().wsUrl, token('acme', 'binary', ['member']));
      bad.ws.send(input, { binary: true });
      expect((await bad.closed).code).toBe(1003);
    }
    expect(await other.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('closes only the offending connection on a text frame that is not UTF-8', async () => {
    const other = await openClient(runtime(), token('acme', 'calm', ['member']));
    const bad = await connect(runtime().wsUrl, token('acme', 'garbler', ['member']));
    bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await bad.closed).code).toBe(1007);
    expect(await other.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it(`answers ${HTTP_BODIES} HTTP bodies each with a JSON error code or a success, never a 500`, async () => {
    const bodies = fc.sample(fc.oneof(textFrame, fc.constantFrom('{"userId":"nobody"}', '{"title":1}')), {
      numRuns: HTTP_BODIES,
      seed: SEED + 2,
    });
    const targets = [
      { path: '/v1/entities/task', auth: token('acme', 'http-fuzzer', ['admin']) },
      // globex has no connections here, so even an accidental `{}` disconnects nobody of interest.
      { path: '/v1/admin/disconnect', auth: token('globex', 'http-fuzzer', ['admin']) },
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < bodies.length; i += 25) {
      await Promise.all(
        bodies.slice(i, i + 25).map(async (body, j) => {
          const target = targets[(i + j) % targets.length] as (typeof targets)[number];
          const response = await fetch(`${runtime().url}${target.path}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${target.auth}`, 'content-type': 'application/json' },
            body,
          });
          const text = await response.text();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status >= 400) {
            const parsed = JSON.parse(text) as { error?: { code?: string } };
            expect(errorCodes).toContain(parsed.error?.code);
          }
          expect(response.status).toBeLessThan(500);
        }),
      );
    }
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(HTTP_BODIES);
  }, 120_000);
});
