import type { AdapterPayload } from 'oidc-provider';
import type { Clock } from '../lib/clock.ts';
import type { ShortLivedModelStore } from './split-store.ts';

/** A model written without a TTL still leaves memory eventually (as it leaves Redis). */
const FALLBACK_TTL_MS = 24 * 3600 * 1000;

interface Entry {
  json: string;
  expiresAt: number;
  /** The secondary keys as written, to unlink them when the entry goes. */
  uid: string | undefined;
  userCode: string | undefined;
  grantId: string | undefined;
  /** Epoch seconds, as oidc-provider reads `consumed`. */
  consumed: number | undefined;
}

/**
 * oidc-provider's short-lived models in this process's memory, for a single node (no REDIS_URL):
 * what Redis holds for several nodes. Like Redis here, nothing survives a restart: a login in
 * flight then starts again. Payloads are stored as JSON text so callers never share objects.
 */
export class MemoryOidcModelStore implements ShortLivedModelStore {
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  /** `model \0 column \0 value` → id, for findByUid / findByUserCode. */
  readonly #lookups = new Map<string, string>();
  /** grantId → keys of the entries carrying it. */
  readonly #grants = new Map<string, Set<string>>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  async upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    const key = `${model}\0${id}`;
    this.#remove(key);
    const expiresAt = this.#clock.now() + (expiresIn && expiresIn > 0 ? expiresIn * 1000 : FALLBACK_TTL_MS);
    const { uid, userCode, grantId } = payload;
    this.#entries.set(key, { json: JSON.stringify(payload), expiresAt, consumed: undefined, uid, userCode, grantId });
    if (uid) this.#lookups.set(`${model}\0uid\0${uid}`, id);
    if (userCode) this.#lookups.set(`${model}\0user_code\0${userCode}`, id);
    if (grantId) {
      const keys = this.#grants.get(grantId) ?? new Set<string>();
      keys.add(key);
      this.#grants.set(grantId, keys);
    }
  }

  async find(model: string, id: string): Promise<AdapterPayload | undefined> {
    const key = `${model}\0${id}`;
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#clock.now()) {
      this.#remove(key);
      return undefined;
    }
    const payload = JSON.parse(entry.json) as AdapterPayload;
    return entry.consumed === undefined ? payload : { ...payload, consumed: entry.consumed };
  }

  async findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const id = this.#lookups.get(`${model}\0${column}\0${value}`);
    return id === undefined ? undefined : this.find(model, id);
  }

  async consume(model: string, id: string): Promise<boolean> {
    const entry = this.#entries.get(`${model}\0${id}`);
    if (!entry || entry.consumed !== undefined) return false;
    entry.consumed = Math.floor(this.#clock.now() / 1000);
    return true;
  }

  async destroy(model: string, id: string): Promise<void> {
    this.#remove(`${model}\0${id}`);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const key of this.#grants.get(grantId) ?? []) this.#remove(key);
    this.#grants.delete(grantId);
  }

  /** Short-lived models are not listed (only clients are, and they live in SQL). */
  async list(_model: string): Promise<Array<{ id: string; payload: AdapterPayload }>> {
    return [];
  }

  async purgeExpired(): Promise<number> {
    const now = this.#clock.now();
    let purged = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now) continue;
      this.#remove(key);
      purged += 1;
    }
    return purged;
  }

  /** Forgets one entry and the lookups that still point at it. */
  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    const [model, id] = key.split('\0') as [string, string];
    const { uid, userCode, grantId } = entry;
    if (uid && this.#lookups.get(`${model}\0uid\0${uid}`) === id) this.#lookups.delete(`${model}\0uid\0${uid}`);
    if (userCode && this.#lookups.get(`${model}\0user_code\0${userCode}`) === id) this.#lookups.delete(`${model}\0user_code\0${userCode}`);
    if (grantId) {
      const keys = this.#grants.get(grantId);
      keys?.delete(key);
      if (keys?.size === 0) this.#grants.delete(grantId);
    }
  }
}
