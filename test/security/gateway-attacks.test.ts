/**
 * Attacks on the gateway, presence and the local operations endpoints (issue #12), tried against the local runtime
 * with real WebSockets, as `npm start` runs it: fault injection off (docs/security.md, threat table).
 */
import { request as httpRequest } from 'node:http';
import { ApiGatewayManagementApiClient, GetConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { describe, expect, it } from '@jest/globals';
import { eventually, openClient, sleep, tokenFor, useQuietRuntime } from '../support/local-stack.ts';
import type { TestClient } from '../support/ws-client.ts';

// Startup takes up to a minute on a loaded machine (PGlite clusters, sandboxes).
const runtime = useQuietRuntime({ web: false, schedules: false, functionLogLevel: 'WARN' });

function client(tenantId: string, userId: string): Promise<TestClient> {
  return openClient(runtime(), tokenFor(runtime(), tenantId, userId, ['member']));
}

/** A client and the connection id the gateway gave it (the one id that is new after it connected). */
async function clientWithId(tenantId: string, userId: string): Promise<{ c: TestClient; id: string }> {
  const before = new Set(runtime().gateway.connections.keys());
  const c = await client(tenantId, userId);
  const id = [...runtime().gateway.connections.keys()].find((key) => !before.has(key));
  if (id === undefined) throw new Error('the new connection has no id in the gateway');
  return { c, id };
}

/** A plain HTTP request, as any web page (or curl) could make it; headers exactly as given. */
function rawRequest(
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${runtime().url}${path}`, { method: options.method ?? 'GET', headers: options.headers });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('presence on a large group', () => {
  const members = 80;

  it('makes at most 50 GetConnection calls per frame, and checks each member once over repeated frames', async () => {
    for (let i = 0; i < members; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => client('acme', `crowd${i + j}`)));
      for (const c of batch)
        expect(await c.request({ action: 'subscribe', group: 'chat:crowd' })).toMatchObject({
          type: 'ack',
        });
    }
    const viewer = await client('acme', 'viewer');

    const perFrame: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = runtime().gateway.stats.gets;
      const answer = await viewer.request({ action: 'presence', group: 'chat:crowd' }, 20_000);
      perFrame.push(runtime().gateway.stats.gets - before);
      expect(answer.members).toHaveLength(members);
    }

    expect(Math.max(...perFrame)).toBeLessThanOrEqual(50);
    // Every member checked about once in 10 s (per sandbox), not once per frame (which made 5 × 80 calls).
    expect(perFrame.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2 * members);
  }, 120_000);
});

describe('the management endpoints', () => {
  it('have no fault injection in a runtime not started for tests, over HTTP or in-process', async () => {
    const attack = await rawRequest('/local/faults', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'http://evil.example' },
      body: '{"status":410}',
    });
    expect(attack.status).toBe(404);
    expect(() => runtime().gateway.injectFaults({ status: 410 })).toThrow('fault injection is off');
  });

  it('refuse @connections requests that are not SigV4-signed or that come from a web page', async () => {
    const { c, id } = await clientWithId('acme', 'victim');
    const path = `/@connections/${encodeURIComponent(id)}`;

    expect((await rawRequest(path)).status).toBe(403);
    const post = await rawRequest(path, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'spoof' });
    expect(post.status).toBe(403);
    const signedShape = {
      authorization: `AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`,
      'x-amz-date': '20260101T000000Z',
    };
    expect((await rawRequest(path, { headers: { ...signedShape, origin: 'http://evil.example' } })).status).toBe(403);
    await sleep(100);
    expect(c.frames.some((f) => JSON.stringify(f).includes('spoof'))).toBe(false);

    // The functions' way in: an AWS SDK client signing with SigV4.
    const sdk = new ApiGatewayManagementApiClient({
      endpoint: runtime().gateway.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const info = await sdk.send(new GetConnectionCommand({ ConnectionId: id }));
      expect(info.ConnectedAt).toBeInstanceOf(Date);
    } finally {
      sdk.destroy();
    }
  });
});

describe('a connection flooding frames', () => {
  const flood = 400;
  const ping = JSON.stringify({ action: 'ping', ref: 'flood' });

  it('gets RATE_LIMITED at once for frames over 64 waiting, without an invocation for them', async () => {
    const flooder = await client('acme', 'flooder');
    const invocations = () => runtime().functions.get('message')?.invocations ?? 0;
    const before = invocations();
    for (let i = 0; i < flood; i++) flooder.ws.send(ping);
    await eventually(() => flooder.frames.length === flood, 20_000, 'an answer to every frame');

    const refused = flooder.frames.filter((f) => f.code === 'RATE_LIMITED' && /waiting/.test(String(f.message)));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ type: 'error', ref: 'flood', retryAfterMs: expect.any(Number) });
    expect(invocations() - before).toBe(flood - refused.length);
  }, 30_000);

  it('has its waiting frames dropped when it leaves, not run after it', async () => {
    const { c: flooder } = await clientWithId('acme', 'leaver');
    const invocations = () => runtime().functions.get('message')?.invocations ?? 0;
    const dropped = runtime().gateway.stats.droppedOnClose;
    const before = invocations();
    for (let i = 0; i < flood; i++) flooder.ws.send(ping);
    // The queue is full once the first frame over the bound is refused: then the client leaves.
    await flooder.waitFor((f) => f.code === 'RATE_LIMITED' && /waiting/.test(String(f.message)), 10_000);
    flooder.ws.terminate();
    await flooder.closed;
    await runtime().gateway.whenIdle();

    expect(runtime().gateway.stats.droppedOnClose).toBeGreaterThan(dropped);
    // Fewer than the frames that were waiting (at most 8 running + 64 waiting ever got a slot).
    expect(invocations() - before).toBeLessThan(8 + 64);
  }, 30_000);
});

describe('the local operations page', () => {
  it('says it is local only and unauthenticated', async () => {
    const page = await rawRequest('/ops');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Local only, unauthenticated');
  });

  it("is refused to another site's page (a foreign Origin), and served to its own origin", async () => {
    expect((await rawRequest('/ops/metrics.json', { headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await rawRequest('/ops', { headers: { origin: 'null' } })).status).toBe(403);
    const own = await rawRequest('/ops/metrics.json', { headers: { origin: runtime().url } });
    expect(own.status).toBe(200);
  });
});
