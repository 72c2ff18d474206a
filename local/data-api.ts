/**
 * Local stand-in for the RDS Data API (and the part of Secrets Manager it needs), so `@aws-sdk/client-rds-data`
 * and `@aws-sdk/client-secrets-manager` run unchanged against it (`AWS_ENDPOINT_URL_RDS_DATA`,
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER`, both this server). Hand-written: no library emulates the Data API.
 *
 * - Data API (REST-JSON): POST /Execute, /BatchExecute, /BeginTransaction, /CommitTransaction,
 *   /RollbackTransaction (local/data-api-statements.ts); named parameters with type hints; `records` with
 *   `includeResultMetadata`, or `formatRecordsAs: 'JSON'` (local/data-api-values.ts); errors as the Data API shapes
 *   them (`x-amzn-errortype` + `{message}`); the 1 MiB response limit (BadRequestException "Database returned more
 *   than the allowed response size limit"), checked here; a result row over 64 KB (BadRequestException "Packet for
 *   query is too large"), checked as the result is shaped.
 * - Secrets Manager (JSON 1.1): local/secrets-manager.ts.
 * - Clusters by ARN, each database its own PGlite, roles cluster-wide: local/data-api-clusters.ts. A secret whose
 *   user may not connect to the requested database is refused as PostgreSQL refuses the connection
 *   (BadRequestException "permission denied for database").
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aws } from '../lambdas/core/limits.ts';
import { type LocalCluster, LocalClusters } from './data-api-clusters.ts';
import { LocalStatements } from './data-api-statements.ts';
import { badRequest, DataApiException } from './data-api-values.ts';
import { listen, readAll } from './http-util.ts';
import { LocalSecrets } from './secrets-manager.ts';

export type { LocalCluster } from './data-api-clusters.ts';
export { bindNamedParameters } from './data-api-values.ts';

export interface LocalDataApiOptions {
  /** Where databases live; omitted = a temporary directory removed on close. */
  readonly dataDir?: string;
  /**
   * Without `dataDir`, keep the databases in memory instead of the temporary directory: a test runtime starts ~2.5 s
   * sooner here (unpacking the template to disk costs ~0.4 s of syscalls per database, four per start), but the
   * process then holds every database's files in its heap. Only tests ask for it: the benchmark and `npm start` keep
   * what they measured and ran before. (Two benchmark runs with it gave the busy group a p99 of 123–128 ms, but runs
   * without it later gave 86–130 ms on the same machine: no effect was shown either way.)
   * @default false
   */
  readonly memoryDatabases?: boolean;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  /** Idle time after which an open transaction is rolled back. @default 3 minutes (the Data API's) */
  readonly transactionIdleMs?: number;
  /** @default 1 MiB (the Data API's) */
  readonly maxResponseBytes?: number;
  /** The dumped empty database new databases start from. @default `<os tmpdir>/tenantcast-pglite-template-<v>.tar.gz` */
  readonly templateFile?: string;
}

export interface LocalDataApi {
  /** `http://127.0.0.1:<port>`: both the Data API and Secrets Manager endpoint. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** Creates the cluster (and its master secret) if it does not exist yet. */
  addCluster(id: string): Promise<LocalCluster>;
  clusters(): LocalCluster[];
  close(): Promise<void>;
}

export async function startLocalDataApi(options: LocalDataApiOptions = {}): Promise<LocalDataApi> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'tenantcast-data-')));
  await mkdir(dataDir, { recursive: true });
  const idleMs = options.transactionIdleMs ?? 3 * 60_000;
  const maxResponseBytes = options.maxResponseBytes ?? aws.dataApiResponseBytes;

  const secrets = await LocalSecrets.open(dataDir, region, accountId);
  const clusters = new LocalClusters(
    {
      dataDir,
      inMemory: ownDir && options.memoryDatabases === true,
      region,
      accountId,
      templateFile: options.templateFile,
    },
    secrets,
  );
  const statements = new LocalStatements(clusters, idleMs);

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const raw = (await readAll(req)).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const jsonProtocol = target.startsWith('secretsmanager.');
    try {
      const body = (raw === '' ? {} : JSON.parse(raw)) as Record<string, unknown>;
      let out: Record<string, unknown>;
      if (jsonProtocol) out = await secrets.call(target.slice('secretsmanager.'.length), body);
      else if (req.method !== 'POST') throw badRequest(`unsupported method ${req.method}`);
      else if (req.url === '/Execute') out = await statements.execute(body, false);
      else if (req.url === '/BatchExecute') out = await statements.execute(body, true);
      else if (req.url === '/BeginTransaction') out = await statements.begin(body);
      else if (req.url === '/CommitTransaction') out = await statements.finish(body, 'COMMIT');
      else if (req.url === '/RollbackTransaction') out = await statements.finish(body, 'ROLLBACK');
      else throw new DataApiException('UnknownOperationException', 404, `unknown operation ${req.url}`);
      const payload = JSON.stringify(out);
      if (!jsonProtocol && Buffer.byteLength(payload) > maxResponseBytes) {
        throw badRequest('Database returned more than the allowed response size limit');
      }
      res.writeHead(200, { 'content-type': jsonProtocol ? 'application/x-amz-json-1.1' : 'application/json' });
      res.end(payload);
    } catch (err) {
      const e =
        err instanceof DataApiException ? err : new DataApiException('InternalServerErrorException', 500, String(err));
      const headers = { 'content-type': 'application/json', 'x-amzn-errortype': e.type };
      res.writeHead(e.status, headers);
      res.end(JSON.stringify(jsonProtocol ? { __type: e.type, message: e.message } : { message: e.message }));
    }
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  const { port } = await listen(server, { port: options.port, host: options.host, name: 'data-api' });

  // Clusters found on disk come back with their catalogs.
  const fromDisk = existsSync(dataDir)
    ? (await readdir(dataDir, { withFileTypes: true }))
        .filter((d) => d.isDirectory() && existsSync(join(dataDir, d.name, 'cluster.json')))
        .map((d) => d.name)
    : [];
  for (const id of fromDisk) await clusters.add(id);

  return {
    endpoint: `http://${options.host ?? '127.0.0.1'}:${port}`,
    dataDir,
    addCluster: (id) => clusters.add(id),
    clusters: () => clusters.list(),
    async close() {
      statements.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await clusters.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
