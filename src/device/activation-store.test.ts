import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachStoreBackend } from '../../test/support/backends.ts';
import { RedisCodeActivationStore } from '../store/redis/device-store.ts';
import { randomId } from '../lib/crypto.ts';
import { SqlCodeActivationStore, SqlRevokeTokenStore } from './activation-store.ts';
import type { CodeActivation } from './activation.ts';
import type { Device } from './store.ts';

const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);
const TTL = 10 * 60_000;

function flow(overrides: Partial<CodeActivation> = {}): CodeActivation {
  return { id: randomId(), nationalId: '810000000017', state: 'pending', emailCodeHash: 'e', smsCodeHash: 's', attempts: 0, keyThumbprint: null, sourceIp: '192.0.2.1', createdAt: T0, expiresAt: T0 + TTL, settledAt: null, deviceId: null, ...overrides };
}

function device(nationalId = '810000000017'): Device {
  return { id: randomId(), nationalId, name: 'e-CPS', publicKey: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }, pinHash: 'h', pinFailures: 0, state: 'active', createdAt: T0, lastUsedAt: null, revokedAt: null };
}

forEachStoreBackend('CodeActivationStore', ({ db, redis }) => {
  // With Redis, the flows live there and the device and its revocation link are written to SQL.
  const store = () => {
    const r = redis();
    return r ? new RedisCodeActivationStore(r, db()) : new SqlCodeActivationStore(db());
  };
  const devices = async (nationalId: string) => db().kysely.selectFrom('device').select(['id', 'state']).where('national_id', '=', nationalId).execute();

  it('creates and reads back a flow; operator-code rows are not email + SMS flows', async () => {
    const f = flow();
    await store().create(f);
    assert.deepEqual(await store().get(f.id), f);
    await db().kysely.insertInto('activation').values({ id: 'op', national_id: f.nationalId, method: 'operator_code', code_hash: 'x', attempts: 0, state: 'pending', created_at: T0, expires_at: T0 + TTL, settled_at: null, device_id: null }).execute();
    assert.equal(await store().get('op'), undefined);
  });

  it('counts flows per identifier and per source within the window', async () => {
    const nationalId = '810000000025';
    for (const [createdAt, sourceIp] of [[T0 - 3_600_001, '198.51.100.1'], [T0 - 10, '198.51.100.1'], [T0, '198.51.100.2']] as const) await store().create(flow({ nationalId, createdAt, sourceIp }));
    assert.equal(await store().countSince({ nationalId }, T0 - 3_600_000), 2);
    assert.equal(await store().countSince({ sourceIp: '198.51.100.1' }, T0 - 3_600_000), 1);
  });

  it('recordAttempt fails the flow at the limit; markVerified then loses', async () => {
    const f = flow();
    await store().create(f);
    for (let i = 1; i <= 5; i += 1) assert.equal(await store().recordAttempt(f.id, 5, T0), i);
    assert.equal((await store().get(f.id))?.state, 'failed');
    assert.equal(await store().markVerified(f.id, 'k', 5, T0), false);
  });

  it('markVerified is compare-and-set, and refuses an expired flow', async () => {
    const f = flow();
    await store().create(f);
    const [a, b] = await Promise.all([store().markVerified(f.id, 'key-a', 5, T0), store().markVerified(f.id, 'key-b', 5, T0)]);
    assert.equal(Number(a) + Number(b), 1);
    assert.equal((await store().get(f.id))?.keyThumbprint, a ? 'key-a' : 'key-b');
    const late = flow();
    await store().create(late);
    assert.equal(await store().markVerified(late.id, 'k', 5, T0 + TTL), false);
  });

  it('complete inserts the device and its revocation token once, only for the bound key, before expiry', async () => {
    const nationalId = '810000000033';
    const f = flow({ nationalId });
    await store().create(f);
    await store().markVerified(f.id, 'key', 5, T0);
    assert.equal(await store().complete(f.id, 'other-key', device(nationalId), { tokenHash: randomId(), expiresAt: T0 + 1 }, T0), false);
    assert.equal(await store().complete(f.id, 'key', device(nationalId), { tokenHash: randomId(), expiresAt: T0 + 1 }, T0 + TTL), false, 'expired');
    const results = await Promise.all(Array.from({ length: 4 }, () => store().complete(f.id, 'key', device(nationalId), { tokenHash: randomId(), expiresAt: T0 + 1 }, T0)));
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal((await devices(nationalId)).length, 1);
    assert.equal((await db().kysely.selectFrom('device_revoke_token').select('device_id').where('national_id', '=', nationalId).execute()).length, 1);
    assert.equal((await store().get(f.id))?.state, 'completed');
  });

  it('expire settles only overdue pending or verified flows', async () => {
    const f = flow();
    await store().create(f);
    assert.equal(await store().expire(f.id, T0 + TTL - 1), false);
    assert.equal(await store().expire(f.id, T0 + TTL), true);
    assert.equal((await store().get(f.id))?.state, 'expired');
    assert.equal(await store().expire(f.id, T0 + TTL), false);
  });

  it('a revocation token is single use, revokes its device, and expires', async () => {
    const tokens = new SqlRevokeTokenStore(db());
    const nationalId = '810000000041';
    const f = flow({ nationalId });
    await store().create(f);
    await store().markVerified(f.id, 'key', 5, T0);
    const d = device(nationalId);
    await store().complete(f.id, 'key', d, { tokenHash: 'token-1', expiresAt: T0 + 1000 }, T0);
    assert.deepEqual(await tokens.peek('token-1', T0), { deviceId: d.id, nationalId });
    assert.equal(await tokens.peek('token-1', T0 + 1000), undefined, 'expired');
    const [a, b] = await Promise.all([tokens.use('token-1', T0), tokens.use('token-1', T0)]);
    assert.equal([a, b].filter(Boolean).length, 1);
    assert.equal((await devices(nationalId))[0]?.state, 'revoked');
    assert.equal(await tokens.peek('token-1', T0), undefined);
    assert.ok((await tokens.purge(T0 + 1001)) >= 1);
    assert.equal((await db().kysely.selectFrom('device_revoke_token').select('token_hash').where('token_hash', '=', 'token-1').execute()).length, 0, 'purged once expired');
  });
});
