import type { Kysely } from 'kysely';

/**
 * The authenticator app (issue 3): activation by email + SMS codes, Web Push subscriptions,
 * the email/SMS outbox and the "ce n'était pas moi" revocation links.
 * Portable column types only (text, integer, bigint), like 001.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // `activation.code_hash` holds the operator code, or the email code of an `email_sms` flow.
  await db.schema.alterTable('activation').addColumn('sms_code_hash', 'text').execute();
  // SHA-256 thumbprint (RFC 7638) of the device key a flow is bound to once its codes are verified.
  await db.schema.alterTable('activation').addColumn('key_thumbprint', 'text').execute();
  await db.schema.alterTable('activation').addColumn('source_ip', 'text').execute();
  await db.schema.createIndex('activation_source').on('activation').columns(['source_ip', 'created_at']).execute();
  await db.schema.createIndex('activation_created').on('activation').columns(['national_id', 'created_at']).execute();

  await db.schema
    .createTable('push_subscription')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('p256dh', 'text', (c) => c.notNull())
    .addColumn('auth', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  // One row per (challenge, device) delivered by Web Push: with several nodes, the first claims it.
  await db.schema
    .createTable('push_delivery')
    .addColumn('challenge_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('push_delivery_pk', ['challenge_id', 'device_id'])
    .execute();
  await db.schema.createIndex('push_delivery_at').on('push_delivery').column('at').execute();

  await db.schema
    .createTable('outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('outbox_created').on('outbox').columns(['channel', 'created_at']).execute();

  await db.schema
    .createTable('device_revoke_token')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('national_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
}
