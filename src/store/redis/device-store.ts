import type { Db } from '../db.ts';
import type { Clock } from '../../lib/clock.ts';
import { SqlDeviceStore, insertDevice, type ActivationFlow, type ActivationState, type ActivationStore, type Device } from '../../device/store.ts';
import type { CodeActivationStore } from '../../device/activation-store.ts';
import type { CodeActivation, CodeActivationState } from '../../device/activation.ts';
import type { RedisHandle } from './client.ts';
import { LuaScript, exec, nullable, numberOrNull, orNull } from './script.ts';

/**
 * Devices stay in SQL (they must last); only the replay nonces of signed requests, which live
 * two signature windows, move to Redis: `SET NX` with a native TTL is the whole replay check.
 */
export class RedisNonceDeviceStore extends SqlDeviceStore {
  readonly #redis: RedisHandle;
  readonly #clock: Clock;
  constructor(db: Db, redis: RedisHandle, clock: Clock) {
    super(db);
    this.#redis = redis;
    this.#clock = clock;
  }

  override async rememberNonce(deviceId: string, nonce: string, expiresAt: number): Promise<boolean> {
    const ttl = Math.max(1000, expiresAt - this.#clock.now());
    const set = await this.#redis.client.set(this.#redis.key('nonce', deviceId, nonce), '1', 'PX', ttl, 'NX');
    return set === 'OK';
  }

  /** Redis forgets nonces by itself. */
  override async purgeNonces(_now: number): Promise<number> {
    return 0;
  }
}

/** Activation flows are kept this long after their deadline, for the record of how they ended. */
const RETAIN_MS = 15 * 60_000;

const COMPLETE = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'expiresAt')
if s[1] ~= 'pending' or tonumber(s[2]) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'completed', 'settledAt', ARGV[1], 'deviceId', ARGV[2])
return 1
`);

const UNDO_COMPLETE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'deviceId') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'settledAt', '', 'deviceId', '')
return 1
`);

/**
 * Activation flows in Redis: a hash per flow (immutable `doc` + mutable state) with a native TTL,
 * and a sorted set per professional. `complete` claims the flow atomically in Redis, then writes
 * the device to SQL; should that write fail, the claim is undone so the code can be used again.
 */
export class RedisActivationStore implements ActivationStore {
  readonly #redis: RedisHandle;
  readonly #db: Db;
  constructor(redis: RedisHandle, db: Db) {
    this.#redis = redis;
    this.#db = db;
  }

