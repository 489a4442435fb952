import { sql } from 'kysely';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';
import { seal, unseal } from '../lib/crypto.ts';

/**
 * Signing keys live in the database, sealed with a key derived from VIGIE_SECRET, so every node
 * shares them. The newest active key signs; older ones stay published in the JWKS for rotation.
 */
export async function loadSigningKeys(db: Db, sealKey: Buffer, clock: Clock): Promise<JWK[]> {
  const active = () => db.kysely.selectFrom('signing_key').selectAll().where('state', '=', 'active').orderBy('created_at', 'desc').execute();
  let rows = await active();
  if (!rows.length) {
    await createFirstKey(db, sealKey, clock);
    rows = await active();
  }
  return rows.map((r) => JSON.parse(unseal(sealKey, r.sealed_jwk)) as JWK);
}

/** Any number, the same in every process: the lock of the first key's creation. */
const FIRST_KEY_LOCK = 7_305_118_224_361;

/**
 * The first key, created once however many nodes start together on an empty database: each would
 * otherwise make its own, publish only what it saw, and sign ID tokens that the JWKS another node
 * serves does not hold. PostgreSQL serialises the check and the insert on an advisory lock;
 * SQLite's transactions already take the write lock first (store/sqlite-dialect.ts).
 */
async function createFirstKey(db: Db, sealKey: Buffer, clock: Clock): Promise<void> {
  const full = await newKey();
  await db.kysely.transaction().execute(async (trx) => {
    if (db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${FIRST_KEY_LOCK})`.execute(trx);
    const existing = await trx.selectFrom('signing_key').select('kid').where('state', '=', 'active').limit(1).executeTakeFirst();
    if (!existing) await trx.insertInto('signing_key').values({ kid: full.kid, alg: 'ES256', sealed_jwk: seal(sealKey, JSON.stringify(full)), state: 'active', created_at: clock.now() }).execute();
  });
}

async function newKey(): Promise<JWK & { kid: string }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg: 'ES256', use: 'sig' };
}

