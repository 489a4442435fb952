// What store/sqlite-dialect.ts and its worker thread (store/sqlite-worker.ts) share.

/** How long a connection waits for another one's write lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

/** Every connection to the file, the main one and the worker's. */
// The timeout first: switching a new file to WAL may itself wait for another connection. WAL
// keeps readers off the writer's back; NORMAL sync is durable across process crashes.
export const CONNECTION_PRAGMAS = `PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;`;

export interface WorkerData {
  path: string;
  intervalMs: number;
  statementCacheSize: number;
}

export interface WriteRequest {
  id: number;
  sql: string;
  parameters: readonly unknown[];
}

/** node:sqlite's error, as much of it as callers look at (audit/log.ts reads `errcode`). */
export interface SqliteErrorShape {
  message: string;
  code: unknown;
  errcode: unknown;
  errstr: unknown;
}

export type WriteReply = { id: number; rows: unknown[]; changes?: number; insertId?: number | bigint; error?: undefined } | { id: number; error: SqliteErrorShape };
