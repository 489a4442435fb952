// Threat: someone holding the professional's unlocked phone (so holding the device key) tries to
// guess the PIN to approve a login. Three wrong PINs in a row must lock the device for good, even
// when the guesses are sent in parallel; and a stolen database must not reveal PINs, which are
// keyed hashes salted by the device id.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../lib/clock.ts';
import { VigieError } from '../lib/errors.ts';
import { migrate, openDatabase, type Db } from '../store/db.ts';
import { SqlAuditLog } from '../audit/log.ts';
import { SqlDirectoryStore } from '../directory/store.ts';
import { DeviceService } from './service.ts';
import { SqlActivationStore, SqlDeviceStore, type Device } from './store.ts';
import { exportPublicJwk, generateDeviceKey } from './signature.ts';

const PRO = '810000000017';
const PIN = '2468';
const MAX_FAILURES = 3;

function isCode(code: string) {
  return (error: unknown) => error instanceof VigieError && error.code === code;
}

describe('PIN guessing on a device in hand', () => {
  let db: Db;
  let clock: ManualClock;
  let devices: SqlDeviceStore;
  let service: DeviceService;

  async function activate(pin = PIN): Promise<Device> {
    const { code } = await service.createActivationCode(PRO);
    const publicKey = await exportPublicJwk((await generateDeviceKey()).publicKey);
    return service.activate({ nationalId: PRO, activationCode: code, publicKey, pin, name: 'Téléphone', ip: '192.0.2.1' });
  }

  async function fresh(device: Device): Promise<Device> {
    const d = await devices.get(device.id);
    assert.ok(d);
    return d;
  }

  beforeEach(async () => {
    db = openDatabase({ sqlitePath: ':memory:' });
    await migrate(db);
    clock = new ManualClock();
    const directory = new SqlDirectoryStore(db, clock);
    await directory.upsertProfessionals([{ nationalId: PRO, idType: '8', identifier: PRO.slice(1), familyName: 'MARTIN', givenName: 'Camille', exercises: [] }]);
    devices = new SqlDeviceStore(db);
    service = new DeviceService(
      { devices, activations: new SqlActivationStore(db), directory, audit: new SqlAuditLog(db, clock), clock },
      { pinKey: randomBytes(32), codeKey: randomBytes(32), signatureWindowSeconds: 60, pinMaxFailures: MAX_FAILURES, activationCodeTtlMinutes: 15 },
    );
  });
  afterEach(async () => db.close());

  it('the right PIN passes', async () => {
    const device = await activate();
    await service.checkPin(device, PIN);
    assert.equal((await fresh(device)).lastUsedAt, clock.now());
  });

  it('three wrong PINs lock the device; the count of attempts left is announced', async () => {
    const device = await activate();
    await assert.rejects(service.checkPin(device, '1357'), (e: unknown) => isCode('PIN_WRONG')(e) && /2 attempt/.test((e as Error).message));
    await assert.rejects(service.checkPin(device, '1358'), (e: unknown) => isCode('PIN_WRONG')(e) && /1 attempt/.test((e as Error).message));
    await assert.rejects(service.checkPin(device, '1359'), isCode('DEVICE_LOCKED'));
    const locked = await fresh(device);
    assert.equal(locked.state, 'locked');
    assert.equal(locked.pinFailures, MAX_FAILURES);
  });

  it('after the lock the right PIN is refused too, and the device stays locked', async () => {
    const device = await activate();
    for (const guess of ['1357', '1358']) await assert.rejects(service.checkPin(device, guess), isCode('PIN_WRONG'));
    await assert.rejects(service.checkPin(device, '1359'), isCode('DEVICE_LOCKED'));
    // Both a fresh read and the object a request loaded before the lock (a parallel guess).
    await assert.rejects(service.checkPin(await fresh(device), PIN), isCode('DEVICE_LOCKED'));
    await assert.rejects(service.checkPin(device, PIN), isCode('DEVICE_LOCKED'));
    const after = await fresh(device);
    assert.equal(after.state, 'locked');
    assert.equal(after.pinFailures, MAX_FAILURES, 'the right PIN did not reset the counter of a locked device');
  });

  it('guesses sent in parallel cannot get past the lock', async () => {
    const device = await activate();
    // Every request loaded the device while it was still active.
    const results = await Promise.allSettled(['1357', '1358', '1359', '3690', '7531', '8642'].map((pin) => service.checkPin(device, pin)));
    const codes = results.map((r) => (r.status === 'rejected' && r.reason instanceof VigieError ? r.reason.code : r.status));
    assert.equal(codes.filter((c) => c === 'PIN_WRONG').length, MAX_FAILURES - 1, codes.join());
    assert.equal(codes.filter((c) => c === 'DEVICE_LOCKED').length, 6 - (MAX_FAILURES - 1), codes.join());
    const after = await fresh(device);
    assert.equal(after.state, 'locked');
    assert.equal(after.pinFailures, MAX_FAILURES);
    // The right PIN arriving on one of those in-flight requests is refused.
    await assert.rejects(service.checkPin(device, PIN), isCode('DEVICE_LOCKED'));
  });

  it('a right PIN before the third wrong one resets the count', async () => {
    const device = await activate();
    await assert.rejects(service.checkPin(device, '1357'), isCode('PIN_WRONG'));
    await assert.rejects(service.checkPin(device, '1358'), isCode('PIN_WRONG'));
    await service.checkPin(device, PIN);
    assert.equal((await fresh(device)).pinFailures, 0);
    await assert.rejects(service.checkPin(device, '1359'), (e: unknown) => isCode('PIN_WRONG')(e) && /2 attempt/.test((e as Error).message));
    await assert.rejects(service.checkPin(device, '1360'), isCode('PIN_WRONG'));
    assert.equal((await fresh(device)).state, 'active');
  });

  it('each failure and the lock are written to the audit log', async () => {
    const device = await activate();
    for (const guess of ['1357', '1358', '1359']) await service.checkPin(device, guess).catch(() => {});
    const events = (await new SqlAuditLog(db, clock).list({ subject: PRO })).map((e) => e.event);
    assert.deepEqual(events.slice(-3), ['device.pin_failed', 'device.pin_failed', 'device.locked']);
  });

  it('a PIN typed on a device revoked meanwhile is refused as revoked, and the log does not call it a lock', async () => {
    const device = await activate();
    // The request loaded the device while active; the professional revokes it (wallet, email link) before the PIN is checked.
    await service.revoke(await fresh(device), 'wallet');
    await assert.rejects(service.checkPin(device, '1357'), isCode('DEVICE_REVOKED'));
    await assert.rejects(service.checkPin(device, PIN), isCode('DEVICE_REVOKED'), 'the right PIN does not bring it back either');
    const after = await fresh(device);
    assert.deepEqual([after.state, after.pinFailures], ['revoked', 0], 'nothing counted');
    const entries = (await new SqlAuditLog(db, clock).list({ subject: PRO })).filter((e) => e.details.deviceId === device.id);
    assert.deepEqual(entries.map((e) => e.event).slice(-2), ['device.revoked', 'device.pin_failed']);
    assert.deepEqual(entries.at(-1)?.details, { deviceId: device.id, failures: null, refusedAs: 'DEVICE_REVOKED' });
    assert.ok(!entries.some((e) => e.event === 'device.locked'));
  });

  it('the stored hash is not the PIN and differs between two devices with the same PIN', async () => {
    const a = await activate();
    const b = await activate();
    const rows = await db.kysely.selectFrom('device').select(['id', 'pin_hash']).where('id', 'in', [a.id, b.id]).execute();
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.ok(!row.pin_hash.includes(PIN));
      assert.ok(row.pin_hash.length >= 43, 'a full-length keyed hash');
    }
    assert.notEqual(rows[0]?.pin_hash, rows[1]?.pin_hash);
    // One device's hash does not unlock another: the PIN check is bound to the device id.
    await assert.rejects(service.checkPin({ ...b, pinHash: a.pinHash }, PIN), isCode('PIN_WRONG'));
  });
});
