// Wiring from the manifest (manifest-routes.ts): moved from local/gateway.test.ts.
import { describe, expect, it } from '@jest/globals';
import { websocketRoutesFromManifest } from './manifest-routes.ts';

describe('websocketRoutesFromManifest', () => {
  it('binds the manifest’s WebSocket functions to their routes and requires every handler', () => {
    const handler = async () => ({ statusCode: 200 });
    const wired = websocketRoutesFromManifest({
      authorizer: handler,
      connect: handler,
      disconnect: handler,
      message: handler,
    });
    expect(wired.authorizer?.functionName).toBe('authorizer');
    expect(Object.keys(wired.routes).sort()).toEqual(
      [
        '$connect',
        '$default',
        '$disconnect',
        'ping',
        'presence',
        'publish',
        'refresh',
        'subscribe',
        'unsubscribe',
      ].sort(),
    );
    expect(wired.routes.subscribe).toMatchObject({ functionName: 'message', returnResponse: true, timeoutSeconds: 10 });
    expect(wired.routes.$connect?.returnResponse).toBe(false);
    expect(() => websocketRoutesFromManifest({ authorizer: handler })).toThrow(/connect/);
  });
});
