import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';
import { seal, unseal } from '../lib/crypto.ts';

/**
 * Signing keys live in the database, sealed with a key derived from VIGIE_SECRET, so every node
 * shares them. The newest active key signs; older ones stay published in the JWKS for rotation.
 */
export async function loadSigningKeys(db: Db, sealKey: Buffer, clock: Clock): Promise<JWK[]> {
  const rows = await db.kysely.selectFrom('signing_key').selectAll().where('state', '=', 'active').orderBy('created_at', 'desc').execute();
  if (rows.length) return rows.map((r) => JSON.parse(unseal(sealKey, r.sealed_jwk)) as JWK);
  await rotateSigningKey(db, sealKey, clock);
  return loadSigningKeys(db, sealKey, clock);
}

/** Adds a fresh ES256 key in front; keys generated concurrently by two starting nodes both stay valid. */
export async function rotateSigningKey(db: Db, sealKey: Buffer, clock: Clock): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  const full: JWK = { ...jwk, kid, alg: 'ES256', use: 'sig' };
  await db.kysely.insertInto('signing_key').values({ kid, alg: 'ES256', sealed_jwk: seal(sealKey, JSON.stringify(full)), state: 'active', created_at: clock.now() }).execute();
  return kid;
}
