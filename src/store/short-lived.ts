import type { Logger } from 'pino';
import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import { InProcessBus, type EventBus } from '../events/bus.ts';
import { RedisBus } from '../events/redis-bus.ts';
import { SqlChallengeStore, type ChallengeStore } from '../challenge/store.ts';
import { SqlActivationStore, SqlDeviceStore } from '../device/store.ts';
import { SqlOidcModelStore } from '../oidc/adapter.ts';
import { openRedis, type RedisHandle } from './redis/client.ts';
import { RedisChallengeStore } from './redis/challenge-store.ts';
import { RedisActivationStore, RedisCodeActivationStore, RedisNonceDeviceStore } from './redis/device-store.ts';
import { SqlCodeActivationStore, type CodeActivationStore } from '../device/activation-store.ts';
import { RedisOidcModelStore } from './redis/oidc-model-store.ts';
import { SplitOidcModelStore } from '../oidc/split-store.ts';
import { MemoryOidcModelStore } from '../oidc/memory-models.ts';

/**
 * Where short-lived state lives, decided once. Without `REDIS_URL` (one node): oidc-provider's
 * short-lived models in process memory (lost on restart, as they would be with Redis), the rest in
 * the SQL database, and an in-process bus. With it (several nodes): pending challenges, activation
 * flows (operator code, email + SMS codes), device nonces and oidc-provider's short-lived models in Redis with native TTLs, events
 * over Redis pub/sub; what must last (directory, devices, clients, keys, grants, sessions, audit)
 * stays in SQL either way.
 */
export interface ShortLivedStores {
  redis: RedisHandle | undefined;
  bus: EventBus;
  challenges: ChallengeStore;
  devices: SqlDeviceStore;
  activations: SqlActivationStore | RedisActivationStore;
  codeActivations: CodeActivationStore;
  models: SqlOidcModelStore;
}

export async function openShortLivedStores(db: Db, options: { redisUrl: string | undefined; clock: Clock; logger: Logger }): Promise<ShortLivedStores> {
  const { clock } = options;
  if (!options.redisUrl) {
    return {
      redis: undefined,
      bus: new InProcessBus(),
      challenges: new SqlChallengeStore(db),
      devices: new SqlDeviceStore(db),
      activations: new SqlActivationStore(db),
      codeActivations: new SqlCodeActivationStore(db),
      models: new SplitOidcModelStore(db, clock, new MemoryOidcModelStore(clock)),
    };
  }
  const redis = await openRedis(options.redisUrl, { onError: throttledWarning(options.logger) });
  return {
    redis,
    bus: await RedisBus.open(redis),
    // The SQL table stays the lasting record of each login attempt (wallet history).
    challenges: new RedisChallengeStore(redis, { history: new SqlChallengeStore(db) }),
    devices: new RedisNonceDeviceStore(db, redis, clock),
    activations: new RedisActivationStore(redis, db),
    codeActivations: new RedisCodeActivationStore(redis, db),
    models: new SplitOidcModelStore(db, clock, new RedisOidcModelStore(redis, clock)),
  };
}

/** ioredis reports every failed reconnection (up to one a second): log the first, then one per 30 s. */
function throttledWarning(logger: Logger): (error: Error) => void {
  let last = 0;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < 30_000) {
      suppressed += 1;
      return;
    }
    logger.warn({ err: error, suppressed }, 'Redis connection error (reconnecting)');
    last = now;
    suppressed = 0;
  };
}
