/**
 * The SDK clients of lambdas/ (lambdas/shared/aws.ts) against a bare HTTP server on this machine: a cached middleware
 * stack is resolved once and still sends each overlapping call's own input.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { clientConfig, createDocumentClient } from '../../lambdas/shared/aws.ts';

/** A bare HTTP server that records each request's path and body and answers 200 after a random short delay. */
const received: { path: string; body: string }[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    received.push({ path: decodeURIComponent(req.url ?? ''), body });
    // Answers out of order, so calls overlap inside the client.
    setTimeout(
      () => {
        res.setHeader('content-type', 'application/x-amz-json-1.0');
        if (req.headers['x-amz-target'] === undefined) return void res.end();
        // SQS answers the body's MD5, which the client checks.
        const { MessageBody } = JSON.parse(body) as { MessageBody: string };
        const md5 = createHash('md5').update(MessageBody).digest('hex');
        res.end(JSON.stringify({ MessageId: 'm', MD5OfMessageBody: md5 }));
      },
      Math.floor(Math.random() * 5),
    );
  });
});
let endpoint = '';
const local = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('the clients of lambdas/', () => {
  it('resolve their middleware once per command class', () => {
    expect(clientConfig.cacheMiddleware).toBe(true);
  });

  it("resolve a command class's middleware once, where a default client resolves it on every call", async () => {
    const resolving = jest.spyOn(PostToConnectionCommand.prototype, 'resolveMiddleware');
    const callsOf = async (config: object) => {
      resolving.mockClear();
      const api = new ApiGatewayManagementApiClient({ ...config, ...local, endpoint, maxAttempts: 1 });
      for (const id of ['a=', 'b=', 'c=']) await api.send(new PostToConnectionCommand({ ConnectionId: id, Data: id }));
      api.destroy();
      return resolving.mock.calls.length;
    };
    expect(await callsOf(clientConfig)).toBe(1);
    expect(await callsOf({})).toBe(3);
    resolving.mockRestore();
  });

  it('send each of many overlapping calls with its own input when the middleware is cached', async () => {
    received.length = 0;
    const api = new ApiGatewayManagementApiClient({ ...clientConfig, ...local, endpoint, maxAttempts: 1 });
    const ids = Array.from({ length: 64 }, (_, i) => `conn-${i}=`);
    await Promise.all(
      ids.map((id) => api.send(new PostToConnectionCommand({ ConnectionId: id, Data: `frame for ${id}` }))),
    );
    expect(received).toHaveLength(ids.length);
    for (const { path, body } of received) expect(path).toBe(`/@connections/${body.slice('frame for '.length)}`);
    expect(new Set(received.map(({ path }) => path)).size).toBe(ids.length);
    api.destroy();
  });

  it('keep each SQS call to its own queue and body when the middleware is cached', async () => {
    received.length = 0;
    const sqs = new SQSClient({ ...clientConfig, ...local, endpoint, maxAttempts: 1 });
    await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        sqs.send(new SendMessageCommand({ QueueUrl: `${endpoint}/000000000000/q${i}`, MessageBody: `body ${i}` })),
      ),
    );
    const sent = received.map(({ body }) => JSON.parse(body) as { QueueUrl: string; MessageBody: string });
    expect(sent).toHaveLength(32);
    for (const { QueueUrl, MessageBody } of sent) expect(QueueUrl.endsWith(`/q${MessageBody.slice(5)}`)).toBe(true);
    sqs.destroy();
  });

  it('create the DynamoDB document client, which refuses a cached middleware stack', () => {
    expect(() => createDocumentClient()).not.toThrow();
  });
});
