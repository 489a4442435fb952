// Child of bench/login.ts: the real Vigie (createVigie, embedded SQLite in the data dir the parent
// made), the demo directory, a registered relying party and activation codes for N distinct
// professionals. Configuration comes from the environment, as with `npm start`.
import { DatabaseSync, StatementSync } from 'node:sqlite';
import { performance } from 'node:perf_hooks';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../../src/config/index.ts';
import { createVigie } from '../../src/server.ts';
import { loadDemoDirectory } from '../../src/demo.ts';
import { runServerChild, type ServerStats } from '../support/processes.ts';

export interface VigieReady {
  issuer: string;
  storage: string;
  professionals: number;
  accounts: Array<{ nationalId: string; activationCode: string }>;
}

/**
 * With BENCH_SQL_STATS=1: counts and times every SQLite statement run (and every prepare) by SQL
 * text, by wrapping node:sqlite's prototypes in this process only. Costs a little throughput.
 */
function sqlStatistics(): (() => ServerStats['extra']) | undefined {
  if (process.env.BENCH_SQL_STATS !== '1') return undefined;
  const stats: NonNullable<ServerStats['extra']> = {};
  const record = (key: string, ms: number) => {
    const entry = (stats[key] ??= { count: 0, ms: 0 });
    entry.count += 1;
    entry.ms += ms;
  };
  const shorten = (sql: string) => sql.replace(/\s+/g, ' ').replace(/\((\?, )+\?\)/g, '(?…)').slice(0, 100);
  const prepare = DatabaseSync.prototype.prepare;
  DatabaseSync.prototype.prepare = function (this: DatabaseSync, sql: string) {
    const started = performance.now();
    try {
      return prepare.call(this, sql);
    } finally {
      record(`prepare: ${shorten(sql)}`, performance.now() - started);
    }
  } as typeof prepare;
  for (const method of ['run', 'all', 'get', 'iterate'] as const) {
    const original = StatementSync.prototype[method] as (...args: unknown[]) => unknown;
    (StatementSync.prototype as unknown as Record<string, unknown>)[method] = function (this: StatementSync, ...args: unknown[]) {
      const started = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        // oidc-provider's models share one table: tell them apart by the first parameter.
        const model = this.sourceSQL.includes('"oidc_model"') && typeof args[0] === 'string' ? ` [${args[0]}]` : '';
        record(`${method}: ${shorten(this.sourceSQL)}${model}`, performance.now() - started);
      }
    };
  }
  return () => stats;
}

const extra = sqlStatistics();

await runServerChild<VigieReady>(async () => {
  const env = process.env;
  const wanted = Number(env.BENCH_PROFESSIONALS ?? 64);
  const config = loadConfig(env);
  const vigie = await createVigie(config);
  await loadDemoDirectory(vigie);
  await vigie.clients.put({
    client_id: env.BENCH_CLIENT_ID!,
    client_name: 'Service de banc',
    redirect_uris: [env.BENCH_REDIRECT_URI!],
    client_secret: env.BENCH_CLIENT_SECRET!,
  });
  const rows = await vigie.db.kysely.selectFrom('professional').select('national_id').orderBy('national_id').limit(wanted).execute();
  if (rows.length < wanted) throw new Error(`the demo directory holds ${rows.length} professionals, ${wanted} asked`);
  const accounts = [];
  for (const { national_id: nationalId } of rows) {
    const { code } = await vigie.devices.createActivationCode(nationalId, 'bench');
    accounts.push({ nationalId, activationCode: code });
  }
  const { professionals } = await vigie.directory.count();
  await vigie.listen();
  return { payload: { issuer: config.issuer, storage: vigie.db.dialect, professionals, accounts }, close: async () => {
    await vigie.close();
    // Also when the parent died without cleaning up (the child leaves on 'disconnect').
    await rm(config.dataDir, { recursive: true, force: true });
  } };
}, extra);
