import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, forEachStoreBackend } from '../../test/support/backends.ts';
import { systemClock } from '../lib/clock.ts';
import { RedisNonceDeviceStore } from '../store/redis/device-store.ts';
import { randomId } from '../lib/crypto.ts';
import type { Db } from '../store/db.ts';
import { SqlActivationStore, SqlDeviceStore, insertDevice, type ActivationFlow, type Device } from './store.ts';

const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);
const MAX_PIN = 3;
const JWK: JsonWebKey = { kty: 'EC', crv: 'P-256', x: 'x'.repeat(43), y: 'y'.repeat(43) };

function device(overrides: Partial<Device> = {}): Device {
  return {
    id: randomId(),
    nationalId: '810000000017',
    name: 'Téléphone',
    publicKey: JWK,
    pinHash: 'hash',
    pinFailures: 0,
    state: 'active',
    createdAt: T0,
    lastUsedAt: null,
    revokedAt: null,
    ...overrides,
  };
}

function flow(overrides: Partial<ActivationFlow> = {}): ActivationFlow {
  return {
    id: randomId(),
    nationalId: '810000000017',
    method: 'operator_code',
    codeHash: 'code-hash',
    attempts: 0,
    state: 'pending',
    createdAt: T0,
    expiresAt: T0 + 15 * 60_000,
    settledAt: null,
    deviceId: null,
    ...overrides,
  };
}

async function flowRow(db: Db, id: string) {
  return db.kysely.selectFrom('activation').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

forEachStoreBackend('DeviceStore', ({ db, redis }) => {
  // With Redis, devices stay in SQL and only the nonces move (src/store/redis/device-store.ts).
  const store = () => {
    const r = redis();
    return r ? new RedisNonceDeviceStore(db(), r, systemClock) : new SqlDeviceStore(db());
  };
  const added = async (overrides: Partial<Device> = {}) => {
    const d = device(overrides);
    await insertDevice(db().kysely, d);
    return d;
  };

  it('reads back a device and lists a professional’s devices oldest first', async () => {
    const nationalId = '810000000025';
    const second = await added({ nationalId, createdAt: T0 + 1 });
    const first = await added({ nationalId, createdAt: T0 });
    assert.deepEqual(await store().get(first.id), first);
    assert.deepEqual((await store().listByProfessional(nationalId)).map((d) => d.id), [first.id, second.id]);
    assert.equal(await store().get('unknown'), undefined);
  });

  it('recordPinFailure counts each wrong PIN and locks the device at the maximum', async () => {
    const d = await added();
    assert.deepEqual(await store().recordPinFailure(d.id, MAX_PIN, T0 + 1), { failures: 1, locked: false });
    assert.deepEqual(await store().recordPinFailure(d.id, MAX_PIN, T0 + 2), { failures: 2, locked: false });
    assert.deepEqual(await store().recordPinFailure(d.id, MAX_PIN, T0 + 3), { failures: 3, locked: true });
    const locked = await store().get(d.id);
    assert.equal(locked?.state, 'locked');
    assert.equal(locked?.pinFailures, 3);
    // A locked device stays locked and the count no longer moves.
    assert.equal(await store().recordPinFailure(d.id, MAX_PIN, T0 + 4), undefined);
    assert.equal((await store().get(d.id))?.pinFailures, 3);
  });

  it('five concurrent wrong PINs: the count stops at the maximum and the device is locked', async () => {
    const d = await added();
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store().recordPinFailure(d.id, MAX_PIN, T0 + i)));
    const counted = results.filter((r) => r !== undefined);
    assert.deepEqual(counted.map((r) => [r.failures, r.locked]).sort(), [[1, false], [2, false], [3, true]], JSON.stringify(results));
    assert.equal(results.filter((r) => r === undefined).length, 5 - MAX_PIN, 'the guesses after the lock found it locked: not counted');
    const after = await store().get(d.id);
    assert.equal(after?.pinFailures, MAX_PIN);
    assert.equal(after?.state, 'locked');
  });

  it('recordPinSuccess resets the count and marks the device used', async () => {
    const d = await added();
    await store().recordPinFailure(d.id, MAX_PIN, T0 + 1);
    await store().recordPinFailure(d.id, MAX_PIN, T0 + 2);
    assert.equal(await store().recordPinSuccess(d.id, T0 + 3), true);
    const after = await store().get(d.id);
    assert.equal(after?.pinFailures, 0);
    assert.equal(after?.lastUsedAt, T0 + 3);
    assert.deepEqual(await store().recordPinFailure(d.id, MAX_PIN, T0 + 4), { failures: 1, locked: false });
  });

  it('recordPinSuccess on a locked or revoked device is refused and changes nothing', async () => {
    const d = await added();
    for (let i = 0; i < MAX_PIN; i += 1) await store().recordPinFailure(d.id, MAX_PIN, T0 + i);
    assert.equal(await store().recordPinSuccess(d.id, T0 + 10), false);
    const after = await store().get(d.id);
    assert.equal(after?.state, 'locked');
    assert.equal(after?.pinFailures, MAX_PIN);
    const revoked = await added({ state: 'revoked' });
    assert.equal(await store().recordPinSuccess(revoked.id, T0 + 10), false);
    assert.equal(await store().recordPinSuccess(d.id.replace(/.$/, '~'), T0 + 10), false, 'unknown device');
  });

  it('setState never brings a revoked device back', async () => {
    const d = await added();
    assert.equal(await store().setState(d.id, 'revoked', T0 + 5), true);
    assert.equal((await store().get(d.id))?.revokedAt, T0 + 5);
    assert.equal(await store().setState(d.id, 'active', T0 + 6), false);
    assert.equal((await store().get(d.id))?.state, 'revoked');
  });

  it('rememberNonce is false on a replay, per device; purgeNonces forgets expired nonces only', async () => {
    const [a, b] = [randomId(), randomId()];
    assert.equal(await store().rememberNonce(a, 'nonce-1', T0 + 100), true);
    assert.equal(await store().rememberNonce(a, 'nonce-1', T0 + 100), false);
    assert.equal(await store().rememberNonce(b, 'nonce-1', T0 + 100), true, 'nonces are scoped by device');
    assert.equal(await store().rememberNonce(a, 'nonce-2', T0 + 200), true);
    const racers = await Promise.all(Array.from({ length: 4 }, () => store().rememberNonce(a, 'nonce-3', T0 + 100)));
    assert.equal(racers.filter(Boolean).length, 1);
    // Redis forgets a nonce by its native TTL instead (src/store/redis/redis-stores.test.ts).
    if (redis()) return;
    assert.equal(await store().purgeNonces(T0 + 150), 3);
    assert.equal(await store().rememberNonce(a, 'nonce-1', T0 + 300), true, 'a purged nonce is forgotten');
    assert.equal(await store().rememberNonce(a, 'nonce-2', T0 + 300), false, 'an unexpired nonce is still remembered');
  });
});

