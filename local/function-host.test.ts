import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { FunctionSpec } from '../lambdas/manifest.ts';
import { buildFunctionBundles } from './function-bundles.ts';
import { defaultMaxSandboxes, FunctionError, FunctionHost } from './function-host.ts';

const root = resolve(import.meta.dirname, '..');
const spec: FunctionSpec = {
  name: 'probe',
  entry: 'test/fixtures/probe-handler.ts',
  description: 'test probe',
  trigger: { kind: 'websocket', routes: ['$default'], returnResponse: true },
  bindings: ['table'],
  timeoutSeconds: 5,
  memoryMB: 128,
  inProcessTracing: false,
};

let host: FunctionHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

function start(timeoutMs?: number, maxSandboxes?: number, bundleDir?: string): FunctionHost {
  host = new FunctionHost({
    ...(bundleDir !== undefined && { bundleDir }),
    spec,
    root,
    bindingValues: { TABLE_NAME: 'the-table', DELIVERY_QUEUE_URL: 'http://queue' },
    baseEnv: { AWS_REGION: 'local-1' },
    onLog: () => undefined,
    ...(timeoutMs !== undefined && { timeoutMs }),
    ...(maxSandboxes !== undefined && { maxSandboxes }),
  });
  return host;
}

describe('the local function host', () => {
  it('runs the handler with exactly the environment its bindings give it', async () => {
    const h = start();
    expect(await h.invoke({ op: 'env', key: 'TABLE_NAME' })).toEqual({ value: 'the-table', functionName: 'probe' });
    expect(await h.invoke({ op: 'env', key: 'DELIVERY_QUEUE_URL' })).toEqual({ value: null, functionName: 'probe' });
    expect(await h.invoke({ op: 'env', key: 'AWS_REGION' })).toMatchObject({ value: 'local-1' });
  });

  it('passes JSON events and results across and keeps module state between invocations, like a warm sandbox', async () => {
    const h = start();
    expect(await h.invoke({ op: 'echo', nested: [1, { a: 'b' }] })).toEqual({
      echo: { op: 'echo', nested: [1, { a: 'b' }] },
    });
    await h.invoke({ op: 'count' });
    expect(await h.invoke({ op: 'count' })).toEqual({ invocations: 3 });
  });

  it('records when its latest invocation ended, not when it started, on the epoch clock', async () => {
    const h = start();
    expect(h.lastEndedAt).toBeNaN();
    await h.invoke({ op: 'echo' }); // the sandbox's cold start is not part of what is measured below
    // A Node timer counts from the event loop's cached millisecond clock, so it can fire up to 1 ms before its delay
    // has passed on a finer clock (CI, 2026-12-03: 0.06 ms short): 1 ms of slack, which still tells an end from a start.
    const before = performance.timeOrigin + performance.now();
    await h.invoke({ op: 'sleep', ms: 50 });
    const ended = h.lastEndedAt;
    expect(ended).toBeGreaterThanOrEqual(before + 49);
    expect(ended).toBeLessThanOrEqual(performance.timeOrigin + performance.now());
    await h.invoke({ op: 'sleep', ms: 20 });
    expect(h.lastEndedAt).toBeGreaterThanOrEqual(ended + 19);
  });

  it('rejects with the error the handler threw', async () => {
    const h = start();
    const error = await h.invoke({ op: 'throw' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FunctionError);
    expect((error as Error).message).toBe('Unauthorized');
  });

  it('times out a slow invocation and replaces the sandbox', async () => {
    const h = start(300);
    await expect(h.invoke({ op: 'sleep', ms: 2000 })).rejects.toThrow('Task timed out after 0.30 seconds');
    expect(await h.invoke({ op: 'count' })).toEqual({ invocations: 1 });
    const fast = (await h.invoke({ op: 'sleep', ms: 10 })) as { remaining: number };
    expect(fast.remaining).toBeGreaterThan(0);
    expect(fast.remaining).toBeLessThanOrEqual(300);
  });

  it('runs one invocation at a time per sandbox and starts more sandboxes, one at a time, for concurrent invocations', async () => {
    const h = start(undefined, 3);
    const results = (await Promise.all(Array.from({ length: 6 }, () => h.invoke({ op: 'overlap', ms: 400 })))) as {
      most: number;
      sandboxId: string;
    }[];
    expect(results.map((r) => r.most)).toEqual([1, 1, 1, 1, 1, 1]);
    const used = new Set(results.map((r) => r.sandboxId)).size;
    expect(used).toBeGreaterThanOrEqual(2);
    expect(used).toBeLessThanOrEqual(3);
    expect(h.coldStarts).toBe(h.sandboxCount);
    expect(h.sandboxCount).toBeLessThanOrEqual(3);
  });

  it('queues invocations beyond its sandbox cap in arrival order and runs each of them', async () => {
    const h = start(undefined, 1);
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => h.invoke({ op: 'overlap', ms: 20 }).then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3]);
    expect(h.sandboxCount).toBe(1);
    expect(h.coldStarts).toBe(1);
  });

  it('runs no more sandboxes than the machine has cores (at least 2) unless told otherwise', async () => {
    expect(defaultMaxSandboxes()).toBeGreaterThanOrEqual(2);
    expect(defaultMaxSandboxes()).toBeLessThanOrEqual(Math.max(2, availableParallelism()));
    expect(start(undefined, 5).maxSandboxes).toBe(5);
    await host?.close();
    const h = start();
    expect(h.maxSandboxes).toBe(defaultMaxSandboxes());
    await Promise.all(Array.from({ length: h.maxSandboxes + 2 }, () => h.invoke({ op: 'overlap', ms: 300 })));
    expect(h.sandboxCount).toBeGreaterThanOrEqual(2);
    expect(h.sandboxCount).toBeLessThanOrEqual(h.maxSandboxes);
  });

  it('refuses a sandbox cap that is not a positive integer, saying what it was given', () => {
    expect(() => start(undefined, 0)).toThrow('maxSandboxes must be a positive integer, got 0 (function probe)');
  });

  it('runs the prebuilt bundle of its function instead of the TypeScript entry when given a bundle directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'function-host-test-'));
    try {
      await buildFunctionBundles(dir, [spec], root);
      const h = start(undefined, undefined, dir);
      expect(await h.invoke({ op: 'module' })).toEqual({ url: expect.stringMatching(/\/probe\.mjs$/) });
      expect(await h.invoke({ op: 'env', key: 'TABLE_NAME' })).toEqual({ value: 'the-table', functionName: 'probe' });
      expect(await h.invoke({ op: 'echo', nested: [1] })).toEqual({ echo: { op: 'echo', nested: [1] } });
    } finally {
      await host?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
