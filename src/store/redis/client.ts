import { Redis, type RedisOptions } from 'ioredis';

/**
 * The Redis connection behind every short-lived store and the event bus.
 *
 * `REDIS_URL` is a plain `redis://` URL; an optional `prefix` query parameter (default `vigie:`)
 * namespaces every key and channel, so one Redis can serve several deployments or test runs:
 * `redis://10.0.0.5:6379/0?prefix=vigie-prod:`.
 *
 * Failures are fast on purpose: no offline queue, one retry, a command timeout. A request that
 * needs Redis while it is away fails at once (HTTP 503, see http/errors.ts) instead of piling up,
 * and the connection heals in the background.
 */
export interface RedisHandle {
  client: Redis;
  /** Namespaced key: `key('ch', id)` → `vigie:ch:<id>`. */
  key(...parts: string[]): string;
  readonly prefix: string;
  /** A second connection for SUBSCRIBE (a subscribed connection cannot run other commands). */
  duplicate(): Redis;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_PREFIX = 'vigie:';
const COMMAND_TIMEOUT_MS = 3000;

export function parseRedisUrl(url: string): { url: string; prefix: string } {
  const parsed = new URL(url);
  const prefix = parsed.searchParams.get('prefix') ?? DEFAULT_PREFIX;
  parsed.searchParams.delete('prefix');
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(prefix)) throw new Error('REDIS_URL: prefix must be 1-64 characters among A-Z a-z 0-9 : _ . -');
  return { url: parsed.toString(), prefix };
}

export const redisOptions: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  // Commands issued in the same tick (concurrent requests) go out in one write: fewer syscalls.
  enableAutoPipelining: true,
  connectTimeout: COMMAND_TIMEOUT_MS,
  commandTimeout: COMMAND_TIMEOUT_MS,
  // Reconnect forever, backing off to one attempt a second: a restarted Redis is found again.
  retryStrategy: (times: number) => Math.min(times * 100, 1000),
};

/** Connects (waiting up to `timeoutMs` for the first connection) and returns the handle. */
export async function openRedis(url: string, options: { timeoutMs?: number; onError?: (error: Error) => void } = {}): Promise<RedisHandle> {
  const { url: bare, prefix } = parseRedisUrl(url);
  const client = new Redis(bare, redisOptions);
  // ioredis reports every failed reconnection; the caller decides how loudly (it heals by itself).
  client.on('error', (error: Error) => options.onError?.(error));
  await withTimeout(client.connect(), options.timeoutMs ?? 10_000, `Redis at ${redact(bare)} is not reachable`).catch((error: unknown) => {
    client.disconnect();
    throw error;
  });
  const duplicates: Redis[] = [];
  return {
    client,
    prefix,
    key: (...parts: string[]) => prefix + parts.join(':'),
    duplicate() {
      const copy = client.duplicate({ ...redisOptions, lazyConnect: false, enableOfflineQueue: true, commandTimeout: undefined });
      copy.on('error', (error: Error) => options.onError?.(error));
      duplicates.push(copy);
      return copy;
    },
    async ping() {
      await client.ping();
    },
    async close() {
      for (const copy of duplicates) copy.disconnect();
      await client.quit().catch(() => client.disconnect());
    },
  };
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Deletes every key under `prefix` (tests and `vigie` tooling; never a FLUSHALL). */
export async function deleteByPrefix(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) deleted += await client.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