forEachBackend('SqlActivationStore', ({ db }) => {
  const store = () => new SqlActivationStore(db());
  const devices = () => new SqlDeviceStore(db());

  it('latestPending is the newest flow while it is pending and unexpired: a new code retires the earlier ones for good', async () => {
    const nationalId = '810000000041';
    const older = flow({ nationalId, createdAt: T0 });
    const newer = flow({ nationalId, createdAt: T0 + 1 });
    for (const f of [older, newer]) await store().create(f);
    assert.deepEqual(await store().latestPending(nationalId, T0 + 10), newer);
    assert.equal(await store().complete(newer.id, device({ nationalId }), T0 + 11), true);
    assert.equal(await store().latestPending(nationalId, T0 + 12), undefined, 'the older code does not come back once the newer is used');
    const expiring = '810000000082';
    await store().create(flow({ nationalId: expiring, createdAt: T0 }));
    await store().create(flow({ nationalId: expiring, createdAt: T0 + 2, expiresAt: T0 + 10 }));
    assert.equal(await store().latestPending(expiring, T0 + 10), undefined, 'nor once the newer expired');
    assert.equal(await store().latestPending('810000000058', T0), undefined);
  });

  it('complete() registers the device in the same transaction, once', async () => {
    const f = flow({ nationalId: '810000000066' });
    await store().create(f);
    const d = device({ nationalId: f.nationalId });
    assert.equal(await store().complete(f.id, d, T0 + 1), true);
    assert.deepEqual(await devices().get(d.id), d);
    const row = await flowRow(db(), f.id);
    assert.equal(row.state, 'completed');
    assert.equal(row.device_id, d.id);
    assert.equal(row.settled_at, T0 + 1);
    const again = device({ nationalId: f.nationalId });
    assert.equal(await store().complete(f.id, again, T0 + 2), false);
    assert.equal(await devices().get(again.id), undefined);
    assert.equal(await store().latestPending(f.nationalId, T0 + 3), undefined);
  });

  it('two concurrent complete() of one flow create exactly one device', async () => {
    const nationalId = '810000000074';
    const f = flow({ nationalId });
    await store().create(f);
    const results = await Promise.all([store().complete(f.id, device({ nationalId }), T0 + 1), store().complete(f.id, device({ nationalId }), T0 + 1)]);
    assert.deepEqual([...results].sort(), [false, true]);
    assert.equal((await devices().listByProfessional(nationalId)).length, 1);
  });

  it('complete() refuses an expired flow and writes no device', async () => {
    const nationalId = '810000000082';
    const f = flow({ nationalId, expiresAt: T0 + 10 });
    await store().create(f);
    assert.equal(await store().complete(f.id, device({ nationalId }), T0 + 10), false);
    assert.deepEqual(await devices().listByProfessional(nationalId), []);
  });

  it('complete() rolls back the flow when the device cannot be written', async () => {
    const nationalId = '810000000090';
    const existing = await (async () => {
      const d = device({ nationalId });
      await insertDevice(db().kysely, d);
      return d;
    })();
    const f = flow({ nationalId });
    await store().create(f);
    // Same id as an existing device: the insert fails inside the transaction.
    await assert.rejects(store().complete(f.id, device({ id: existing.id, nationalId }), T0 + 1));
    assert.equal((await flowRow(db(), f.id)).state, 'pending');
    assert.equal((await devices().listByProfessional(nationalId)).length, 1);
  });
});
