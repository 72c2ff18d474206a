/**
 * Every page of a DynamoDB Query, following LastEvaluatedKey. Written by hand: lib-dynamodb's `paginateQuery`
 * insists on a real DynamoDBDocumentClient instance, while the core's ports also take fakes (test/support/fake-table.ts).
 */
import {
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';

export async function* queryPages(
  client: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
): AsyncGenerator<QueryCommandOutput> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    yield out;
    startKey = out.LastEvaluatedKey;
  } while (startKey !== undefined);
}
