import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../../test/support/backends.ts';
import { randomId } from '../lib/crypto.ts';
import { sql, type Kysely } from 'kysely';
import { prepared } from './prepared.ts';

const insertNonce = prepared((db, deviceId: string, nonce: string, expiresAt: number) =>
  db.insertInto('device_nonce').values({ device_id: deviceId, nonce, expires_at: expiresAt }).onConflict((oc) => oc.columns(['device_id', 'nonce']).doNothing()),
);
// A constant of the query ('x-%') stays in place between the values.
const noncesOf = prepared((db, deviceId: string, notBefore: number, limit: number) =>
  db.selectFrom('device_nonce').select(['nonce', 'expires_at']).where('device_id', '=', deviceId).where('nonce', 'not like', 'x-%').where('expires_at', '>=', notBefore).orderBy('nonce').limit(limit),
);

forEachBackend('prepared statements', ({ db }) => {
  it('binds each call its own values, keeps the constants, and reports affected rows', async () => {
    const device = randomId();
    for (const [nonce, at] of [['b', 20], ['a', 10], ['x-skipped', 30], ['c', 5]] as const) {
      assert.equal((await insertNonce(db(), device, nonce, at)).numAffectedRows, 1n);
    }
    assert.equal((await insertNonce(db(), device, 'a', 99)).numAffectedRows ?? 0n, 0n, 'the conflict does nothing');
    assert.deepEqual((await noncesOf(db(), device, 10, 10)).rows.map((r) => ({ ...r })), [{ nonce: 'a', expires_at: 10 }, { nonce: 'b', expires_at: 20 }]);
    assert.deepEqual((await noncesOf(db(), device, 0, 1)).rows.map((r) => ({ ...r })), [{ nonce: 'a', expires_at: 10 }]);
    assert.deepEqual((await noncesOf(db(), randomId(), 0, 10)).rows, []);
  });

  it('keeps working when a migration adds a column to a table it reads whole (rolling upgrade)', async () => {
    const table = `t_${randomId(6).toLowerCase().replace(/[^a-z0-9]/g, '')}`;
    await sql`create table ${sql.table(table)} (id text primary key, n integer)`.execute(db().kysely);
    await sql`insert into ${sql.table(table)} values ('a', 1)`.execute(db().kysely);
    const whole = prepared((kysely, id: string) => (kysely as unknown as Kysely<Record<string, { id: string; n: number }>>).selectFrom(table).selectAll().where('id', '=', id));
    assert.equal((await whole(db(), 'a')).rows[0]?.n, 1);
    await sql`alter table ${sql.table(table)} add column extra text`.execute(db().kysely);
    await sql`update ${sql.table(table)} set extra = 'new'`.execute(db().kysely);
    // Every connection of the pool may have prepared it: call more often than the pool is large.
    for (let i = 0; i < 12; i += 1) assert.deepEqual({ ...(await whole(db(), 'a')).rows[0] }, { id: 'a', n: 1, extra: 'new' });
  });

  it('waits for a transaction in progress instead of joining it (its rollback leaves the statement be)', async () => {
    const device = randomId();
    let inside!: () => void;
    const opened = new Promise<void>((resolve) => (inside = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = db()
      .kysely.transaction()
      .execute(async (trx) => {
        await trx.insertInto('device_nonce').values({ device_id: device, nonce: 'in-tx', expires_at: 1 }).execute();
        inside();
        await held;
        throw new Error('rolled back');
      });
    await opened;
    const outside = insertNonce(db(), device, 'outside', 2);
    release();
    await assert.rejects(transaction, /rolled back/);
    assert.equal((await outside).numAffectedRows, 1n);
    assert.deepEqual((await noncesOf(db(), device, 0, 10)).rows.map((r) => r.nonce), ['outside']);
  });

  it('refuses, at its first use, a builder that does not pass a value through', async () => {
    const wrong = prepared((kysely, id: string) => kysely.selectFrom('device').selectAll().where('id', '=', id.toUpperCase()));
    await assert.rejects(wrong(db(), 'd1'), /value 0 does not reach the parameters/);
  });
});
