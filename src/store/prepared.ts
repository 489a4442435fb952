import { createHash } from 'node:crypto';
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Database } from './schema.ts';
import type { Db, Dialect } from './db.ts';

/**
 * A statement that Kysely builds and compiles once per dialect, then runs with fresh values. Every
 * login runs a few dozen small statements, and for those Kysely's building and compiling took
 * longer than SQLite takes to run them (bench/login.ts --profile).
 *
 * On PostgreSQL they also run as named prepared statements: each connection parses and plans one
 * once, instead of on every call (the database's CPU per login counts on a shared machine). On
 * SQLite they run straight on the connection (store/sqlite-dialect.ts DirectSqlite), without
 * Kysely's executor, unless a Kysely transaction holds the connection.
 *
 * `build` receives one stand-in per value and must pass each one through to Kysely untouched, in
 * the same SQL whatever the values: no clause that depends on a value, no transformation of a
 * value inside `build` (do it before the call). The first compilation checks every stand-in
 * reached the statement's parameters.
 *
 *     const byId = prepared((db, id: string) => db.selectFrom('challenge').selectAll().where('id', '=', id));
 *     const { rows } = await byId(this.#db, id);
 */
export function prepared<Args extends unknown[], Row>(build: (db: Kysely<Database>, ...args: Args) => Compilable<Row>): (db: Db, ...args: Args) => Promise<QueryResult<Row>> {
  const compiled = new Map<Dialect, Statement>();
  return async (db, ...args) => {
    let statement = compiled.get(db.dialect);
    if (!statement) {
      statement = compile(db.kysely, build as (db: Kysely<Database>, ...args: unknown[]) => Compilable<Row>, args.length);
      compiled.set(db.dialect, statement);
    }
    // A missing value is SQL NULL (Kysely would leave the column out, which a fixed statement cannot).
    const parameters = statement.slots.map((slot) => ('arg' in slot ? (args[slot.arg] ?? null) : slot.value));
    if (db.pool) {
      let result;
      try {
        result = await db.pool.query({ name: statement.name, text: statement.sql, values: parameters });
      } catch (error) {
        // "cached plan must not change result type": a migration changed a table this connection
        // prepared a `select *` for (a rolling upgrade). Run it unprepared rather than fail.
        if ((error as { code?: unknown }).code !== '0A000') throw error;
        result = await db.pool.query(statement.sql, parameters);
      }
      return { rows: result.rows as Row[], ...(result.command === 'SELECT' ? {} : { numAffectedRows: BigInt(result.rowCount ?? 0) }) };
    }
    return db.sqlite?.query<Row>(statement.sql, parameters) ?? db.kysely.executeQuery<Row>(CompiledQuery.raw(statement.sql, parameters));
  };
}

/** A parameter of the compiled statement: one of the call's values, or a constant of the query. */
type Slot = { arg: number } | { value: unknown };
interface Statement {
  sql: string;
  slots: Slot[];
  /** Its PostgreSQL name, from its text: the same statement has the same name in every process. */
  name: string;
}

function compile(kysely: Kysely<Database>, build: (db: Kysely<Database>, ...args: unknown[]) => Compilable<unknown>, arity: number): Statement {
  const standIns = Array.from({ length: arity }, (_, i) => `\u0000prepared-value-${i}\u0000`);
  const { sql, parameters } = build(kysely, ...standIns).compile();
  const slots = parameters.map((p): Slot => {
    const arg = typeof p === 'string' ? standIns.indexOf(p) : -1;
    return arg >= 0 ? { arg } : { value: p };
  });
  for (let i = 0; i < arity; i += 1) {
    if (!slots.some((s) => 'arg' in s && s.arg === i)) throw new Error(`prepared statement: value ${i} does not reach the parameters of ${sql}`);
  }
  return { sql, slots, name: `vigie_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}` };
}
