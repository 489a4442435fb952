import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from './schema.ts';
import { nodeSqliteDialect, type DirectSqlite } from './sqlite-dialect.ts';
import * as foundation from './migrations/001-foundation.ts';
import * as app from './migrations/002-app.ts';
import * as defences from './migrations/003-defences.ts';
import * as wallet from './migrations/004-wallet.ts';
import * as cluster from './migrations/005-cluster.ts';
import * as partialIndexes from './migrations/006-partial-indexes.ts';
import * as trustReset from './migrations/007-trust-reset.ts';
import * as signalTrusted from './migrations/008-signal-trusted.ts';
import * as journalCount from './migrations/009-journal-count.ts';
import * as signalSite from './migrations/010-signal-site.ts';
import * as keyRotation from './migrations/011-key-rotation.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL's pool, for the statements run as named prepared statements (store/prepared.ts). */
  pool?: pg.Pool;
  /** SQLite's connection, for the same statements run without Kysely's executor (store/prepared.ts). */
  sqlite?: DirectSqlite;
  close(): Promise<void>;
}

// int8 (bigint) columns hold epoch milliseconds, well inside Number's exact range.
pg.types.setTypeParser(20, (value: string) => Number(value));

export interface DbOptions {
  databaseUrl?: string | undefined;
  /** PostgreSQL schema to use (tests isolate themselves in a schema of their own). */
  schema?: string;
  /** SQLite file; `:memory:` for a throwaway database. */
  sqlitePath?: string;
  dataDir?: string;
}

export function openDatabase(options: DbOptions): Db {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      // An unreachable server fails the request (503) instead of queueing it forever.
      connectionTimeoutMillis: 5000,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    });
    // A broken idle connection must not crash the process; the next query reports the failure.
    pool.on('error', () => {});
    // Same for a connection in use when the server goes away (pg emits on the client, and an
    // unhandled 'error' would kill the node): the query in flight fails, the pool drops the client.
    pool.on('connect', (client) => client.on('error', () => {}));
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { kysely, dialect: 'postgres', pool, close: () => kysely.destroy() };
  }
  let path = options.sqlitePath;
  if (!path) {
    const dir = options.dataDir ?? './data';
    mkdirSync(dir, { recursive: true });
    path = join(dir, 'vigie.sqlite');
  }
  const sqlite = nodeSqliteDialect(path);
  const kysely = new Kysely<Database>({ dialect: sqlite.dialect });
  return {
    kysely,
    dialect: 'sqlite',
    sqlite: sqlite.direct,
    close: async () => {
      await kysely.destroy();
      await sqlite.close();
    },
  };
}

const migrations: Record<string, Migration> = {
  '001-foundation': foundation,
  '002-app': app,
  '003-defences': defences,
  '004-wallet': wallet,
  '005-cluster': cluster,
  '006-partial-indexes': partialIndexes,
  '007-trust-reset': trustReset,
  '008-signal-trusted': signalTrusted,
  '009-journal-count': journalCount,
  '010-signal-site': signalSite,
  '011-key-rotation': keyRotation,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * PostgreSQL's "schema does not exist" (3F000) from Kysely's migrator, which reads every schema's
 * tables from the catalog: another schema of the database was dropped during that read (test runs
 * in parallel, a tenant removed). Nothing was migrated yet; trying again is safe.
 */
const MIGRATION_ATTEMPTS = 10;
const otherSchemaDropped = (error: unknown) => (error as { code?: unknown } | null)?.code === '3F000';

export async function migrate(db: Db): Promise<string[]> {
  // Unless told its schema, Kysely takes its bookkeeping tables found in *any* schema of the
  // database as ours and never creates them here; pin it to the schema we actually write to.
  const migrationTableSchema = db.dialect === 'postgres' ? (await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db.kysely)).rows[0]?.schema : null;
  const migrator = new Migrator({ db: db.kysely, provider, ...(migrationTableSchema ? { migrationTableSchema } : {}) });
  for (let attempt = 1; ; attempt += 1) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    if (attempt >= MIGRATION_ATTEMPTS || !otherSchemaDropped(error)) throw error;
    await sleep(10 * attempt);
  }
}

export async function createSchema(db: Db, schema: string): Promise<void> {
  await sql`create schema if not exists ${sql.id(schema)}`.execute(db.kysely);
}

export async function dropSchema(db: Db, schema: string): Promise<void> {
  await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db.kysely);
}
