/**
 * The local Data API's statements (local/data-api.ts): ExecuteStatement, BatchExecuteStatement and transactions on
 * the clusters' databases (local/data-api-clusters.ts). A statement runs in the database's PGlite as the secret's role
 * (`SET ROLE`), so grants and ownership inside a database are PostgreSQL's own. Transactions: one at a time per
 * database; BeginTransaction takes the database's lock until commit, rollback or `idleMs` without a statement (rolled
 * back, like the Data API's idle timeout); statements outside the transaction wait behind it. Hand-written: no
 * library emulates the Data API.
 */
import { randomBytes } from 'node:crypto';
import type { Results } from '@electric-sql/pglite';
import type { Database, LocalClusters } from './data-api-clusters.ts';
import {
  badRequest,
  bindNamedParameters,
  DataApiException,
  databaseError,
  quoteIdent,
  type RequestParameter,
  resultOf,
  toField,
} from './data-api-values.ts';

/** A column type's name from its oid, as the database knows it. */
const typeNameOf = (db: Database) => (oid: number) => db.typeNames.get(oid) ?? 'unknown';

interface OpenTransaction {
  readonly id: string;
  readonly clusterArn: string;
  readonly database: string;
  readonly role: string;
  readonly release: () => void;
  timer: NodeJS.Timeout;
}

export class LocalStatements {
  private readonly transactions = new Map<string, OpenTransaction>();

  constructor(
    private readonly clusters: LocalClusters,
    private readonly idleMs: number,
  ) {}

  private async run(db: Database, sql: string, parameters: RequestParameter[]): Promise<Results[]> {
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
  private async autocommit<T>(db: Database, role: string, superuser: boolean, fn: () => Promise<T>): Promise<T> {
    const release = await db.lock.acquire();
    try {
      if (!superuser) await db.pg.exec(`SET ROLE ${quoteIdent(role)}`);
      return await fn();
    } finally {
      if (!superuser) await db.pg.exec('RESET ROLE').catch(() => undefined);
      release();
    }
  }

  private transactionOf(body: Record<string, unknown>, clusterArn: string): OpenTransaction {
    const id = String(body.transactionId);
    const tx = this.transactions.get(id);
    if (tx === undefined || tx.clusterArn !== clusterArn) {
      throw new DataApiException('NotFoundException', 404, `Transaction ${id} is not found`);
    }
    return tx;
  }

  private touch(tx: OpenTransaction, db: Database) {
    clearTimeout(tx.timer);
    tx.timer = setTimeout(() => {
      void this.endTransaction(tx, db, 'ROLLBACK');
    }, this.idleMs);
    tx.timer.unref();
  }

  private async endTransaction(tx: OpenTransaction, db: Database, how: 'COMMIT' | 'ROLLBACK') {
    if (!this.transactions.delete(tx.id)) return;
    clearTimeout(tx.timer);
    try {
      await db.pg.exec(how);
    } finally {
      await db.pg.exec('RESET ROLE').catch(() => undefined);
      tx.release();
    }
  }

  /** Runs a statement (or a batch) in autocommit or in the request's transaction. */
  async execute(body: Record<string, unknown>, batch: boolean): Promise<Record<string, unknown>> {
    const { cluster, username, superuser } = this.clusters.authenticate(body);
    const sql = String(body.sql ?? '');
    if (sql.trim() === '') throw badRequest('SQL statement cannot be empty.');
    const sets: RequestParameter[][] = batch
      ? ((body.parameterSets as RequestParameter[][] | undefined) ?? [[]])
      : [(body.parameters as RequestParameter[] | undefined) ?? []];

    if (body.transactionId !== undefined) {
      const tx = this.transactionOf(body, cluster.clusterArn);
      const db = await this.clusters.open(cluster, tx.database);
      this.touch(tx, db);
      return this.runSets(db, sql, sets, batch, body);
    }
    const database = String(body.database ?? 'postgres');
    this.clusters.canConnect(cluster.catalog, database, username, superuser);
    if (!batch && (await this.clusters.clusterStatement(cluster, sql, username, superuser)))
      return { numberOfRecordsUpdated: 0 };
    const db = await this.clusters.open(cluster, database);
    return this.autocommit(db, username, superuser, async () => {
      if (!batch || sets.length <= 1) return this.runSets(db, sql, sets, batch, body);
      // A batch outside a transaction is still all-or-nothing in the Data API.
      await db.pg.exec('BEGIN');
      try {
        const out = await this.runSets(db, sql, sets, batch, body);
        await db.pg.exec('COMMIT');
        return out;
      } catch (err) {
        await db.pg.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** One statement, or a batch of parameter sets, in what the caller holds (a transaction or autocommit). */
  private async runSets(
    db: Database,
    sql: string,
    paramSets: RequestParameter[][],
    batch: boolean,
    body: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    if (!batch) return resultOf(typeNameOf(db), await this.run(db, sql, paramSets[0] ?? []), body);
    const updateResults: unknown[] = [];
    for (const set of paramSets) {
      const results = await this.run(db, sql, set);
      const last = results[results.length - 1];
      const fields = last?.fields ?? [];
      const first = (last?.rows?.[0] ?? {}) as Record<string, unknown>;
      const typeNames = fields.map((f) => typeNameOf(db)(f.dataTypeID));
      updateResults.push({ generatedFields: fields.map((f, i) => toField(first[f.name], typeNames[i] ?? '')) });
    }
    return { updateResults };
  }

  async begin(body: Record<string, unknown>) {
    const { cluster, username, superuser } = this.clusters.authenticate(body);
    const database = String(body.database ?? 'postgres');
    this.clusters.canConnect(cluster.catalog, database, username, superuser);
    const db = await this.clusters.open(cluster, database);
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
    this.transactions.set(tx.id, tx);
    this.touch(tx, db);
    return { transactionId: tx.id };
  }

  async finish(body: Record<string, unknown>, how: 'COMMIT' | 'ROLLBACK') {
    const { cluster } = this.clusters.authenticate(body);
    const tx = this.transactionOf(body, cluster.clusterArn);
    const db = await this.clusters.open(cluster, tx.database);
    try {
      await this.endTransaction(tx, db, how);
    } catch (err) {
      throw databaseError(err);
    }
    return { transactionStatus: how === 'COMMIT' ? 'Transaction Committed' : 'Rollback Complete' };
  }

  /** Forgets every open transaction (the server is closing). */
  close(): void {
    for (const tx of this.transactions.values()) clearTimeout(tx.timer);
    this.transactions.clear();
  }
}
