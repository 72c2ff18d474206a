import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createWebHandler, type WebHandler } from './server.ts';

let server: Server;
let base: string;
let fallthrough = 0;

async function serve(handler: WebHandler): Promise<{ server: Server; base: string }> {
  const s = createServer((req, res) => {
    void handler.httpHandler(req, res).then((handled) => {
      if (handled) return;
      fallthrough++;
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { server: s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  ({ server, base } = await serve(createWebHandler()));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('the demo app handler', () => {
  it('serves the page, its styles and one bundle that includes the client SDK', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<script type="module" src="/app.js"></script>');
    expect((await fetch(`${base}/styles.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');

    const app = await fetch(`${base}/app.js`);
    expect(app.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const js = await app.text();
    expect(js).toContain('tenantcast.v1'); // the SDK's WebSocket subprotocol
    expect(js).toContain('/v1/entities/');
    expect(js).toMatch(/sourceMappingURL=app\.js\.map/);
    expect((await fetch(`${base}/app.js.map`)).status).toBe(200);
  });

  it('leaves every other path and method to the next handler', async () => {
    const before = fallthrough;
    expect((await fetch(`${base}/v1/schema`)).status).toBe(404);
    expect((await fetch(`${base}/`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect(fallthrough - before).toBe(2);
  });

  it('answers 500 INTERNAL with the build error when the sources do not compile, and builds again once fixed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tenantcast-web-'));
    mkdirSync(join(root, 'src'));
    writeFileSync(join(root, 'index.html'), '<!doctype html>');
    writeFileSync(join(root, 'src/main.ts'), 'const x: number = ;');
    const broken = await serve(createWebHandler({ root }));
    try {
      const answer = await fetch(`${broken.base}/app.js`);
      expect(answer.status).toBe(500);
      expect(await answer.json()).toMatchObject({ error: { code: 'INTERNAL' } });
      writeFileSync(join(root, 'src/main.ts'), 'export const x: number = 1;');
      expect((await fetch(`${broken.base}/app.js`)).status).toBe(200);
    } finally {
      await new Promise<void>((resolve) => broken.server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    }
  });
});
