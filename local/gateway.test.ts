// local/gateway.ts is the old import path of the gateway (now local/gateway/): it must keep exporting the same API.
import { describe, expect, it } from '@jest/globals';
import { evaluateAuthorizerResult } from './gateway/authorizer.ts';
import { startGateway } from './gateway/index.ts';
import { websocketRoutesFromManifest } from './gateway/manifest-routes.ts';
import * as gateway from './gateway.ts';

describe('local/gateway.ts', () => {
  it('still exports startGateway, websocketRoutesFromManifest and evaluateAuthorizerResult from local/gateway/', () => {
    expect(gateway.startGateway).toBe(startGateway);
    expect(gateway.websocketRoutesFromManifest).toBe(websocketRoutesFromManifest);
    expect(gateway.evaluateAuthorizerResult).toBe(evaluateAuthorizerResult);
  });
});
