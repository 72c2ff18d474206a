import { describe, expect, it } from '@jest/globals';
import { browserNetwork } from './environment.ts';

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
