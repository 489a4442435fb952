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

/**
 * The adapter's store with a short-lived backend: the models of `SHORT_LIVED_OIDC_MODELS` go to
 * it, everything else (and any lookup added later for sessions or grants) stays in SQL, clients
 * with their per-node cache (oidc/adapter.ts).
 */
export class SplitOidcModelStore extends SqlOidcModelStore implements OidcModelStore {
  readonly #shortLived: ShortLivedModelStore;
  readonly #models: ReadonlySet<string>;
  constructor(db: Db, clock: Clock, shortLived: ShortLivedModelStore, models: ReadonlySet<string> = SHORT_LIVED_OIDC_MODELS) {
    super(db, clock);
    this.#shortLived = shortLived;
    this.#models = models;
  }

  override upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    return this.#models.has(model) ? this.#shortLived.upsert(model, id, payload, expiresIn) : super.upsert(model, id, payload, expiresIn);
  }
  override find(model: string, id: string): Promise<AdapterPayload | undefined> {
    return this.#models.has(model) ? this.#shortLived.find(model, id) : super.find(model, id);
  }
  override findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    return this.#models.has(model) ? this.#shortLived.findBy(model, column, value) : super.findBy(model, column, value);
  }
  override consume(model: string, id: string): Promise<boolean> {
    return this.#models.has(model) ? this.#shortLived.consume(model, id) : super.consume(model, id);
  }
  override destroy(model: string, id: string): Promise<void> {
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
