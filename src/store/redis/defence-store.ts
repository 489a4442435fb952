import type { Db } from '../db.ts';
import { SqlDefenceStore, windowStartOf, type DefenceStore, type RateWindow } from '../../defence/store.ts';
import type { RedisHandle } from './client.ts';
import { LuaScript } from './script.ts';

/** Physical TTLs outlive the logical windows by this much (clock skew between nodes and Redis). */
const SLACK_MS = 60_000;
/** A flag's physical TTL when its end, by the injected clock, is already past by Redis's clock. */
const FLAG_FLOOR_MS = 24 * 3600_000;

// One command per counter instead of a MULTI of four: the login request touches half a dozen of
// them, and each command costs the node more CPU than Redis's work on it.
const HIT = new LuaScript(`
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {count, redis.call('GET', KEYS[2]) or '0'}`);
const ADD_DISTINCT = new LuaScript(`
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return #redis.call('SUNION', KEYS[1], KEYS[2])`);

/**
 * The defences' rate counters, distinct-target sets and flags in Redis (several nodes): the hottest
 * writes of a login (a dozen per request) become INCR/SADD with a native TTL instead of SQL upserts.
 * As the defences' store says, windows stay numbered by the injected clock (`floor(now / windowMs)`
 * in the key); the TTL only collects garbage. What must last — professional state (back-off,
 * budget), blocks, signals, places, settings, the journal — stays in SQL (inherited).
 */
export class RedisDefenceStore extends SqlDefenceStore implements DefenceStore {
  readonly #redis: RedisHandle;
  constructor(db: Db, redis: RedisHandle) {
    super(db);
    this.#redis = redis;
  }

  #window(kind: 'c' | 'd', key: string, windowStart: number) {
    return this.#redis.key('def', kind, key, String(windowStart));
  }

  override async hit(key: string, windowMs: number, now: number): Promise<RateWindow> {
    const windowStart = windowStartOf(now, windowMs);
    const [count, previous] = (await HIT.run(this.#redis.client, [this.#window('c', key, windowStart), this.#window('c', key, windowStart - windowMs)], [2 * windowMs + SLACK_MS])) as [number, string];
    return { current: Number(count), previous: Number(previous), windowStart };
  }

  override async peek(key: string, windowMs: number, now: number): Promise<RateWindow> {
    const windowStart = windowStartOf(now, windowMs);
    const [current, previous] = await this.#redis.client.mget(this.#window('c', key, windowStart), this.#window('c', key, windowStart - windowMs));
    return { current: Number(current ?? 0), previous: Number(previous ?? 0), windowStart };
  }

  override async addDistinct(key: string, member: string, windowMs: number, now: number): Promise<number> {
    const windowStart = windowStartOf(now, windowMs);
    return Number(await ADD_DISTINCT.run(this.#redis.client, [this.#window('d', key, windowStart), this.#window('d', key, windowStart - windowMs)], [member, 2 * windowMs + SLACK_MS]));
  }

  override async setFlag(key: string, until: number): Promise<void> {
    await this.#redis.client.set(this.#redis.key('def', 'f', key), String(until), 'PX', Math.max(until - Date.now() + SLACK_MS, FLAG_FLOOR_MS));
  }

  override async flag(key: string, now: number): Promise<number | undefined> {
    const until = await this.#redis.client.get(this.#redis.key('def', 'f', key));
    return until !== null && Number(until) > now ? Number(until) : undefined;
  }
}
