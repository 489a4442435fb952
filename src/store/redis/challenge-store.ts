import { REPORTABLE_FOR_MS, type Challenge, type ChallengeState } from '../../challenge/challenge.ts';
import type { ChallengeStore, SettleFields } from '../../challenge/store.ts';
import type { RedisHandle } from './client.ts';
import { LuaScript, nullable, numberOrNull, orNull } from './script.ts';

/**
 * Push challenges in Redis (several nodes). One hash per challenge — `doc` holds the immutable
 * record as JSON, the other fields its mutable state — with a native TTL: the challenge's own
 * lifetime plus `RETAIN_MS`, long enough for the login page to finish with an approved one and
 * for one that ended unanswered to be reported as "not me" (REPORTABLE_FOR_MS).
 * Three sorted sets index it: pending challenges by deadline (the expiry sweep), challenges of a
 * professional by creation (the app's pending list), all challenges by creation (purge).
 *
 * Every transition is one Lua script, so compare-and-set on the state is atomic across nodes
 * exactly as the SQL store's `update … where state = 'pending'`. Logical time (`now`) comes from the
 * injected clock; only the physical TTL uses Redis's clock.
 *
 * `history` (the SQL store) keeps the lasting record the wallet and operators read (a login's
 * history, the context of the approval that opened a session): Redis decides every transition and
 * serves the reads; the SQL row is written after it, never read on the hot path. A challenge that
 * Redis loses (restart) stays pending there until the next sweep expires it.
 */
export const RETAIN_MS = REPORTABLE_FOR_MS;
/** Nothing is pending longer than this (challenge TTL is capped at 600 s by the configuration). */
const MAX_PENDING_MS = 60 * 60_000;
const LIST_LIMIT = 20;
/** How many of a professional's newest challenges a listing reads (pending or not: ended ones are dropped as it goes). */
const SCAN_LIMIT = 500;

// KEYS: the challenge, the pending index, the professional's index, the creation index.
// ARGV: the hash's fields (doc … nationalId), its TTL, id, createdAt, the professional index's TTL.
// One command instead of a MULTI of eight.
const CREATE = new LuaScript(`
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2], 'reason', ARGV[3], 'deviceId', ARGV[4], 'settledAt', ARGV[5], 'consumedAt', ARGV[6], 'expiresAt', ARGV[7], 'nationalId', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[9])
if ARGV[2] == 'pending' then redis.call('ZADD', KEYS[2], ARGV[7], ARGV[10]) end
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[11], ARGV[10])
  redis.call('PEXPIRE', KEYS[3], ARGV[12])
end
redis.call('ZADD', KEYS[4], ARGV[11], ARGV[10])
return 1
`);

const SETTLE = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'expiresAt')
if s[1] ~= 'pending' then return 0 end
local expires, now = tonumber(s[2]), tonumber(ARGV[2])
if ARGV[1] == 'expired' then
  if expires > now then return 0 end
elseif expires <= now then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'settledAt', ARGV[2], 'reason', ARGV[3], 'deviceId', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[5])
return 1
`);

const CONSUME = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'consumedAt')
if s[1] ~= 'approved' or (s[2] and s[2] ~= '') then return 0 end
redis.call('HSET', KEYS[1], 'consumedAt', ARGV[1])
return 1
`);

const EXPIRE_DUE = new LuaScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local s = redis.call('HMGET', key, 'state', 'nationalId')
  redis.call('ZREM', KEYS[1], id)
  if s[1] == 'pending' then
    redis.call('HSET', key, 'state', 'expired', 'settledAt', ARGV[1])
    table.insert(out, id)
    table.insert(out, s[2] or '')
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[4]))
return out
`);

// KEYS: the professional's index. ARGV: the challenge key prefix, how many ids to look at.
// One round trip: the pending challenges' hashes, newest first; settled or vanished ones leave the index.
const LIST_PENDING = new LuaScript(`
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '-inf', 'LIMIT', 0, tonumber(ARGV[2]))
local pending = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'state') == 'pending' then
    pending[#pending + 1] = redis.call('HGETALL', key)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return pending
`);

const PURGE = new LuaScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
local deleted = 0
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local state = redis.call('HGET', key, 'state')
  if not state then
    redis.call('ZREM', KEYS[1], id)
  elseif state ~= 'pending' then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
    deleted = deleted + 1
  end
end
return deleted
`);

