import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';

// Preparing costs more than running most of our statements: keep the prepared ones by SQL text.
// Queries are built from a bounded set of shapes, so a small cap is plenty.
const STATEMENT_CACHE_SIZE = 500;

/** Adapts Node's built-in `node:sqlite` to the better-sqlite3 shape Kysely's SqliteDialect expects. */
function adapt(database: DatabaseSync): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
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
    },
  };
}

export function nodeSqliteDialect(path: string): SqliteDialect {
  const database = new DatabaseSync(path);
  // WAL keeps readers off the writer's back; NORMAL sync is durable across process crashes.
  database.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
  return new SqliteDialect({ database: adapt(database) });
}
