import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import type { CheckpointerData } from './sqlite-checkpointer.ts';
import { SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';

// Preparing costs more than running most of our statements: keep the prepared ones by SQL text.
// Queries are built from a bounded set of shapes, so a small cap is plenty.
const STATEMENT_CACHE_SIZE = 500;

/**
 * The connection run directly, outside Kysely's executor (store/prepared.ts): a statement on the
 * hot path then costs SQLite's own time, not Kysely's promise chain and connection mutex around it.
 * Returns undefined while a Kysely transaction is open on the connection: the statement must then
 * wait for it through Kysely, or it would run inside that transaction.
 */
export interface DirectSqlite {
  query<Row>(sql: string, parameters: readonly unknown[]): { rows: Row[]; numAffectedRows?: bigint } | undefined;
}

/** Adapts Node's built-in `node:sqlite` to the better-sqlite3 shape Kysely's SqliteDialect expects. */
function adapt(database: DatabaseSync, close: () => void): { kysely: SqliteDatabase; direct: DirectSqlite } {
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
  return {
    kysely: {
      close,
      prepare,
    },
    direct: {
      query<Row>(sql: string, parameters: readonly unknown[]) {
        if (database.isTransaction) return undefined;
        const statement = prepare(sql);
        if (statement.reader) return { rows: statement.all(parameters) as Row[] };
        return { rows: [], numAffectedRows: BigInt(statement.run(parameters).changes) };
      },
    },
  };
}

/** SQLite's default, kept whenever no background checkpointer is running. */
const AUTO_CHECKPOINT_PAGES = 1000;
const CHECKPOINT_INTERVAL_MS = 500;

/**
 * Hands WAL checkpoints to a worker thread (store/sqlite-checkpointer.ts). Until the worker is
 * up, and again if it ever stops, the connection checkpoints by itself as SQLite does by default:
 * the WAL can never grow without bound. Returns what stops the worker, and when it has stopped.
 */
function checkpointInBackground(database: DatabaseSync, path: string): { stop(): void; exited: Promise<void> } {
  let closing = false;
  // No inherited flags: a --cpu-prof of the server must profile the server, not this thread.
  const worker = new Worker(new URL('./sqlite-checkpointer.ts', import.meta.url), { workerData: { path, intervalMs: CHECKPOINT_INTERVAL_MS } satisfies CheckpointerData, execArgv: [] });
  worker.unref();
  worker.once('message', () => {
    if (!closing) database.exec('PRAGMA wal_autocheckpoint = 0');
  });
  // An error is followed by 'exit': the fallback below covers both.
  worker.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', () => {
      if (!closing) database.exec(`PRAGMA wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
      resolve();
    });
  });
  return {
    stop: () => {
      closing = true;
      // Referenced again, so that the process waits for its last checkpoint instead of exiting.
      worker.ref();
      worker.postMessage('stop');
    },
    exited,
  };
}

/**
 * `close` settles once nothing holds the file any more, the checkpointer included (its last
 * checkpoint may still write the WAL after the connection closed). Kysely's own destroy closes
 * the connection too, but only if a query ever ran.
 */
export function nodeSqliteDialect(path: string): { dialect: SqliteDialect; direct: DirectSqlite; close(): Promise<void> } {
  const database = new DatabaseSync(path);
  // WAL keeps readers off the writer's back; NORMAL sync is durable across process crashes.
  database.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;');
  const inMemory = path === ':memory:' || path.startsWith('file::memory:');
  const checkpointer = inMemory ? { stop: () => {}, exited: Promise.resolve() } : checkpointInBackground(database, path);
  const shutDown = () => {
    checkpointer.stop();
    if (database.isOpen) database.close();
  };
  const { kysely, direct } = adapt(database, shutDown);
  return {
    dialect: new SqliteDialect({ database: kysely }),
    direct,
    close: async () => {
      shutDown();
      await checkpointer.exited;
    },
  };
}
