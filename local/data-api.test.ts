/** The Data API stand-in, through the real `@aws-sdk/client-rds-data` and `@aws-sdk/client-secrets-manager`. */

import {
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
} from '@aws-sdk/client-rds-data';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type LocalCluster, type LocalDataApi, startLocalDataApi } from './data-api.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let api: LocalDataApi;
let rds: RDSDataClient;
let secrets: SecretsManagerClient;
let cluster: LocalCluster;
let aliceSecret: string;
let bobSecret: string;

async function secretFor(user: string, password: string): Promise<string> {
  const out = await secrets.send(
    new CreateSecretCommand({ Name: `test/${user}`, SecretString: JSON.stringify({ username: user, password }) }),
  );
  return out.ARN as string;
}

const admin = (sql: string, database = 'postgres') =>
  rds.send(
    new ExecuteStatementCommand({ resourceArn: cluster.clusterArn, secretArn: cluster.adminSecretArn, database, sql }),
  );

beforeAll(async () => {
  api = await startLocalDataApi({ maxResponseBytes: 64 * 1024 });
  rds = new RDSDataClient({ endpoint: api.endpoint, region: 'us-east-1', credentials });
  secrets = new SecretsManagerClient({ endpoint: api.endpoint, region: 'us-east-1', credentials });
  cluster = await api.addCluster('test-cluster');
  for (const user of ['alice', 'bob']) {
    await admin(`CREATE ROLE "${user}" WITH LOGIN PASSWORD 'pw-${user}'`);
    await admin(`CREATE DATABASE "db_${user}" OWNER "${user}"`);
    await admin(`REVOKE CONNECT ON DATABASE "db_${user}" FROM PUBLIC`);
  }
  aliceSecret = await secretFor('alice', 'pw-alice');
  bobSecret = await secretFor('bob', 'pw-bob');
}, 60_000);

afterAll(async () => {
  await api?.close();
});

const alice = (sql: string, extra: Partial<ConstructorParameters<typeof ExecuteStatementCommand>[0]> = {}) =>
  rds.send(
    new ExecuteStatementCommand({
      resourceArn: cluster.clusterArn,
      secretArn: aliceSecret,
      database: 'db_alice',
      sql,
      ...extra,
    }),
  );

