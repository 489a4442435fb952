// Worker thread of store/sqlite-dialect.ts: runs the hot path's writes and the WAL checkpoints on a
// second connection, off the event loop that serves every request.
//
// A write costs SQLite's B-tree work plus the WAL's file writes and locks; on the login path that
// was most of the synchronous SQLite time (bench/login.ts --sql-stats), all of it on the thread the
// requests share. Here it runs beside it, on another core when there is one. Reads stay on the main
// connection (WAL: a reader never waits for this writer and sees every write this thread answered).
//
// Checkpoints run here on a timer: with automatic checkpoints, every ~1000 pages one unlucky write
// copies the WAL into the database file and syncs both. PASSIVE mode never waits for the main
// connection's readers or writers, so it can never stall them either.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { CONNECTION_PRAGMAS, type WorkerData, type WriteReply, type WriteRequest } from './sqlite-protocol.ts';

const { path, intervalMs, statementCacheSize } = workerData as WorkerData;
const database = new DatabaseSync(path);
database.exec(CONNECTION_PRAGMAS);
// This connection never checkpoints on its own: the timer below does.
database.exec('PRAGMA wal_autocheckpoint = 0');
const checkpoint = database.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => checkpoint.get(), intervalMs);

const cache = new Map<string, { statement: StatementSync; reader: boolean }>();
function prepare(sql: string): { statement: StatementSync; reader: boolean } {
  let prepared = cache.get(sql);
  if (!prepared) {
    const statement = database.prepare(sql);
    // A write with `returning` answers rows.
    prepared = { statement, reader: statement.columns().length > 0 };
    if (cache.size >= statementCacheSize) cache.delete(cache.keys().next().value as string);
    cache.set(sql, prepared);
  }
  return prepared;
}

function run({ id, sql, parameters }: WriteRequest): WriteReply {
  try {
    const { statement, reader } = prepare(sql);
    if (reader) return { id, rows: statement.all(...(parameters as never[])) };
    const { changes, lastInsertRowid } = statement.run(...(parameters as never[]));
    return { id, rows: [], changes: Number(changes), insertId: lastInsertRowid };
  } catch (caught) {
    const error = caught as Error & { code?: unknown; errcode?: unknown; errstr?: unknown };
    return { id, error: { message: error.message, code: error.code, errcode: error.errcode, errstr: error.errstr } };
  }
}

parentPort!.on('message', (message: WriteRequest | 'stop') => {
  if (message !== 'stop') return parentPort!.postMessage(run(message));
  clearInterval(timer);
  checkpoint.get();
  database.close();
  parentPort!.close();
});
parentPort!.postMessage('ready');
