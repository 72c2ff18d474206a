/**
 * The local Data API's clusters (local/data-api.ts): each a catalog of roles and databases in
 * `<dataDir>/<cluster>/cluster.json`, each database its own PGlite under `<dataDir>/<cluster>/<database>` (in memory,
 * for tests, with `memoryDatabases` and no `dataDir`), opened on first use and created from a dumped empty template
 * (much faster than a fresh PGlite). Roles are cluster-wide: `CREATE ROLE|USER ... PASSWORD`, `CREATE DATABASE ...
 * [OWNER r]`, `DROP DATABASE`, and `GRANT|REVOKE CONNECT ON DATABASE` are handled here, as the cluster catalog;
 * everything else runs in the database's PGlite. Hand-written: no library emulates Aurora's cluster catalog.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { badRequest, DataApiException, quoteIdent, rawParsers } from './data-api-values.ts';
import type { LocalSecrets } from './secrets-manager.ts';

export interface LocalCluster {
  readonly id: string;
  readonly clusterArn: string;
  /** The master user's secret: can create databases and roles. */
  readonly adminSecretArn: string;
}

interface ClusterCatalog {
  roles: Record<string, { password: string; superuser: boolean }>;
  /** Database → who may connect: `public`, or role names. */
  databases: Record<string, { connect: 'public' | string[]; owner: string }>;
}

interface Cluster extends LocalCluster {
  readonly catalog: ClusterCatalog;
  readonly dir: string;
}

/** A FIFO lock: one holder at a time. */
export class Lock {
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

export interface Database {
  readonly pg: PGlite;
  readonly lock: Lock;
  readonly typeNames: Map<number, string>;
}

/** Bump when the template's making changes (PGlite version, settings). */
const PGLITE_TEMPLATE_VERSION = '0.5-1';

const SAFE_NAME = /^[A-Za-z0-9_-]{1,63}$/;

export interface ClustersOptions {
  readonly dataDir: string;
  /** Databases in memory rather than under `dataDir` (tests, with a temporary `dataDir`). */
  readonly inMemory: boolean;
  readonly region: string;
  readonly accountId: string;
  /** The dumped empty database new databases start from. @default `<os tmpdir>/tenantcast-pglite-template-<v>.tar.gz` */
  readonly templateFile?: string;
}

const IDENT = `"?([A-Za-z0-9_-]+)"?`;

/** The statements the cluster catalog runs (LocalClusters.clusterStatement), and what a refusal names. */
const CLUSTER_STATEMENTS: readonly {
  readonly pattern: RegExp;
  readonly what: string;
  /** The LocalClusters method that runs it. */
  readonly statement: 'createDatabase' | 'dropDatabase' | 'createRole' | 'grantRole' | 'dropRole' | 'grantConnect';
}[] = [
  {
    pattern: new RegExp(`^CREATE\\s+DATABASE\\s+${IDENT}(?:\\s+(?:WITH\\s+)?OWNER\\s*=?\\s*${IDENT})?$`, 'i'),
    what: 'create database',
    statement: 'createDatabase',
  },
  {
    pattern: new RegExp(`^DROP\\s+DATABASE\\s+(IF\\s+EXISTS\\s+)?${IDENT}(?:\\s+WITH\\s*\\(\\s*FORCE\\s*\\))?$`, 'i'),
    what: 'drop database',
    statement: 'dropDatabase',
  },
  {
    pattern: new RegExp(
      `^CREATE\\s+(?:ROLE|USER)\\s+${IDENT}(?:\\s+WITH)?(?:\\s+LOGIN)?\\s+PASSWORD\\s+'([^']*)'(?:\\s+LOGIN)?$`,
      'i',
    ),
    what: 'create role',
    statement: 'createRole',
  },
  {
    pattern: new RegExp(`^GRANT\\s+${IDENT}\\s+TO\\s+(?:CURRENT_USER|${IDENT})$`, 'i'),
    what: 'grant role',
    statement: 'grantRole',
  },
  {
    pattern: new RegExp(`^DROP\\s+(?:ROLE|USER)\\s+(IF\\s+EXISTS\\s+)?${IDENT}$`, 'i'),
    what: 'drop role',
    statement: 'dropRole',
  },
  {
    pattern: new RegExp(`^(GRANT|REVOKE)\\s+CONNECT\\s+ON\\s+DATABASE\\s+${IDENT}\\s+(?:TO|FROM)\\s+${IDENT}$`, 'i'),
    what: 'change database privileges',
    statement: 'grantConnect',
  },
];

export class LocalClusters {
  private readonly clusters = new Map<string, Cluster>();
  private readonly databases = new Map<string, Promise<Database>>();
  private template: Promise<Blob> | undefined;

