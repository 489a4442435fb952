import { sql, type Transaction } from 'kysely';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import type { Clock } from '../lib/clock.ts';
import type { AuditLog } from '../audit/log.ts';
import { seal, unseal } from '../lib/crypto.ts';
import { defineErrors } from '../lib/errors.ts';

/**
 * Signing keys live in the database, sealed with a key derived from VIGIE_SECRET, so every node
 * shares them. A node reads them when it starts. One key signs (`active`); the others are published
 * in the JWKS for verification only (`key_ops: ["verify"]`, which oidc-provider never signs with):
 * the `next` one, so that services know it before it signs, and the `retired` ones, so that tokens
 * they signed still verify. Rotation (operator commands, `SigningKeyRing`):
 *   add (next) → rolling restart → wait a day → activate (next → active → retired) → rolling
 *   restart → a session lifetime later, remove the retired one → rolling restart.
 */
export type SigningKeyState = 'next' | 'active' | 'retired';

export async function loadSigningKeys(db: Db, sealKey: Buffer, clock: Clock): Promise<JWK[]> {
  let rows = await publishedKeys(db);
  if (!rows.some((r) => r.state === 'active')) {
    await createFirstKey(db, sealKey, clock);
    rows = await publishedKeys(db);
  }
  const signing = rows.find((r) => r.state === 'active')!;
  // The signing key first, then the others, none of which may sign.
  return [signing, ...rows.filter((r) => r !== signing)].map((r) => {
    const jwk = JSON.parse(unseal(sealKey, r.sealed_jwk)) as JWK;
    return r === signing ? jwk : { ...jwk, key_ops: ['verify'] };
  });
}

/** Newest first: should two ever be active, the newer signs. */
function publishedKeys(db: Db) {
  return db.kysely.selectFrom('signing_key').select(['kid', 'state', 'sealed_jwk']).where('state', 'in', ['next', 'active', 'retired']).orderBy('created_at', 'desc').orderBy('kid').execute();
}

/** Any number, the same in every process: the lock of the first key's creation and of rotations. */
const KEY_LOCK = 7_305_118_224_361;

/**
 * The first key, created once however many nodes start together on an empty database: each would
 * otherwise make its own, publish only what it saw, and sign ID tokens that the JWKS another node
 * serves does not hold. PostgreSQL serialises the check and the insert on an advisory lock;
 * SQLite's transactions already take the write lock first (store/sqlite-dialect.ts).
 */
async function createFirstKey(db: Db, sealKey: Buffer, clock: Clock): Promise<void> {
  const full = await newKey();
  await locked(db, async (trx) => {
    const existing = await trx.selectFrom('signing_key').select('kid').where('state', '=', 'active').limit(1).executeTakeFirst();
    if (!existing) await trx.insertInto('signing_key').values({ kid: full.kid, alg: 'ES256', sealed_jwk: seal(sealKey, JSON.stringify(full)), state: 'active', created_at: clock.now(), changed_at: clock.now() }).execute();
  });
}

