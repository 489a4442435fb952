import type { Db } from '../store/db.ts';
import type { ActivationTable } from '../store/schema.ts';
import { insertDevice, type Device } from './store.ts';
import type { CodeActivation, CodeActivationState } from './activation.ts';

/**
 * Persistence of activations by email + SMS codes: rows of the `activation` table with method
 * `email_sms`. Every state change is a compare-and-set on the current state and the expiry, so
 * two racing requests can never both verify, or both complete, one flow.
 */
export interface CodeActivationStore {
  create(flow: CodeActivation): Promise<void>;
  get(id: string): Promise<CodeActivation | undefined>;
  delete(id: string): Promise<void>;
  /** Flows started since `since` for this identifier, or from this source address. */
  countSince(by: { nationalId: string } | { sourceIp: string }, since: number): Promise<number>;
  /** Counts one wrong attempt; fails the flow at `max`. Returns the new count. */
  recordAttempt(id: string, max: number, now: number): Promise<number>;
  /** pending → verified, binding the flow to a device key; false when another request won. */
  markVerified(id: string, keyThumbprint: string, maxAttempts: number, now: number): Promise<boolean>;
  /**
   * verified → completed and the device inserted with its revocation link, in one transaction;
   * false (nothing written) when the flow is no longer verified, expired or bound to another key.
   */
  complete(id: string, keyThumbprint: string, device: Device, revoke: { tokenHash: string; expiresAt: number }, now: number): Promise<boolean>;
  /** pending|verified → expired once past the deadline. */
  expire(id: string, now: number): Promise<boolean>;
}

function toFlow(row: ActivationTable): CodeActivation {
  return {
    id: row.id,
    nationalId: row.national_id,
    state: row.state as CodeActivationState,
    emailCodeHash: row.code_hash,
    smsCodeHash: row.sms_code_hash ?? '',
    attempts: row.attempts,
    keyThumbprint: row.key_thumbprint ?? null,
    sourceIp: row.source_ip ?? '',
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    settledAt: row.settled_at,
    deviceId: row.device_id,
  };
}

const METHOD = 'email_sms';

export class SqlCodeActivationStore implements CodeActivationStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(f: CodeActivation): Promise<void> {
    await this.#db.kysely
      .insertInto('activation')
      .values({
        id: f.id, national_id: f.nationalId, method: METHOD, code_hash: f.emailCodeHash, sms_code_hash: f.smsCodeHash, attempts: f.attempts,
        state: f.state, created_at: f.createdAt, expires_at: f.expiresAt, settled_at: f.settledAt, device_id: f.deviceId, key_thumbprint: f.keyThumbprint, source_ip: f.sourceIp,
      })
      .execute();
  }

  async get(id: string): Promise<CodeActivation | undefined> {
    const row = await this.#db.kysely.selectFrom('activation').selectAll().where('id', '=', id).where('method', '=', METHOD).executeTakeFirst();
    return row && toFlow(row);
  }

  async delete(id: string): Promise<void> {
    await this.#db.kysely.deleteFrom('activation').where('id', '=', id).where('method', '=', METHOD).execute();
  }

  async countSince(by: { nationalId: string } | { sourceIp: string }, since: number): Promise<number> {
    let query = this.#db.kysely.selectFrom('activation').select((eb) => eb.fn.countAll().as('n')).where('method', '=', METHOD).where('created_at', '>', since);
    query = 'nationalId' in by ? query.where('national_id', '=', by.nationalId) : query.where('source_ip', '=', by.sourceIp);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async recordAttempt(id: string, max: number, now: number): Promise<number> {
    return this.#db.kysely.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('activation')
        .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .returning('attempts')
        .executeTakeFirst();
      if (!row) return max;
      if (row.attempts >= max) await tx.updateTable('activation').set({ state: 'failed', settled_at: now }).where('id', '=', id).where('state', '=', 'pending').execute();
      return row.attempts;
    });
  }

  async markVerified(id: string, keyThumbprint: string, maxAttempts: number, now: number): Promise<boolean> {
    const result = await this.#db.kysely
      .updateTable('activation')
      .set({ state: 'verified', key_thumbprint: keyThumbprint })
      .where('id', '=', id)
      .where('method', '=', METHOD)
      .where('state', '=', 'pending')
      .where('attempts', '<', maxAttempts)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async complete(id: string, keyThumbprint: string, device: Device, revoke: { tokenHash: string; expiresAt: number }, now: number): Promise<boolean> {
    return this.#db.kysely.transaction().execute(async (tx) => {
      const result = await tx
        .updateTable('activation')
        .set({ state: 'completed', settled_at: now, device_id: device.id })
        .where('id', '=', id)
        .where('method', '=', METHOD)
        .where('state', '=', 'verified')
        .where('key_thumbprint', '=', keyThumbprint)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await insertDevice(tx, device);
      await tx
        .insertInto('device_revoke_token')
        .values({ token_hash: revoke.tokenHash, device_id: device.id, national_id: device.nationalId, created_at: now, expires_at: revoke.expiresAt, used_at: null })
        .execute();
      return true;
    });
  }

  async expire(id: string, now: number): Promise<boolean> {
    const result = await this.#db.kysely
      .updateTable('activation')
      .set({ state: 'expired', settled_at: now })
      .where('id', '=', id)
      .where('method', '=', METHOD)
      .where('state', 'in', ['pending', 'verified'])
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

/** The "ce n'était pas moi" links of activation notices: single use, with an expiry. */
export class SqlRevokeTokenStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  /** A link for a device that already exists (activation codes insert theirs with the device). */
  async issue(revoke: { tokenHash: string; deviceId: string; nationalId: string; expiresAt: number }, now: number): Promise<void> {
    await this.#db.kysely
      .insertInto('device_revoke_token')
      .values({ token_hash: revoke.tokenHash, device_id: revoke.deviceId, national_id: revoke.nationalId, created_at: now, expires_at: revoke.expiresAt, used_at: null })
      .execute();
  }

  /** The device a live, unused token names, without spending it (the confirmation page). */
  async peek(tokenHash: string, now: number): Promise<{ deviceId: string; nationalId: string } | undefined> {
    const row = await this.#db.kysely
      .selectFrom('device_revoke_token')
      .select(['device_id', 'national_id'])
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row && { deviceId: row.device_id, nationalId: row.national_id };
  }

  /** Spends the token and revokes its device in one transaction; undefined when the token is not live. */
  async use(tokenHash: string, now: number): Promise<{ deviceId: string; nationalId: string; revoked: boolean } | undefined> {
    return this.#db.kysely.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('device_revoke_token')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning(['device_id', 'national_id'])
        .executeTakeFirst();
      if (!row) return undefined;
      const result = await tx.updateTable('device').set({ state: 'revoked', revoked_at: now }).where('id', '=', row.device_id).where('state', '!=', 'revoked').executeTakeFirst();
      return { deviceId: row.device_id, nationalId: row.national_id, revoked: Number(result.numUpdatedRows) === 1 };
    });
  }

  async purge(now: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('device_revoke_token').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
