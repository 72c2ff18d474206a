// The HTTP server startGateway wires (index.ts): moved from local/gateway.test.ts.
import { describe, expect, it } from '@jest/globals';
import { connect, start } from './test-harness.ts';

describe('handshake', () => {
  it('answers 404 to upgrades on other paths and to unknown HTTP paths, and mounts extra HTTP handlers', async () => {
    const h = await start({
      httpHandler: (req, res) => {
        if (req.url !== '/hello') return false;
        res.end('hi');
        return true;
      },
    });
    expect((await connect(h.gateway, { path: '/other' })).status).toBe(404);
    const unmount = h.gateway.addHttpHandler((req, res) => {
      if (req.url !== '/later') return false;
      res.end('later');
      return true;
    });
    expect(await (await fetch(`${h.gateway.url}/hello`)).text()).toBe('hi');
    expect(await (await fetch(`${h.gateway.url}/later`)).text()).toBe('later');
    unmount();
    const missing = await fetch(`${h.gateway.url}/later`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ message: 'Not Found' });
  });
});
