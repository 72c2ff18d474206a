/**
 * Readiness (issue #13): the gateway listens before seeding and warming are done; until the stack is ready, API
 * requests and WebSocket handshakes are answered 503 with `Retry-After` (never a misleading 403 "tenant has no
 * database"), while the demo page and dev tokens are already served so a page can wait by itself.
 */
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import type { LocalRuntime } from '../../local/runtime.ts';
import { startQuietRuntime, tokenFor } from '../support/local-stack.ts';

let runtime: LocalRuntime | undefined;
let starting: Promise<LocalRuntime> | undefined;

afterAll(async () => {
  await (runtime ?? (await starting?.catch(() => undefined)))?.stop();
}, 60_000);

/** A port free right now (the runtime is started on it, so the test can reach it before `startLocal` resolves). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** The status (and Retry-After) of a WebSocket handshake, as the server answered it. */
function handshake(
  url: string,
  token = 'not-checked-yet',
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['tenantcast.v1', token]);
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101, retryAfter: undefined });
    });
    ws.on('error', (err) => reject(err));
  });
}

describe('a stack that is still starting', () => {
  it('answers 503 with Retry-After to API requests and handshakes, serves the demo page, then serves everything', async () => {
    const port = await freePort();
    let ready = false;
    starting = startQuietRuntime({ port, schedules: false }).then((rt) => {
      ready = true;
      runtime = rt;
      return rt;
    });
    const base = `http://127.0.0.1:${port}`;
    let listening = false;
    while (!listening && !ready) {
      listening = (await fetch(`${base}/`).catch(() => undefined))?.status === 200;
      if (!listening) await new Promise((r) => setTimeout(r, 50));
    }
    const schema = await fetch(`${base}/v1/schema`, { headers: { authorization: 'Bearer whatever' } });
    const ws = await handshake(`ws://127.0.0.1:${port}/ws`);
    const token = await fetch(`${base}/dev/token`, {
      method: 'POST',
      body: JSON.stringify({ tenantId: 'acme', userId: 'alice', roles: ['member'] }),
    });
    // Seeding and warming take seconds after the port opens: all of the above happened before the stack was ready.
    expect(ready).toBe(false);
    expect({ status: schema.status, retryAfter: schema.headers.get('retry-after') }).toEqual({
      status: 503,
      retryAfter: '1',
    });
    expect(await schema.json()).toEqual({ message: 'Service Unavailable' });
    expect(ws).toEqual({ status: 503, retryAfter: '1' });
    expect(token.status).toBe(200); // the dev identity provider needs nothing else: it answers while starting

    const rt = await starting;
    const answer = await fetch(`${rt.url}/v1/schema`, {
      headers: { authorization: `Bearer ${tokenFor(rt, 'acme', 'alice', ['member'])}` },
    });
    expect(answer.status).toBe(200);
    expect((await handshake(rt.wsUrl, tokenFor(rt, 'acme', 'alice', ['member']))).status).toBe(101);
  }, 120_000);
});