  #key(id: string) {
    return this.#redis.key('act', id);
  }
  #ofProfessional(nationalId: string) {
    return this.#redis.key('act-pro', nationalId);
  }

  async create(f: ActivationFlow): Promise<void> {
    const ttl = Math.max(1000, f.expiresAt - f.createdAt) + RETAIN_MS;
    const tx = this.#redis.client.multi();
    tx.hset(this.#key(f.id), {
      doc: JSON.stringify(f),
      state: f.state,
      attempts: String(f.attempts),
      settledAt: nullable(f.settledAt),
      deviceId: nullable(f.deviceId),
      expiresAt: String(f.expiresAt),
    });
    tx.pexpire(this.#key(f.id), ttl);
    tx.zadd(this.#ofProfessional(f.nationalId), f.createdAt, f.id);
    tx.pexpire(this.#ofProfessional(f.nationalId), ttl);
    await exec(tx);
  }

  async get(id: string): Promise<ActivationFlow | undefined> {
    return toFlow(await this.#redis.client.hgetall(this.#key(id)));
  }

  async latestPending(nationalId: string, now: number): Promise<ActivationFlow | undefined> {
    const [newest] = await this.#redis.client.zrevrange(this.#ofProfessional(nationalId), 0, 0);
    if (!newest) return undefined;
    const flow = toFlow(await this.#redis.client.hgetall(this.#key(newest)));
    return flow?.state === 'pending' && flow.expiresAt > now ? flow : undefined;
  }

  async complete(id: string, device: Device, now: number): Promise<boolean> {
    const key = this.#key(id);
    if ((await COMPLETE.run(this.#redis.client, [key], [now, device.id])) !== 1) return false;
    try {
      await insertDevice(this.#db.kysely, device);
    } catch (error) {
      await UNDO_COMPLETE.run(this.#redis.client, [key], [device.id]).catch(() => {});
      throw error;
    }
    return true;
  }
}

function toFlow(row: Record<string, string>): ActivationFlow | undefined {
  if (!row.doc) return undefined;
  const doc = JSON.parse(row.doc) as ActivationFlow;
  return {
    ...doc,
    state: row.state as ActivationState,
    attempts: Number(row.attempts),
    settledAt: numberOrNull(row.settledAt),
    deviceId: orNull(row.deviceId),
  };
}

// ---------------------------------------------------------------- email + SMS activation flows

const CODE_RECORD_ATTEMPT = new LuaScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return tonumber(ARGV[1]) end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts >= tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'state', 'failed', 'settledAt', ARGV[2]) end
return attempts
`);

const CODE_VERIFY = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'expiresAt')
if s[1] ~= 'pending' or tonumber(s[2]) >= tonumber(ARGV[2]) or tonumber(s[3]) <= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'verified', 'keyThumbprint', ARGV[1])
return 1
`);

const CODE_COMPLETE = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'keyThumbprint', 'expiresAt')
if s[1] ~= 'verified' or s[2] ~= ARGV[1] or tonumber(s[3]) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'completed', 'settledAt', ARGV[2], 'deviceId', ARGV[3])
return 1
`);

const CODE_UNDO_COMPLETE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'deviceId') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'verified', 'settledAt', '', 'deviceId', '')
return 1
`);

const CODE_EXPIRE = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'expiresAt')
if (s[1] ~= 'pending' and s[1] ~= 'verified') or tonumber(s[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'expired', 'settledAt', ARGV[1])
return 1
`);

/** Sends are counted over the last hour (activation.ts); the indexes keep a day. */
const SEND_INDEX_MS = 24 * 3600_000;

/**
 * Activations by email + SMS codes in Redis (several nodes): a hash per flow with a native TTL,
 * every transition one Lua compare-and-set, and two sorted sets (per identifier, per source
 * address) for the send limits. `complete` claims the flow in Redis, then writes the device and
 * its revocation link to SQL in one transaction; should that fail, the claim is undone.
 */
export class RedisCodeActivationStore implements CodeActivationStore {
  readonly #redis: RedisHandle;
  readonly #db: Db;
  constructor(redis: RedisHandle, db: Db) {
    this.#redis = redis;
    this.#db = db;
  }

  #key(id: string) {
    return this.#redis.key('cact', id);
  }
  #index(by: { nationalId: string } | { sourceIp: string }) {
    return 'nationalId' in by ? this.#redis.key('cact-id', by.nationalId) : this.#redis.key('cact-ip', by.sourceIp);
  }

  async create(f: CodeActivation): Promise<void> {
    const ttl = Math.max(1000, f.expiresAt - f.createdAt) + RETAIN_MS;
    const tx = this.#redis.client.multi();
    tx.hset(this.#key(f.id), {
      doc: JSON.stringify(f),
      state: f.state,
      attempts: String(f.attempts),
      keyThumbprint: nullable(f.keyThumbprint),
      settledAt: nullable(f.settledAt),
      deviceId: nullable(f.deviceId),
      expiresAt: String(f.expiresAt),
    });
    tx.pexpire(this.#key(f.id), ttl);
    for (const index of [this.#index({ nationalId: f.nationalId }), this.#index({ sourceIp: f.sourceIp })]) {
      tx.zadd(index, f.createdAt, f.id);
      tx.zremrangebyscore(index, '-inf', f.createdAt - SEND_INDEX_MS);
      tx.pexpire(index, SEND_INDEX_MS);
    }
    await exec(tx);
  }

  async get(id: string): Promise<CodeActivation | undefined> {
    const row = await this.#redis.client.hgetall(this.#key(id));
    if (!row.doc) return undefined;
    const doc = JSON.parse(row.doc) as CodeActivation;
    return {
      ...doc,
      state: row.state as CodeActivationState,
      attempts: Number(row.attempts),
      keyThumbprint: orNull(row.keyThumbprint),
      settledAt: numberOrNull(row.settledAt),
      deviceId: orNull(row.deviceId),
    };
  }

  async delete(id: string): Promise<void> {
    const flow = await this.get(id);
    const tx = this.#redis.client.multi();
    tx.del(this.#key(id));
    if (flow) {
      tx.zrem(this.#index({ nationalId: flow.nationalId }), id);
      tx.zrem(this.#index({ sourceIp: flow.sourceIp }), id);
    }
    await exec(tx);
  }

  async countSince(by: { nationalId: string } | { sourceIp: string }, since: number): Promise<number> {
    return this.#redis.client.zcount(this.#index(by), `(${since}`, '+inf');
  }

  async recordAttempt(id: string, max: number, now: number): Promise<number> {
    return Number(await CODE_RECORD_ATTEMPT.run(this.#redis.client, [this.#key(id)], [max, now]));
  }

  async markVerified(id: string, keyThumbprint: string, maxAttempts: number, now: number): Promise<boolean> {
    return (await CODE_VERIFY.run(this.#redis.client, [this.#key(id)], [keyThumbprint, maxAttempts, now])) === 1;
  }

  async complete(id: string, keyThumbprint: string, device: Device, revoke: { tokenHash: string; expiresAt: number }, now: number): Promise<boolean> {
    const key = this.#key(id);
    if ((await CODE_COMPLETE.run(this.#redis.client, [key], [keyThumbprint, now, device.id])) !== 1) return false;
    try {
      await this.#db.kysely.transaction().execute(async (tx) => {
        await insertDevice(tx, device);
        await tx
          .insertInto('device_revoke_token')
          .values({ token_hash: revoke.tokenHash, device_id: device.id, national_id: device.nationalId, created_at: now, expires_at: revoke.expiresAt, used_at: null })
          .execute();
      });
    } catch (error) {
      await CODE_UNDO_COMPLETE.run(this.#redis.client, [key], [device.id]).catch(() => {});
      throw error;
    }
    return true;
  }

  async expire(id: string, now: number): Promise<boolean> {
    return (await CODE_EXPIRE.run(this.#redis.client, [this.#key(id)], [now])) === 1;
  }
}
