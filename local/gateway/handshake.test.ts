// The handshake as API Gateway runs it (handshake.ts, authorizer.ts): moved from local/gateway.test.ts.
import { describe, expect, it } from '@jest/globals';
import type { WebSocketAuthorizerEvent } from '../lambda-events.ts';
import { allow, closed, connect, open, start } from './test-harness.ts';

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
    expect(h.gateway.stats.rejectedHandshakesByStatus).toEqual({ 403: 2 });
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

  it('refuses a URL over API Gateway’s 4,096 characters before the authorizer, and takes one under it', async () => {
    const h = await start();
    expect((await connect(h.gateway, { query: `token=${'t'.repeat(4100)}` })).status).toBe(414);
    expect((await connect(h.gateway, { query: `token=good-token-123&pad=${'t'.repeat(3900)}` })).ws).toBeDefined();
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
