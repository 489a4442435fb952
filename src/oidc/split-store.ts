import type { AdapterPayload } from 'oidc-provider';
import type { Db } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';
import { SqlOidcModelStore, type OidcModelStore } from './adapter.ts';

/**
 * oidc-provider's short-lived models: written once or twice, read a few times, gone in seconds to
 * minutes. They live where the deployment keeps short-lived state (Redis for several nodes,
 * process memory for one: store/short-lived.ts). Sessions stay in SQL (they last hours, and the
 * wallet lists them per account); grants, tokens and clients too.
 */
export const SHORT_LIVED_OIDC_MODELS: ReadonlySet<string> = new Set(['Interaction', 'AuthorizationCode', 'ReplayDetection', 'PushedAuthorizationRequest']);

/** What a short-lived model backend offers (no listing by account, no purge: TTLs do that). */
export type ShortLivedModelStore = Pick<OidcModelStore, 'upsert' | 'find' | 'findBy' | 'consume' | 'destroy' | 'revokeByGrantId' | 'list'> & {
  /** Drops what has expired when the backend has no native TTL; returns how many. */
  purgeExpired?(): Promise<number>;
};

/** Registered services change rarely and are read ~7 times per login: each node keeps them this long. */
export const CLIENT_CACHE_MS = 10_000;

/**
 * The adapter's store with a short-lived backend: the models of `SHORT_LIVED_OIDC_MODELS` go to
 * it, everything else (and any lookup added later for sessions or grants) stays in SQL. Clients are
 * cached per node for `CLIENT_CACHE_MS`: a change made on another node (or by `vigie clients`)
 * applies everywhere within that delay.
 */
export class SplitOidcModelStore extends SqlOidcModelStore implements OidcModelStore {
  readonly #shortLived: ShortLivedModelStore;
  readonly #models: ReadonlySet<string>;
  readonly #clients = new Map<string, { payload: AdapterPayload; until: number }>();
  constructor(db: Db, clock: Clock, shortLived: ShortLivedModelStore, models: ReadonlySet<string> = SHORT_LIVED_OIDC_MODELS) {
    super(db, clock);
    this.#shortLived = shortLived;
    this.#models = models;
  }

  override upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    if (model === 'Client') this.#clients.delete(id);
    return this.#models.has(model) ? this.#shortLived.upsert(model, id, payload, expiresIn) : super.upsert(model, id, payload, expiresIn);
  }
  override async find(model: string, id: string): Promise<AdapterPayload | undefined> {
    if (this.#models.has(model)) return this.#shortLived.find(model, id);
    if (model !== 'Client') return super.find(model, id);
    const cached = this.#clients.get(id);
    if (cached && cached.until > Date.now()) return { ...cached.payload };
    const payload = await super.find(model, id);
    if (payload) this.#clients.set(id, { payload, until: Date.now() + CLIENT_CACHE_MS });
    else this.#clients.delete(id);
    return payload && { ...payload };
  }
  override findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    return this.#models.has(model) ? this.#shortLived.findBy(model, column, value) : super.findBy(model, column, value);
  }
  override consume(model: string, id: string): Promise<void> {
    return this.#models.has(model) ? this.#shortLived.consume(model, id) : super.consume(model, id);
  }
  override destroy(model: string, id: string): Promise<void> {
    if (model === 'Client') this.#clients.delete(id);
    return this.#models.has(model) ? this.#shortLived.destroy(model, id) : super.destroy(model, id);
  }
  override async revokeByGrantId(grantId: string): Promise<void> {
    await Promise.all([this.#shortLived.revokeByGrantId(grantId), super.revokeByGrantId(grantId)]);
  }
  override list(model: string): Promise<Array<{ id: string; payload: AdapterPayload }>> {
    return this.#models.has(model) ? this.#shortLived.list(model) : super.list(model);
  }
  override async purgeExpired(): Promise<number> {
    const [inSql, shortLived] = await Promise.all([super.purgeExpired(), this.#shortLived.purgeExpired?.() ?? 0]);
    return inSql + shortLived;
  }
}
