/**
 * Fakes for the client's ports: a WebSocket whose server side the test drives, and a manual clock. Test support
 * only: not exported from index.ts and not part of the build.
 */
import { expect, jest } from '@jest/globals';
import { type ClientOptions, createClient } from './client.ts';
import type { TenantcastClientError } from './errors.ts';
import type { Clock, Message, Network, ResetEvent, WebSocketConstructor, WebSocketLike } from './types.ts';

export type SentFrame = Record<string, unknown> & { action: string; ref: string };

export class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: SentFrame[] = [];
  closedByClient: { code?: number; reason?: string } | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string | string[] | undefined,
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
    this.sent.push(JSON.parse(data) as SentFrame);
  }
  close(code?: number, reason?: string): void {
    this.closedByClient = { ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) };
    this.readyState = 3;
  }

  // ---- the server's side ----
  get token(): string | undefined {
    return Array.isArray(this.protocols) ? this.protocols[1] : undefined;
  }
  get closed(): boolean {
    return this.readyState === 3;
  }
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }
  /** The server (or the network) ends the connection. */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason });
  }
  framesOf(action: string): SentFrame[] {
    return this.sent.filter((f) => f.action === action);
  }
  lastOf(action: string): SentFrame {
    const frame = this.framesOf(action).at(-1);
    if (!frame) throw new Error(`no ${action} frame sent; sent: ${JSON.stringify(this.sent)}`);
    return frame;
  }
  /** Acks every request of this action not answered yet. */
  ackAll(action: string, extra: (frame: SentFrame) => Record<string, unknown> = () => ({})): void {
    for (const frame of this.framesOf(action)) {
      if (this.answered.has(frame.ref)) continue;
      this.answered.add(frame.ref);
      // As the server does, a live subscribe's ack carries the group's seq (here 0, unless `extra` says).
      const seq = action === 'subscribe' && frame.since === undefined ? { seq: 0 } : {};
      this.receive({ type: action === 'ping' ? 'pong' : 'ack', ref: frame.ref, ...seq, ...extra(frame) });
    }
  }
  readonly answered = new Set<string>();
}

export function fakeWebSocket(): { WebSocket: WebSocketConstructor; sockets: FakeSocket[]; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  const WebSocket = class extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  };
  return {
    WebSocket,
    sockets,
    last() {
      const socket = sockets.at(-1);
      if (!socket) throw new Error('no socket was opened');
      return socket;
    },
  };
}

/** A clock that moves only when told; timers fire in due order. */
export class FakeClock implements Clock {
  private time = 1_700_000_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  /** Moves time forward, firing each due timer (and the promise jobs it starts) in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

/** Lets pending promise jobs (getToken, acks) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeNetwork implements Network {
  online = true;
  private readonly listeners = new Set<(online: boolean) => void>();
  isOnline(): boolean {
    return this.online;
  }
  subscribe(listener: (online: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(online: boolean): void {
    this.online = online;
    for (const listener of this.listeners) listener(online);
  }
}

/** An unsigned JWT-shaped token expiring at `exp` (epoch seconds): the client only reads `exp`. */
export function fakeJwt(exp: number, sub = 'alice'): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none' })}.${part({ sub, exp })}.sig`;
}

// ---- a client wired to the fakes, as the tests drive it ----

/** `create` is createClient from the sources unless a test passes another build of it (bundle.test.ts). */
export function setup(overrides: Partial<ClientOptions> = {}, create: typeof createClient = createClient) {
  const server = fakeWebSocket();
  const clock = new FakeClock();
  let issued = 0;
  const getToken = jest.fn(async (): Promise<string> => `token-${++issued}`);
  const client = create({
    url: 'wss://example.test/ws',
    getToken,
    WebSocket: server.WebSocket,
    clock,
    random: () => 0.5,
    network: null,
    ...overrides,
  });
  const states: string[] = [];
  const errors: TenantcastClientError[] = [];
  const resets: ResetEvent[] = [];
  client.on('state', (state) => states.push(state));
  client.on('error', (error) => errors.push(error));
  client.on('reset', (event) => resets.push(event));
  return { server, clock, getToken, client, states, errors, resets };
}
export type Harness = ReturnType<typeof setup>;

/** connect() and let the server accept the socket. */
export async function connect(h: Harness): Promise<FakeSocket> {
  const done = h.client.connect();
  await settle();
  const socket = h.server.last();
  socket.accept();
  await done;
  return socket;
}

/** Waits out the reconnect backoff and accepts the new socket. */
export async function reconnect(h: Harness, previous: FakeSocket): Promise<FakeSocket> {
  const before = h.server.sockets.length;
  for (let waited = 0; h.server.sockets.length === before && waited < 60_000; waited += 100) await h.clock.advance(100);
  const socket = h.server.last();
  expect(socket).not.toBe(previous);
  socket.accept();
  await settle();
  return socket;
}

let ids = 0;
/** A server `message` frame; the id is derived from the group and seq unless given. */
export function message(group: string, seq: number | undefined, data: unknown = seq, id = `m${group}-${seq ?? ++ids}`) {
  return { type: 'message', group, id, data, from: 'bob', ts: 1, ...(seq !== undefined && { seq }) };
}

export function collect(h: Harness, group: string) {
  const seen: Message[] = [];
  const subscription = h.client.subscribe(group, (m) => seen.push(m));
  return { seen, subscription };
}
