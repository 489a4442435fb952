import type { Db } from '../store/db.ts';
import { randomId } from '../lib/crypto.ts';

export type Channel = 'email' | 'sms';

export interface OutboxMessage {
  id: string;
  channel: Channel;
  recipient: string;
  subject: string | null;
  body: string;
  createdAt: number;
}

/**
 * Where emails and SMS go when no real transport is configured (development, tests): a table
 * read with `vigie outbox` and, in development, on /dev/outbox. Messages are purged after a day.
 */
export interface OutboxStore {
  add(message: Omit<OutboxMessage, 'id'>): Promise<OutboxMessage>;
  /** Newest first. */
  list(options?: { channel?: Channel; recipient?: string; limit?: number }): Promise<OutboxMessage[]>;
  purge(before: number): Promise<number>;
}

export const OUTBOX_RETENTION_MS = 24 * 3600_000;

export class SqlOutboxStore implements OutboxStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async add(message: Omit<OutboxMessage, 'id'>): Promise<OutboxMessage> {
    const row = { id: randomId(), ...message };
    await this.#db.kysely
      .insertInto('outbox')
      .values({ id: row.id, channel: row.channel, recipient: row.recipient, subject: row.subject, body: row.body, created_at: row.createdAt })
      .execute();
    return row;
  }

  async list(options: { channel?: Channel; recipient?: string; limit?: number } = {}): Promise<OutboxMessage[]> {
    let query = this.#db.kysely.selectFrom('outbox').selectAll();
    if (options.channel) query = query.where('channel', '=', options.channel);
    if (options.recipient) query = query.where('recipient', '=', options.recipient);
    const rows = await query.orderBy('created_at', 'desc').orderBy('id').limit(Math.min(options.limit ?? 50, 1000)).execute();
    return rows.map((r) => ({ id: r.id, channel: r.channel as Channel, recipient: r.recipient, subject: r.subject, body: r.body, createdAt: r.created_at }));
  }

  async purge(before: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('outbox').where('created_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
