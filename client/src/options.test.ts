import { describe, expect, it } from '@jest/globals';
import { createClient } from './client.ts';
import { positive, settingsFor, webSocketFor } from './options.ts';
import { FakeClock, fakeWebSocket } from './testing.ts';

describe('checking options', () => {
  it('takes the default for a number not given, and the number given when it is positive', () => {
    expect(positive('heartbeatMs', undefined, 5)).toBe(5);
    expect(positive('heartbeatMs', 7, 5)).toBe(7);
  });

  it('refuses zero, negative and non-numbers, naming the option', () => {
    expect(() => positive('dedupeWindow', 0, 5)).toThrow('dedupeWindow must be a positive number');
    expect(() => positive('dedupeWindow', Number.NaN, 5)).toThrow('dedupeWindow must be a positive number');
    expect(() => positive('dedupeWindow', '3' as unknown as number, 5)).toThrow(
      'dedupeWindow must be a positive number',
    );
  });

  it('needs getToken and a WebSocket implementation', () => {
    const { WebSocket } = fakeWebSocket();
    expect(() => webSocketFor({ url: 'wss://x', WebSocket })).toThrow('getToken must be a function');
    expect(webSocketFor({ url: 'wss://x', getToken: () => 't', WebSocket })).toBe(WebSocket);
  });
});

describe('createClient', () => {
  it('says what was wrong with its options', () => {
    expect(() => createClient({ url: '', getToken: () => 't' })).toThrow('url must be a WebSocket URL');
    expect(() =>
      createClient({ url: 'wss://x', getToken: () => 't', WebSocket: fakeWebSocket().WebSocket, heartbeatMs: -1 }),
    ).toThrow('heartbeatMs must be a positive number');
  });
});

describe('settingsFor', () => {
  it('applies every default once, keeping what the options give', () => {
    const { WebSocket } = fakeWebSocket();
    const clock = new FakeClock();
    const settings = settingsFor({
      url: 'wss://x',
      getToken: () => 't',
      WebSocket,
      clock,
      heartbeatMs: 5,
      network: null,
    });
    expect(settings).toMatchObject({
      url: 'wss://x',
      WebSocket,
      clock,
      random: Math.random,
      network: undefined,
      heartbeatMs: 5,
      pongTimeoutMs: 10_000,
      requestTimeoutMs: 15_000,
      connectTimeoutMs: 15_000,
      rolloverAfterMs: 6_600_000,
      refreshBeforeMs: 60_000,
      maxQueuedPublishes: 100,
      dedupeWindow: 1000,
    });
  });

  it('checks the url and getToken before the numbers', () => {
    expect(() => settingsFor({ url: '', getToken: () => 't', heartbeatMs: -1 })).toThrow('url must be');
  });
});
