/**
 * Serves the demo app (web/) on the local runtime's port: `/` (index.html), `/styles.css`, and `/app.js` (+ map),
 * which esbuild bundles in memory from web/src with the client SDK (client/src) on the first request, so starting
 * the runtime costs nothing. Mount with `gateway.addHttpHandler(createWebHandler().httpHandler)`; it answers only
 * its own paths. A static file server by hand: a handful of fixed paths, no library needed for that.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface WebHandlerOptions {
  /** The directory with index.html, styles.css and src/main.ts. @default this file's directory */
  readonly root?: string;
  /** Minify the bundle. @default true */
  readonly minify?: boolean;
}

export interface WebHandler {
  /** Fits `Gateway.addHttpHandler`: true when it answered. */
  httpHandler(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Builds the bundle now (the first request otherwise does). Rejects with esbuild's errors. */
  bundle(): Promise<Bundle>;
}

export interface Bundle {
  readonly js: Uint8Array;
  readonly map: Uint8Array;
}

const files: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/styles.css': { file: 'styles.css', type: 'text/css; charset=utf-8' },
};

export function createWebHandler(options: WebHandlerOptions = {}): WebHandler {
  const root = options.root ?? import.meta.dirname;
  let building: Promise<Bundle> | undefined;

  function bundle(): Promise<Bundle> {
    building ??= build({
      entryPoints: [join(root, 'src/main.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: options.minify ?? true,
      sourcemap: 'linked',
      outfile: 'app.js',
      write: false,
      logLevel: 'silent',
    }).then((result) => {
      const js = result.outputFiles.find((f) => f.path.endsWith('app.js'));
      const map = result.outputFiles.find((f) => f.path.endsWith('app.js.map'));
      if (js === undefined || map === undefined) throw new Error('esbuild wrote no app.js and app.js.map');
      return { js: js.contents, map: map.contents };
    });
    // A failed build is retried on the next request (after the sources are fixed).
    building.catch(() => {
      building = undefined;
    });
    return building;
  }

  async function httpHandler(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const pathname = new URL(req.url ?? '/', 'http://web').pathname;
    const method = req.method ?? 'GET';
    const known = Object.hasOwn(files, pathname) || pathname === '/app.js' || pathname === '/app.js.map';
    if (!known || (method !== 'GET' && method !== 'HEAD')) return false;
    try {
      const file = files[pathname];
      let body: Uint8Array;
      let type: string;
      if (file !== undefined) {
        body = await readFile(join(root, file.file));
        type = file.type;
      } else {
        const built = await bundle();
        body = pathname === '/app.js' ? built.js : built.map;
        type = pathname === '/app.js' ? 'text/javascript; charset=utf-8' : 'application/json';
      }
      res.writeHead(200, {
        'Content-Type': type,
        'Content-Length': String(body.byteLength),
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(method === 'HEAD' ? undefined : body);
    } catch (err) {
      const text = JSON.stringify({ error: { code: 'INTERNAL', message: `demo app: ${String(err)}` } });
      res.writeHead(500, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) });
      res.end(text);
    }
    return true;
  }

  return { httpHandler, bundle };
}
