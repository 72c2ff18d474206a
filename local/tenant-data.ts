/**
 * Wiring for tools that run outside a function against the local runtime's data plane (the seeding, the tenants
 * CLI): SDK clients pointed at the Data API / Secrets Manager stand-in, and the endpoints file through which
 * `npm run tenants` finds a running `npm start`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type DataApi, RdsDataApi } from '../lambdas/core/data-api.ts';
import { type ClusterRef, type SecretStore, SecretsManagerStore } from '../lambdas/core/onboarding.ts';

const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** What `npm start` writes for the CLI: where DynamoDB, the Data API and Secrets Manager are, and the clusters. */
export interface LocalEndpoints {
  readonly region: string;
  readonly tableName: string;
  readonly dynamodb: string;
  readonly rdsData: string;
  readonly secretsManager: string;
  readonly clusters: readonly ClusterRef[];
  /** The `@connections` Management API (the CLI's `disconnect`). */
  readonly connections?: string;
  /** The SQS stand-in (the admin CLI's `publish` and `dlq`, docs/cli.md). */
  readonly sqs?: string;
  /** The manifest's queues by logical name, with their dead-letter queues. */
  readonly queues?: Readonly<Record<string, { readonly url: string; readonly dlqUrl: string }>>;
}

export function localDataPorts(endpoint: string, region: string): { dataApi: DataApi; secrets: SecretStore } {
  return {
    dataApi: new RdsDataApi(new RDSDataClient({ endpoint, region, credentials: localCredentials })),
    secrets: new SecretsManagerStore(new SecretsManagerClient({ endpoint, region, credentials: localCredentials })),
  };
}

export async function writeEndpointsFile(file: string, endpoints: LocalEndpoints): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(endpoints, null, 2)}\n`);
}

export async function readEndpointsFile(file: string): Promise<LocalEndpoints> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`no local runtime endpoints at ${file}: start it with \`npm start\` (or pass --endpoints <file>)`);
  }
  return JSON.parse(text) as LocalEndpoints;
}
