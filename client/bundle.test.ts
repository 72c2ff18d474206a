import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { build } from 'esbuild';
import { bundleOptions } from './bundle.ts';
import { BUDGET_BYTES, bundleSize } from './size.ts';
import type { createClient } from './src/client.ts';
import { connect, message, reconnect, settle, setup } from './src/testing.ts';

// The shipped bundle shortens internal property names (bundle.ts); these cases run that bundle, minified as size.ts
// measures it, through the paths that use them: a name shared with anything outside the bundle would break one.
// The last case keeps the bundle within its budget (`npm run client:size` says by how much).
let create: typeof createClient;
const dir = mkdtempSync(join(tmpdir(), 'tenantcast-client-bundle-'));

beforeAll(async () => {
  const out = await build({ ...bundleOptions, minify: true, write: false });
  const file = join(dir, 'index.mjs');
  writeFileSync(file, out.outputFiles[0]?.text ?? '');
  ({ createClient: create } = (await import(pathToFileURL(file).href)) as { createClient: typeof createClient });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the built bundle', () => {
  it('connects, subscribes, delivers once, publishes, and closes without a timer left', async () => {
    const h = setup({}, create);
    const seen: unknown[] = [];
    const subscription = h.client.subscribe('g', (m) => seen.push(m.data));
    const socket = await connect(h);
    socket.ackAll('subscribe', () => ({ seq: 0 }));
    await expect(subscription.ready).resolves.toBeUndefined();
    socket.receive(message('g', 1, 'one'));
    socket.receive(message('g', 1, 'one'));
    const published = h.client.publish('g', 'hi');
    socket.ackAll('publish', () => ({ id: 'p1' }));
    await expect(published).resolves.toEqual({ id: 'p1' });
    expect(seen).toEqual(['one']);
    h.client.close();
    expect(h.states).toEqual(['connecting', 'connected', 'disconnected']);
    expect(h.clock.pending).toBe(0);
  });

  it('reconnects after a drop, resubscribing with since and sending the queued publish', async () => {
    const h = setup({}, create);
    h.client.subscribe('g', () => undefined);
    const first = await connect(h);
    first.ackAll('subscribe');
    first.receive(message('g', 4));
    first.drop();
    const queued = h.client.publish('g', 'later');
    const second = await reconnect(h, first);
    expect(second.lastOf('subscribe')).toMatchObject({ group: 'g', since: 4 });
    second.ackAll('publish', () => ({ id: 'p2' }));
    await expect(queued).resolves.toEqual({ id: 'p2' });
    expect(h.states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
  });

  it('rolls over to a new connection and drains the old one', async () => {
    const h = setup({ rolloverAfterMs: 100_000 }, create);
    h.client.subscribe('g', () => undefined);
    const old = await connect(h);
    old.ackAll('subscribe');
    await h.clock.advance(99_000);
    const early = h.client.publish('g', 'early');
    await h.clock.advance(1000);
    const next = h.server.last();
    next.accept();
    next.ackAll('subscribe');
    await settle();
    expect(old.closed).toBe(false);
    old.ackAll('publish', () => ({ id: 'e' }));
    await expect(early).resolves.toEqual({ id: 'e' });
    expect(old.closed).toBe(true);
    expect(h.states).toEqual(['connecting', 'connected']);
  });

  it('ends a connection whose ping goes unanswered', async () => {
    const h = setup({ heartbeatMs: 1000, pongTimeoutMs: 100 }, create);
    const socket = await connect(h);
    await h.clock.advance(1100);
    expect(socket.framesOf('ping')).toHaveLength(1);
    expect(socket.closed).toBe(true);
    expect(h.client.state).toBe('reconnecting');
  });

  it('stays within the size budget, minified and gzipped', async () => {
    expect((await bundleSize()).gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
  });
});
