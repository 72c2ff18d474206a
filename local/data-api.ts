/**
 * Local stand-in for the RDS Data API (and the part of Secrets Manager it needs), so `@aws-sdk/client-rds-data`
 * and `@aws-sdk/client-secrets-manager` run unchanged against it (`AWS_ENDPOINT_URL_RDS_DATA`,
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER`, both this server). Hand-written: no library emulates the Data API.
 *
 * - Data API (REST-JSON): POST /Execute, /BatchExecute, /BeginTransaction, /CommitTransaction,
 *   /RollbackTransaction; named parameters with type hints; `records` with `includeResultMetadata`, or
 *   `formatRecordsAs: 'JSON'`; errors as the Data API shapes them (`x-amzn-errortype` + `{message}`); the 1 MiB
 *   response limit (BadRequestException "Database returned more than the allowed response size limit").
 * - Secrets Manager (JSON 1.1): CreateSecret, GetSecretValue, DescribeSecret, PutSecretValue, DeleteSecret.
 * - Clusters by ARN; each database is its own PGlite under `<dataDir>/<cluster>/<database>` (in memory, for tests,
 *   with `memoryDatabases` and no `dataDir`), opened on first use and created from a dumped empty template (much
 *   faster than a fresh PGlite). Roles are cluster-wide:
 *   `CREATE ROLE|USER ... PASSWORD`, `CREATE DATABASE ... [OWNER r]`, `DROP DATABASE`, and
 *   `GRANT|REVOKE CONNECT ON DATABASE` are handled by the stand-in (the cluster catalog); everything else runs in
 *   the database's PGlite as the secret's role (`SET ROLE`), so grants and ownership inside a database are
 *   PostgreSQL's own. A secret whose user may not connect to the requested database is refused as PostgreSQL
 *   refuses the connection (BadRequestException "permission denied for database").
 * - Transactions: one at a time per database. BeginTransaction takes the database's lock until commit, rollback
 *   or 3 minutes without a statement (rolled back, like the Data API's idle timeout); statements outside the
 *   transaction wait behind it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite, type Results } from '@electric-sql/pglite';
import { listen, readAll } from './http-util.ts';

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

export interface LocalCluster {
  readonly id: string;
  readonly clusterArn: string;
  /** The master user's secret: can create databases and roles. */
  readonly adminSecretArn: string;
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

interface Secret {
  arn: string;
  name: string;
  value: string;
  description?: string;
  createdDate: number;
}

interface ClusterCatalog {
  roles: Record<string, { password: string; superuser: boolean }>;
  /** Database → who may connect: `public`, or role names. */
  databases: Record<string, { connect: 'public' | string[]; owner: string }>;
}

interface OpenTransaction {
  readonly id: string;
  readonly clusterArn: string;
  readonly database: string;
  readonly role: string;
  readonly release: () => void;
  timer: NodeJS.Timeout;
}

class DataApiException extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const badRequest = (message: string) => new DataApiException('BadRequestException', 400, message);

