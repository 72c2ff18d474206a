// The signed management endpoints (management-api.ts): moved from local/gateway.test.ts, then unit tests.

import {
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { describe, expect, it } from '@jest/globals';
import type { WebSocketEvent } from '../lambda-events.ts';
import type { Gateway } from './index.ts';
import { connectionsPathId } from './management-api.ts';
import { closed, inbox, managementClient, open, start, waitFor } from './test-harness.ts';

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

    // Valid UTF-8 (multi-byte characters included) arrives as a text frame, byte for byte; anything else as binary.
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: '{"name":"Zoë ✓ 😀"}' }));
    expect(await box.next()).toBe('{"name":"Zoë ✓ 😀"}');
    await client.send(
      new PostToConnectionCommand({ ConnectionId: id, Data: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }),
    );
    expect(await box.next()).toBe('<binary 4>');
    // Bytes go through as they were posted: a leading byte order mark is kept, not stripped.
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: '\uFEFF{}' }));
    expect(await box.next()).toBe('\uFEFF{}');

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
    expect(h.gateway.stats).toMatchObject({ posts: 4, gets: 1, deletes: 1, gone: 0 });
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

  it('answers LimitExceededException (429) while a client that does not read has its buffer full, then 200 again', async () => {
    const h = await start({ clientBufferBytes: 256 * 1024 });
    const ws = await open(h.gateway);
    const id = h.connectEvents[0]?.requestContext.connectionId ?? '';
    const client = managementClient(h.gateway.connectionsEndpoint);
    let received = 0;
    ws.on('message', () => received++);
    const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const frame = 'x'.repeat(100 * 1024);
    let refused: unknown;
    let accepted = 0;
    for (let i = 0; i < 400 && refused === undefined; i++) {
      await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: frame })).then(
        () => accepted++,
        (err: unknown) => {
          refused = err;
        },
      );
    }
    expect(refused).toMatchObject({ name: 'LimitExceededException', $metadata: { httpStatusCode: 429 } });
    expect(h.gateway.stats.clientBufferFull).toBeGreaterThanOrEqual(1); // the SDK retries a 429 itself
    socket.resume();
    await waitFor(() => received === accepted, 10_000);
    const ok = await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: frame }));
    expect(ok.$metadata.httpStatusCode).toBe(200);
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

describe('connectionsPathId', () => {
  it('reads the id of an @connections path, with this stage’s prefix or none', () => {
    expect(connectionsPathId('/@connections/abc%3D', 'local')).toBe('abc%3D');
    expect(connectionsPathId('/local/@connections/abc%3D', 'local')).toBe('abc%3D');
  });

  it('is not one for another stage, a deeper path or another path', () => {
    expect(connectionsPathId('/prod/@connections/abc', 'local')).toBeUndefined();
    expect(connectionsPathId('/@connections/abc/x', 'local')).toBeUndefined();
    expect(connectionsPathId('/local/faults', 'local')).toBeUndefined();
  });
});
