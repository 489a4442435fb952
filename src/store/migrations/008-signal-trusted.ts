import type { Kysely } from 'kysely';

/**
 * A fraud signal raised against a request from a browser trusted for that professional names its
 * browser, not its network: that network may be the professional's own practice or hospital
 * (defence/service.ts, as for the block it comes with). 0/1; existing rows were untrusted or are
 * treated so.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('defence_signal').addColumn('trusted', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
