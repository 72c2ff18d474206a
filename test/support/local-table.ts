/**
 * A test file's own local DynamoDB (dynalite in its child process, local/dynamo.ts) with one table from the manifest's
 * layout, started before the file's tests and closed after them. `ready` receives it once it is up.
 */

import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll } from '@jest/globals';
import { ensureTable, type LocalDynamo, startDynamo } from '../../local/dynamo.ts';

export interface LocalTable {
  readonly dynamo: LocalDynamo;
  readonly client: DynamoDBDocumentClient;
}

export function useLocalTable(tableName: string, ready: (table: LocalTable) => void): void {
  let dynamo: LocalDynamo | undefined;
  beforeAll(async () => {
    dynamo = await startDynamo();
    await ensureTable(dynamo.client, tableName);
    ready({ dynamo, client: DynamoDBDocumentClient.from(dynamo.client) });
  });
  afterAll(async () => {
    await dynamo?.close();
  });
}
