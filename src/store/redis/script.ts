import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run atomically by Redis: the compare-and-set primitives of the Redis stores.
 * Called by SHA; sent in full once when Redis does not know it (first use, or after a restart).
 */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;
  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}

/** Redis hashes hold strings: `''` stands for null. */
export const nullable = (value: string | number | null | undefined): string => (value === null || value === undefined ? '' : String(value));
export const orNull = (value: string | undefined): string | null => (value === undefined || value === '' ? null : value);
export const numberOrNull = (value: string | undefined): number | null => (value === undefined || value === '' ? null : Number(value));

/** Runs a MULTI or pipeline and surfaces the first command error (ioredis returns them inline). */
export async function exec(batch: { exec(): Promise<Array<[Error | null, unknown]> | null> }): Promise<unknown[]> {
  const results = await batch.exec();
  if (!results) throw new Error('Redis transaction aborted');
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
