import type { AdapterPayload } from 'oidc-provider';
import type { Clock } from '../../lib/clock.ts';
import type { ShortLivedModelStore } from '../../oidc/split-store.ts';
import type { RedisHandle } from './client.ts';
import { LuaScript } from './script.ts';

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

// 0 when it is gone or already consumed: exactly one caller wins.
const CONSUME = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'c') == 1 then return 0 end
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

/** oidc-provider's short-lived models (oidc/split-store.ts) in Redis, with native TTLs, for several nodes. */
export class RedisOidcModelStore implements ShortLivedModelStore {
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

  async consume(model: string, id: string): Promise<boolean> {
    return (await CONSUME.run(this.#redis.client, [this.#key(model, id)], [Math.floor(this.#clock.now() / 1000)])) === 1;
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
