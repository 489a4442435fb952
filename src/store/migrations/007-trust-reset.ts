import type { Kysely } from 'kysely';

/**
 * Trusted-browser cookies are stateless (defence/trusted-browser.ts): the professional (wallet) or
 * the operator revokes them all at once by moving this time forward; a cookie issued before it no
 * longer counts. 0: never revoked.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('defence_state').addColumn('trust_reset_at', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
}
