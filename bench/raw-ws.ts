/**
 * The baseline: a plain `ws` broadcast server with no authentication, storage, queue or functions — the fastest
 * this machine can push the same frames to the same clients. The pipeline is reported as a ratio of it.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

export interface RawServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startRawServer(): Promise<RawServer> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  let nextId = 0;
  wss.on('connection', (ws) => {
    ws.on('message', (raw) => {
      let frame: { action?: string; group?: string; data?: unknown; ref?: string };
      try {
        frame = JSON.parse(String(raw));
      } catch {
        return;
      }
      if (frame.action !== 'publish') return;
      const out = JSON.stringify({
        type: 'message',
        group: frame.group,
        id: `raw-${nextId++}`,
        data: frame.data,
        from: 'raw',
        ts: Date.now(),
      });
      for (const client of wss.clients) if (client !== ws && client.readyState === client.OPEN) client.send(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `ws://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  };
}
