/** Benchmark clients: many WebSocket receivers that record publish→receive latency, and a paced publisher. */
import WebSocket from 'ws';

/**
 * Epoch time in ms with sub-ms precision. Publisher and receivers run in different processes on the same machine, so
 * latency is measured on this shared clock: the publisher stamps `t = epochNow()`, the receiver computes `epochNow() - t`.
 */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface LatencyRecorder {
  /** Latencies in ms (receive time − the publisher's `t`), over all deliveries. */
  readonly samples: number[];
  received: number;
  /** Frames received (a `batch` frame carries several messages). */
  frames: number;
  firstAt: number;
  lastAt: number;
  /** Per message id, how many times it arrived at one client (duplicates are counted, not deduped). */
  duplicates: number;
}

export function createRecorder(): LatencyRecorder {
  return { samples: [], received: 0, frames: 0, firstAt: Number.NaN, lastAt: Number.NaN, duplicates: 0 };
}

interface Delivered {
  type?: string;
  id?: string;
  data?: { t?: number };
  messages?: Delivered[];
}

function record(recorder: LatencyRecorder, seen: Set<string>, message: Delivered, now: number): void {
  if (message.type !== 'message' || typeof message.data?.t !== 'number') return;
  if (message.id !== undefined) {
    if (seen.has(message.id)) {
      recorder.duplicates++;
      return;
    }
    seen.add(message.id);
  }
  recorder.samples.push(now - message.data.t);
  recorder.received++;
  if (Number.isNaN(recorder.firstAt)) recorder.firstAt = now;
  recorder.lastAt = now;
}

/** Opens `count` sockets (at most `parallel` handshakes at once); every message frame is recorded. */
export async function openReceivers(
  count: number,
  connect: (index: number) => WebSocket,
  recorder: LatencyRecorder,
  parallel = 50,
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      const ws = connect(index);
      const seen = new Set<string>();
      ws.on('message', (raw) => {
        const now = epochNow();
        recorder.frames++;
        let frame: Delivered;
        try {
          frame = JSON.parse(String(raw)) as Delivered;
        } catch {
          return;
        }
        if (frame.type === 'batch' && Array.isArray(frame.messages)) {
          for (const m of frame.messages) record(recorder, seen, m, now);
        } else {
          record(recorder, seen, frame, now);
        }
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake ${res.statusCode}`)));
      });
      sockets[index] = ws;
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return sockets;
}

/** Sends one JSON frame with a ref and waits for the frame answering it. */
export function request(
  ws: WebSocket,
  frame: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  const ref = `b${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no answer to ${JSON.stringify(frame)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (raw: WebSocket.RawData) => {
      let answer: Record<string, unknown>;
      try {
        answer = JSON.parse(String(raw)) as Record<string, unknown>;
      } catch {
        return;
      }
      if (answer.ref !== ref) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(answer);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ ...frame, ref }));
  });
}

/** Runs `fn` over items with at most `parallel` in flight. */
export async function forEachParallel<T>(items: readonly T[], parallel: number, fn: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Publishes `count` frames at `rate` per second, stamped with `epochNow()` (Infinity = as fast as the socket takes them). */
export async function publishPaced(
  send: (index: number, t: number) => void,
  count: number,
  rate: number,
): Promise<{ startedAt: number; endedAt: number }> {
  const startedAt = epochNow();
  const interval = Number.isFinite(rate) ? 1000 / rate : 0;
  for (let i = 0; i < count; i++) {
    if (interval > 0) {
      const due = startedAt + i * interval;
      const wait = due - epochNow();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    } else if (i % 50 === 0) {
      await new Promise((r) => setImmediate(r));
    }
    send(i, epochNow());
  }
  return { startedAt, endedAt: epochNow() };
}

/** Resolves when `done()` holds or after `timeoutMs`, printing a progress line meanwhile. */
export async function waitUntil(done: () => boolean, timeoutMs: number, progress: () => string): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let lastPrint = 0;
  while (!done()) {
    if (performance.now() > deadline) {
      process.stdout.write('\n');
      return false;
    }
    if (performance.now() - lastPrint > 250) {
      process.stdout.write(`\r  ${progress()}`.padEnd(100));
      lastPrint = performance.now();
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  process.stdout.write(`\r  ${progress()}`.padEnd(100));
  process.stdout.write('\n');
  return true;
}

export async function closeAll(sockets: readonly (WebSocket | undefined)[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (!ws || ws.readyState === WebSocket.CLOSED) {
            resolve();
            return;
          }
          ws.once('close', () => resolve());
          ws.close();
          setTimeout(() => {
            ws.terminate();
            resolve();
          }, 2000).unref();
        }),
    ),
  );
}
