/**
 * The client's options: their defaults and their checks. What was wrong is said at createClient, not later at some
 * reconnect. `settingsFor` turns the options an app passes into the settings every unit reads: each default applied
 * once, here.
 */
import type { ClientOptions } from './client.ts';
import { browserNetwork, systemClock } from './environment.ts';
import type { Clock, Network, WebSocketConstructor } from './types.ts';

/** The numeric options and their defaults (documented on ClientOptions), in the order they are checked. */
const NUMBERS = {
  heartbeatMs: 240_000,
  pongTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  connectTimeoutMs: 15_000,
  rolloverAfterMs: 110 * 60_000,
  refreshBeforeMs: 60_000,
  maxQueuedPublishes: 100,
  dedupeWindow: 1000,
};

/** The options with every default applied. */
export type Settings = ClientOptions & { readonly [K in keyof typeof NUMBERS]: number } & {
  readonly WebSocket: WebSocketConstructor;
  readonly clock: Clock;
  readonly random: () => number;
  /** Undefined when there is no network status to follow (`network: null`, or not a browser). */
  readonly network: Network | undefined;
};

/**
 * The settings inherit from the options object (they are not a copy of its own properties): options given as getters
 * or as methods of a class instance read as they do on `options`, and getToken's `this` reads through to `options`.
 */
export function settingsFor(options: ClientOptions): Settings {
  const settings: { -readonly [K in keyof Settings]: Settings[K] } = Object.create(options);
  settings.WebSocket = webSocketFor(options);
  let name: keyof typeof NUMBERS;
  for (name in NUMBERS) settings[name] = positive(name, options[name], NUMBERS[name]);
  settings.clock = options.clock ?? systemClock;
  settings.random = options.random ?? Math.random;
  settings.network = options.network === null ? undefined : (options.network ?? browserNetwork());
  return settings;
}

/** The url and getToken options must be there; returns the WebSocket implementation to use. */
export function webSocketFor(options: {
  readonly url?: unknown;
  readonly getToken?: unknown;
  readonly WebSocket?: WebSocketConstructor;
}): WebSocketConstructor {
  if (typeof options?.url !== 'string' || options.url === '') {
    throw new TypeError('url must be a WebSocket URL');
  }
  if (typeof options.getToken !== 'function') throw new TypeError('getToken must be a function');
  const maybeWebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (maybeWebSocket === undefined) {
    throw new TypeError('no WebSocket: pass options.WebSocket');
  }
  return maybeWebSocket;
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  // `!(value > 0)` also refuses NaN.
  if (typeof value !== 'number' || !(value > 0)) {
    throw new TypeError(`${name} must be a positive number`);
  }
  return value;
}
