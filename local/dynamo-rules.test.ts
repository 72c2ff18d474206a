import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBServiceException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ensureTable, type LocalDynamo, startDynamo } from './dynamo.ts';

const TABLE = 'aws-rules';
let dynamo: LocalDynamo;
const errorsLogged: string[] = [];

beforeAll(async () => {
  dynamo = await startDynamo({ log: (level, message) => level === 'error' && errorsLogged.push(message) });
  await ensureTable(dynamo.client, TABLE);
});
afterAll(async () => {
  await dynamo.close();
});

/** A string leaf inside `wraps` maps: `deepMap(1)` is `{ M: { n: { S: 'leaf' } } }`. */
function deepMap(wraps: number): AttributeValue {
  let value: AttributeValue = { S: 'leaf' };
  for (let i = 0; i < wraps; i++) value = { M: { n: value } };
  return value;
}

const key = (pk: string) => ({ pk: { S: pk }, sk: { S: '1' } });

/** The error a request fails with (the test fails if it succeeds). */
async function failureOf(request: Promise<unknown>): Promise<DynamoDBServiceException> {
  try {
    await request;
  } catch (err) {
    if (err instanceof DynamoDBServiceException) return err;
    throw err;
  }
  throw new Error('the request succeeded');
}

/** A raw DynamoDB JSON request, as the SDK sends it (dynalite checks only that a signature is present). */
async function rawRequest(action: string, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(dynamo.endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${action}`,
      'x-amz-date': '20260101T000000Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const NESTING = /^(1 validation error detected: )?Nesting Levels have exceeded supported limits/;

describe('nesting: at most 32 levels, the top-level attribute being level 1 (AWS limits-attributes)', () => {
  it('stores an attribute nested 31 levels deep, the deepest AWS accepts', async () => {
    await dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('n31'), data: deepMap(31) } }));
    const got = await dynamo.client.send(new GetItemCommand({ TableName: TABLE, Key: key('n31') }));
    expect(got.Item?.data).toEqual(deepMap(31));
  });

  it('refuses a PutItem nested 32 levels deep with AWS’s ValidationException', async () => {
    const err = await failureOf(
      dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('n32'), data: deepMap(32) } })),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.$metadata.httpStatusCode).toBe(400);
    expect(err.message).toBe(
      '1 validation error detected: Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit',
    );
  });

  it('refuses too deep values in lists, ExpressionAttributeValues and batch writes alike', async () => {
    let list: AttributeValue = { S: 'leaf' };
    for (let i = 0; i < 32; i++) list = { L: [list] };
    const put = dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('l32'), data: list } }));
    const update = dynamo.client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: key('u32'),
        UpdateExpression: 'SET deep = :deep',
        ExpressionAttributeValues: { ':deep': deepMap(32) },
      }),
    );
    const batch = dynamo.client.send(
      new BatchWriteItemCommand({
        RequestItems: { [TABLE]: [{ PutRequest: { Item: { ...key('b32'), data: deepMap(32) } } }] },
      }),
    );
    // Handled together: awaiting them one by one left a later one's refusal unhandled while an earlier one was
    // still in flight, which failed the test whenever the later answer came first.
    const failures = await Promise.all([put, update, batch].map(failureOf));
    for (const failure of failures) expect(failure.message).toMatch(NESTING);
  });

  it('refuses a map nested 5,000 levels deep (which overflowed dynalite’s stack) and goes on serving', async () => {
    // Sent raw: the SDK's own logging filter overflows its stack on such an input before sending it.
    const deep = `${'{"M":{"n":'.repeat(5000)}{"S":"leaf"}${'}}'.repeat(5000)}`;
    const { status, body } = await rawRequest(
      'PutItem',
      `{"TableName":"${TABLE}","Item":{"pk":{"S":"n5000"},"sk":{"S":"1"},"data":${deep}}}`,
    );
    expect(status).toBe(400);
    expect(body).toEqual({
      __type: 'com.amazon.coral.validate#ValidationException',
      message: expect.stringMatching(NESTING),
    });
    const got = await dynamo.client.send(new GetItemCommand({ TableName: TABLE, Key: key('n31') }));
    expect(got.Item?.pk).toEqual({ S: 'n31' });
  });
});

describe('empty attribute names are refused, as AWS does', () => {
  it('refuses an item with an empty top-level attribute name', async () => {
    const err = await failureOf(
      dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('e1'), '': { S: 'x' } } })),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('1 validation error detected: Empty attribute name');
  });

  it('refuses an empty map key at any depth', async () => {
    const err = await failureOf(
      dynamo.client.send(
        new PutItemCommand({ TableName: TABLE, Item: { ...key('e2'), m: { M: { a: { M: { '': { S: 'x' } } } } } } }),
      ),
    );
    expect(err.message).toBe('1 validation error detected: Empty attribute name');
  });

  it('refuses an empty ExpressionAttributeNames value, naming its key', async () => {
    const err = await failureOf(
      dynamo.client.send(
        new GetItemCommand({
          TableName: TABLE,
          Key: key('e3'),
          ProjectionExpression: '#a',
          ExpressionAttributeNames: { '#a': '' },
        }),
      ),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('ExpressionAttributeNames contains invalid value: Empty attribute name for key #a');
  });
});

describe('what dynalite already refuses as AWS does (so the rules layer does not repeat it)', () => {
  it('duplicate keys in one BatchGetItem', async () => {
    const err = await failureOf(
      dynamo.client.send(new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: [key('d'), key('d')] } } })),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('Provided list of item keys contains duplicates');
  });

  it('duplicate keys in one BatchWriteItem', async () => {
    const err = await failureOf(
      dynamo.client.send(
        new BatchWriteItemCommand({
          RequestItems: { [TABLE]: [{ PutRequest: { Item: key('d') } }, { DeleteRequest: { Key: key('d') } }] },
        }),
      ),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('Provided list of item keys contains duplicates');
  });

  it('items over 400 KB', async () => {
    const err = await failureOf(
      dynamo.client.send(
        new PutItemCommand({ TableName: TABLE, Item: { ...key('big'), data: { S: 'x'.repeat(400 * 1024) } } }),
      ),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('Item size has exceeded the maximum allowed size');
  });

  it('numbers over 38 significant digits', async () => {
    const err = await failureOf(
      dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('num'), n: { N: '1'.repeat(39) } } })),
    );
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('Attempting to store more than 38 significant digits in a Number');
  });
});

describe('ReturnValuesOnConditionCheckFailure: ALL_OLD returns the item as it was, marshalled', () => {
  const counter = { ...key('counter'), count: { N: '3' } };
  const notThree = {
    ConditionExpression: '#c <> :three',
    ExpressionAttributeNames: { '#c': 'count' },
    ExpressionAttributeValues: { ':three': { N: '3' } },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };

  beforeAll(async () => {
    await dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: counter }));
  });

  it('with PutItem', async () => {
    const err = await failureOf(
      dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('counter') }, ...notThree })),
    );
    expect(err).toBeInstanceOf(ConditionalCheckFailedException);
    expect(err.message).toBe('The conditional request failed');
    expect((err as ConditionalCheckFailedException).Item).toEqual(counter);
  });

  it('with UpdateItem', async () => {
    const err = await failureOf(
      dynamo.client.send(
        new UpdateItemCommand({
          TableName: TABLE,
          Key: key('counter'),
          UpdateExpression: 'SET #c = #c + :three',
          ...notThree,
        }),
      ),
    );
    expect((err as ConditionalCheckFailedException).Item).toEqual(counter);
  });

  it('with DeleteItem', async () => {
    const err = await failureOf(
      dynamo.client.send(new DeleteItemCommand({ TableName: TABLE, Key: key('counter'), ...notThree })),
    );
    expect((err as ConditionalCheckFailedException).Item).toEqual(counter);
  });

  it('returns no Item without ALL_OLD, or when there was no item', async () => {
    const without = await failureOf(
      dynamo.client.send(
        new PutItemCommand({ TableName: TABLE, Item: key('counter'), ConditionExpression: 'attribute_not_exists(pk)' }),
      ),
    );
    expect((without as ConditionalCheckFailedException).Item).toBeUndefined();
    const missing = await failureOf(
      dynamo.client.send(
        new DeleteItemCommand({
          TableName: TABLE,
          Key: key('nothing-here'),
          ConditionExpression: 'attribute_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    expect(missing).toBeInstanceOf(ConditionalCheckFailedException);
    expect((missing as ConditionalCheckFailedException).Item).toBeUndefined();
  });

  it('refuses a value outside the parameter’s enum, as AWS does', async () => {
    const { status, body } = await rawRequest(
      'PutItem',
      JSON.stringify({ TableName: TABLE, Item: key('x'), ReturnValuesOnConditionCheckFailure: 'SOME' }),
    );
    expect(status).toBe(400);
    expect(body.message).toMatch(/returnValuesOnConditionCheckFailure' failed to satisfy constraint/);
  });
});

describe('a request that breaks dynalite', () => {
  it('gets DynamoDB’s 500 InternalServerError, and the next requests are served', async () => {
    // A null inside a list makes dynalite's validation throw a TypeError (the SDK never sends one; a raw client can).
    const broken = await rawRequest(
      'PutItem',
      JSON.stringify({ TableName: TABLE, Item: { ...key('broken'), list: { L: [null] } } }),
    );
    expect(broken.status).toBe(500);
    expect(broken.body).toEqual({
      __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
      message: 'Internal server error',
    });
    const again = await rawRequest('PutItem', 'null');
    expect(again.status).toBe(500);
    expect(errorsLogged).toEqual([
      expect.stringContaining('dynalite threw while handling a request'),
      expect.stringContaining('dynalite threw while handling a request'),
    ]);
    await dynamo.client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('after'), ok: { BOOL: true } } }));
    const got = await dynamo.client.send(new GetItemCommand({ TableName: TABLE, Key: key('after') }));
    expect(got.Item?.ok).toEqual({ BOOL: true });
  });
});
