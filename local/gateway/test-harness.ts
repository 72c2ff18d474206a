/**
 * What the gateway's integration tests share (not a test file): a gateway started with fake authorizer and route
 * handlers that record their events, WebSocket and Management API clients, and waits. Stops what a test started
 * after each test.
 */
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { afterEach } from '@jest/globals';
import { WebSocket } from 'ws';
import type { WebSocketAuthorizerEvent, WebSocketEvent } from '../lambda-events.ts';
import { type Gateway, type GatewayOptions, type GatewayRoute, startGateway } from './index.ts';

export interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

export interface Harness {
  gateway: Gateway;
  authorizerEvents: WebSocketAuthorizerEvent[];
  connectEvents: WebSocketEvent[];
  messageEvents: WebSocketEvent[];
  disconnectEvents: WebSocketEvent[];
  logs: LogLine[];
}

export const running: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
});

export function allow(principalId: string, resource: string, context: Record<string, unknown>) {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: resource }],
    },
    context,
  };
}

export async function start(overrides: Partial<GatewayOptions> = {}): Promise<Harness> {
  const h = {
    authorizerEvents: [] as WebSocketAuthorizerEvent[],
    connectEvents: [] as WebSocketEvent[],
    messageEvents: [] as WebSocketEvent[],
    disconnectEvents: [] as WebSocketEvent[],
    logs: [] as LogLine[],
  };
  const routes: Record<string, GatewayRoute> = {
    $connect: {
      handler: async (event: WebSocketEvent) => {
        h.connectEvents.push(event);
        const q = event.queryStringParameters ?? {};
        if (q.connect === 'fail') throw new Error('connect crashed');
        if (q.connect === 'reject') return { statusCode: 429, body: 'Too Many Requests' };
        const offered = event.headers?.['Sec-WebSocket-Protocol'];
        if (
          offered
            ?.split(',')
            .map((p) => p.trim())
            .includes('tenantcast.v1')
        ) {
          return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'tenantcast.v1' } };
        }
        return { statusCode: 200 };
      },
    },
    $disconnect: {
      handler: async (event: WebSocketEvent) => {
        h.disconnectEvents.push(event);
        throw new Error('disconnect handlers may crash');
      },
    },
    subscribe: {
      returnResponse: true,
      handler: async (event: WebSocketEvent) => {
        h.messageEvents.push(event);
        return { statusCode: 200, body: JSON.stringify({ route: 'subscribe', auth: event.requestContext.authorizer }) };
      },
    },
    boom: {
      returnResponse: true,
      handler: async (event: WebSocketEvent) => {
        h.messageEvents.push(event);
        throw new Error('handler crashed');
      },
    },
    $default: {
      returnResponse: true,
      handler: async (event: WebSocketEvent) => {
        h.messageEvents.push(event);
        return `default:${event.isBase64Encoded ? 'b64' : 'text'}`;
      },
    },
  };
  const gateway = await startGateway({
    routes,
    authorizer: {
      handler: async (event: WebSocketAuthorizerEvent) => {
        h.authorizerEvents.push(event);
        const token = event.queryStringParameters.token;
        if (token === 'deny')
          return { ...allow('u', event.methodArn, {}), policyDocument: denyPolicy(event.methodArn) };
        if (token === 'crash') throw new Error('authorizer crashed');
        if (token === 'nested') return allow('u', event.methodArn, { roles: ['member'] });
        if (token === 'other-arn') return allow('u', 'arn:aws:execute-api:us-east-1:000000000000:other/*', {});
        if (token?.startsWith('good')) {
          return allow('alice', event.methodArn, { tenantId: 'acme', userId: 'alice', roles: 'member', n: 5, b: true });
        }
        throw new Error('Unauthorized');
      },
    },
    log: (level, message, fields) => h.logs.push({ level, message, fields }),
    ...overrides,
  });
  running.push(() => gateway.close());
  return { gateway, ...h };
}

export function denyPolicy(resource: string) {
  return { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: resource }] };
}

export type Attempt =
  | { ws: WebSocket; status?: undefined; error?: undefined }
  | { ws?: undefined; status: number; error?: string };

export function connect(
  gateway: Gateway,
  options: { token?: string; query?: string; protocols?: string[]; path?: string } = {},
): Promise<Attempt> {
  const query = options.query ?? `token=${options.token ?? 'good-token-123'}`;
  const url = options.path ? `${gateway.url.replace('http', 'ws')}${options.path}` : `${gateway.wsUrl}?${query}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: { 'User-Agent': 'jest-client/1.0' } });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => {
      if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) {
        resolve({ status: -1, error: err.message });
      } else reject(err);
    });
  });
}

export async function open(gateway: Gateway, options: Parameters<typeof connect>[1] = {}): Promise<WebSocket> {
  const attempt = await connect(gateway, options);
  if (!attempt.ws) throw new Error(`handshake failed: ${attempt.status}`);
  running.unshift(async () => {
    attempt.ws.terminate();
  });
  return attempt.ws;
}

/** Collects frames so a test can await them in order. */
export function inbox(ws: WebSocket) {
  const frames: string[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data, isBinary) => {
    frames.push(isBinary ? `<binary ${(data as Buffer).length}>` : data.toString());
    for (const w of waiters.splice(0)) w();
  });
  return {
    frames,
    async next(timeoutMs = 2000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (frames.length === 0) {
        if (Date.now() > deadline) throw new Error('no frame received');
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return frames.shift() as string;
    },
  };
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve({ code: -1, reason: 'already closed' });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

export async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function managementClient(endpoint: string): ApiGatewayManagementApiClient {
  const client = new ApiGatewayManagementApiClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  running.push(async () => client.destroy());
  return client;
}
