import type { Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import { prepared } from '../store/prepared.ts';
import type { Database, DeviceTable, ActivationTable } from '../store/schema.ts';

export type DeviceState = 'active' | 'locked' | 'revoked';

export interface Device {
  id: string;
  nationalId: string;
  name: string;
  publicKey: JsonWebKey;
  pinHash: string;
  pinFailures: number;
  state: DeviceState;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export type ActivationState = 'pending' | 'completed' | 'failed' | 'expired';

/** An activation attempt: a record with a state and an expiry, like a challenge. */
export interface ActivationFlow {
  id: string;
  nationalId: string;
  method: 'operator_code';
  codeHash: string;
  attempts: number;
  state: ActivationState;
  createdAt: number;
  expiresAt: number;
  settledAt: number | null;
  deviceId: string | null;
}

export interface DeviceStore {
  get(id: string): Promise<Device | undefined>;
  listByProfessional(nationalId: string): Promise<Device[]>;
  /**
   * Atomically counts one wrong PIN; locks the device when `max` is reached. Undefined when the
   * device is no longer active (locked, revoked or gone meanwhile): nothing is counted.
   */
  recordPinFailure(id: string, max: number, now: number): Promise<{ failures: number; locked: boolean } | undefined>;
  /** A right PIN: resets the failure count and marks the device used; false when it is no longer active. */
  recordPinSuccess(id: string, now: number): Promise<boolean>;
  setState(id: string, state: DeviceState, now: number): Promise<boolean>;
  touch(id: string, now: number): Promise<void>;
  /** Remembers a request nonce; false when it was already seen (a replay). */
  rememberNonce(deviceId: string, nonce: string, expiresAt: number): Promise<boolean>;
  purgeNonces(now: number): Promise<number>;
}

export interface ActivationStore {
  create(flow: ActivationFlow): Promise<void>;
  /**
   * The professional's newest flow, when it is still pending and unexpired: issuing a code
   * retires every earlier one, even once the newest is used or expired.
   */
  latestPending(nationalId: string, now: number): Promise<ActivationFlow | undefined>;
  /** Completes the flow and registers the device in one transaction, once. */
  complete(id: string, device: Device, now: number): Promise<boolean>;
}

function toDevice(row: DeviceTable): Device {
  return {
    id: row.id,
    nationalId: row.national_id,
    name: row.name,
    publicKey: JSON.parse(row.public_key) as JsonWebKey,
    pinHash: row.pin_hash,
    pinFailures: row.pin_failures,
    state: row.state as DeviceState,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

function toFlow(row: ActivationTable): ActivationFlow {
  return {
    id: row.id,
    nationalId: row.national_id,
    method: row.method as ActivationFlow['method'],
    codeHash: row.code_hash,
    attempts: row.attempts,
    state: row.state as ActivationState,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    settledAt: row.settled_at,
    deviceId: row.device_id,
  };
}

// The statements of every signed device call, built once (store/prepared.ts).
const deviceById = prepared((db, id: string) => db.selectFrom('device').selectAll().where('id', '=', id));
const devicesOf = prepared((db, nationalId: string) => db.selectFrom('device').selectAll().where('national_id', '=', nationalId).orderBy('created_at'));
const resetPinFailures = prepared((db, id: string, now: number) => db.updateTable('device').set({ pin_failures: 0, last_used_at: now }).where('id', '=', id).where('state', '=', 'active'));
const insertNonce = prepared((db, deviceId: string, nonce: string, expiresAt: number) =>
  db.insertInto('device_nonce').values({ device_id: deviceId, nonce, expires_at: expiresAt }).onConflict((oc) => oc.columns(['device_id', 'nonce']).doNothing()),
);

export class SqlDeviceStore implements DeviceStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async get(id: string): Promise<Device | undefined> {
    const row = (await deviceById(this.#db, id)).rows[0];
    return row && toDevice(row);
  }

  async listByProfessional(nationalId: string): Promise<Device[]> {
    return (await devicesOf(this.#db, nationalId)).rows.map(toDevice);
  }

  async recordPinFailure(id: string, max: number, now: number): Promise<{ failures: number; locked: boolean } | undefined> {
    return this.#db.kysely.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('device')
        .set((eb) => ({ pin_failures: eb('pin_failures', '+', 1), last_used_at: now }))
        .where('id', '=', id)
        .where('state', '=', 'active')
        .returning('pin_failures')
        .executeTakeFirst();
      if (!row) return undefined;
      if (row.pin_failures < max) return { failures: row.pin_failures, locked: false };
      await tx.updateTable('device').set({ state: 'locked' }).where('id', '=', id).execute();
      return { failures: row.pin_failures, locked: true };
    });
  }

  async recordPinSuccess(id: string, now: number): Promise<boolean> {
    // Conditional on `active`: a right PIN racing the wrong guesses that locked the device loses.
    return (await resetPinFailures(this.#db, id, now)).numAffectedRows === 1n;
  }

  async setState(id: string, state: DeviceState, now: number): Promise<boolean> {
    const result = await this.#db.kysely
      .updateTable('device')
      .set({ state, ...(state === 'revoked' ? { revoked_at: now } : {}) })
      .where('id', '=', id)
      .where('state', '!=', 'revoked')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async touch(id: string, now: number): Promise<void> {
    await this.#db.kysely.updateTable('device').set({ last_used_at: now }).where('id', '=', id).execute();
  }

  async rememberNonce(deviceId: string, nonce: string, expiresAt: number): Promise<boolean> {
    return (await insertNonce(this.#db, deviceId, nonce, expiresAt)).numAffectedRows === 1n;
  }

  async purgeNonces(now: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('device_nonce').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

export async function insertDevice(executor: Kysely<Database>, d: Device): Promise<void> {
  await executor
    .insertInto('device')
    .values({
      id: d.id,
      national_id: d.nationalId,
      name: d.name,
      public_key: JSON.stringify(d.publicKey),
      pin_hash: d.pinHash,
      pin_failures: d.pinFailures,
      state: d.state,
      created_at: d.createdAt,
      last_used_at: d.lastUsedAt,
      revoked_at: d.revokedAt,
    })
    .execute();
}

export class SqlActivationStore implements ActivationStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(f: ActivationFlow): Promise<void> {
    await this.#db.kysely
      .insertInto('activation')
      .values({ id: f.id, national_id: f.nationalId, method: f.method, code_hash: f.codeHash, attempts: f.attempts, state: f.state, created_at: f.createdAt, expires_at: f.expiresAt, settled_at: f.settledAt, device_id: f.deviceId })
      .execute();
  }

  async latestPending(nationalId: string, now: number): Promise<ActivationFlow | undefined> {
    const row = await this.#db.kysely
      .selectFrom('activation')
      .selectAll()
      .where('national_id', '=', nationalId)
      // Email + SMS flows (activation.ts) live in the same table and are never completed by an operator code.
      .where('method', '=', 'operator_code')
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && row.state === 'pending' && row.expires_at > now ? toFlow(row) : undefined;
  }

  async complete(id: string, device: Device, now: number): Promise<boolean> {
    return this.#db.kysely.transaction().execute(async (tx) => {
      const result = await tx
        .updateTable('activation')
        .set({ state: 'completed', settled_at: now, device_id: device.id })
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await insertDevice(tx, device);
      return true;
    });
  }
}
