import { describe, expect, it } from '@jest/globals';
import { createClient } from './client.ts';
import { connect, fakeWebSocket, settle, setup } from './testing.ts';

// createClient only wires the units; their cases sit beside them (session.test.ts for the state and the network,
// rollover.test.ts, subscriptions.test.ts, outbox.test.ts, ...). These are about the wiring itself.

describe('createClient', () => {
  it('resolves connect() once connected, and every connect() made while connecting', async () => {
    const h = setup();
    const first = h.client.connect();
    const second = h.client.connect();
    await settle();
    h.server.last().accept();
    await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
    expect(h.server.sockets).toHaveLength(1);
    await expect(h.client.connect()).resolves.toBeUndefined();
  });

  it('resolves connect() when close() comes first', async () => {
    const h = setup();
    const connecting = h.client.connect();
    h.client.close();
    await expect(connecting).resolves.toBeUndefined();
    await settle();
    expect(h.server.sockets).toHaveLength(0);
  });

  it('rejects queued publishes with CLOSED on close, and keeps subscriptions for the next connect', async () => {
    const h = setup();
    h.client.subscribe('g', () => undefined);
    const queued = h.client.publish('g', 'x');
    h.client.close();
    await expect(queued).rejects.toMatchObject({ name: 'TenantcastClientError', code: 'CLOSED', group: 'g' });
    const socket = await connect(h);
    expect(socket.framesOf('subscribe').map((f) => f.group)).toEqual(['g']);
  });

  it('stops calling a listener once its on() function is called', async () => {
    const h = setup();
    const heard: string[] = [];
    const off = h.client.on('state', (state) => heard.push(state));
    await connect(h);
    off();
    h.client.close();
    expect(heard).toEqual(['connecting', 'connected']);
  });

  it('takes its options from a class instance too, calling getToken as its method', async () => {
    const server = fakeWebSocket();
    class Options {
      readonly url = 'wss://example.test/ws';
      readonly WebSocket = server.WebSocket;
      readonly network = null;
      readonly user = 'ada';
      getToken() {
        return `token-of-${this.user}`;
      }
    }
    const client = createClient(new Options());
    void client.connect();
    await settle();
    expect(server.last().token).toBe('token-of-ada');
    client.close();
  });
});
