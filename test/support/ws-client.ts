/** A WebSocket test client: connects with a token, records every frame, and waits for frames by predicate. */
import WebSocket from 'ws';

export type Frame = Record<string, unknown> & { type?: string; ref?: string };

export interface TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[];
  send(frame: unknown): void;
  /** Sends a frame with a fresh `ref` and resolves with the answer carrying that ref. */
  request(frame: Record<string, unknown>, timeoutMs?: number): Promise<Frame>;
  waitFor(predicate: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

let refs = 0;

export async function connect(
  url: string,
  token: string | undefined,
  how: 'subprotocol' | 'query' = 'subprotocol',
): Promise<TestClient> {
  const target = how === 'query' && token ? `${url}?token=${encodeURIComponent(token)}` : url;
  const ws = new WebSocket(target, how === 'subprotocol' && token ? ['tenantcast.v1', token] : undefined);
  const frames: Frame[] = [];
  const waiters = new Set<{ predicate: (f: Frame) => boolean; resolve: (f: Frame) => void }>();
  ws.on('message', (data) => {
    let frame: Frame;
    try {
      frame = JSON.parse(String(data)) as Frame;
    } catch {
      frame = { type: 'unparseable', raw: String(data) };
    }
    frames.push(frame);
    for (const waiter of waiters) {
      if (waiter.predicate(frame)) {
        waiters.delete(waiter);
        waiter.resolve(frame);
      }
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new HandshakeError(res.statusCode ?? 0)));
    ws.once('error', reject);
  });

  const waitFor = (predicate: (f: Frame) => boolean, timeoutMs = 3000) =>
    new Promise<Frame>((resolve, reject) => {
      const seen = frames.find(predicate);
      if (seen) {
        resolve(seen);
        return;
      }
      const waiter = {
        predicate,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames).slice(0, 2000)}`));
      }, timeoutMs);
      waiters.add(waiter);
    });

  return {
    ws,
    frames,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    request: (frame, timeoutMs) => {
      const ref = `r${++refs}`;
      ws.send(JSON.stringify({ ...frame, ref }));
      return waitFor((f) => f.ref === ref && f.type !== 'message', timeoutMs);
    },
    waitFor,
    closed,
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await closed;
    },
  };
}

export class HandshakeError extends Error {
  constructor(readonly status: number) {
    super(`handshake refused with HTTP ${status}`);
  }
}

/** The HTTP status a refused handshake got (or 101 if it was accepted). */
export async function handshakeStatus(
  url: string,
  token: string | undefined,
  how: 'subprotocol' | 'query' = 'subprotocol',
): Promise<number> {
  try {
    const client = await connect(url, token, how);
    await client.close();
    return 101;
  } catch (err) {
    if (err instanceof HandshakeError) return err.status;
    throw err;
  }
}
