import type { Kysely } from 'kysely';

/**
 * IPv6: the /48 a signal came from (null for IPv4). Its 256 /56 prefixes are one site's, and
 * rotating through them must not keep a reported site under the global block's threshold
 * (defence/service.ts, as for the rates).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('defence_signal').addColumn('site', 'text').execute();
  await db.schema.createIndex('defence_signal_site').on('defence_signal').columns(['site', 'at']).execute();
}
