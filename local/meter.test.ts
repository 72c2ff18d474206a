import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ensureTable, type LocalDynamo, localCredentials, RUNTIME_USER_AGENT, startDynamo } from './dynamo.ts';
import { itemKindOf, type Meter } from './meter.ts';

let dynamo: LocalDynamo;
let meter: Meter;
let client: DynamoDBClient;

beforeAll(async () => {
  dynamo = await startDynamo({ meter: { skipUserAgent: RUNTIME_USER_AGENT } });
  await ensureTable(dynamo.client, 'metered');
  if (dynamo.meter === undefined) throw new Error('startDynamo({ meter }) returned no meter');
  meter = dynamo.meter;
  client = new DynamoDBClient({ endpoint: meter.endpoint, region: 'us-east-1', credentials: localCredentials });
});

afterAll(async () => {
  client.destroy();
  await meter.close();
  await dynamo.close();
});

describe('the DynamoDB meter', () => {
  it('counts requests by action and the capacity units DynamoDB reports, without changing answers', async () => {
    await meter.settled();
    meter.reset();
    await client.send(new PutItemCommand({ TableName: 'metered', Item: { pk: { S: 'a' }, sk: { S: '1' } } }));
    await client.send(new PutItemCommand({ TableName: 'metered', Item: { pk: { S: 'a' }, sk: { S: '2' } } }));
    const got = await client.send(
      new GetItemCommand({ TableName: 'metered', Key: { pk: { S: 'a' }, sk: { S: '1' } } }),
    );
    const query = await client.send(
      new QueryCommand({
        TableName: 'metered',
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': { S: 'a' } },
      }),
    );
    expect(got.Item).toEqual({ pk: { S: 'a' }, sk: { S: '1' } });
    expect(got.ConsumedCapacity).toBeUndefined();
    expect(query.Count).toBe(2);
    await meter.settled();
    const counts = meter.counts();
    expect(counts.requests).toEqual({ PutItem: 2, GetItem: 1, Query: 1 });
    expect(counts.writeUnits).toBe(2);
    expect(counts.readUnits).toBe(1);
    expect(counts.unitsByKind).toEqual({ 'PutItem *': 2, 'GetItem *': 0.5, 'Query *': 0.5 });
  });

  it('attributes capacity to item kinds: key markers stay, tenant, group and connection values become *', async () => {
    await meter.settled();
    meter.reset();
    const pk = 'T#acme#G#chat:room#H';
    await client.send(new PutItemCommand({ TableName: 'metered', Item: { pk: { S: pk }, sk: { S: '1' } } }));
    await client.send(
      new QueryCommand({
        TableName: 'metered',
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': { S: pk } },
      }),
    );
    await meter.settled();
    expect(meter.counts().unitsByKind).toEqual({ 'PutItem T#*#G#*#H': 1, 'Query T#*#G#*#H': 0.5 });
    expect(itemKindOf('RL#C#abc=')).toBe('RL#C#*');
  });

  it('leaves out the requests of the runtime’s own client (the TTL sweeper stands in for free DynamoDB TTL)', async () => {
    await meter.settled();
    meter.reset();
    await dynamo.client.send(new PutItemCommand({ TableName: 'metered', Item: { pk: { S: 'b' }, sk: { S: '1' } } }));
    await meter.settled();
    expect(meter.counts().requests).toEqual({});
    expect(meter.counts().writeUnits).toBe(0);
    await client.send(new PutItemCommand({ TableName: 'metered', Item: { pk: { S: 'b' }, sk: { S: '2' } } }));
    await meter.settled();
    expect(meter.counts().requests).toEqual({ PutItem: 1 });
    expect(meter.counts().writeUnits).toBe(1);
  });

  it('passes consumed capacity through when the client asked for it', async () => {
    const got = await client.send(
      new GetItemCommand({
        TableName: 'metered',
        Key: { pk: { S: 'a' }, sk: { S: '1' } },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    expect(got.ConsumedCapacity?.CapacityUnits).toBe(0.5);
  });
});
