// What store/sqlite-dialect.ts and its worker thread (store/sqlite-worker.ts) share.

/** Every connection to the file, the main one and the worker's. */
// WAL keeps readers off the writer's back; NORMAL sync is durable across process crashes.
export const CONNECTION_PRAGMAS = 'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;';

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

export type WriteReply = { id: number; rows: unknown[]; changes?: number; error?: undefined } | { id: number; error: SqliteErrorShape };
