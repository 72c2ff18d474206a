import { describe, expect, it, jest } from '@jest/globals';
import { createClient } from './client.ts';
import { browserNetwork, systemClock } from './environment.ts';
import { FakeSocket, fakeJwt } from './testing.ts';

function fakeWindow(onLine: boolean) {
  const listeners = new Map<string, Set<() => void>>();
  return {
    navigator: { onLine },
    addEventListener(type: string, listener: () => void) {
      listeners.set(type, (listeners.get(type) ?? new Set()).add(listener));
    },
    removeEventListener(type: string, listener: () => void) {
      listeners.get(type)?.delete(listener);
    },
    fire(type: string) {
      for (const listener of listeners.get(type) ?? []) listener();
    },
  };
}

describe('browserNetwork', () => {
  it('is undefined outside a browser', () => {
    expect(browserNetwork({})).toBeUndefined();
  });

  it("reads navigator.onLine and passes on the window's online and offline events until unsubscribed", () => {
    const window = fakeWindow(false);
    const network = browserNetwork(window);
    expect(network?.isOnline()).toBe(false);
    const seen: boolean[] = [];
    const stop = network?.subscribe((online) => seen.push(online));
    window.fire('online');
    window.fire('offline');
    stop?.();
    window.fire('online');
    expect(seen).toEqual([true, false]);
  });
});

describe('the system clock', () => {
  it("caps a delay beyond setTimeout's 2^31 - 1 ms, which would fire at once", () => {
    const spy = jest.spyOn(globalThis, 'setTimeout');
    try {
      systemClock.clearTimeout(systemClock.setTimeout(() => undefined, 30 * 24 * 3_600_000));
      systemClock.clearTimeout(systemClock.setTimeout(() => undefined, 1000));
      expect(spy.mock.calls.map((call) => call[1])).toEqual([2e9, 1000]);
    } finally {
      spy.mockRestore();
    }
  });

  /** A client on the system clock whose sockets open by themselves; `getToken` and the sockets are counted. */
  async function runFor(ms: number, options: { rolloverAfterMs?: number; token?: string }) {
    const sockets: FakeSocket[] = [];
    class AutoSocket extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
        setTimeout(() => this.readyState === 0 && this.accept(), 1);
      }
    }
    const getToken = jest.fn(() => options.token ?? 'token');
    const client = createClient({
      url: 'wss://example.test/ws',
      getToken,
      WebSocket: AutoSocket,
      network: null,
      ...(options.rolloverAfterMs && { rolloverAfterMs: options.rolloverAfterMs }),
    });
    await client.connect();
    await new Promise((resolve) => setTimeout(resolve, ms));
    client.close();
    return { sockets: sockets.length, getTokenCalls: getToken.mock.calls.length };
  }

  it('does not roll over continuously with a rolloverAfterMs of 30 days', async () => {
    expect(await runFor(100, { rolloverAfterMs: 30 * 24 * 3_600_000 })).toEqual({ sockets: 1, getTokenCalls: 1 });
  });

  it('does not refresh a token living 30 days in a tight loop', async () => {
    const token = fakeJwt(Math.floor(Date.now() / 1000) + 30 * 24 * 3600);
    expect(await runFor(100, { token })).toEqual({ sockets: 1, getTokenCalls: 1 });
  });
});
