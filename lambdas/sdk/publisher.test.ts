import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ensureQueues, type LocalSqs, type QueueInfo, startSqs } from '../../local/sqs.ts';
import { Publisher } from './publisher.ts';

let sqs: LocalSqs;
let queue: QueueInfo;

beforeAll(async () => {
  sqs = await startSqs();
  const spec = { visibilityTimeoutSeconds: 30, maxReceiveCount: 3, retentionSeconds: 3600, dlqRetentionSeconds: 3600 };
  ({ delivery: queue } = await ensureQueues(sqs.client, { delivery: { ...spec, fifo: true } }));
});
afterAll(async () => {
  await sqs.close();
});

describe('the server SDK publisher', () => {
  it("enqueues a delivery message in the group's FIFO message group, deduplicated by id", async () => {
    const publisher = new Publisher({ queueUrl: queue.url, client: sqs.client, newId: () => 'id-1', now: () => 42 });
    expect(await publisher.publish({ tenantId: 'acme', group: 'chat:general', data: { text: 'hi' } })).toEqual({
      id: 'id-1',
    });
    await publisher.publish({ tenantId: 'acme', group: 'chat:general', data: { text: 'hi' } });
    const out = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'] }),
    );
    expect(out.Messages).toHaveLength(1);
    const [message] = out.Messages ?? [];
    expect(message?.Attributes?.MessageGroupId).toBe('acme#chat:general');
    expect(JSON.parse(message?.Body ?? '')).toEqual({
      v: 1,
      id: 'id-1',
      tenantId: 'acme',
      group: 'chat:general',
      data: { text: 'hi' },
      from: 'server',
      ts: 42,
    });
  });

  it('refuses a bad group, a bad tenant and data over 16 KB before sending', async () => {
    const publisher = new Publisher({ queueUrl: queue.url, client: sqs.client });
    await expect(publisher.publish({ tenantId: 'acme', group: 'no spaces', data: 1 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(publisher.publish({ tenantId: 'a#b', group: 'g', data: 1 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(
      publisher.publish({ tenantId: 'acme', group: 'g', data: 'x'.repeat(16 * 1024 + 1) }),
    ).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('refuses a message whose from and audience leave no room to forward or replicate it, before sending', async () => {
    const publisher = new Publisher({ queueUrl: queue.url, client: sqs.client });
    // Within SQS's 256 KiB, so the queue would take it, but a replica wraps it in more and could not be sent.
    const audience = { roles: ['member'], claim: { name: 'team', anyOf: ['t'.repeat(255 * 1024)] } };
    await expect(publisher.publish({ tenantId: 'acme', group: 'g', data: 1, audience })).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
    await expect(
      publisher.publish({ tenantId: 'acme', group: 'g', data: 1, from: 'f'.repeat(255 * 1024) }),
    ).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
  });

  it("refuses a system group before sending: a table's live feed comes from the change feed only", async () => {
    const publisher = new Publisher({ queueUrl: queue.url, client: sqs.client });
    await expect(
      publisher.publish({ tenantId: 'acme', group: 'entity:task', data: { op: 'update', row: { title: 'forged' } } }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('refuses a queue URL that is not the FIFO delivery queue', () => {
    expect(() => new Publisher({ queueUrl: 'http://q/123/delivery', client: sqs.client })).toThrow(/\.fifo/);
  });
});
