/** Small HTTP helpers the local stand-ins share (listening on a port, reading and draining request bodies). */
import type { IncomingMessage } from 'node:http';
import type { Server } from 'node:net';

export interface ListenOptions {
  /** @default 0 (an ephemeral port) */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Names the server in the error thrown if it has no TCP address. */
  readonly name: string;
}

export interface Listening {
  readonly port: number;
  /** `http://host:port`, an IPv6 host in brackets. */
  readonly url: string;
  /** The host as it goes into a URL (an IPv6 host in brackets). */
  readonly hostForUrl: string;
}

/** Listens on `port` (ephemeral by default) and resolves with the port actually bound; rejects if listening fails. */
export async function listen(server: Server, options: ListenOptions): Promise<Listening> {
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`${options.name}: no TCP address`);
  const hostForUrl = urlHost(host);
  return { port: address.port, url: `http://${hostForUrl}:${address.port}`, hostForUrl };
}

/** A host as it goes into a URL: an IPv6 address in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Reads a request body up to `limit` bytes; undefined if it is larger. The rest is drained up to `hardCap` bytes,
 * beyond which the request is destroyed.
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  hardCap = Math.max(limit * 8, 1024 * 1024),
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > hardCap) {
      req.destroy();
      return undefined;
    }
    if (total <= limit) chunks.push(buf);
  }
  return total > limit ? undefined : Buffer.concat(chunks);
}

/** Reads a whole request body (the stand-ins of AWS services, whose clients are ours). */
export async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads and discards what is left of a request body. */
export async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return;
  for await (const _ of req) {
    // discard
  }
}