  constructor(
    private readonly options: ClustersOptions,
    private readonly secrets: LocalSecrets,
  ) {}

  list(): LocalCluster[] {
    return [...this.clusters.values()].map(({ id, clusterArn, adminSecretArn }) => ({
      id,
      clusterArn,
      adminSecretArn,
    }));
  }

  private clusterArnOf(id: string): string {
    return `arn:aws:rds:${this.options.region}:${this.options.accountId}:cluster:${id}`;
  }

  private saveCatalog(c: { dir: string; catalog: ClusterCatalog }): Promise<void> {
    return writeFile(join(c.dir, 'cluster.json'), JSON.stringify(c.catalog, null, 2));
  }

  /** Creates the cluster (and its master secret) if it does not exist yet; takes back one found on disk. */
  async add(id: string): Promise<LocalCluster> {
    if (!SAFE_NAME.test(id)) throw new Error(`cluster id must match ${SAFE_NAME} (got '${id}')`);
    const existing = this.clusters.get(this.clusterArnOf(id));
    if (existing) return { id, clusterArn: existing.clusterArn, adminSecretArn: existing.adminSecretArn };
    const dir = join(this.options.dataDir, id);
    await mkdir(dir, { recursive: true });
    const catalogFile = join(dir, 'cluster.json');
    const catalog: ClusterCatalog = existsSync(catalogFile)
      ? JSON.parse(await readFile(catalogFile, 'utf8'))
      : { roles: {}, databases: { postgres: { connect: 'public', owner: 'postgres' } } };
    const adminName = `tenantcast/${id}/master`;
    let admin = this.secrets.find(adminName);
    if (admin === undefined || catalog.roles.postgres === undefined) {
      const password = randomBytes(18).toString('base64url');
      catalog.roles.postgres = { password, superuser: true };
      const value = JSON.stringify({ username: 'postgres', password, engine: 'postgres', dbClusterIdentifier: id });
      if (admin) admin.value = value;
      else admin = await this.secrets.create(adminName, value, `master user of local cluster ${id}`);
      await this.secrets.save();
    }
    const cluster = { id, clusterArn: this.clusterArnOf(id), adminSecretArn: admin.arn, catalog, dir };
    this.clusters.set(cluster.clusterArn, cluster);
    await this.saveCatalog(cluster);
    return { id, clusterArn: cluster.clusterArn, adminSecretArn: cluster.adminSecretArn };
  }

