import type { Kysely } from 'kysely';

/**
 * The wallet (issue 5): provider sessions findable by account, session context, wallet sessions,
 * back-channel logout deliveries, contact-detail changes and reports. E-mail and SMS go through
 * src/notify (its `outbox` table from 002 when no transport is configured).
 * Portable column types only (text, integer, bigint), like 001.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // oidc-provider's Session, Grant and token rows carry `accountId` in their payload; an indexed
  // copy lets the wallet list and end one professional's sessions and tokens.
  await db.schema.alterTable('oidc_model').addColumn('account_id', 'text').execute();
  await db.schema.createIndex('oidc_model_account').on('oidc_model').columns(['account_id', 'model']).execute();
  await backfillAccountIds(db as Kysely<BackfillDb>);

  // History: one professional's attempts, newest first.
  await db.schema.createIndex('challenge_history').on('challenge').columns(['national_id', 'created_at']).execute();

  // Where and from what a provider session was opened, and when it was last used.
  await db.schema
    .createTable('provider_session_info')
    .addColumn('session_uid', 'text', (c) => c.primaryKey())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('browser', 'text')
    .addColumn('place', 'text')
    .addColumn('challenge_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint', (c) => c.notNull())
    .addColumn('last_ip', 'text')
    .execute();
  await db.schema.createIndex('provider_session_info_pro').on('provider_session_info').column('national_id').execute();

  await db.schema
    .createTable('wallet_session')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('session_uid', 'text', (c) => c.notNull())
    .addColumn('sid', 'text', (c) => c.notNull())
    .addColumn('csrf', 'text', (c) => c.notNull())
    .addColumn('authenticated_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('wallet_session_uid').on('wallet_session').column('session_uid').execute();
  await db.schema.createIndex('wallet_session_pro').on('wallet_session').column('national_id').execute();
  await db.schema.createIndex('wallet_session_expires').on('wallet_session').column('expires_at').execute();

  await db.schema
    .createTable('logout_delivery')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('session_uid', 'text')
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('sid', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('logout_delivery_due').on('logout_delivery').columns(['state', 'next_attempt_at']).execute();
  await db.schema.createIndex('logout_delivery_pro').on('logout_delivery').columns(['national_id', 'created_at']).execute();

  await db.schema
    .createTable('contact_change')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('old_value', 'text')
    .addColumn('new_value', 'text', (c) => c.notNull())
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cancel_hash', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('code_expires_at', 'bigint', (c) => c.notNull())
    .addColumn('confirmed_at', 'bigint')
    .addColumn('usable_at', 'bigint')
    .addColumn('settled_at', 'bigint')
    .execute();
  await db.schema.createIndex('contact_change_pro').on('contact_change').columns(['national_id', 'state']).execute();
  await db.schema.createIndex('contact_change_cancel').on('contact_change').column('cancel_hash').unique().execute();
  await db.schema.createIndex('contact_change_due').on('contact_change').columns(['state', 'usable_at']).execute();

  await db.schema
    .createTable('wallet_report')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'text')
    .addColumn('comment', 'text')
    .addColumn('sessions_ended', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('wallet_report_created').on('wallet_report').column('created_at').execute();

}

interface BackfillDb {
  oidc_model: { model: string; id: string; payload: string; account_id: string | null };
}

/** Rows written before this migration: copy `accountId` out of the JSON payload (portable, in JS). */
async function backfillAccountIds(db: Kysely<BackfillDb>): Promise<void> {
  const rows = await db.selectFrom('oidc_model').select(['model', 'id', 'payload']).where('payload', 'like', '%"accountId"%').execute();
  for (const row of rows) {
    const accountId = (JSON.parse(row.payload) as { accountId?: unknown }).accountId;
    if (typeof accountId !== 'string') continue;
    await db.updateTable('oidc_model').set({ account_id: accountId }).where('model', '=', row.model).where('id', '=', row.id).execute();
  }
}
