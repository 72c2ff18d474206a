/**
 * The client's defaults for its injected ports, taken from the environment it runs in: the system clock (Date.now
 * and the global timers) and the browser's network status (`online`/`offline` events). Tests and Node pass their own.
 */
import type { Clock, Network } from './types.ts';

export const systemClock: Clock = {
  now: () => Date.now(),
  // A delay over 2^31 - 1 ms (24.8 days) fires at once: it is capped at 2e9 ms (23 days), so a far timer fires early.
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, Math.min(ms, 2e9)),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

interface BrowserGlobals {
  navigator?: { onLine?: boolean };
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
}

/** The browser's `online`/`offline` events, or undefined outside a browser. */
export function browserNetwork(scope: unknown = globalThis): Network | undefined {
  const g = scope as BrowserGlobals;
  const add = g.addEventListener;
  const remove = g.removeEventListener;
  if (typeof add !== 'function' || typeof remove !== 'function' || typeof g.navigator?.onLine !== 'boolean') {
    return undefined;
  }
  return {
    isOnline: () => g.navigator?.onLine !== false,
    subscribe(listener) {
      const online = () => listener(true);
      const offline = () => listener(false);
      add.call(g, 'online', online);
      add.call(g, 'offline', offline);
      return () => {
        remove.call(g, 'online', online);
        remove.call(g, 'offline', offline);
      };
    },
  };
}
