import type { AdapterPayload } from 'oidc-provider';
import type { Db } from '../db.ts';
import type { Clock } from '../../lib/clock.ts';
import { SqlOidcModelStore, type OidcModelStore } from '../../oidc/adapter.ts';
import type { RedisHandle } from './client.ts';
import { LuaScript } from './script.ts';

/**
 * oidc-provider's short-lived models in Redis: written once or twice, read a few times, gone in
 * seconds to minutes. Sessions stay in SQL (they last hours, and the wallet lists them per
 * account); grants, tokens and clients too.
 */
export const REDIS_OIDC_MODELS: ReadonlySet<string> = new Set(['Interaction', 'AuthorizationCode', 'ReplayDetection', 'PushedAuthorizationRequest']);
/** A model written without a TTL still leaves Redis eventually. */
const FALLBACK_TTL_SECONDS = 24 * 3600;

// KEYS: model hash, grant index, uid index, user-code index. ARGV: payload, ttl, grant member, id, expires at.
const UPSERT = new LuaScript(`
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'e', ARGV[5])
redis.call('EXPIRE', KEYS[1], ttl)
if KEYS[2] ~= '' then
  redis.call('SADD', KEYS[2], ARGV[3])
  local current = redis.call('TTL', KEYS[2])
  if current < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'EX', ttl) end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4], 'EX', ttl) end
return 1
`);

const CONSUME = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'c', ARGV[1])
return 1
`);

// ARGV[1]: the model-key prefix; members are "<model>:<id>".
const REVOKE = new LuaScript(`
local members = redis.call('SMEMBERS', KEYS[1])
for _, member in ipairs(members) do redis.call('DEL', ARGV[1] .. member) end
redis.call('DEL', KEYS[1])
return #members
`);

export class RedisOidcModelStore {
  readonly #redis: RedisHandle;
  readonly #clock: Clock;
  constructor(redis: RedisHandle, clock: Clock) {
    this.#redis = redis;
    this.#clock = clock;
  }

  #key(model: string, id: string) {
    return this.#redis.key('om', model, id);
  }
  #index(kind: 'uid' | 'user_code', model: string, value: string) {
    return this.#redis.key('om-idx', kind, model, value);
  }

  async upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    const ttl = expiresIn && expiresIn > 0 ? Math.ceil(expiresIn) : FALLBACK_TTL_SECONDS;
    const keys = [
      this.#key(model, id),
      payload.grantId ? this.#redis.key('om-grant', payload.grantId) : '',
      payload.uid ? this.#index('uid', model, payload.uid) : '',
      payload.userCode ? this.#index('user_code', model, payload.userCode) : '',
    ];
    // `e` is the expiry by the injected clock (what the SQL store checks too); the native TTL frees the memory.
    const expiresAt = expiresIn ? this.#clock.now() + expiresIn * 1000 : '';
    await UPSERT.run(this.#redis.client, keys, [JSON.stringify(payload), ttl, `${model}:${id}`, id, expiresAt]);
  }

  async find(model: string, id: string): Promise<AdapterPayload | undefined> {
    const row = await this.#redis.client.hgetall(this.#key(model, id));
    if (!row.p || (row.e && Number(row.e) <= this.#clock.now())) return undefined;
    const payload = JSON.parse(row.p) as AdapterPayload;
    return row.c ? { ...payload, consumed: Number(row.c) } : payload;
  }

  async findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const id = await this.#redis.client.get(this.#index(column, model, value));
    return id ? this.find(model, id) : undefined;
  }

  async consume(model: string, id: string): Promise<void> {
    await CONSUME.run(this.#redis.client, [this.#key(model, id)], [Math.floor(this.#clock.now() / 1000)]);
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.#redis.client.del(this.#key(model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await REVOKE.run(this.#redis.client, [this.#redis.key('om-grant', grantId)], [this.#redis.key('om', '')]);
  }

  /** Short-lived models are not listed (only clients are, and they live in SQL). */
  async list(_model: string): Promise<Array<{ id: string; payload: AdapterPayload }>> {
    return [];
  }
}

/** Registered services change rarely and are read ~7 times per login: each node keeps them this long. */
export const CLIENT_CACHE_MS = 10_000;

/**
 * The adapter's store when Redis is configured: the models of `REDIS_OIDC_MODELS` go to Redis,
 * everything else (and any lookup added later for sessions or grants) stays in SQL. Clients are
 * cached per node for `CLIENT_CACHE_MS`: a change made on another node (or by `vigie clients`)
 * applies everywhere within that delay.
 */
export class SplitOidcModelStore extends SqlOidcModelStore implements OidcModelStore {
  readonly #redis: RedisOidcModelStore;
  readonly #models: ReadonlySet<string>;
  readonly #clients = new Map<string, { payload: AdapterPayload; until: number }>();
  constructor(db: Db, clock: Clock, redis: RedisOidcModelStore, models: ReadonlySet<string> = REDIS_OIDC_MODELS) {
    super(db, clock);
    this.#redis = redis;
    this.#models = models;
  }

  override upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    if (model === 'Client') this.#clients.delete(id);
    return this.#models.has(model) ? this.#redis.upsert(model, id, payload, expiresIn) : super.upsert(model, id, payload, expiresIn);
  }
  override async find(model: string, id: string): Promise<AdapterPayload | undefined> {
    if (this.#models.has(model)) return this.#redis.find(model, id);
    if (model !== 'Client') return super.find(model, id);
    const cached = this.#clients.get(id);
    if (cached && cached.until > Date.now()) return { ...cached.payload };
    const payload = await super.find(model, id);
    if (payload) this.#clients.set(id, { payload, until: Date.now() + CLIENT_CACHE_MS });
    else this.#clients.delete(id);
    return payload && { ...payload };
  }
  override findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    return this.#models.has(model) ? this.#redis.findBy(model, column, value) : super.findBy(model, column, value);
  }
  override consume(model: string, id: string): Promise<void> {
    return this.#models.has(model) ? this.#redis.consume(model, id) : super.consume(model, id);
  }
  override destroy(model: string, id: string): Promise<void> {
    if (model === 'Client') this.#clients.delete(id);
    return this.#models.has(model) ? this.#redis.destroy(model, id) : super.destroy(model, id);
  }
  override async revokeByGrantId(grantId: string): Promise<void> {
    await Promise.all([this.#redis.revokeByGrantId(grantId), super.revokeByGrantId(grantId)]);
  }
  override list(model: string): Promise<Array<{ id: string; payload: AdapterPayload }>> {
    return this.#models.has(model) ? this.#redis.list(model) : super.list(model);
  }
}
