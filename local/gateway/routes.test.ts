// Route dispatch and per-connection queues (routes.ts): moved from local/gateway.test.ts, then unit tests of selectRoute and responseFrame.
import { describe, expect, it } from '@jest/globals';
import type { WebSocketEvent } from '../lambda-events.ts';
import { responseFrame, selectRoute } from './routes.ts';
import { inbox, open, start, waitFor } from './test-harness.ts';

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

  it('routes by $request.body.action, falling back to $default for unknown actions and non-JSON', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const box = inbox(ws);
    ws.send(JSON.stringify({ action: 'nope' }));
    expect(await box.next()).toBe('default:text');
    ws.send('not json');
    expect(await box.next()).toBe('default:text');
    ws.send(JSON.stringify({ action: 42 }));
    expect(await box.next()).toBe('default:text');
    expect(h.messageEvents.map((e) => e.requestContext.routeKey)).toEqual(['$default', '$default', '$default']);
  });

  it('closes a connection that sends a binary frame with 1003, as API Gateway does, routing nothing', async () => {
    const h = await start();
    const ws = await open(h.gateway);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.from([0xff, 0x00, 0x01]), { binary: true });
    expect(await closed).toBe(1003);
    expect(h.messageEvents).toEqual([]);
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
});

describe('selectRoute', () => {
  const routes = new Map([
    ['subscribe', 1],
    ['$connect', 2],
    ['$default', 3],
  ]);

  it('selects the route named at the selection path of a JSON frame', () => {
    expect(selectRoute(routes, ['action'], '{"action":"subscribe"}', false)).toBe('subscribe');
    expect(selectRoute(routes, ['meta', 'route'], '{"meta":{"route":"subscribe"}}', false)).toBe('subscribe');
  });

  it('falls back to $default for unknown or $-prefixed actions, non-JSON and binary frames', () => {
    expect(selectRoute(routes, ['action'], '{"action":"nope"}', false)).toBe('$default');
    expect(selectRoute(routes, ['action'], '{"action":"$connect"}', false)).toBe('$default');
    expect(selectRoute(routes, ['action'], 'not json', false)).toBe('$default');
    expect(selectRoute(routes, ['action'], 'eyJhY3Rpb24iOiJzdWJzY3JpYmUifQ==', true)).toBe('$default');
  });

  it('selects nothing when no route matches and there is no $default', () => {
    expect(selectRoute(new Map([['subscribe', 1]]), ['action'], '{"action":"x"}', false)).toBeUndefined();
  });
});

describe('responseFrame', () => {
  it('sends a string result as is, a result’s body (decoded when base64), and nothing otherwise', () => {
    expect(responseFrame('pong')).toBe('pong');
    expect(responseFrame({ statusCode: 200, body: '{"ok":true}' })).toBe('{"ok":true}');
    expect(responseFrame({ body: Buffer.from('hi').toString('base64'), isBase64Encoded: true })).toEqual(
      Buffer.from('hi'),
    );
    expect(responseFrame({ statusCode: 200 })).toBeUndefined();
    expect(responseFrame(undefined)).toBeUndefined();
  });
});
