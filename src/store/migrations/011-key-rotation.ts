import type { Kysely } from 'kysely';

/**
 * When a signing key last changed state (published as next, activated, retired): the operator's
 * rotation commands wait on it (oidc/keys.ts). Null for keys made before rotation existed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('signing_key').addColumn('changed_at', 'bigint').execute();
}