/** A FIFO lock: one holder at a time. */
class Lock {
  private tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

interface Database {
  readonly pg: PGlite;
  readonly lock: Lock;
  readonly typeNames: Map<number, string>;
}

// Text forms kept as PostgreSQL prints them (the Data API returns these as strings).
const RAW_OIDS = [114, 3802, 1114, 1184, 1082, 1083, 1266, 1186];
const rawParsers = Object.fromEntries(RAW_OIDS.map((oid) => [oid, (x: string) => x]));

const hintCasts: Record<string, string> = {
  UUID: 'uuid',
  TIMESTAMP: 'timestamp',
  DATE: 'date',
  TIME: 'time',
  DECIMAL: 'numeric',
  JSON: 'json',
};

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Replaces `:name` parameters with `$n` (typed casts per the Data API's field kinds), skipping string literals,
 * quoted identifiers, comments, dollar-quoted strings and `::` casts.
 */
export function bindNamedParameters(
  sql: string,
  parameters: readonly RequestParameter[],
): { text: string; values: (string | null)[] } {
  const byName = new Map(parameters.map((p) => [p.name, p]));
  const positions = new Map<string, number>();
  const values: (string | null)[] = [];
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const rest = sql.slice(i);
    const skip =
      /^'(?:[^']|'')*'/.exec(rest) ??
      /^"(?:[^"]|"")*"/.exec(rest) ??
      /^--[^\n]*/.exec(rest) ??
      /^\/\*[\s\S]*?\*\//.exec(rest) ??
      /^(\$[A-Za-z_]*\$)[\s\S]*?\1/.exec(rest) ??
      /^::/.exec(rest);
    if (skip) {
      out += skip[0];
      i += skip[0].length;
      continue;
    }
    const param = c === ':' ? /^:([A-Za-z_][A-Za-z0-9_]*)/.exec(rest) : null;
    if (param) {
      const name = param[1] as string;
      const p = byName.get(name);
      if (p === undefined) throw badRequest(`No value specified for parameter: ${name}`);
      let position = positions.get(name);
      if (position === undefined) {
        const [value, cast] = toPgValue(p);
        values.push(value);
        position = values.length;
        positions.set(name, position);
        out += `$${position}${cast}`;
      } else {
        out += `$${position}${toPgValue(p)[1]}`;
      }
      i += param[0].length;
      continue;
    }
    out += c;
    i++;
  }
  return { text: out, values };
}

interface RequestParameter {
  name: string;
  value?: Record<string, unknown>;
  typeHint?: string;
}

function toPgValue(p: RequestParameter): [string | null, string] {
  const v = p.value ?? {};
  if (v.isNull === true) return [null, ''];
  if (typeof v.stringValue === 'string') {
    const cast = p.typeHint === undefined ? '::varchar' : `::${hintCasts[p.typeHint] ?? 'varchar'}`;
    return [v.stringValue, cast];
  }
  if (typeof v.booleanValue === 'boolean') return [String(v.booleanValue), '::boolean'];
  if (typeof v.longValue === 'number') return [String(v.longValue), '::bigint'];
  if (typeof v.doubleValue === 'number') return [String(v.doubleValue), '::float8'];
  if (typeof v.blobValue === 'string') return [`\\x${Buffer.from(v.blobValue, 'base64').toString('hex')}`, '::bytea'];
  if (v.arrayValue !== undefined) throw badRequest('Array parameters are not supported.');
  throw badRequest(`Invalid value for parameter ${p.name}`);
}

function toField(value: unknown, typeName: string): Record<string, unknown> {
  if (value === null || value === undefined) return { isNull: true };
  if (typeName.startsWith('_') && Array.isArray(value)) return { arrayValue: toArrayValue(value) };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (typeof value === 'bigint') return { longValue: Number(value) };
  if (typeof value === 'number') {
    return ['int2', 'int4', 'int8', 'oid'].includes(typeName) ? { longValue: value } : { doubleValue: value };
  }
  if (value instanceof Uint8Array) return { blobValue: Buffer.from(value).toString('base64') };
  if (typeof value === 'string') {
    // timestamptz in UTC without the offset, as the Data API prints it.
    return { stringValue: typeName === 'timestamptz' ? value.replace(/\+00(:00)?$/, '') : value };
  }
  if (value instanceof Date) return { stringValue: value.toISOString().replace('T', ' ').replace('Z', '') };
  return { stringValue: JSON.stringify(value) };
}

function toArrayValue(items: unknown[]): Record<string, unknown> {
  if (items.some(Array.isArray)) return { arrayValues: items.map((x) => toArrayValue(Array.isArray(x) ? x : [x])) };
  if (items.every((x) => typeof x === 'boolean')) return { booleanValues: items };
  if (items.every((x) => typeof x === 'number' && Number.isInteger(x))) return { longValues: items };
  if (items.every((x) => typeof x === 'number')) return { doubleValues: items };
  return { stringValues: items.map((x) => (x === null ? null : x instanceof Date ? x.toISOString() : String(x))) };
}

function jsonValue(value: unknown, typeName: string): unknown {
  if (value === null || value === undefined) return null;
  if (typeName === 'json' || typeName === 'jsonb') return typeof value === 'string' ? JSON.parse(value) : value;
  if (typeName === 'timestamptz' && typeof value === 'string') return value.replace(/\+00(:00)?$/, '');
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}