/** One change to the keys at a time, whoever makes it and wherever. */
function locked<T>(db: Db, body: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.kysely.transaction().execute(async (trx) => {
    if (db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${KEY_LOCK})`.execute(trx);
    return body(trx);
  });
}

async function newKey(): Promise<JWK & { kid: string }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg: 'ES256', use: 'sig' };
}

/**
 * How long the next key is published before it may sign: services that cache the JWKS (commonly a
 * day) then know it. openid-client and most libraries also refetch on an unknown kid, which is what
 * an emergency rotation (`now`) relies on.
 */
export const NEXT_KEY_NOTICE_MS = 24 * 3600_000;

export const keyErrors = defineErrors({
  NEXT_KEY_EXISTS: [409, 'A next key is already published: activate it, or remove it first.'],
  NO_NEXT_KEY: [409, 'No next key to activate: add one first (vigie keys add), then restart every node.'],
  TOO_SOON: [409, 'Too soon.'],
  KEY_NOT_FOUND: [404, 'No such signing key.'],
  KEY_IN_USE: [409, 'The active key cannot be removed: activate another one first.'],
});

export interface SigningKeyInfo {
  kid: string;
  state: SigningKeyState;
  createdAt: number;
  /** When it last changed state; null for keys made before rotation existed. */
  changedAt: number | null;
}

/** The operator's side of the signing keys (`vigie keys`): every change is audited and takes effect as the nodes restart. */
export class SigningKeyRing {
  readonly #db: Db;
  readonly #sealKey: Buffer;
  readonly #clock: Clock;
  readonly #audit: AuditLog;
  readonly #retiredKeptMs: number;
  /**
   * `retiredKeptMs`: how long a retired key stays published. Services keep the ID token of a login
   * for the whole session, and send it back as `id_token_hint` to log out, which oidc-provider
   * checks against the JWKS: the session lifetime (VIGIE_SESSION_TTL_HOURS), not the ID token's.
   */
  constructor(deps: { db: Db; sealKey: Buffer; clock: Clock; audit: AuditLog }, options: { retiredKeptMs: number }) {
    this.#db = deps.db;
    this.#sealKey = deps.sealKey;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
    this.#retiredKeptMs = options.retiredKeptMs;
  }

  async list(): Promise<SigningKeyInfo[]> {
    const rows = await this.#db.kysely.selectFrom('signing_key').select(['kid', 'state', 'created_at', 'changed_at']).orderBy('created_at', 'desc').orderBy('kid').execute();
    return rows.map((r) => ({ kid: r.kid, state: r.state as SigningKeyState, createdAt: Number(r.created_at), changedAt: r.changed_at === null ? null : Number(r.changed_at) }));
  }

  /** Publishes a new key that does not sign yet. */
  async add(): Promise<SigningKeyInfo> {
    const full = await newKey();
    const now = this.#clock.now();
    await locked(this.#db, async (trx) => {
      if (await trx.selectFrom('signing_key').select('kid').where('state', '=', 'next').executeTakeFirst()) throw keyErrors.NEXT_KEY_EXISTS();
      await trx.insertInto('signing_key').values({ kid: full.kid, alg: 'ES256', sealed_jwk: seal(this.#sealKey, JSON.stringify(full)), state: 'next', created_at: now, changed_at: now }).execute();
    });
    await this.#audit.append({ actor: 'operator', event: 'signing_key.added', details: { kid: full.kid } });
    return { kid: full.kid, state: 'next', createdAt: now, changedAt: now };
  }

  /**
   * The next key signs from now on (on each node once restarted); the active one retires. Refused
   * while the next key has been published for less than NEXT_KEY_NOTICE_MS, unless `now` (a key
   * that leaked must stop signing at once).
   */
  async activate(options: { now?: boolean } = {}): Promise<{ activated: string; retired: string[] }> {
    const now = this.#clock.now();
    const result = await locked(this.#db, async (trx) => {
      const next = await trx.selectFrom('signing_key').select(['kid', 'created_at', 'changed_at']).where('state', '=', 'next').executeTakeFirst();
      if (!next) throw keyErrors.NO_NEXT_KEY();
      const publishedAt = Number(next.changed_at ?? next.created_at);
      if (!options.now && now - publishedAt < NEXT_KEY_NOTICE_MS) {
        throw keyErrors.TOO_SOON({ message: `The next key was published at ${new Date(publishedAt).toISOString()}: services that cache the JWKS may not know it before ${new Date(publishedAt + NEXT_KEY_NOTICE_MS).toISOString()}. Activate it then, or now with --now if the active key leaked.` });
      }
      const retired = await trx.updateTable('signing_key').set({ state: 'retired', changed_at: now }).where('state', '=', 'active').returning('kid').execute();
      await trx.updateTable('signing_key').set({ state: 'active', changed_at: now }).where('kid', '=', next.kid).execute();
      return { activated: next.kid, retired: retired.map((r) => r.kid) };
    });
    await this.#audit.append({ actor: 'operator', event: 'signing_key.activated', details: { ...result, early: Boolean(options.now) } });
    return result;
  }

  /**
   * Stops publishing a retired key (or withdraws a next one). A retired key is kept `retiredKeptMs`
   * after its retirement, for the ID tokens it signed, unless `now` (it leaked: tokens it signed
   * must stop verifying). Nodes not yet restarted after the activation still signed with it: the
   * delay counts from the activation, so the operator waits as long after the last restart.
   */
  async remove(kid: string, options: { now?: boolean } = {}): Promise<void> {
    const now = this.#clock.now();
    await locked(this.#db, async (trx) => {
      const key = await trx.selectFrom('signing_key').select(['state', 'changed_at']).where('kid', '=', kid).executeTakeFirst();
      if (!key) throw keyErrors.KEY_NOT_FOUND();
      if (key.state === 'active') throw keyErrors.KEY_IN_USE();
      const retiredAt = Number(key.changed_at ?? 0);
      if (key.state === 'retired' && !options.now && now - retiredAt < this.#retiredKeptMs) {
        const hours = Math.round(this.#retiredKeptMs / 3600_000);
        throw keyErrors.TOO_SOON({ message: `Services may present ID tokens this key signed (to log out) for a session lifetime: keep it until ${new Date(retiredAt + this.#retiredKeptMs).toISOString()}, ${hours} h after its retirement, or as long after the last node restarted if later. Remove it now only with --now, if it leaked.` });
      }
      await trx.deleteFrom('signing_key').where('kid', '=', kid).execute();
    });
    await this.#audit.append({ actor: 'operator', event: 'signing_key.removed', details: { kid, early: Boolean(options.now) } });
  }
}
