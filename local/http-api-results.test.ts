/**
 * The local HTTP API between a client and a function, as API Gateway stands between them: what the function's
 * result, or its lateness, becomes (local/http-api.ts), on a plain Node server with a fake integration and no
 * authorizer.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { HTTP_API_CORS } from '../lib/http-api-cors.ts';
import { createHttpApi } from './http-api.ts';

let server: Server;
let base: string;
let result: (event: APIGatewayProxyEventV2) => Promise<unknown> = async () => undefined;
const errors: unknown[] = [];

beforeAll(async () => {
  const api = createHttpApi({
    routes: [{ method: 'GET', path: '/t', authorize: false, invoke: (event) => result(event) }],
    jwt: { issuer: 'https://issuer.invalid', audience: 'x', jwksUri: 'https://issuer.invalid/jwks' },
    integrationTimeoutMs: 300,
    cors: { ...HTTP_API_CORS, allowOrigins: ['http://localhost:5173'] },
    onError: (err) => errors.push(err),
  });
  server = createServer((req, res) => {
    void Promise.resolve(api.httpHandler(req, res)).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('a function result', () => {
  it("over Lambda's 6 MB for a synchronous invocation is a 500, as the failed invocation is in AWS", async () => {
    result = async () => ({ statusCode: 200, body: 'a'.repeat(6 * 1024 * 1024) });
    const big = await fetch(`${base}/t`);
    expect(big.status).toBe(500);
    expect(await big.json()).toEqual({ message: 'Internal Server Error' });
    expect(String(errors.at(-1))).toContain('Response payload size exceeded');
    result = async () => ({ statusCode: 200, body: 'a'.repeat(6 * 1024 * 1024 - 100) });
    const under = await fetch(`${base}/t`);
    expect(under.status).toBe(200);
    expect((await under.text()).length).toBe(6 * 1024 * 1024 - 100);
  });

  it('later than the integration timeout is a 503 to the client, while the function runs on to its end', async () => {
    let finished = false;
    result = () =>
      new Promise((resolve) =>
        setTimeout(() => {
          finished = true;
          resolve({ statusCode: 200, body: 'late' });
        }, 600),
      );
    const late = await fetch(`${base}/t`);
    expect(late.status).toBe(503);
    expect(await late.json()).toEqual({ message: 'Service Unavailable' });
    expect(finished).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(finished).toBe(true);
  });

  it('that API Gateway cannot read (a status code out of range, a body that is no string) is a 500', async () => {
    for (const bad of [{ statusCode: 1000 }, { statusCode: 200, body: 5 }]) {
      result = async () => bad;
      const answer = await fetch(`${base}/t`);
      expect(answer.status).toBe(500);
      expect(await answer.json()).toEqual({ message: 'Internal Server Error' });
    }
  });

  it('that fails on a bad header is a 500 without the headers set before it, with the CORS ones', async () => {
    result = async () => ({ statusCode: 200, headers: { etag: '"7"', 'x-bad': 'a\u0000b' }, body: '{}' });
    const answer = await fetch(`${base}/t`, { headers: { origin: 'http://localhost:5173' } });
    expect(answer.status).toBe(500);
    expect(answer.headers.get('etag')).toBeNull();
    expect(answer.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
  });

  it('comes from an event whose request time is written as API Gateway writes it', async () => {
    let time = '';
    result = async (event) => {
      time = event.requestContext.time;
      return { statusCode: 204 };
    };
    await fetch(`${base}/t`);
    expect(time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
  });

  it("from an allowed origin carries the API's CORS headers, not the function's", async () => {
    result = async () => ({
      statusCode: 200,
      headers: { 'access-control-allow-origin': '*', etag: '"3"' },
      body: '{}',
    });
    const allowed = await fetch(`${base}/t`, { headers: { origin: 'http://localhost:5173' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(allowed.headers.get('access-control-expose-headers')).toBe('etag');
    expect(allowed.headers.get('etag')).toBe('"3"');
    const other = await fetch(`${base}/t`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('a preflight', () => {
  it('is answered by the API itself, whatever the routes, without invoking a function', async () => {
    let invoked = false;
    result = async () => {
      invoked = true;
      return { statusCode: 200 };
    };
    const answer = await fetch(`${base}/t`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(invoked).toBe(false);
  });
});

describe('a request', () => {
  // fetch adds headers of its own (accept, user-agent …): a plain Node request sends only those given here.
  const line = 'GET /t HTTP/1.1';
  const host = () => new URL(base).host;
  /** The bytes of header values left under API Gateway's 10,240 once the request line, host and connection count. */
  const room = () => 10_240 - Buffer.byteLength(line) - Buffer.byteLength(host()) - Buffer.byteLength('close');
  let invoked = 0;
  const send = (headers: Record<string, string>) => {
    invoked = 0;
    result = async () => {
      invoked++;
      return { statusCode: 200, body: 'ok' };
    };
    return new Promise<number>((resolve, reject) => {
      const req = request(
        `${base}/t`,
        { agent: false, headers: { host: host(), connection: 'close', ...headers } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  };

  it("of exactly API Gateway's 10,240 bytes of request line and header values is served", async () => {
    expect(await send({ 'x-pad': 'p'.repeat(room()) })).toBe(200);
    expect(invoked).toBe(1);
  });

  it('of one byte more is refused with 431 before the function', async () => {
    expect(await send({ 'x-pad': 'p'.repeat(room() + 1) })).toBe(431);
    expect(invoked).toBe(0);
  });

  it('counts its header values together, and not their names', async () => {
    expect(await send({ a: 'p'.repeat(room() - 100), b: 'p'.repeat(101) })).toBe(431);
    expect(await send({ a: 'p'.repeat(room() - 100), b: 'p'.repeat(100) })).toBe(200);
  });

  it('counts the bytes sent: UTF-8 in a cookie two bytes a character, not more', async () => {
    // Node hands the value over as latin1, a character a byte; until review each was counted again as UTF-8.
    const utf8 = (bytes: number) => Buffer.from('é'.repeat(bytes / 2)).toString('latin1');
    const even = room() - (room() % 2);
    expect(await send({ cookie: utf8(even) })).toBe(200);
    expect(await send({ cookie: utf8(even + 2) })).toBe(431);
  });

  it('over the quota is answered at once, without its body, and with the CORS headers of an allowed origin', async () => {
    result = async () => ({ statusCode: 200, body: 'ok' });
    const origin = 'http://localhost:5173';
    const answer = await new Promise<{ status: number; allowOrigin: unknown }>((resolve, reject) => {
      // A body of 40 MB is announced and never sent: an answer that waited for it would never come.
      const req = request(`${base}/t`, {
        method: 'POST',
        agent: false,
        headers: { origin, 'content-length': String(40 * 1024 * 1024), 'x-pad': 'p'.repeat(10_300) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, allowOrigin: res.headers['access-control-allow-origin'] });
        req.destroy();
      });
      req.on('error', reject);
      req.write('{');
    });
    expect(answer).toEqual({ status: 431, allowOrigin: origin });
  });
});
