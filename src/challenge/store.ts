import type { Db } from '../store/db.ts';
import type { ChallengeTable } from '../store/schema.ts';
import type { Challenge, ChallengeState } from './challenge.ts';

export interface SettleFields {
  reason?: string | null;
  deviceId?: string | null;
}

export interface ChallengeStore {
  create(challenge: Challenge): Promise<void>;
  get(id: string): Promise<Challenge | undefined>;
  /** Pending, unexpired challenges addressed to one professional, newest first. */
  listPending(nationalId: string, now: number): Promise<Challenge[]>;
  /** Compare-and-set from `pending`; false when another writer settled it first or it has expired. */
  settle(id: string, to: Exclude<ChallengeState, 'pending'>, now: number, fields?: SettleFields): Promise<boolean>;
  /** Marks an approved challenge as used to finish a login; true for exactly one caller. */
  consume(id: string, now: number): Promise<boolean>;
  /** Moves every overdue pending challenge to `expired`; returns them. */
  expireDue(now: number): Promise<Array<Pick<Challenge, 'id' | 'nationalId'>>>;
  /** Deletes settled challenges older than `before`. */
  purge(before: number): Promise<number>;
}

function toRecord(row: ChallengeTable): Challenge {
  return {
    id: row.id,
    nationalId: row.national_id,
    interactionUid: row.interaction_uid,
    clientId: row.client_id,
    clientName: row.client_name,
    mode: row.mode as Challenge['mode'],
    displayCode: row.display_code,
    candidates: JSON.parse(row.candidates) as string[],
    delivery: row.delivery as Challenge['delivery'],
    context: JSON.parse(row.context) as Challenge['context'],
    state: row.state as ChallengeState,
    reason: row.reason,
    deviceId: row.device_id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    settledAt: row.settled_at,
    consumedAt: row.consumed_at,
  };
}

export class SqlChallengeStore implements ChallengeStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(c: Challenge): Promise<void> {
    await this.#db.kysely
      .insertInto('challenge')
      .values({
        id: c.id,
        national_id: c.nationalId,
        interaction_uid: c.interactionUid,
        client_id: c.clientId,
        client_name: c.clientName,
        mode: c.mode,
        display_code: c.displayCode,
        candidates: JSON.stringify(c.candidates),
        delivery: c.delivery,
        context: JSON.stringify(c.context),
        state: c.state,
        reason: c.reason,
        device_id: c.deviceId,
        created_at: c.createdAt,
        expires_at: c.expiresAt,
        settled_at: c.settledAt,
        consumed_at: c.consumedAt,
      })
      .execute();
  }

  async get(id: string): Promise<Challenge | undefined> {
    const row = await this.#db.kysely.selectFrom('challenge').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  async listPending(nationalId: string, now: number): Promise<Challenge[]> {
    const rows = await this.#db.kysely
      .selectFrom('challenge')
      .selectAll()
      .where('national_id', '=', nationalId)
      .where('state', '=', 'pending')
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .limit(20)
      .execute();
    return rows.map(toRecord);
  }

  async settle(id: string, to: Exclude<ChallengeState, 'pending'>, now: number, fields: SettleFields = {}): Promise<boolean> {
    let query = this.#db.kysely
      .updateTable('challenge')
      .set({ state: to, settled_at: now, reason: fields.reason ?? null, device_id: fields.deviceId ?? null })
      .where('id', '=', id)
      .where('state', '=', 'pending');
    // Only the expiry itself may settle an overdue challenge: a late approval must lose.
    query = to === 'expired' ? query.where('expires_at', '<=', now) : query.where('expires_at', '>', now);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async consume(id: string, now: number): Promise<boolean> {
    const result = await this.#db.kysely
      .updateTable('challenge')
      .set({ consumed_at: now })
      .where('id', '=', id)
      .where('state', '=', 'approved')
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async expireDue(now: number): Promise<Array<Pick<Challenge, 'id' | 'nationalId'>>> {
    const rows = await this.#db.kysely
      .updateTable('challenge')
      .set({ state: 'expired', settled_at: now })
      .where('state', '=', 'pending')
      .where('expires_at', '<=', now)
      .returning(['id', 'national_id'])
      .execute();
    return rows.map((r) => ({ id: r.id, nationalId: r.national_id }));
  }

  async purge(before: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('challenge').where('state', '!=', 'pending').where('created_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
