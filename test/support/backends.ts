import { randomBytes } from 'node:crypto';
import { describe, after, before } from 'node:test';
import { createSchema, dropSchema, migrate, openDatabase, type Db } from '../../src/store/db.ts';

export interface Backend {
  name: string;
  open(): Promise<{ db: Db; dispose(): Promise<void> }>;
}

/** SQLite always; PostgreSQL whenever DATABASE_URL is set (each test file gets a schema of its own). */
export function backends(): Backend[] {
  const list: Backend[] = [
    {
      name: 'sqlite',
      async open() {
        const db = openDatabase({ sqlitePath: ':memory:' });
        await migrate(db);
        return { db, dispose: () => db.close() };
      },
    },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    list.push({
      name: 'postgres',
      async open() {
        const schema = `t_${randomBytes(6).toString('hex')}`;
        const admin = openDatabase({ databaseUrl: url });
        await createSchema(admin, schema);
        await admin.close();
        const db = openDatabase({ databaseUrl: url, schema });
        await migrate(db);
        return {
          db,
          async dispose() {
            await db.close();
            const cleanup = openDatabase({ databaseUrl: url });
            await dropSchema(cleanup, schema);
            await cleanup.close();
          },
        };
      },
    });
  }
  return list;
}

/** Runs one contract suite against every available backend; says so when PostgreSQL is skipped. */
export function forEachBackend(suite: string, body: (ctx: { db: () => Db }) => void): void {
  for (const backend of backends()) {
    describe(`${suite} [${backend.name}]`, () => {
      let handle: { db: Db; dispose(): Promise<void> } | undefined;
      before(async () => {
        handle = await backend.open();
      });
      after(async () => {
        await handle?.dispose();
      });
      body({
        db: () => {
          if (!handle) throw new Error('backend not opened');
          return handle.db;
        },
      });
    });
  }
  if (!process.env.DATABASE_URL) skipWithoutPostgres(suite);
}

/** Says a PostgreSQL run was skipped; in CI (CI=true) a missing DATABASE_URL is an error instead. */
export function skipWithoutPostgres(suite: string): void {
  if (process.env.CI === 'true') throw new Error(`${suite}: DATABASE_URL must be set in CI, the PostgreSQL suites would silently skip`);
  describe(`${suite} [postgres]`, { skip: 'DATABASE_URL is not set' }, () => {});
}
