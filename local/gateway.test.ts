import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterEach, describe, expect, it } from '@jest/globals';
import { WebSocket } from 'ws';
import {
  type Gateway,
  type GatewayOptions,
  type GatewayRoute,
  startGateway,
  websocketRoutesFromManifest,
} from './gateway.ts';
import type { WebSocketAuthorizerEvent, WebSocketEvent } from './lambda-events.ts';

// ---------------------------------------------------------------------------------------------------------------
// Fakes and helpers

interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

interface Harness {
  gateway: Gateway;
  authorizerEvents: WebSocketAuthorizerEvent[];
  connectEvents: WebSocketEvent[];
  messageEvents: WebSocketEvent[];
  disconnectEvents: WebSocketEvent[];
  logs: LogLine[];
}

const running: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
});

function allow(principalId: string, resource: string, context: Record<string, unknown>) {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: resource }],
    },
    context,
  };
}

async function start(overrides: Partial<GatewayOptions> = {}): Promise<Harness> {
  const h = {
    authorizerEvents: [] as WebSocketAuthorizerEvent[],
    connectEvents: [] as WebSocketEvent[],
    messageEvents: [] as WebSocketEvent[],
    disconnectEvents: [] as WebSocketEvent[],
    logs: [] as LogLine[],
  };
  const routes: Record<string, GatewayRoute> = {
    $connect: {
      handler: async (event: WebSocketEvent) => {
        h.connectEvents.push(event);
        const q = event.queryStringParameters ?? {};
        if (q.connect === 'fail') throw new Error('connect crashed');
        if (q.connect === 'reject') return { statusCode: 429, body: 'Too Many Requests' };
        const offered = event.headers?.['Sec-WebSocket-Protocol'];
        if (
          offered
            ?.split(',')
            .map((p) => p.trim())
            .includes('tenantcast.v1')
        ) {
          return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1' } };
        }
        return { statusCode: 200 };
      },
    },
    $disconnect: {
      handler: async (event: WebSocketEvent) => {
        h.disconnectEvents.push(event);
        throw new Error('disconnect handlers may crash');
      },
    },
    subscribe: {
      returnResponse: true,
      handler: async (event: WebSocketEvent) => {
        h.messageEvents.push(event);
        return { statusCode: 200, body: JSON.stringify({ route: 'subscribe', auth: event.requestContext.authorizer }) };
      },
    },
    boom: {
      returnResponse: true,
      handler: async (event: WebSocketEvent) => {
        h.messageEvents.push(event);
        throw new Error('handler crashed');
      },
    },
    $default: {
      returnResponse: true,
      handler: async (event: WebSocketEvent) => {
        h.messageEvents.push(event);
        return `default:${event.isBase64Encoded ? 'b64' : 'text'}`;
      },
    },
  };
  const gateway = await startGateway({
    routes,
    authorizer: {
      handler: async (event: WebSocketAuthorizerEvent) => {
        h.authorizerEvents.push(event);
        const token = event.queryStringParameters.token;
        if (token === 'deny')
          return { ...allow('u', event.methodArn, {}), policyDocument: denyPolicy(event.methodArn) };
        if (token === 'crash') throw new Error('authorizer crashed');
        if (token === 'nested') return allow('u', event.methodArn, { roles: ['member'] });
        if (token === 'other-arn') return allow('u', 'arn:aws:execute-api:us-east-1:000000000000:other/*', {});
        if (token?.startsWith('good')) {
          return allow('alice', event.methodArn, { tenantId: 'acme', userId: 'alice', roles: 'member', n: 5, b: true });
        }
        throw new Error('Unauthorized');
      },
    },
    log: (level, message, fields) => h.logs.push({ level, message, fields }),
    ...overrides,
  });
  running.push(() => gateway.close());
  return { gateway, ...h };
}

function denyPolicy(resource: string) {
  return { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: resource }] };
}

type Attempt =
  | { ws: WebSocket; status?: undefined; error?: undefined }
  | { ws?: undefined; status: number; error?: string };