describe('the local Data API', () => {
  it('runs statements with named, type-hinted parameters and returns records with metadata', async () => {
    await alice(
      'CREATE TABLE item (id uuid PRIMARY KEY, name text NOT NULL, price numeric(8,2), at timestamptz, tags text[], n int)',
    );
    const insert = await alice('INSERT INTO item VALUES (:id, :name, :price, :at, ARRAY[:tag]::text[], :n)', {
      parameters: [
        { name: 'id', value: { stringValue: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' }, typeHint: 'UUID' },
        { name: 'name', value: { stringValue: "it's: ok" } },
        { name: 'price', value: { stringValue: '12.50' }, typeHint: 'DECIMAL' },
        { name: 'at', value: { stringValue: '2025-03-01 09:00:00' }, typeHint: 'TIMESTAMP' },
        { name: 'tag', value: { stringValue: 'red' } },
        { name: 'n', value: { longValue: 3 } },
      ],
    });
    expect(insert.numberOfRecordsUpdated).toBe(1);
    const out = await alice('SELECT id, name, price, at, tags, n FROM item', { includeResultMetadata: true });
    expect(out.records).toEqual([
      [
        { stringValue: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' },
        { stringValue: "it's: ok" },
        { stringValue: '12.50' },
        { stringValue: '2025-03-01 09:00:00' },
        { arrayValue: { stringValues: ['red'] } },
        { longValue: 3 },
      ],
    ]);
    expect(out.columnMetadata?.map((c) => c.typeName)).toEqual([
      'uuid',
      'text',
      'numeric',
      'timestamptz',
      '_text',
      'int4',
    ]);
    const json = await alice('SELECT name, n FROM item', { formatRecordsAs: 'JSON' });
    expect(JSON.parse(json.formattedRecords as string)).toEqual([{ name: "it's: ok", n: 3 }]);
  });

  it('sends an untyped string as varchar, so a uuid column needs the UUID hint as in AWS', async () => {
    await expect(
      alice('SELECT * FROM item WHERE id = :id', {
        parameters: [{ name: 'id', value: { stringValue: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' } }],
      }),
    ).rejects.toMatchObject({ name: 'DatabaseErrorException', message: expect.stringMatching(/SQLState: 42883/) });
  });

  it('refuses a secret whose role may not connect to the database, as PostgreSQL would', async () => {
    await expect(
      rds.send(
        new ExecuteStatementCommand({
          resourceArn: cluster.clusterArn,
          secretArn: bobSecret,
          database: 'db_alice',
          sql: 'SELECT 1',
        }),
      ),
    ).rejects.toMatchObject({
      name: 'BadRequestException',
      message: expect.stringContaining('permission denied for database "db_alice"'),
    });
  });

  it('refuses a role what PostgreSQL refuses it inside a database, and cluster changes to anyone but the master user', async () => {
    await admin('CREATE TABLE secret_stuff (x int)', 'db_alice');
    await expect(alice('SELECT * FROM secret_stuff')).rejects.toMatchObject({
      message: expect.stringMatching(/42501/),
    });
    await expect(alice('CREATE DATABASE sneaky')).rejects.toMatchObject({ message: expect.stringMatching(/42501/) });
  });

  it('commits and rolls back transactions, and queues other statements behind an open one', async () => {
    const begin = (secretArn: string) =>
      rds.send(new BeginTransactionCommand({ resourceArn: cluster.clusterArn, secretArn, database: 'db_alice' }));
    const { transactionId } = await begin(aliceSecret);
    await alice("INSERT INTO item (id, name) VALUES ('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'rolled back')", {
      transactionId,
    });
    await rds.send(
      new RollbackTransactionCommand({ resourceArn: cluster.clusterArn, secretArn: aliceSecret, transactionId }),
    );

    const second = await begin(aliceSecret);
    await alice("INSERT INTO item (id, name) VALUES ('c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'kept')", {
      transactionId: second.transactionId,
    });
    const outside = alice('SELECT name FROM item ORDER BY name');
    const commit = await rds.send(
      new CommitTransactionCommand({
        resourceArn: cluster.clusterArn,
        secretArn: aliceSecret,
        transactionId: second.transactionId,
      }),
    );
    expect(commit.transactionStatus).toBe('Transaction Committed');
    expect((await outside).records?.map((r) => r[0]?.stringValue)).toEqual(["it's: ok", 'kept']);
    await expect(alice('SELECT 1', { transactionId: second.transactionId })).rejects.toMatchObject({
      name: 'NotFoundException',
    });
  });

  it('runs a batch with one parameter set per row', async () => {
    const out = await rds.send(
      new BatchExecuteStatementCommand({
        resourceArn: cluster.clusterArn,
        secretArn: aliceSecret,
        database: 'db_alice',
        sql: 'INSERT INTO item (id, name) VALUES (gen_random_uuid(), :name)',
        parameterSets: [
          [{ name: 'name', value: { stringValue: 'b1' } }],
          [{ name: 'name', value: { stringValue: 'b2' } }],
        ],
      }),
    );
    expect(out.updateResults).toHaveLength(2);
  });

  it('answers with the Data API error when a result is over the response limit', async () => {
    await expect(alice("SELECT repeat('x', 1000) FROM generate_series(1, 100)")).rejects.toMatchObject({
      name: 'BadRequestException',
      message: 'Database returned more than the allowed response size limit',
    });
  });

  it('refuses a result row over 64 KB, as the Data API does, whatever the columns it is made of', async () => {
    const fits = await alice("SELECT repeat('x', 30000) AS a, repeat('y', 30000) AS b");
    expect(fits.records?.[0]?.[0]?.stringValue).toHaveLength(30_000);
    for (const sql of [
      "SELECT repeat('x', 40000) AS a, repeat('y', 30000) AS b",
      "SELECT to_jsonb(repeat('é', 33000))::text AS doc",
      `SELECT jsonb_build_object('text', repeat('x', 70000)) AS doc`,
    ]) {
      await expect(alice(sql)).rejects.toMatchObject({
        name: 'BadRequestException',
        message: 'Packet for query is too large',
      });
      await expect(alice(sql, { formatRecordsAs: 'JSON' })).rejects.toMatchObject({
        message: 'Packet for query is too large',
      });
    }
  });

  it('keeps secrets that Secrets Manager clients can read back', async () => {
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: 'test/alice' }));
    expect(JSON.parse(out.SecretString as string)).toEqual({ username: 'alice', password: 'pw-alice' });
    await expect(secrets.send(new GetSecretValueCommand({ SecretId: 'nope' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });
});
