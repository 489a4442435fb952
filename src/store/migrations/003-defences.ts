import type { Kysely } from 'kysely';

/**
 * Push-bombing defences (issue 4): rate windows, professional state (budget, back-off, attack
 * mode), blocks, fraud signals, known places, notification settings and the decision journal.
 * Portable column types only (text, integer, bigint), like 001.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('defence_counter')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('defence_counter_pk', ['key', 'window_start'])
    .execute();
  await db.schema.createIndex('defence_counter_expires').on('defence_counter').column('expires_at').execute();

  await db.schema
    .createTable('defence_distinct')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('member', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('defence_distinct_pk', ['key', 'window_start', 'member'])
    .execute();
  await db.schema.createIndex('defence_distinct_expires').on('defence_distinct').column('expires_at').execute();

  await db.schema
    .createTable('defence_flag')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('until', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('defence_state')
    .addColumn('national_id', 'text', (c) => c.primaryKey())
    .addColumn('strikes', 'integer', (c) => c.notNull())
    .addColumn('backoff_until', 'bigint', (c) => c.notNull())
    .addColumn('under_attack_until', 'bigint', (c) => c.notNull())
    .addColumn('push_times', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('defence_block')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('national_id', 'text')
    .addColumn('prefix', 'text')
    .addColumn('browser_id', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('place', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('lifted_at', 'bigint')
    .addColumn('lifted_by', 'text')
    .execute();
  await db.schema.createIndex('defence_block_professional').on('defence_block').columns(['national_id', 'expires_at']).execute();
  await db.schema.createIndex('defence_block_prefix').on('defence_block').columns(['prefix', 'expires_at']).execute();
  await db.schema.createIndex('defence_block_browser').on('defence_block').columns(['browser_id', 'expires_at']).execute();

  await db.schema
    .createTable('defence_signal')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('browser_id', 'text')
    .execute();
  await db.schema.createIndex('defence_signal_prefix').on('defence_signal').columns(['prefix', 'at']).execute();
  await db.schema.createIndex('defence_signal_browser').on('defence_signal').columns(['browser_id', 'at']).execute();

  await db.schema
    .createTable('defence_place')
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('place', 'text', (c) => c.notNull())
    .addColumn('first_seen', 'bigint', (c) => c.notNull())
    .addColumn('last_seen', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('defence_place_pk', ['national_id', 'place'])
    .execute();

  await db.schema
    .createTable('notification_settings')
    .addColumn('national_id', 'text', (c) => c.primaryKey())
    .addColumn('push_enabled', 'integer', (c) => c.notNull())
    .addColumn('quiet_until', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('defence_event')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('national_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('reasons', 'text', (c) => c.notNull())
    .addColumn('trusted', 'integer', (c) => c.notNull())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('browser_id', 'text')
    .addColumn('place', 'text')
    .addColumn('challenge_id', 'text')
    .execute();
  await db.schema.createIndex('defence_event_professional').on('defence_event').columns(['national_id', 'at']).execute();
  await db.schema.createIndex('defence_event_at').on('defence_event').column('at').execute();
}