function connect(
  gateway: Gateway,
  options: { token?: string; query?: string; protocols?: string[]; path?: string } = {},
): Promise<Attempt> {
  const query = options.query ?? `token=${options.token ?? 'good-token-123'}`;
  const url = options.path ? `${gateway.url.replace('http', 'ws')}${options.path}` : `${gateway.wsUrl}?${query}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: { 'User-Agent': 'jest-client/1.0' } });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => {
      if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) {
        resolve({ status: -1, error: err.message });
      } else reject(err);
    });
  });
}

async function open(gateway: Gateway, options: Parameters<typeof connect>[1] = {}): Promise<WebSocket> {
  const attempt = await connect(gateway, options);
  if (!attempt.ws) throw new Error(`handshake failed: ${attempt.status}`);
  running.unshift(async () => {
    attempt.ws.terminate();
  });
  return attempt.ws;
}

/** Collects frames so a test can await them in order. */
function inbox(ws: WebSocket) {
  const frames: string[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data, isBinary) => {
    frames.push(isBinary ? `<binary ${(data as Buffer).length}>` : data.toString());
    for (const w of waiters.splice(0)) w();
  });
  return {
    frames,
    async next(timeoutMs = 2000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (frames.length === 0) {
        if (Date.now() > deadline) throw new Error('no frame received');
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return frames.shift() as string;
    },
  };
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve({ code: -1, reason: 'already closed' });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function managementClient(endpoint: string): ApiGatewayManagementApiClient {
  const client = new ApiGatewayManagementApiClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  running.push(async () => client.destroy());
  return client;
}

// ---------------------------------------------------------------------------------------------------------------

describe('handshake', () => {
  it('answers 401 when the authorizer throws Unauthorized, and gives it an API Gateway REQUEST event', async () => {
    const h = await start();
    const attempt = await connect(h.gateway, { query: 'token=bad&x=1&x=2' });
    expect(attempt.status).toBe(401);
    expect(h.connectEvents).toHaveLength(0);
    const event = h.authorizerEvents[0];
    expect(event).toBeDefined();
    expect(event?.type).toBe('REQUEST');
    expect(event?.methodArn).toBe('arn:aws:execute-api:us-east-1:000000000000:local/local/$connect');
    expect(event?.headers['User-Agent']).toBe('jest-client/1.0');
    expect(event?.headers['Sec-WebSocket-Version']).toBe('13');
    expect(event?.multiValueHeaders.Upgrade).toEqual(['websocket']);
    expect(event?.queryStringParameters).toEqual({ token: 'bad', x: '2' });
    expect(event?.multiValueQueryStringParameters.x).toEqual(['1', '2']);
    expect(event?.requestContext).toMatchObject({
      routeKey: '$connect',
      eventType: 'CONNECT',
      messageDirection: 'IN',
      stage: 'local',
      apiId: 'local',
      identity: { sourceIp: '127.0.0.1', userAgent: 'jest-client/1.0' },
    });
    expect(event?.requestContext.connectionId).toMatch(/^[A-Za-z0-9_-]{15}=$/);
    expect(event?.requestContext.requestTime).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
  });

  it('answers 403 on an explicit Deny and on an Allow for another resource', async () => {
    const h = await start();
    expect((await connect(h.gateway, { token: 'deny' })).status).toBe(403);
    expect((await connect(h.gateway, { token: 'other-arn' })).status).toBe(403);
    expect(h.connectEvents).toHaveLength(0);
  });

  it('answers 500 when the authorizer crashes or returns a non-primitive context value', async () => {
    const h = await start();
    expect((await connect(h.gateway, { token: 'crash' })).status).toBe(500);
    expect((await connect(h.gateway, { token: 'nested' })).status).toBe(500);
    expect(h.gateway.stats.rejectedHandshakes).toBe(2);
  });

  it('answers 401 without invoking the authorizer when a configured identity source is missing', async () => {
    let calls = 0;
    const h = await start({
      authorizer: {
        handler: async (event: WebSocketAuthorizerEvent) => {
          calls++;
          return allow('u', event.methodArn, {});
        },
        identitySource: ['route.request.querystring.token'],
      },
    });
    expect((await connect(h.gateway, { query: 'other=1' })).status).toBe(401);
    expect((await connect(h.gateway, { query: 'token=' })).status).toBe(401);
    expect(calls).toBe(0);
    expect((await connect(h.gateway, { query: 'token=t' })).ws).toBeDefined();
    expect(calls).toBe(1);
  });

  it('rejects the handshake with the status $connect returns, or 500 when it throws', async () => {
    const h = await start();
    expect((await connect(h.gateway, { query: 'token=good&connect=reject' })).status).toBe(429);
    expect((await connect(h.gateway, { query: 'token=good&connect=fail' })).status).toBe(500);
    expect(h.gateway.connections.size).toBe(0);
  });

  it('opens the connection and selects the subprotocol $connect returns', async () => {
    const h = await start();
    const ws = await open(h.gateway, { protocols: ['tenantcast.v1', 'token.abc'] });
    expect(ws.protocol).toBe('tenantcast.v1');
    const event = h.connectEvents[0];
    expect(event?.requestContext.eventType).toBe('CONNECT');
    expect(event?.requestContext.authorizer?.principalId).toBe('alice');
    expect(event?.headers?.['Sec-WebSocket-Protocol']).toBe('tenantcast.v1,token.abc');
    const id = event?.requestContext.connectionId ?? '';
    expect(h.gateway.connections.get(id)?.subprotocol).toBe('tenantcast.v1');
  });

  it('completes the handshake without a subprotocol when $connect selects none (so the client fails, as in AWS)', async () => {
    const h = await start();
    const attempt = await connect(h.gateway, { protocols: ['token.abc'] });
    expect(attempt.ws).toBeUndefined();
    expect(attempt.error).toMatch(/no subprotocol/);
  });

  it('answers 404 to upgrades on other paths and to unknown HTTP paths, and mounts extra HTTP handlers', async () => {
    const h = await start({
      httpHandler: (req, res) => {
        if (req.url !== '/hello') return false;
        res.end('hi');
        return true;
      },
    });
    expect((await connect(h.gateway, { path: '/other' })).status).toBe(404);
    const unmount = h.gateway.addHttpHandler((req, res) => {
      if (req.url !== '/later') return false;
      res.end('later');
      return true;
    });
    expect(await (await fetch(`${h.gateway.url}/hello`)).text()).toBe('hi');
    expect(await (await fetch(`${h.gateway.url}/later`)).text()).toBe('later');
    unmount();
    const missing = await fetch(`${h.gateway.url}/later`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ message: 'Not Found' });
  });

  it('never logs tokens from the query string or the Sec-WebSocket-Protocol header', async () => {
    const h = await start();
    await connect(h.gateway, { token: 'bad-SECRET1' });
    const ws = await open(h.gateway, { token: 'good-SECRET2', protocols: ['tenantcast.v1', 'SECRET3'] });
    ws.close();
    await closed(ws);
    await h.gateway.close();
    const text = JSON.stringify(h.logs);
    expect(h.logs.length).toBeGreaterThan(3);
    expect(text).not.toMatch(/SECRET/);
  });
});

describe('messages', () => {
  it('delivers the authorizer context (stringified, with principalId) to message events', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send(JSON.stringify({ action: 'subscribe', group: 'g1' }));
    const reply = JSON.parse(await box.next());
    expect(reply.route).toBe('subscribe');
    expect(reply.auth).toMatchObject({
      principalId: 'alice',
      tenantId: 'acme',
      userId: 'alice',
      roles: 'member',
      n: '5',
      b: 'true',
    });
    expect(typeof reply.auth.integrationLatency).toBe('number');
    const event = h.messageEvents[0];
    expect(event?.body).toBe('{"action":"subscribe","group":"g1"}');
    expect(event?.isBase64Encoded).toBe(false);
    expect(event?.requestContext).toMatchObject({ routeKey: 'subscribe', eventType: 'MESSAGE' });
    expect(event?.requestContext.messageId).toMatch(/=$/);
  });

  it('routes by $request.body.action, falling back to $default for unknown actions, non-JSON and binary frames', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send(JSON.stringify({ action: 'nope' }));
    expect(await box.next()).toBe('default:text');
    ws.send('not json');
    expect(await box.next()).toBe('default:text');
    ws.send(JSON.stringify({ action: 42 }));
    expect(await box.next()).toBe('default:text');
    ws.send(Buffer.from([0xff, 0x00, 0x01]), { binary: true });
    expect(await box.next()).toBe('default:b64');
    expect(h.messageEvents.map((e) => e.requestContext.routeKey)).toEqual([
      '$default',
      '$default',
      '$default',
      '$default',
    ]);
    expect(h.messageEvents[3]?.body).toBe(Buffer.from([0xff, 0x00, 0x01]).toString('base64'));
  });

  it('sends API Gateway’s Forbidden frame when no route matches and there is no $default', async () => {
    const h = await start({ routes: { subscribe: { handler: async () => ({ body: 'x' }), returnResponse: true } } });
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send(JSON.stringify({ action: 'unknown' }));
    const frame = JSON.parse(await box.next());
    expect(frame).toEqual({ message: 'Forbidden', connectionId: expect.any(String), requestId: expect.any(String) });
    expect(h.gateway.connections.has(frame.connectionId)).toBe(true);
  });

  it('sends Internal server error when a handler throws, and the connection stays usable', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send(JSON.stringify({ action: 'boom' }));
    const frame = JSON.parse(await box.next());
    expect(frame.message).toBe('Internal server error');
    expect(frame.connectionId).toBe(h.messageEvents[0]?.requestContext.connectionId);
    ws.send(JSON.stringify({ action: 'subscribe' }));
    expect(JSON.parse(await box.next()).route).toBe('subscribe');
    expect(h.logs.some((l) => l.level === 'error' && l.message === 'route handler failed')).toBe(true);
  });

  it('runs at most maxInflightPerConnection route invocations of one connection at once, so a flooding connection does not hold back another', async () => {
    const active = new Map<string, number>();
    const most = new Map<string, number>();
    const h = await start({
      maxInflightPerConnection: 3,
      routes: {
        $default: {
          handler: async (event: WebSocketEvent) => {
            const id = event.requestContext.connectionId;
            active.set(id, (active.get(id) ?? 0) + 1);
            most.set(id, Math.max(most.get(id) ?? 0, active.get(id) ?? 0));
            await new Promise((r) => setTimeout(r, 20));
            active.set(id, (active.get(id) ?? 1) - 1);
            return { body: event.body };
          },
          returnResponse: true,
        },
      },
    });
    const flooder = await open(h.gateway);
    const other = await open(h.gateway);
    const flood = inbox(flooder);
    const calm = inbox(other);
    for (let i = 0; i < 30; i++) flooder.send(`flood ${i}`);
    other.send('calm');
    expect(await calm.next()).toBe('calm');
    // The calm connection was answered while most of the flood was still waiting for a slot.
    expect(flood.frames.length).toBeLessThan(10);
    await waitFor(() => flood.frames.length === 30, 5000);
    expect(new Set(flood.frames).size).toBe(30);
    expect(Math.max(...most.values())).toBe(3);
  });

  it('answers RATE_LIMITED at once to a frame over maxQueuedPerConnection waiting, echoing its ref', async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let invocations = 0;
    const h = await start({
      maxInflightPerConnection: 1,
      maxQueuedPerConnection: 2,
      routes: {
        $default: {
          handler: async (event: WebSocketEvent) => {
            invocations++;
            await gate;
            return { body: event.body };
          },
          returnResponse: true,
        },
      },
    });
    const ws = await open(h.gateway);
    const box = inbox(ws);
    for (let i = 0; i < 5; i++) ws.send(JSON.stringify({ action: 'x', ref: `r${i}` }));
    const refused = [JSON.parse(await box.next()), JSON.parse(await box.next())];
    expect(refused.map((f) => [f.code, f.ref])).toEqual([
      ['RATE_LIMITED', 'r3'],
      ['RATE_LIMITED', 'r4'],
    ]);
    expect(refused[0].retryAfterMs).toBeGreaterThan(0);
    release();
    await waitFor(() => box.frames.length === 3);
    expect(invocations).toBe(3);
    expect(h.gateway.stats.queueFull).toBe(2);
  });

  it('refuses a maxInflightPerConnection that is not a positive integer, saying what it was given', async () => {
    await expect(start({ maxInflightPerConnection: 0 })).rejects.toThrow(
      'maxInflightPerConnection must be a positive integer, got 0',
    );
  });

  it('sends Endpoint request timed out after the integration timeout', async () => {
    const h = await start({
      integrationTimeoutMs: 50,
      routes: { $default: { handler: () => new Promise((r) => setTimeout(r, 300)), returnResponse: true } },
    });
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send('{}');
    expect(JSON.parse(await box.next()).message).toBe('Endpoint request timed out');
  });

  it('accepts a 32 KB frame and closes with 1009 on 32 KB + 1, then runs $disconnect', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send('x'.repeat(32 * 1024));
    expect(await box.next()).toBe('default:text');
    const done = closed(ws);
    ws.send('x'.repeat(32 * 1024 + 1));
    expect((await done).code).toBe(1009);
    await waitFor(() => h.disconnectEvents.length === 1);
    expect(h.disconnectEvents[0]?.requestContext.disconnectStatusCode).toBe(1009);
  });
});

describe('timeouts', () => {
  it('closes an idle connection with 1001 Going away and runs $disconnect; traffic keeps it open', async () => {
    const h = await start({ idleTimeoutMs: 150 });
    const idle = await open(h.gateway);
    const busy = await open(h.gateway);
    const idleClosed = closed(idle);
    const timer = setInterval(() => busy.send('{}'), 40);
    try {
      expect(await idleClosed).toEqual({ code: 1001, reason: 'Going away' });
      await new Promise((r) => setTimeout(r, 150));
      expect(busy.readyState).toBe(WebSocket.OPEN);
    } finally {
      clearInterval(timer);
    }
    await waitFor(() => h.disconnectEvents.length === 1);
    expect(h.disconnectEvents[0]?.requestContext).toMatchObject({
      eventType: 'DISCONNECT',
      routeKey: '$disconnect',
      disconnectStatusCode: 1001,
      disconnectReason: 'Going away',
      authorizer: { principalId: 'alice', tenantId: 'acme' },
    });
  });

  it('closes a connection at the maximum duration even when it is busy', async () => {
    const h = await start({ maxConnectionMs: 200 });
    const ws = await open(h.gateway);
    const done = closed(ws);
    const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{}'), 30);
    try {
      expect((await done).code).toBe(1001);
    } finally {
      clearInterval(timer);
    }
    await waitFor(() => h.disconnectEvents.length === 1);
    expect(h.disconnectEvents[0]?.requestContext.disconnectStatusCode).toBe(1001);
  });
});

describe('@connections Management API', () => {
  it('posts, gets and deletes through the real SDK client, and DeleteConnection runs $disconnect', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const box = inbox(ws);
    const id = h.connectEvents[0]?.requestContext.connectionId ?? '';
    const client = managementClient(h.gateway.connectionsEndpoint);

    const post = await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: '{"hello":"world"}' }));
    expect(post.$metadata.httpStatusCode).toBe(200);
    expect(await box.next()).toBe('{"hello":"world"}');

    const info = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(info.ConnectedAt).toBeInstanceOf(Date);
    expect(info.ConnectedAt?.getTime()).toBe(h.gateway.connections.get(id)?.connectedAt);
    expect(info.LastActiveAt).toBeInstanceOf(Date);
    expect(info.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'jest-client/1.0' });

    const done = closed(ws);
    const del = await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    expect((await done).code).toBe(1000);
    await waitFor(() => h.disconnectEvents.length === 1);
    expect(h.disconnectEvents[0]?.requestContext.disconnectStatusCode).toBe(1000);
    expect(h.gateway.stats).toMatchObject({ posts: 1, gets: 1, deletes: 1, gone: 0 });
  });

  it('answers GoneException (410) for unknown and closed connections', async () => {
    const h = await start();
    const client = managementClient(h.gateway.url);
    const err = await client
      .send(new PostToConnectionCommand({ ConnectionId: 'L0SM9cOFvHcCIhw=', Data: 'x' }))
      .then(() => undefined)
      .catch((e: unknown) => e as { name: string; $metadata: { httpStatusCode?: number } });
    expect(err?.name).toBe('GoneException');
    expect(err?.$metadata.httpStatusCode).toBe(410);

    const ws = await open(h.gateway);
    const id = h.connectEvents[0]?.requestContext.connectionId ?? '';
    const done = closed(ws);
    ws.close(1000);
    await done;
    await waitFor(() => !h.gateway.connections.has(id));
    await expect(client.send(new GetConnectionCommand({ ConnectionId: id }))).rejects.toMatchObject({
      name: 'GoneException',
    });
    await expect(client.send(new DeleteConnectionCommand({ ConnectionId: id }))).rejects.toMatchObject({
      name: 'GoneException',
    });
    expect(h.gateway.stats.gone).toBe(3);
  });

  it('answers PayloadTooLargeException (413) above 128 KB', async () => {
    const h = await start();
    await open(h.gateway);
    const id = h.connectEvents[0]?.requestContext.connectionId ?? '';
    const client = managementClient(h.gateway.connectionsEndpoint);
    await expect(
      client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x'.repeat(128 * 1024 + 1) })),
    ).rejects.toMatchObject({ name: 'PayloadTooLargeException', $metadata: { httpStatusCode: 413 } });
    const ok = await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x'.repeat(128 * 1024) }));
    expect(ok.$metadata.httpStatusCode).toBe(200);
    expect(h.gateway.stats.payloadTooLarge).toBe(1);
  });

  it('does not reach a connection while its $connect runs (410), as in AWS', async () => {
    let sentDuringConnect: boolean | undefined;
    let gateway: Gateway | undefined;
    const h = await start({
      routes: {
        $connect: {
          handler: async (event: WebSocketEvent) => {
            sentDuringConnect = gateway?.send(event.requestContext.connectionId, 'too early');
            return { statusCode: 200 };
          },
        },
      },
    });
    gateway = h.gateway;
    await open(h.gateway);
    expect(sentDuringConnect).toBe(false);
  });
});

describe('fault injection', () => {
  const shapedSignature = {
    authorization: `AWS4-HMAC-SHA256 Credential=x/20261202/local/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'f'.repeat(64)}`,
    'x-amz-date': '20261202T000000Z',
  };

  it('does not exist unless the gateway is started with faultInjection', async () => {
    const h = await start();
    const res = await fetch(`${h.gateway.url}/local/faults`, { method: 'POST', body: '{"status":410}' });
    expect(res.status).toBe(404);
    expect(() => h.gateway.injectFaults({ status: 410 })).toThrow('fault injection is off');
  });

  it('answers /local/faults only to SigV4-signed requests without an Origin', async () => {
    const h = await start({ faultInjection: true });
    const post = (headers: Record<string, string>) =>
      fetch(`${h.gateway.url}/local/faults`, { method: 'POST', headers, body: '{"status":410,"count":1}' });
    expect((await post({ 'content-type': 'text/plain' })).status).toBe(403);
    expect((await post({ ...shapedSignature, origin: 'http://evil.example' })).status).toBe(403);
    expect(await (await post(shapedSignature)).json()).toEqual({ faults: 1 });
    expect(h.gateway.stats.managementRefused).toBe(2);
  });
});

describe('disconnects', () => {
  it('dropConnection with skipDisconnect loses $disconnect; without it, $disconnect runs once', async () => {
    const h = await start();
    const a = await open(h.gateway);
    const b = await open(h.gateway);
    const [idA, idB] = h.connectEvents.map((e) => e.requestContext.connectionId);
    const aClosed = closed(a);
    const bClosed = closed(b);
    expect(h.gateway.dropConnection(idA ?? '', { skipDisconnect: true })).toBe(true);
    expect(h.gateway.dropConnection(idB ?? '')).toBe(true);
    expect((await aClosed).code).toBe(1006);
    expect((await bClosed).code).toBe(1006);
    await h.gateway.whenIdle();
    expect(h.disconnectEvents.map((e) => e.requestContext.connectionId)).toEqual([idB]);
    expect(h.gateway.stats.disconnects).toBe(2);
    expect(h.gateway.stats.disconnectInvocations).toBe(1);
  });

  it('runs $disconnect with the client’s close code when the client closes', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    ws.close(4000, 'bye');
    await waitFor(() => h.disconnectEvents.length === 1);
    expect(h.disconnectEvents[0]?.requestContext).toMatchObject({
      disconnectStatusCode: 4000,
      disconnectReason: 'bye',
    });
  });

  it('close() closes every socket with 1001, awaits every $disconnect, and is idempotent', async () => {
    const h = await start();
    const sockets = [await open(h.gateway), await open(h.gateway), await open(h.gateway)];
    const codes = Promise.all(sockets.map((ws) => closed(ws)));
    await Promise.all([h.gateway.close(), h.gateway.close()]);
    expect(h.disconnectEvents).toHaveLength(3);
    expect((await codes).map((c) => c.code)).toEqual([1001, 1001, 1001]);
    expect(h.gateway.connections.size).toBe(0);
    await h.gateway.close();
    await expect(fetch(`${h.gateway.url}/x`)).rejects.toThrow();
  });
});

describe('websocketRoutesFromManifest', () => {
  it('binds the manifest’s WebSocket functions to their routes and requires every handler', () => {
    const handler = async () => ({ statusCode: 200 });
    const wired = websocketRoutesFromManifest({
      authorizer: handler,
      connect: handler,
      disconnect: handler,
      message: handler,
    });
    expect(wired.authorizer?.functionName).toBe('authorizer');
    expect(Object.keys(wired.routes).sort()).toEqual(
      [
        '$connect',
        '$default',
        '$disconnect',
        'ping',
        'presence',
        'publish',
        'refresh',
        'subscribe',
        'unsubscribe',
      ].sort(),
    );
    expect(wired.routes.subscribe).toMatchObject({ functionName: 'message', returnResponse: true, timeoutSeconds: 10 });
    expect(wired.routes.$connect?.returnResponse).toBe(false);
    expect(() => websocketRoutesFromManifest({ authorizer: handler })).toThrow(/connect/);
  });
});
