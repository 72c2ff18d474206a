// A connection's lifecycle (connection.ts): moved from local/gateway.test.ts, then unit tests.
import { describe, expect, it } from '@jest/globals';
import { WebSocket } from 'ws';
import { apiGatewayErrorFrame, clientCloseStatus } from './connection.ts';
import { closed, inbox, open, start, waitFor } from './test-harness.ts';

describe('messages', () => {
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

describe('clientCloseStatus', () => {
  it('keeps the client’s reason, else gives API Gateway’s text for the code', () => {
    expect(clientCloseStatus(4000, 'bye')).toEqual({ code: 4000, reason: 'bye' });
    expect(clientCloseStatus(1005, '')).toEqual({ code: 1005, reason: 'Client-side close frame status not set' });
    expect(clientCloseStatus(4001, '')).toEqual({ code: 4001, reason: 'Connection closed' });
  });
});

describe('apiGatewayErrorFrame', () => {
  it('formats an error frame exactly as API Gateway does, spaces included', () => {
    expect(apiGatewayErrorFrame('Forbidden', 'c1=', 'r1')).toBe(
      '{"message": "Forbidden", "connectionId":"c1=", "requestId":"r1"}',
    );
  });
});
