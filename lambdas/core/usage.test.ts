import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { BadRequestError } from './errors.ts';
import { ack, errorFrame, pong } from './protocol.ts';
import { meteredOnArrival, parseUsageRange, UsageMeter, UsageStore } from './usage.ts';

const now = Date.parse('2025-03-15T12:00:00Z');

describe('a usage range', () => {
  it('defaults to the 30 days up to today', () => {
    expect(parseUsageRange({}, now)).toEqual({ from: '2025-02-14', to: '2025-03-15' });
  });

  it('takes from and to as given, inclusive', () => {
    expect(parseUsageRange({ from: '2025-01-01', to: '2025-01-31' }, now)).toEqual({
      from: '2025-01-01',
      to: '2025-01-31',
    });
  });

  it.each([
    [{ from: '2025-13-01' }, 'from'],
    [{ to: '15/03/2025' }, 'to'],
    [{ from: '2025-02-30' }, 'from'],
    [{ from: '2025-03-10', to: '2025-03-01' }, "'from' must not be after 'to'"],
    [{ from: '2020-01-01', to: '2025-01-01' }, 'at most 366 days'],
  ])('refuses %j as BAD_REQUEST naming the problem', (query, message) => {
    expect(() => parseUsageRange(query, now)).toThrow(BadRequestError);
    expect(() => parseUsageRange(query, now)).toThrow(message);
  });
});

describe('the frames the message handler meters on arrival', () => {
  it('are every frame but an accepted publish, which the broadcaster meters as it sequences it', () => {
    expect(meteredOnArrival(ack('r1', 'message-id'))).toBe(false);
    expect(meteredOnArrival(ack('r2'))).toBe(true);
    expect(meteredOnArrival(ack('r3', undefined, 42))).toBe(true);
    expect(meteredOnArrival(pong('r4'))).toBe(true);
    expect(meteredOnArrival(errorFrame('r5', 'RATE_LIMITED', 'too many publishes in this tenant'))).toBe(true);
  });
});

describe('the usage meter', () => {
  let client: DynamoDBDocumentClient;
  const tableName = 'usage-test';

  useLocalTable(tableName, (table) => {
    client = table.client;
  });

  /** The client, counting the writes sent through it. */
  function counting(): { client: DynamoDBDocumentClient; writes: () => number } {
    let writes = 0;
    const wrapped = {
      send: (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'UpdateCommand') writes++;
        return client.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    return { client: wrapped, writes: () => writes };
  }

  it('writes what one invocation counted with one UpdateItem per tenant and day, whatever the counters', async () => {
    const now = Date.parse('2025-06-01T10:00:00Z');
    const counted = counting();
    const meter = new UsageMeter({ client: counted.client, tableName, now: () => now });
    // A broadcaster run: the messages it sequenced and the deliveries it made, in one write per tenant.
    meter.add('run-a', 'messagesIn', 10);
    meter.add('run-a', 'deliveriesOut', 500);
    meter.add('run-b', 'messagesIn', 3);
    meter.add('run-b', 'messagesIn', 0);
    await meter.flush();
    expect(counted.writes()).toBe(2);
    // Nothing counted: nothing written.
    await meter.flush();
    expect(counted.writes()).toBe(2);
  });

  it("writes the other tenants' counts when one tenant's write fails, and keeps that one's for the next flush", async () => {
    const now = Date.parse('2025-06-02T10:00:00Z');
    let throttled = true;
    const hot = {
      send: (command: { input?: { Key?: { pk?: string } } }) =>
        throttled && command.input?.Key?.pk === 'T#hot#USAGE'
          ? Promise.reject(Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' }))
          : client.send(command as never),
    } as unknown as DynamoDBDocumentClient;
    const meter = new UsageMeter({ client: hot, tableName, now: () => now });
    meter.add('hot', 'messagesIn', 50);
    meter.add('quiet', 'messagesIn', 3);
    meter.add('quiet', 'deliveriesOut', 7);
    await expect(meter.flush()).rejects.toThrow('usage of 1 of 2 tenant-days not written (kept for the next flush)');
    const store = new UsageStore({ client, tableName });
    expect(await store.read('quiet', '2025-06-02', '2025-06-02')).toEqual([
      expect.objectContaining({ messagesIn: 3, deliveriesOut: 7 }),
    ]);
    throttled = false;
    meter.add('hot', 'messagesIn', 1);
    await meter.flush();
    expect(await store.read('hot', '2025-06-02', '2025-06-02')).toEqual([expect.objectContaining({ messagesIn: 51 })]);
    expect(await store.read('quiet', '2025-06-02', '2025-06-02')).toEqual([
      expect.objectContaining({ messagesIn: 3, deliveriesOut: 7 }),
    ]);
  });

  it('keeps exact totals over many flushes and days', async () => {
    let now = Date.parse('2025-06-02T23:59:59Z');
    const meter = new UsageMeter({ client, tableName, now: () => now });
    for (let run = 0; run < 25; run++) {
      meter.add('totals', 'messagesIn', run);
      meter.add('totals', 'deliveriesOut', 50 * run);
      if (run === 12) now += 1000;
      await meter.flush();
    }
    const days = await new UsageStore({ client, tableName }).read('totals', '2025-06-01', '2025-06-04');
    expect(days.map((d) => [d.day, d.messagesIn, d.deliveriesOut])).toEqual([
      ['2025-06-02', 78, 3900],
      ['2025-06-03', 222, 11_100],
    ]);
  });
});