  private emptyTemplate(): Promise<Blob> {
    this.template ??= (async () => {
      // Shared by every stand-in on this machine: a fresh PGlite takes seconds, loading the dump a fraction.
      const file =
        this.options.templateFile ?? join(tmpdir(), `tenantcast-pglite-template-${PGLITE_TEMPLATE_VERSION}.tar.gz`);
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
    return this.template;
  }

  /** The database, opened (and made from the template if new) on first use. */
  open(cluster: { id: string; dir: string; catalog: ClusterCatalog }, name: string): Promise<Database> {
    const key = `${cluster.id}/${name}`;
    let db = this.databases.get(key);
    if (db === undefined) {
      db = (async () => {
        const dir = join(cluster.dir, name);
        const inMemory = this.options.inMemory;
        const fresh = inMemory || !existsSync(join(dir, 'PG_VERSION'));
        const loadDataDir = fresh ? await this.emptyTemplate() : undefined;
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
      this.databases.set(key, db);
      db.catch(() => this.databases.delete(key));
    }
    return db;
  }

  /** Resolves the cluster, secret and user of a request, refusing what PostgreSQL or the Data API would. */
  authenticate(body: Record<string, unknown>) {
    const resourceArn = String(body.resourceArn ?? '');
    const cluster = this.clusters.get(resourceArn);
    if (cluster === undefined) throw badRequest(`HttpEndpoint is not enabled for resource ${resourceArn}`);
    const secret = this.secrets.find(String(body.secretArn ?? ''));
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

  canConnect(catalog: ClusterCatalog, database: string, username: string, superuser: boolean) {
    const db = catalog.databases[database];
    if (db === undefined) {
      throw new DataApiException('DatabaseNotFoundException', 404, `FATAL: database "${database}" does not exist`);
    }
    if (superuser || db.owner === username || db.connect === 'public' || db.connect.includes(username)) return;
    throw badRequest(
      `FATAL: permission denied for database "${database}"\n  Detail: User does not have CONNECT privilege.`,
    );
  }

  /**
   * A cluster-level statement (databases, roles, CONNECT) handled here, as the cluster catalog: true when `sql` was
   * one (and ran), false when it is for the database's PGlite. Only the master user may run them, as in Aurora.
   */
  async clusterStatement(cluster: Cluster, sql: string, username: string, superuser: boolean): Promise<boolean> {
    const s = sql.trim().replace(/;\s*$/, '');
    for (const { pattern, what, statement } of CLUSTER_STATEMENTS) {
      const m = pattern.exec(s);
      if (m === null) continue;
      if (!superuser) {
        throw new DataApiException(
          'DatabaseErrorException',
          400,
          `ERROR: permission denied to ${what}; SQLState: 42501`,
        );
      }
      await this[statement](cluster, m, username);
      return true;
    }
    return false;
  }

  private async createDatabase(cluster: Cluster, m: RegExpExecArray, username: string): Promise<void> {
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
    await this.saveCatalog(cluster);
    await this.open(cluster, name);
  }

  private async dropDatabase(cluster: Cluster, m: RegExpExecArray): Promise<void> {
    const name = m[2] as string;
    if (!cluster.catalog.databases[name]) {
      if (m[1]) return;
      throw new DataApiException(
        'DatabaseErrorException',
        400,
        `ERROR: database "${name}" does not exist; SQLState: 3D000`,
      );
    }
    const key = `${cluster.id}/${name}`;
    const open = this.databases.get(key);
    this.databases.delete(key);
    if (open) await (await open).pg.close();
    delete cluster.catalog.databases[name];
    await this.saveCatalog(cluster);
    await rm(join(cluster.dir, name), { recursive: true, force: true });
  }

  private async createRole(cluster: Cluster, m: RegExpExecArray): Promise<void> {
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
    for (const [key, open] of this.databases) {
      if (!key.startsWith(`${cluster.id}/`)) continue;
      const pg = (await open).pg;
      const found = await pg.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
      if (found.rows.length === 0) await pg.exec(`CREATE ROLE ${quoteIdent(name)}`);
    }
    cluster.catalog.roles[name] = { password: m[2] as string, superuser: false };
    await this.saveCatalog(cluster);
  }

  private async grantRole(cluster: Cluster, m: RegExpExecArray): Promise<void> {
    // Role membership (Aurora's master user must be a member of a role to make it a database owner): recorded
    // nowhere, the stand-in's superuser acts as every role anyway.
    if (!cluster.catalog.roles[m[1] as string]) {
      throw new DataApiException(
        'DatabaseErrorException',
        400,
        `ERROR: role "${m[1]}" does not exist; SQLState: 42704`,
      );
    }
  }

  private async dropRole(cluster: Cluster, m: RegExpExecArray): Promise<void> {
    const name = m[2] as string;
    if (!cluster.catalog.roles[name] && !m[1]) {
      throw new DataApiException(
        'DatabaseErrorException',
        400,
        `ERROR: role "${name}" does not exist; SQLState: 42704`,
      );
    }
    delete cluster.catalog.roles[name];
    await this.saveCatalog(cluster);
    // Gone from the open databases too, where it owns nothing (as DROP ROLE needs in a real cluster); where it still
    // owns something, it stays there, unused: the catalog no longer lets it connect.
    for (const [key, open] of this.databases) {
      if (!key.startsWith(`${cluster.id}/`)) continue;
      await (await open).pg.exec(`DROP ROLE IF EXISTS ${quoteIdent(name)}`).catch(() => undefined);
    }
  }

  private async grantConnect(cluster: Cluster, m: RegExpExecArray): Promise<void> {
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
    await this.saveCatalog(cluster);
  }

  async close(): Promise<void> {
    for (const db of this.databases.values()) {
      try {
        await (await db).pg.close();
      } catch {
        // already closed or never opened
      }
    }
    this.databases.clear();
  }
}