const jdbcTypes: Record<string, number> = {
  bool: -7,
  int2: 5,
  int4: 4,
  int8: -5,
  float4: 7,
  float8: 8,
  numeric: 2,
  text: 12,
  varchar: 12,
  bpchar: 1,
  date: 91,
  time: 92,
  timestamp: 93,
  timestamptz: 93,
  bytea: -2,
  uuid: 1111,
  json: 1111,
  jsonb: 1111,
};

/** Bump when the template's making changes (PGlite version, settings). */
const PGLITE_TEMPLATE_VERSION = '0.5-1';

const SAFE_NAME = /^[A-Za-z0-9_-]{1,63}$/;

export async function startLocalDataApi(options: LocalDataApiOptions = {}): Promise<LocalDataApi> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'tenantcast-data-')));
  await mkdir(dataDir, { recursive: true });
  const idleMs = options.transactionIdleMs ?? 3 * 60_000;
  const maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;

  // ---- Secrets Manager ----
  const secretsFile = join(dataDir, 'secrets.json');
  const secrets = new Map<string, Secret>(
    existsSync(secretsFile)
      ? (JSON.parse(await readFile(secretsFile, 'utf8')) as Secret[]).map((s) => [s.arn, s] as const)
      : [],
  );
  const saveSecrets = () => writeFile(secretsFile, JSON.stringify([...secrets.values()], null, 2));
  const findSecret = (id: string) => secrets.get(id) ?? [...secrets.values()].find((s) => s.name === id);
  async function createSecret(name: string, value: string, description?: string): Promise<Secret> {
    if (findSecret(name)) {
      throw new DataApiException(
        'ResourceExistsException',
        400,
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const arn = `arn:aws:secretsmanager:${region}:${accountId}:secret:${name}-${randomBytes(3).toString('hex')}`;
    const secret: Secret = { arn, name, value, createdDate: Date.now() / 1000, ...(description && { description }) };
    secrets.set(arn, secret);
    await saveSecrets();
    return secret;
  }

  // ---- clusters ----
  const clusters = new Map<string, LocalCluster & { catalog: ClusterCatalog; dir: string }>();
  const databases = new Map<string, Promise<Database>>();
  const transactions = new Map<string, OpenTransaction>();
  let template: Promise<Blob> | undefined;

  const clusterArnOf = (id: string) => `arn:aws:rds:${region}:${accountId}:cluster:${id}`;
  const saveCatalog = (c: { dir: string; catalog: ClusterCatalog }) =>
    writeFile(join(c.dir, 'cluster.json'), JSON.stringify(c.catalog, null, 2));

  async function addCluster(id: string): Promise<LocalCluster> {
    if (!SAFE_NAME.test(id)) throw new Error(`cluster id must match ${SAFE_NAME} (got '${id}')`);
    const existing = clusters.get(clusterArnOf(id));
    if (existing) return { id, clusterArn: existing.clusterArn, adminSecretArn: existing.adminSecretArn };
    const dir = join(dataDir, id);
    await mkdir(dir, { recursive: true });
    const catalogFile = join(dir, 'cluster.json');
    const catalog: ClusterCatalog = existsSync(catalogFile)
      ? JSON.parse(await readFile(catalogFile, 'utf8'))
      : { roles: {}, databases: { postgres: { connect: 'public', owner: 'postgres' } } };
    const adminName = `tenantcast/${id}/master`;
    let admin = findSecret(adminName);
    if (admin === undefined || catalog.roles.postgres === undefined) {
      const password = randomBytes(18).toString('base64url');
      catalog.roles.postgres = { password, superuser: true };
      const value = JSON.stringify({ username: 'postgres', password, engine: 'postgres', dbClusterIdentifier: id });
      if (admin) admin.value = value;
      else admin = await createSecret(adminName, value, `master user of local cluster ${id}`);
      await saveSecrets();
    }
    const cluster = { id, clusterArn: clusterArnOf(id), adminSecretArn: admin.arn, catalog, dir };
    clusters.set(cluster.clusterArn, cluster);
    await saveCatalog(cluster);
    return { id, clusterArn: cluster.clusterArn, adminSecretArn: cluster.adminSecretArn };
  }

  function emptyTemplate(): Promise<Blob> {
    template ??= (async () => {
      // Shared by every stand-in on this machine: a fresh PGlite takes seconds, loading the dump a fraction.
      const file =
        options.templateFile ?? join(tmpdir(), `tenantcast-pglite-template-${PGLITE_TEMPLATE_VERSION}.tar.gz`);
      if (existsSync(file)) return new Blob([await readFile(file)]);
      const pg = new PGlite();
      await pg.waitReady;
      const blob = await pg.dumpDataDir('gzip');
      await pg.close();
      const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
      await writeFile(partial, Buffer.from(await blob.arrayBuffer()));
      await rename(partial, file);
      return blob;
    })();
    return template;
  }

  function openDatabase(
    cluster: { id: string; dir: string; catalog: ClusterCatalog },
    name: string,
  ): Promise<Database> {
    const key = `${cluster.id}/${name}`;
    let db = databases.get(key);
    if (db === undefined) {
      db = (async () => {
        const dir = join(cluster.dir, name);
        const inMemory = ownDir && options.memoryDatabases === true;
        const fresh = inMemory || !existsSync(join(dir, 'PG_VERSION'));
        const loadDataDir = fresh ? await emptyTemplate() : undefined;
        const settings = { parsers: rawParsers, ...(loadDataDir !== undefined && { loadDataDir }) };
        const pg = inMemory ? new PGlite(settings) : new PGlite(dir, settings);
        await pg.waitReady;
        await pg.exec(`SET TimeZone = 'UTC'`);
        // Cluster-wide roles exist in every database (NOLOGIN: the stand-in authenticates, PostgreSQL authorizes).
        for (const role of Object.keys(cluster.catalog.roles)) {
          if (role === 'postgres') continue;
          await pg.exec(
            `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${quoteIdent(role)}; END IF; END $$`,
          );
        }
        const owner = cluster.catalog.databases[name]?.owner;
        if (fresh && owner !== undefined && owner !== 'postgres') {
          await pg.exec(`ALTER SCHEMA public OWNER TO ${quoteIdent(owner)}`);
        }
        const types = await pg.query<{ oid: number; typname: string }>('SELECT oid::int AS oid, typname FROM pg_type');
        return { pg, lock: new Lock(), typeNames: new Map(types.rows.map((r) => [Number(r.oid), r.typname])) };
      })();
      databases.set(key, db);
      db.catch(() => databases.delete(key));
    }
    return db;
  }

  /** Resolves the cluster, secret and user of a request, refusing what PostgreSQL or the Data API would. */
  function authenticate(body: Record<string, unknown>) {
    const resourceArn = String(body.resourceArn ?? '');
    const cluster = clusters.get(resourceArn);
    if (cluster === undefined) throw badRequest(`HttpEndpoint is not enabled for resource ${resourceArn}`);
    const secret = findSecret(String(body.secretArn ?? ''));
    if (secret === undefined) {
      throw badRequest("Error fetching secret: Secrets Manager can't find the specified secret.");
    }
    let credentials: { username?: string; password?: string };
    try {
      credentials = JSON.parse(secret.value);
    } catch {
      throw badRequest('Error fetching secret: the secret is not valid JSON');
    }
    const username = String(credentials.username ?? '');
    const role = cluster.catalog.roles[username];
    if (role === undefined || role.password !== credentials.password) {
      throw badRequest(`FATAL: password authentication failed for user "${username}"`);
    }
    return { cluster, username, superuser: role.superuser };
  }

  function canConnect(catalog: ClusterCatalog, database: string, username: string, superuser: boolean) {
    const db = catalog.databases[database];
    if (db === undefined) {
      throw new DataApiException('DatabaseNotFoundException', 404, `FATAL: database "${database}" does not exist`);
    }
    if (superuser || db.owner === username || db.connect === 'public' || db.connect.includes(username)) return;
    throw badRequest(
      `FATAL: permission denied for database "${database}"\n  Detail: User does not have CONNECT privilege.`,
    );
  }

  /** Cluster-level statements (databases, roles, CONNECT): handled here, as the cluster catalog. */
  async function clusterStatement(
    cluster: { id: string; dir: string; catalog: ClusterCatalog },
    sql: string,
    username: string,
    superuser: boolean,
  ): Promise<boolean> {
    const s = sql.trim().replace(/;\s*$/, '');
    const ident = `"?([A-Za-z0-9_-]+)"?`;
    const denied = (what: string) => {
      throw new DataApiException('DatabaseErrorException', 400, `ERROR: permission denied to ${what}; SQLState: 42501`);
    };
    let m = new RegExp(`^CREATE\\s+DATABASE\\s+${ident}(?:\\s+(?:WITH\\s+)?OWNER\\s*=?\\s*${ident})?$`, 'i').exec(s);
    if (m) {
      if (!superuser) denied('create database');
      const name = m[1] as string;
      if (cluster.catalog.databases[name]) {
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: database "${name}" already exists; SQLState: 42P04`,
        );
      }
      const owner = m[2] ?? username;
      if (!cluster.catalog.roles[owner]) {
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: role "${owner}" does not exist; SQLState: 42704`,
        );
      }
      cluster.catalog.databases[name] = { connect: 'public', owner };
      await saveCatalog(cluster);
      await openDatabase(cluster, name);
      return true;
    }
    // `WITH (FORCE)` (PostgreSQL 13+) closes other sessions first; the stand-in closes its handle either way.
    m = new RegExp(`^DROP\\s+DATABASE\\s+(IF\\s+EXISTS\\s+)?${ident}(?:\\s+WITH\\s*\\(\\s*FORCE\\s*\\))?$`, 'i').exec(
      s,
    );
    if (m) {
      if (!superuser) denied('drop database');
      const name = m[2] as string;
      if (!cluster.catalog.databases[name]) {
        if (m[1]) return true;
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: database "${name}" does not exist; SQLState: 3D000`,
        );
      }
      const key = `${cluster.id}/${name}`;
      const open = databases.get(key);
      databases.delete(key);
      if (open) await (await open).pg.close();
      delete cluster.catalog.databases[name];
      await saveCatalog(cluster);
      await rm(join(cluster.dir, name), { recursive: true, force: true });
      return true;
    }
    m = new RegExp(
      `^CREATE\\s+(?:ROLE|USER)\\s+${ident}(?:\\s+WITH)?(?:\\s+LOGIN)?\\s+PASSWORD\\s+'([^']*)'(?:\\s+LOGIN)?$`,
      'i',
    ).exec(s);
    if (m) {
      if (!superuser) denied('create role');
      const name = m[1] as string;
      if (cluster.catalog.roles[name]) {
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: role "${name}" already exists; SQLState: 42710`,
        );
      }
      // A role is the cluster's: every open database learns it before the catalog does (one left behind by an earlier
      // DROP ROLE of this name in an open database is taken as it is).
      for (const [key, open] of databases) {
        if (!key.startsWith(`${cluster.id}/`)) continue;
        const pg = (await open).pg;
        const found = await pg.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
        if (found.rows.length === 0) await pg.exec(`CREATE ROLE ${quoteIdent(name)}`);
      }
      cluster.catalog.roles[name] = { password: m[2] as string, superuser: false };
      await saveCatalog(cluster);
      return true;
    }
    m = new RegExp(`^GRANT\\s+${ident}\\s+TO\\s+(?:CURRENT_USER|${ident})$`, 'i').exec(s);
    if (m) {
      // Role membership (Aurora's master user must be a member of a role to make it a database owner): recorded
      // nowhere, the stand-in's superuser acts as every role anyway.
      if (!superuser) denied('grant role');
      if (!cluster.catalog.roles[m[1] as string]) {
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: role "${m[1]}" does not exist; SQLState: 42704`,
        );
      }
      return true;
    }
    m = new RegExp(`^DROP\\s+(?:ROLE|USER)\\s+(IF\\s+EXISTS\\s+)?${ident}$`, 'i').exec(s);
    if (m) {
      if (!superuser) denied('drop role');
      const name = m[2] as string;
      if (!cluster.catalog.roles[name] && !m[1]) {
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: role "${name}" does not exist; SQLState: 42704`,
        );
      }
      delete cluster.catalog.roles[name];
      await saveCatalog(cluster);
      // Gone from the open databases too, where it owns nothing (as DROP ROLE needs in a real cluster); where it still
      // owns something, it stays there, unused: the catalog no longer lets it connect.
      for (const [key, open] of databases) {
        if (!key.startsWith(`${cluster.id}/`)) continue;
        await (await open).pg.exec(`DROP ROLE IF EXISTS ${quoteIdent(name)}`).catch(() => undefined);
      }
      return true;
    }
    m = new RegExp(`^(GRANT|REVOKE)\\s+CONNECT\\s+ON\\s+DATABASE\\s+${ident}\\s+(?:TO|FROM)\\s+${ident}$`, 'i').exec(s);
    if (m) {
      if (!superuser) denied('change database privileges');
      const db = cluster.catalog.databases[m[2] as string];
      if (!db)
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: database "${m[2]}" does not exist; SQLState: 3D000`,
        );
      const grantee = m[3] as string;
      const grant = (m[1] as string).toUpperCase() === 'GRANT';
      if (grantee.toLowerCase() === 'public') db.connect = grant ? 'public' : [];
      else {
        const list = db.connect === 'public' ? [] : db.connect;
        db.connect = grant ? [...new Set([...list, grantee])] : list.filter((r) => r !== grantee);
      }
      await saveCatalog(cluster);
      return true;
    }
    return false;
  }

  function databaseError(err: unknown): DataApiException {
    if (err instanceof DataApiException) return err;
    const e = err as { message?: string; code?: string; detail?: string };
    const detail = e.detail ? `\n  Detail: ${e.detail}` : '';
    return new DataApiException(
      'DatabaseErrorException',
      400,
      `ERROR: ${e.message ?? String(err)}${detail}; SQLState: ${e.code ?? 'XX000'}`,
    );
  }

  async function run(db: Database, sql: string, parameters: RequestParameter[]): Promise<Results[]> {
    try {
      // Without parameters a script of several statements is accepted (PGlite's simple query protocol).
      if (parameters.length === 0) return await db.pg.exec(sql);
      const { text, values } = bindNamedParameters(sql, parameters);
      return [await db.pg.query(text, values)];
    } catch (err) {
      throw databaseError(err);
    }
  }

  /** Runs `fn` with the database, as `role`, outside any transaction (autocommit), holding the database's lock. */
  async function autocommit<T>(db: Database, role: string, superuser: boolean, fn: () => Promise<T>): Promise<T> {
    const release = await db.lock.acquire();
    try {
      if (!superuser) await db.pg.exec(`SET ROLE ${quoteIdent(role)}`);
      return await fn();
    } finally {
      if (!superuser) await db.pg.exec('RESET ROLE').catch(() => undefined);
      release();
    }
  }

  function transactionOf(body: Record<string, unknown>, clusterArn: string): OpenTransaction {
    const id = String(body.transactionId);
    const tx = transactions.get(id);
    if (tx === undefined || tx.clusterArn !== clusterArn) {
      throw new DataApiException('NotFoundException', 404, `Transaction ${id} is not found`);
    }
    return tx;
  }

  function touch(tx: OpenTransaction, db: Database) {
    clearTimeout(tx.timer);
    tx.timer = setTimeout(() => {
      void endTransaction(tx, db, 'ROLLBACK');
    }, idleMs);
    tx.timer.unref();
  }

  async function endTransaction(tx: OpenTransaction, db: Database, how: 'COMMIT' | 'ROLLBACK') {
    if (!transactions.delete(tx.id)) return;
    clearTimeout(tx.timer);
    try {
      await db.pg.exec(how);
    } finally {
      await db.pg.exec('RESET ROLE').catch(() => undefined);
      tx.release();
    }
  }

  function resultOf(db: Database, results: Results[], body: Record<string, unknown>) {
    const last = results[results.length - 1];
    const fields = last?.fields ?? [];
    const typeNames = fields.map((f) => db.typeNames.get(f.dataTypeID) ?? 'unknown');
    const rows = (last?.rows ?? []) as Record<string, unknown>[];
    const updated = last?.affectedRows ?? 0;
    const out: Record<string, unknown> = { numberOfRecordsUpdated: fields.length > 0 ? 0 : updated };
    if (body.formatRecordsAs === 'JSON') {
      out.formattedRecords = JSON.stringify(
        rows.map((row) =>
          Object.fromEntries(fields.map((f, i) => [f.name, jsonValue(row[f.name], typeNames[i] ?? '')])),
        ),
      );
    } else if (fields.length > 0) {
      out.records = rows.map((row) => fields.map((f, i) => toField(row[f.name], typeNames[i] ?? '')));
    }
    if (body.includeResultMetadata === true && fields.length > 0) {
      out.columnMetadata = fields.map((f, i) => ({
        name: f.name,
        label: f.name,
        typeName: typeNames[i],
        type: jdbcTypes[typeNames[i] ?? ''] ?? 1111,
        nullable: 2,
        isAutoIncrement: false,
        isCaseSensitive: true,
        isCurrency: false,
        isSigned: true,
        precision: 0,
        scale: 0,
        schemaName: '',
        tableName: '',
        arrayBaseColumnType: 0,
      }));
    }
    return out;
  }

  /** Runs a statement (or a batch) in autocommit or in the request's transaction. */
  async function statement(body: Record<string, unknown>, batch: boolean): Promise<Record<string, unknown>> {
    const { cluster, username, superuser } = authenticate(body);
    const sql = String(body.sql ?? '');
    if (sql.trim() === '') throw badRequest('SQL statement cannot be empty.');
    const sets: RequestParameter[][] = batch
      ? ((body.parameterSets as RequestParameter[][] | undefined) ?? [[]])
      : [(body.parameters as RequestParameter[] | undefined) ?? []];

    if (body.transactionId !== undefined) {
      const tx = transactionOf(body, cluster.clusterArn);
      const db = await openDatabase(cluster, tx.database);
      touch(tx, db);
      return execute(db, sets);
    }
    const database = String(body.database ?? 'postgres');
    canConnect(cluster.catalog, database, username, superuser);
    if (!batch && (await clusterStatement(cluster, sql, username, superuser))) return { numberOfRecordsUpdated: 0 };
    const db = await openDatabase(cluster, database);
    return autocommit(db, username, superuser, async () => {
      if (!batch || sets.length <= 1) return execute(db, sets);
      // A batch outside a transaction is still all-or-nothing in the Data API.
      await db.pg.exec('BEGIN');
      try {
        const out = await execute(db, sets);
        await db.pg.exec('COMMIT');
        return out;
      } catch (err) {
        await db.pg.exec('ROLLBACK');
        throw err;
      }
    });

    async function execute(db: Database, paramSets: RequestParameter[][]) {
      if (!batch) return resultOf(db, await run(db, sql, paramSets[0] ?? []), body);
      const updateResults: unknown[] = [];
      for (const set of paramSets) {
        const results = await run(db, sql, set);
        const last = results[results.length - 1];
        const fields = last?.fields ?? [];
        const first = (last?.rows?.[0] ?? {}) as Record<string, unknown>;
        const typeNames = fields.map((f) => db.typeNames.get(f.dataTypeID) ?? 'unknown');
        updateResults.push({ generatedFields: fields.map((f, i) => toField(first[f.name], typeNames[i] ?? '')) });
      }
      return { updateResults };
    }
  }

  async function begin(body: Record<string, unknown>) {
    const { cluster, username, superuser } = authenticate(body);
    const database = String(body.database ?? 'postgres');
    canConnect(cluster.catalog, database, username, superuser);
    const db = await openDatabase(cluster, database);
    const release = await db.lock.acquire();
    try {
      await db.pg.exec(superuser ? 'BEGIN' : `BEGIN; SET LOCAL ROLE ${quoteIdent(username)}`);
    } catch (err) {
      release();
      throw databaseError(err);
    }
    const tx: OpenTransaction = {
      id: randomBytes(48).toString('base64'),
      clusterArn: cluster.clusterArn,
      database,
      role: username,
      release,
      timer: setTimeout(() => undefined, 0),
    };
    transactions.set(tx.id, tx);
    touch(tx, db);
    return { transactionId: tx.id };
  }

  async function finish(body: Record<string, unknown>, how: 'COMMIT' | 'ROLLBACK') {
    const { cluster } = authenticate(body);
    const tx = transactionOf(body, cluster.clusterArn);
    const db = await openDatabase(cluster, tx.database);
    try {
      await endTransaction(tx, db, how);
    } catch (err) {
      throw databaseError(err);
    }
    return { transactionStatus: how === 'COMMIT' ? 'Transaction Committed' : 'Rollback Complete' };
  }

  // ---- Secrets Manager (JSON 1.1) ----
  async function secretsManager(target: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const notFound = () =>
      new DataApiException('ResourceNotFoundException', 400, "Secrets Manager can't find the specified secret.");
    switch (target) {
      case 'CreateSecret': {
        const s = await createSecret(
          String(body.Name),
          String(body.SecretString ?? ''),
          body.Description === undefined ? undefined : String(body.Description),
        );
        return { ARN: s.arn, Name: s.name, VersionId: randomUUID() };
      }
      case 'GetSecretValue': {
        const s = findSecret(String(body.SecretId));
        if (!s) throw notFound();
        return {
          ARN: s.arn,
          Name: s.name,
          SecretString: s.value,
          CreatedDate: s.createdDate,
          VersionStages: ['AWSCURRENT'],
        };
      }
      case 'DescribeSecret': {
        const s = findSecret(String(body.SecretId));
        if (!s) throw notFound();
        return { ARN: s.arn, Name: s.name, Description: s.description, CreatedDate: s.createdDate };
      }
      case 'DeleteSecret': {
        const s = findSecret(String(body.SecretId));
        if (!s) throw notFound();
        // With ForceDeleteWithoutRecovery the name is free at once; without, AWS keeps it through a 7-30 day recovery
        // window (the name stays taken), which the stand-in keeps for ever.
        if (body.ForceDeleteWithoutRecovery === true) {
          secrets.delete(s.arn);
          await saveSecrets();
        }
        return { ARN: s.arn, Name: s.name, DeletionDate: Date.now() / 1000 };
      }
      case 'PutSecretValue': {
        const s = findSecret(String(body.SecretId));
        if (!s) throw notFound();
        s.value = String(body.SecretString ?? '');
        await saveSecrets();
        return { ARN: s.arn, Name: s.name, VersionId: randomUUID() };
      }
      default:
        throw new DataApiException('UnknownOperationException', 400, `unsupported operation ${target}`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const raw = (await readAll(req)).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const jsonProtocol = target.startsWith('secretsmanager.');
    try {
      const body = (raw === '' ? {} : JSON.parse(raw)) as Record<string, unknown>;
      let out: Record<string, unknown>;
      if (jsonProtocol) out = await secretsManager(target.slice('secretsmanager.'.length), body);
      else if (req.method !== 'POST') throw badRequest(`unsupported method ${req.method}`);
      else if (req.url === '/Execute') out = await statement(body, false);
      else if (req.url === '/BatchExecute') out = await statement(body, true);
      else if (req.url === '/BeginTransaction') out = await begin(body);
      else if (req.url === '/CommitTransaction') out = await finish(body, 'COMMIT');
      else if (req.url === '/RollbackTransaction') out = await finish(body, 'ROLLBACK');
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
  for (const id of fromDisk) await addCluster(id);

  return {
    endpoint: `http://${options.host ?? '127.0.0.1'}:${port}`,
    dataDir,
    addCluster,
    clusters: () =>
      [...clusters.values()].map(({ id, clusterArn, adminSecretArn }) => ({ id, clusterArn, adminSecretArn })),
    async close() {
      for (const tx of transactions.values()) clearTimeout(tx.timer);
      transactions.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      for (const db of databases.values()) {
        try {
          await (await db).pg.close();
        } catch {
          // already closed or never opened
        }
      }
      databases.clear();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
