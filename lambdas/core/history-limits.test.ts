import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { useLocalTable } from '../../test/support/local-table.ts';
import { GroupHistory } from './history.ts';

describe('read-ahead records in a local DynamoDB, which refuses items over 400 KB', () => {
  let client: DynamoDBDocumentClient;
  const tableName = 'history-limits-test';
  useLocalTable(tableName, (table) => {
    client = table.client;
  });

  it('stay under 400 KB when every unit of a lane of 30,000 members reads ahead to the same seq', async () => {
    const history = new GroupHistory({ client, tableName });
    // A burst to a group of 240,000 members: 8 lanes of 30,000, each lane 60 pages of 500 (API Gateway connection ids
    // are 16 characters), every unit of the lane reading ahead through seq 100 (nothing is published after it).
    const readers = (unit: number) =>
      Array.from({ length: 500 }, (_, i) => `C${String(unit * 500 + i).padStart(14, '0')}=`);
    for (let unit = 0; unit < 60; unit++) {
      await history.addAhead('acme', 'chat:all', 3, 100, readers(unit), `page-${unit}`);
    }
    const records = await history.ahead('acme', 'chat:all', 3, 1);
    const floors = new Map(records.flatMap((r) => [...r.done].map((id) => [id, r.through] as const)));
    expect(floors.size).toBe(30_000);
    expect(new Set(floors.values())).toEqual(new Set([100]));
    // Another lane's records are not this lane's.
    expect(await history.ahead('acme', 'chat:all', 4, 1)).toEqual([]);
  });
});