export class RedisChallengeStore implements ChallengeStore {
  readonly #redis: RedisHandle;
  readonly #history: ChallengeStore | undefined;
  constructor(redis: RedisHandle, options: { history?: ChallengeStore } = {}) {
    this.#redis = redis;
    this.#history = options.history;
  }

  #key(id: string) {
    return this.#redis.key('ch', id);
  }
  get #due() {
    return this.#redis.key('ch-due');
  }
  get #created() {
    return this.#redis.key('ch-created');
  }
  #ofProfessional(nationalId: string) {
    return this.#redis.key('ch-pro', nationalId);
  }

  async create(c: Challenge): Promise<void> {
    const ttl = Math.max(1000, c.expiresAt - c.createdAt) + RETAIN_MS;
    await CREATE.run(
      this.#redis.client,
      [this.#key(c.id), this.#due, this.#ofProfessional(c.nationalId ?? ''), this.#created],
      [JSON.stringify(c), c.state, nullable(c.reason), nullable(c.deviceId), nullable(c.settledAt), nullable(c.consumedAt), c.expiresAt, nullable(c.nationalId), ttl, c.id, c.createdAt, MAX_PENDING_MS],
    );
    await this.#history?.create(c);
  }

  async get(id: string): Promise<Challenge | undefined> {
    return toChallenge(await this.#redis.client.hgetall(this.#key(id)));
  }

  async listPending(nationalId: string, now: number): Promise<Challenge[]> {
    // Read well past the list's length: a flood of silent requests must not hide a pushed one.
    const rows = (await LIST_PENDING.run(this.#redis.client, [this.#ofProfessional(nationalId)], [this.#key(''), SCAN_LIMIT])) as string[][];
    const pending: Challenge[] = [];
    for (const flat of rows) {
      const row: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) row[flat[i]!] = flat[i + 1]!;
      const challenge = toChallenge(row);
      if (challenge && challenge.expiresAt > now) pending.push(challenge);
    }
    return pending.sort((a, b) => Number(b.delivery === 'push') - Number(a.delivery === 'push') || b.createdAt - a.createdAt).slice(0, LIST_LIMIT);
  }

  async settle(id: string, to: Exclude<ChallengeState, 'pending'>, now: number, fields: SettleFields = {}): Promise<boolean> {
    const won = (await SETTLE.run(this.#redis.client, [this.#key(id), this.#due], [to, now, nullable(fields.reason), nullable(fields.deviceId), id])) === 1;
    if (won) await this.#history?.settle(id, to, now, fields);
    return won;
  }

  async consume(id: string, now: number): Promise<boolean> {
    // Not mirrored: the record keeps how the challenge was settled, the single use matters only live.
    return (await CONSUME.run(this.#redis.client, [this.#key(id)], [now])) === 1;
  }

  async expireDue(now: number): Promise<Array<Pick<Challenge, 'id' | 'nationalId'>>> {
    const flat = (await EXPIRE_DUE.run(this.#redis.client, [this.#due, this.#created], [now, this.#key(''), 500, MAX_PENDING_MS + RETAIN_MS])) as string[];
    const expired: Array<Pick<Challenge, 'id' | 'nationalId'>> = [];
    for (let i = 0; i < flat.length; i += 2) expired.push({ id: flat[i] as string, nationalId: orNull(flat[i + 1]) });
    // The same sweep on the record (it also ends the rows of challenges Redis lost).
    await this.#history?.expireDue(now);
    return expired;
  }

  async purge(before: number): Promise<number> {
    const live = Number(await PURGE.run(this.#redis.client, [this.#created], [before, this.#key('')]));
    return live + ((await this.#history?.purge(before)) ?? 0);
  }
}

function toChallenge(row: Record<string, string>): Challenge | undefined {
  if (!row.doc) return undefined;
  const doc = JSON.parse(row.doc) as Challenge;
  return {
    ...doc,
    state: row.state as ChallengeState,
    reason: orNull(row.reason),
    deviceId: orNull(row.deviceId),
    settledAt: numberOrNull(row.settledAt),
    consumedAt: numberOrNull(row.consumedAt),
  };
}
