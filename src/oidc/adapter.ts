import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../store/db.ts';
import { prepared } from '../store/prepared.ts';
import type { Clock } from '../lib/clock.ts';

/**
 * oidc-provider's storage contract over our SQL store: every model (Session, Grant,
 * AuthorizationCode, AccessToken, Client, Interaction...) is one row keyed by (model, id), with
 * its TTL as `expires_at` and the lookups the provider needs indexed.
 */
export interface OidcModelStore {
  upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void>;
  find(model: string, id: string): Promise<AdapterPayload | undefined>;
  findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined>;
  /** Marks it consumed; false when it already was (or is gone): exactly one caller wins. */
  consume(model: string, id: string): Promise<boolean>;
  destroy(model: string, id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
  list(model: string): Promise<Array<{ id: string; payload: AdapterPayload }>>;
  purgeExpired(): Promise<number>;
  /** Unexpired rows of one model whose payload's `accountId` is this account (the wallet's sessions). */
  listByAccount(model: string, accountId: string): Promise<Array<{ id: string; payload: AdapterPayload }>>;
  /** Deletes every row carrying this account (sessions, grants, codes, tokens): a forced logout everywhere. */
  destroyByAccount(accountId: string): Promise<number>;
}

/** Registered services change rarely and are read ~7 times per login: each node keeps them this long. */
export const CLIENT_CACHE_MS = 10_000;

// The statements of every protocol request, built once (store/prepared.ts).
const upsertModel = prepared((db, model: string, id: string, payload: string, grantId: string | null, userCode: string | null, uid: string | null, accountId: string | null, expiresAt: number | null) => {
  const row = { payload, grant_id: grantId, user_code: userCode, uid, account_id: accountId, expires_at: expiresAt };
  return db.insertInto('oidc_model').values({ model, id, consumed_at: null, ...row }).onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet(row));
});
const modelByColumn = (column: 'id' | 'uid' | 'user_code') =>
  prepared((db, model: string, value: string) => db.selectFrom('oidc_model').select(['payload', 'expires_at', 'consumed_at']).where('model', '=', model).where(column, '=', value));
const modelBy = { id: modelByColumn('id'), uid: modelByColumn('uid'), user_code: modelByColumn('user_code') };

export class SqlOidcModelStore implements OidcModelStore {
  readonly #db: Db;
  readonly #clock: Clock;
  // A change made on another node (or by `vigie clients`) applies here within CLIENT_CACHE_MS;
  // this node's own writes at once. Unknown ids are not cached.
  readonly #clients = new Map<string, { payload: AdapterPayload; until: number }>();
  constructor(db: Db, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    if (model === 'Client') this.#clients.delete(id);
    const expiresAt = expiresIn ? this.#clock.now() + expiresIn * 1000 : null;
    const accountId = typeof payload.accountId === 'string' ? payload.accountId : null;
    await upsertModel(this.#db, model, id, JSON.stringify(payload), payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, accountId, expiresAt);
    // Again: a find while the write was on its way may have cached the old row.
    if (model === 'Client') this.#clients.delete(id);
  }

  async find(model: string, id: string): Promise<AdapterPayload | undefined> {
    if (model !== 'Client') return this.#one(model, 'id', id);
    const now = Date.now();
    const cached = this.#clients.get(id);
    if (cached && cached.until > now) return { ...cached.payload };
    const payload = await this.#one(model, 'id', id);
    if (!payload) {
      this.#clients.delete(id);
      return undefined;
    }
    if (this.#clients.size >= 1000) this.#clients.clear();
    this.#clients.set(id, { payload, until: now + CLIENT_CACHE_MS });
    return { ...payload };
  }

  async findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    return this.#one(model, column, value);
  }

  async #one(model: string, column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const row = (await modelBy[column](this.#db, model, value)).rows[0];
    if (!row || (row.expires_at !== null && row.expires_at <= this.#clock.now())) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    return row.consumed_at === null ? payload : { ...payload, consumed: Math.floor(row.consumed_at / 1000) };
  }

  async consume(model: string, id: string): Promise<boolean> {
    const result = await this.#db.kysely.updateTable('oidc_model').set({ consumed_at: this.#clock.now() }).where('model', '=', model).where('id', '=', id).where('consumed_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async destroy(model: string, id: string): Promise<void> {
    if (model === 'Client') this.#clients.delete(id);
    await this.#db.kysely.deleteFrom('oidc_model').where('model', '=', model).where('id', '=', id).execute();
    if (model === 'Client') this.#clients.delete(id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#db.kysely.deleteFrom('oidc_model').where('grant_id', '=', grantId).execute();
  }

  async list(model: string): Promise<Array<{ id: string; payload: AdapterPayload }>> {
    const rows = await this.#db.kysely.selectFrom('oidc_model').select(['id', 'payload']).where('model', '=', model).orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, payload: JSON.parse(r.payload) as AdapterPayload }));
  }

  async listByAccount(model: string, accountId: string): Promise<Array<{ id: string; payload: AdapterPayload }>> {
    const now = this.#clock.now();
    const rows = await this.#db.kysely
      .selectFrom('oidc_model')
      .select(['id', 'payload'])
      .where('account_id', '=', accountId)
      .where('model', '=', model)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, payload: JSON.parse(r.payload) as AdapterPayload }));
  }

  async destroyByAccount(accountId: string): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('oidc_model').where('account_id', '=', accountId).where('model', '!=', 'Client').executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async purgeExpired(): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('oidc_model').where('expires_at', '<=', this.#clock.now()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** The per-model adapter class oidc-provider instantiates (`new Adapter('Session')`). */
export function adapterFactory(store: OidcModelStore): new (model: string) => Adapter {
  return class SqlAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }
    upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      return store.upsert(this.model, id, payload, expiresIn);
    }
    find(id: string) {
      return store.find(this.model, id);
    }
    findByUid(uid: string) {
      return store.findBy(this.model, 'uid', uid);
    }
    findByUserCode(userCode: string) {
      return store.findBy(this.model, 'user_code', userCode);
    }
    /**
     * oidc-provider reads a code or refresh token, checks it is unused, then consumes it: two
     * requests using it at once would both pass the check. The store's consume is the real check;
     * the loser is a replay, treated as oidc-provider treats one it sees (RFC 6749 §4.1.2): refused,
     * and the grant revoked with every token it issued.
     */
    async consume(id: string) {
      if (await store.consume(this.model, id)) return;
      const grantId = (await store.find(this.model, id))?.grantId;
      if (typeof grantId === 'string') await Promise.all([store.revokeByGrantId(grantId), store.destroy('Grant', grantId)]);
      throw new errors.InvalidGrant(`${this.model === 'AuthorizationCode' ? 'authorization code' : 'token'} already used`);
    }
    destroy(id: string) {
      return store.destroy(this.model, id);
    }
    revokeByGrantId(grantId: string) {
      return store.revokeByGrantId(grantId);
    }
  };
}
