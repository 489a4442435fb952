import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { SqliteDialect, type CompiledQuery, type DatabaseConnection, type Driver, type QueryResult, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { BUSY_TIMEOUT_MS, CONNECTION_PRAGMAS, type WorkerData, type WriteReply, type WriteRequest } from './sqlite-protocol.ts';

// Preparing costs more than running most of our statements: keep the prepared ones by SQL text.
// Queries are built from a bounded set of shapes, so a small cap is plenty.
const STATEMENT_CACHE_SIZE = 500;

/**
 * The connection run directly, outside Kysely's executor (store/prepared.ts): a statement on the
 * hot path then costs SQLite's own time, not Kysely's promise chain and connection mutex around it.
 * Reads answer at once; writes go to the worker thread when it runs (a promise). Returns
 * undefined while a Kysely transaction is open on the connection: the statement must then wait for
 * it through Kysely, or it would run inside that transaction (and code inside a transaction must
 * never wait for a statement outside it: the transaction holds the only write lock).
 */
export interface DirectSqlite {
  query<Row>(sql: string, parameters: readonly unknown[]): QueryResult<Row> | Promise<QueryResult<Row>> | undefined;
}

/**
 * A statement that changes the file: the worker's (store/sqlite-worker.ts), when it is running.
 * Others (reads, and the migrations' DDL, which run before any request) stay on this connection;
 * so would a write that starts with a `with` clause (none does).
 */
const WRITE = /^\s*(insert|update|delete|replace)\b/i;

const isBusy = (error: unknown) => (Number((error as { errcode?: unknown } | null)?.errcode) & 0xff) === 5;

/** Adapts Node's built-in `node:sqlite` to the better-sqlite3 shape Kysely's SqliteDialect expects. */
function adapt(database: DatabaseSync, close: () => void, writer: Writer | undefined): { kysely: SqliteDatabase; direct: DirectSqlite; toWorker: ToWorker; begin: Begin | undefined } {
  const cache = new Map<string, SqliteStatement>();
  const prepare = (sql: string): SqliteStatement => {
    const cached = cache.get(sql);
    if (cached) return cached;
    const statement: StatementSync = database.prepare(sql);
    const adapted: SqliteStatement = {
      reader: statement.columns().length > 0,
      all: (parameters) => statement.all(...(parameters as never[])),
      run: (parameters) => statement.run(...(parameters as never[])),
      iterate: (parameters) => statement.iterate(...(parameters as never[])),
    };
    if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(sql, adapted);
    return adapted;
  };
  // Every write outside a transaction goes to the worker when it runs: a write on this connection
  // while the worker holds the lock would sleep in SQLite's busy handler, event loop and all.
  const toWorker: ToWorker = <Row>(sql: string, parameters: readonly unknown[]) =>
    writer?.running && !database.isTransaction && WRITE.test(sql) ? writer.query<Row>(sql, parameters) : undefined;
  /**
   * Kysely opens its transactions with a plain `begin`. A deferred transaction that reads, then
   * writes after the worker committed, fails at once with SQLITE_BUSY (its snapshot is stale): an
   * immediate one takes the write lock first. It waits for a lock held elsewhere (the worker's
   * statement in progress, an operator command) by retrying, not in SQLite's busy handler, which
   * would sleep with the event loop.
   */
  const begin = async (): Promise<QueryResult<never>> => {
    for (let waited = 0, pause = 1; ; waited += pause, pause = Math.min(pause * 2, 25)) {
      database.exec('PRAGMA busy_timeout = 0');
      try {
        database.exec('begin immediate');
        return { rows: [] };
      } catch (error) {
        if (!isBusy(error) || waited >= BUSY_TIMEOUT_MS) throw error;
      } finally {
        database.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
      await sleep(pause);
    }
  };
  return {
    begin: writer ? begin : undefined,
    kysely: {
      close,
      prepare,
    },
    direct: {
      query<Row>(sql: string, parameters: readonly unknown[]) {
        if (database.isTransaction) return undefined;
        const written = toWorker<Row>(sql, parameters);
        if (written) return written;
        const statement = prepare(sql);
        if (statement.reader) return { rows: statement.all(parameters) as Row[] };
        return { rows: [], numAffectedRows: BigInt(statement.run(parameters).changes) };
      },
    },
    toWorker,
  };
}

type ToWorker = <Row>(sql: string, parameters: readonly unknown[]) => Promise<QueryResult<Row>> | undefined;
type Begin = () => Promise<QueryResult<never>>;

/**
 * Kysely's SQLite driver, its writes outside transactions handed to the worker (`toWorker`), its
 * transactions begun by `begin` when there is a worker.
 */
class WorkerWritesDialect extends SqliteDialect {
  readonly #toWorker: ToWorker;
  readonly #begin: Begin | undefined;
  constructor(database: SqliteDatabase, toWorker: ToWorker, begin: Begin | undefined) {
    super({ database });
    this.#toWorker = toWorker;
    this.#begin = begin;
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const toWorker = this.#toWorker;
    const begin = this.#begin;
    let routed: DatabaseConnection | undefined;
    const route = (connection: DatabaseConnection): DatabaseConnection =>
      (routed ??= {
        executeQuery: <Row>(query: CompiledQuery) =>
          (begin && query.sql === 'begin' ? (begin() as Promise<QueryResult<Row>>) : undefined) ?? toWorker<Row>(query.sql, query.parameters) ?? connection.executeQuery<Row>(query),
        streamQuery: (query, chunkSize) => connection.streamQuery(query, chunkSize),
      });
    // Kysely's runtime lends the one connection to one query or transaction at a time.
    return {
      init: (options) => driver.init(options),
      acquireConnection: async (options) => route(await driver.acquireConnection(options)),
      beginTransaction: (connection, settings) => driver.beginTransaction(connection, settings),
      commitTransaction: (connection) => driver.commitTransaction(connection),
      rollbackTransaction: (connection) => driver.rollbackTransaction(connection),
      releaseConnection: (connection, options) => driver.releaseConnection(connection, options),
      destroy: () => driver.destroy(),
      ...(driver.savepoint && { savepoint: driver.savepoint.bind(driver) }),
      ...(driver.rollbackToSavepoint && { rollbackToSavepoint: driver.rollbackToSavepoint.bind(driver) }),
      ...(driver.releaseSavepoint && { releaseSavepoint: driver.releaseSavepoint.bind(driver) }),
    };
  }
}

/** SQLite's default, kept whenever the worker is not running. */
const AUTO_CHECKPOINT_PAGES = 1000;
const CHECKPOINT_INTERVAL_MS = 500;

/**
 * The worker thread (store/sqlite-worker.ts) that runs the hot path's writes and the WAL
 * checkpoints on a connection of its own. Until it is up, and again if it ever stops, the main
 * connection writes and checkpoints by itself as SQLite does by default: the WAL can never grow
 * without bound.
 */
class Writer {
  running = false;
  readonly exited: Promise<void>;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(result: QueryResult<never>): void; reject(error: Error): void }>();
  #nextId = 1;
  #closing = false;

  constructor(database: DatabaseSync, path: string) {
    // No inherited flags: a --cpu-prof of the server must profile the server, not this thread.
    this.#worker = new Worker(new URL('./sqlite-worker.ts', import.meta.url), {
      workerData: { path, intervalMs: CHECKPOINT_INTERVAL_MS, statementCacheSize: STATEMENT_CACHE_SIZE } satisfies WorkerData,
      execArgv: [],
    });
    this.#worker.unref();
    this.#worker.on('message', (message: WriteReply | 'ready') => {
      if (message === 'ready') {
        if (this.#closing) return;
        database.exec('PRAGMA wal_autocheckpoint = 0');
        this.running = true;
        return;
      }
      const waiting = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (this.#pending.size === 0 && !this.#closing) this.#worker.unref();
      if (!waiting) return;
      if (message.error) waiting.reject(Object.assign(new Error(message.error.message), message.error));
      else waiting.resolve({ rows: message.rows as never[], ...(message.changes === undefined ? {} : { numAffectedRows: BigInt(message.changes) }), ...(message.insertId === undefined ? {} : { insertId: BigInt(message.insertId) }) });
    });
    // An error is followed by 'exit': the fallback below covers both. Said once, since the event
    // loop then runs every write itself.
    this.#worker.on('error', (error) => process.emitWarning(`SQLite worker thread failed, writes run on the main thread: ${error.message}`));
    this.exited = new Promise<void>((resolve) => {
      this.#worker.once('exit', () => {
        this.running = false;
        // Whether these were written is unknown, as when a database connection drops mid-statement.
        for (const { reject } of this.#pending.values()) reject(new Error('SQLite writer thread stopped'));
        this.#pending.clear();
        if (!this.#closing) database.exec(`PRAGMA wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
        resolve();
      });
    });
  }

  query<Row>(sql: string, parameters: readonly unknown[]): Promise<QueryResult<Row>> {
    const id = this.#nextId++;
    // Referenced while a write is in flight: the process waits for its answer.
    if (this.#pending.size === 0) this.#worker.ref();
    const answered = new Promise<QueryResult<Row>>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    try {
      this.#worker.postMessage({ id, sql, parameters } satisfies WriteRequest);
    } catch (error) {
      // A value that cannot cross to the thread (a function): this write fails, nothing waits for it.
      this.#pending.delete(id);
      if (this.#pending.size === 0 && !this.#closing) this.#worker.unref();
      return Promise.reject(error as Error);
    }
    return answered;
  }

  /** Lets the writes already sent finish, then the last checkpoint. */
  stop(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.running = false;
    // Referenced again, so that the process waits for its last checkpoint instead of exiting.
    this.#worker.ref();
    this.#worker.postMessage('stop');
  }
}

/**
 * `close` settles once nothing holds the file any more, the worker included (its last checkpoint
 * may still write the WAL after the connection closed). Kysely's own destroy closes
 * the connection too, but only if a query ever ran.
 */
export function nodeSqliteDialect(path: string): { dialect: SqliteDialect; direct: DirectSqlite; close(): Promise<void> } {
  const database = new DatabaseSync(path);
  database.exec(CONNECTION_PRAGMAS);
  // In memory (or `''`, a private temporary file), the database is this connection's alone: a
  // second connection would open a database of its own.
  const inMemory = path === '' || path === ':memory:' || path.startsWith('file::memory:') || (path.startsWith('file:') && /[?&]mode=memory(&|$)/.test(path));
  const writer = inMemory ? undefined : new Writer(database, path);
  const shutDown = () => {
    writer?.stop();
    if (database.isOpen) database.close();
  };
  const { kysely, direct, toWorker, begin } = adapt(database, shutDown, writer);
  return {
    dialect: new WorkerWritesDialect(kysely, toWorker, begin),
    direct,
    close: async () => {
      shutDown();
      await writer?.exited;
    },
  };
}
