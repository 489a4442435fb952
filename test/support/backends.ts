import { randomBytes } from 'node:crypto';
import { describe, after, before } from 'node:test';
import { createSchema, dropSchema, migrate, openDatabase, type Db } from '../../src/store/db.ts';
import { deleteByPrefix, openRedis, type RedisHandle } from '../../src/store/redis/client.ts';

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

/** A private namespace in the machine's Redis (REDIS_URL): a random key prefix, deleted afterwards (never a FLUSHALL). */
export async function openTestRedis(): Promise<RedisHandle & { url: string; dispose(): Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set');
  const prefix = `vigie-test:${randomBytes(6).toString('hex')}:`;
  const withPrefix = new URL(url);
  withPrefix.searchParams.set('prefix', prefix);
  const handle = await openRedis(withPrefix.toString());
  return {
    ...handle,
    url: withPrefix.toString(),
    async dispose() {
      await deleteByPrefix(handle.client, prefix).catch(() => {});
      await handle.close();
    },
  };
}

/** Says a Redis run was skipped; in CI (CI=true) a missing REDIS_URL is an error instead. */
export function skipWithoutRedis(suite: string): void {
  if (process.env.CI === 'true') throw new Error(`${suite}: REDIS_URL must be set in CI, the Redis suites would silently skip`);
  describe(`${suite} [redis]`, { skip: 'REDIS_URL is not set' }, () => {});
}

/**
 * Runs a store contract suite against the SQL backends and, when REDIS_URL is set, against Redis
 * (with PostgreSQL, or SQLite, for what stays in SQL). `redis()` is undefined on the SQL runs, so
 * the suite builds the SQL or the Redis variant of its store from it. With `memory`, one more run
 * (`memory` true, SQLite beside it) checks the in-process variant a single node uses.
 */
export function forEachStoreBackend(
  suite: string,
  body: (ctx: { db: () => Db; redis: () => RedisHandle | undefined; memory: boolean }) => void,
  options: { redisOnly?: boolean; memory?: boolean } = {},
): void {
  const sql = backends();
  const runs: Array<{ name: string; db: Backend; redis: boolean; memory?: boolean }> = options.redisOnly ? [] : sql.map((b) => ({ name: b.name, db: b, redis: false }));
  if (options.memory && !options.redisOnly) runs.push({ name: `memory+${sql[0]!.name}`, db: sql[0]!, redis: false, memory: true });
  if (process.env.REDIS_URL) runs.push({ name: `redis+${sql.at(-1)!.name}`, db: sql.at(-1)!, redis: true });
  for (const run of runs) {
    describe(`${suite} [${run.name}]`, () => {
      let handle: { db: Db; dispose(): Promise<void> } | undefined;
      let redis: Awaited<ReturnType<typeof openTestRedis>> | undefined;
      before(async () => {
        handle = await run.db.open();
        if (run.redis) redis = await openTestRedis();
      });
      after(async () => {
        await redis?.dispose();
        await handle?.dispose();
      });
      body({
        db: () => {
          if (!handle) throw new Error('backend not opened');
          return handle.db;
        },
        redis: () => redis,
        memory: run.memory === true,
      });
    });
  }
  if (!process.env.DATABASE_URL && !options.redisOnly) skipWithoutPostgres(suite);
  if (!process.env.REDIS_URL) skipWithoutRedis(suite);
}

/** Only the Redis run of `forEachStoreBackend`, for a suite whose SQL runs exist already. */
export function forRedisBackend(suite: string, body: (ctx: { db: () => Db; redis: () => RedisHandle }) => void): void {
  forEachStoreBackend(suite, ({ db, redis }) => body({ db, redis: () => redis() as RedisHandle }), { redisOnly: true });
}
