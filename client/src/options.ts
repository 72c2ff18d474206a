/**
 * Checking the client's options: what was wrong is said at createClient, not later at some reconnect. The defaults
 * are createClient's; these helpers only refuse what cannot work.
 */
import type { WebSocketConstructor } from './types.ts';

/** The url and getToken options must be there; returns the WebSocket implementation to use. */
export function webSocketFor(options: {
  readonly url?: unknown;
  readonly getToken?: unknown;
  readonly WebSocket?: WebSocketConstructor;
}): WebSocketConstructor {
  if (typeof options?.url !== 'string' || options.url === '') {
    throw new TypeError(`url must be a WebSocket URL; got ${String(options?.url)}`);
  }
  if (typeof options.getToken !== 'function') throw new TypeError('getToken must be a function returning a token');
  const maybeWebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (maybeWebSocket === undefined) {
    throw new TypeError('no WebSocket implementation: pass options.WebSocket (in Node 20, the ws package)');
  }
  return maybeWebSocket;
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number of milliseconds (or count); got ${String(value)}`);
  }
  return value;
}
