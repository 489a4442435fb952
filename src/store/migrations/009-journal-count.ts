import type { Kysely } from 'kysely';

/**
 * One journal line may stand for several requests: the refusals of one source for one
 * professional and one reason within a minute share a line (defence/service.ts), so that a
 * flood does not write, keep for 90 days and read back one row per refused request.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('defence_event').addColumn('count', 'integer', (c) => c.notNull().defaultTo(1)).execute();
}
