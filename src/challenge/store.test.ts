import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachStoreBackend } from '../../test/support/backends.ts';
import { randomId } from '../lib/crypto.ts';
import type { Challenge } from './challenge.ts';
import { SqlChallengeStore } from './store.ts';
import { RedisChallengeStore } from '../store/redis/challenge-store.ts';

const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);
const TTL = 60_000;

function challenge(overrides: Partial<Challenge> = {}): Challenge {
  return {
    id: randomId(),
    nationalId: '810000000017',
    interactionUid: randomId(),
    clientId: 'rp',
    clientName: 'Service',
    mode: 'pick',
    displayCode: '42',
    candidates: ['17', '42', '88'],
    delivery: 'push',
    context: { ip: '192.0.2.1', userAgent: 'UA', browser: 'Firefox', place: 'Lyon' },
    state: 'pending',
    reason: null,
    deviceId: null,
    createdAt: T0,
    expiresAt: T0 + TTL,
    settledAt: null,
    consumedAt: null,
    ...overrides,
  };
}

forEachStoreBackend('ChallengeStore', ({ db, redis }) => {
  const store = () => {
    const r = redis();
    return r ? new RedisChallengeStore(r) : new SqlChallengeStore(db());
  };

  it('creates and reads back a challenge; an unknown id is undefined', async () => {
    const c = challenge({ nationalId: null, mode: 'typed', displayCode: '123456', candidates: [] });
    await store().create(c);
    assert.deepEqual(await store().get(c.id), c);
    const picked = challenge();
    await store().create(picked);
    assert.deepEqual(await store().get(picked.id), picked);
    assert.equal(await store().get('nope'), undefined);
  });

  it('listPending returns only pending, unexpired challenges of that professional, newest first', async () => {
    const nationalId = '810000000025';
    const older = challenge({ nationalId, createdAt: T0 - 1000, expiresAt: T0 + TTL });
    const newer = challenge({ nationalId, createdAt: T0, expiresAt: T0 + TTL });
    const expired = challenge({ nationalId, createdAt: T0 - TTL, expiresAt: T0 - 1 });
    const settled = challenge({ nationalId });
    const someoneElse = challenge({ nationalId: '810000000033' });
    for (const c of [older, newer, expired, settled, someoneElse]) await store().create(c);
    assert.equal(await store().settle(settled.id, 'denied', T0), true);
    const ids = (await store().listPending(nationalId, T0)).map((c) => c.id);
    assert.deepEqual(ids, [newer.id, older.id]);
    assert.deepEqual(await store().listPending(nationalId, T0 + TTL), [], 'expires_at is exclusive');
  });

  it('listPending puts the pushed requests first: a flood of newer silent ones cannot hide them', async () => {
    const nationalId = '810000000041';
    const pushed = challenge({ nationalId, delivery: 'push', createdAt: T0 - 5000, expiresAt: T0 + TTL });
    await store().create(pushed);
    const flood = Array.from({ length: 30 }, (_, i) => challenge({ nationalId, delivery: 'silent', createdAt: T0 - 4000 + i, expiresAt: T0 + TTL }));
    for (const c of flood) await store().create(c);
    const listed = await store().listPending(nationalId, T0);
    assert.equal(listed.length, 20);
    assert.equal(listed[0]!.id, pushed.id);
    assert.deepEqual(listed.slice(1).map((c) => c.id), flood.slice(-19).reverse().map((c) => c.id), 'then the newest silent ones');
  });

  it('settle is compare-and-set: the second settle loses and does not overwrite', async () => {
    const c = challenge();
    await store().create(c);
    assert.equal(await store().settle(c.id, 'approved', T0 + 1, { deviceId: 'dev-1' }), true);
    assert.equal(await store().settle(c.id, 'denied', T0 + 2, { reason: 'not_me', deviceId: 'dev-2' }), false);
    assert.equal(await store().settle(c.id, 'expired', T0 + TTL), false);
    const after = await store().get(c.id);
    assert.equal(after?.state, 'approved');
    assert.equal(after?.deviceId, 'dev-1');
    assert.equal(after?.reason, null);
    assert.equal(after?.settledAt, T0 + 1);
    assert.equal(await store().settle('unknown', 'approved', T0), false);
  });

  it('an overdue challenge cannot be approved, only expired; an unexpired one cannot be expired', async () => {
    const c = challenge();
    await store().create(c);
    assert.equal(await store().settle(c.id, 'expired', T0 + TTL - 1), false, 'not yet due');
    assert.equal(await store().settle(c.id, 'approved', T0 + TTL), false, 'a late approval loses');
    assert.equal((await store().get(c.id))?.state, 'pending');
    assert.equal(await store().settle(c.id, 'expired', T0 + TTL), true);
    assert.equal((await store().get(c.id))?.state, 'expired');
  });

  it('two concurrent settles (approve vs deny): exactly one wins and the state is the winner', async () => {
    for (let round = 0; round < 5; round += 1) {
      const c = challenge();
      await store().create(c);
      const [approved, denied] = await Promise.all([
        store().settle(c.id, 'approved', T0 + 1, { deviceId: 'a' }),
        store().settle(c.id, 'denied', T0 + 1, { deviceId: 'b', reason: 'refused' }),
      ]);
      assert.equal(Number(approved) + Number(denied), 1);
      assert.equal((await store().get(c.id))?.state, approved ? 'approved' : 'denied');
    }
  });

  it('consume succeeds once, and only for an approved challenge', async () => {
    const pending = challenge();
    const denied = challenge();
    const approved = challenge();
    for (const c of [pending, denied, approved]) await store().create(c);
    assert.equal(await store().consume(pending.id, T0 + 1), false);
    await store().settle(denied.id, 'denied', T0 + 1);
    assert.equal(await store().consume(denied.id, T0 + 2), false);
    await store().settle(approved.id, 'approved', T0 + 1);
    const racers = await Promise.all([store().consume(approved.id, T0 + 2), store().consume(approved.id, T0 + 2), store().consume(approved.id, T0 + 2)]);
    assert.equal(racers.filter(Boolean).length, 1);
    assert.equal(await store().consume(approved.id, T0 + 3), false);
    assert.equal((await store().get(approved.id))?.consumedAt, T0 + 2);
    assert.equal((await store().get(pending.id))?.consumedAt, null);
  });

  it('expireDue moves only overdue pending challenges to expired and returns them', async () => {
    const now = T0 + 10 * TTL;
    const due = challenge({ nationalId: '810000000041', createdAt: now - TTL, expiresAt: now });
    const dueAnonymous = challenge({ nationalId: null, createdAt: now - TTL, expiresAt: now - 5 });
    const fresh = challenge({ createdAt: now, expiresAt: now + TTL });
    const settled = challenge({ createdAt: now - TTL, expiresAt: now - 1 });
    for (const c of [due, dueAnonymous, fresh, settled]) await store().create(c);
    await store().settle(settled.id, 'denied', now - 2);
    const expired = await store().expireDue(now);
    // Earlier tests left overdue pending rows behind; only ours matter here.
    const ours = expired.filter((e) => [due.id, dueAnonymous.id, fresh.id, settled.id].includes(e.id));
    assert.deepEqual(ours.sort((a, b) => a.id.localeCompare(b.id)), [{ id: due.id, nationalId: due.nationalId }, { id: dueAnonymous.id, nationalId: null }].sort((a, b) => a.id.localeCompare(b.id)));
    assert.equal((await store().get(due.id))?.state, 'expired');
    assert.equal((await store().get(due.id))?.settledAt, now);
    assert.equal((await store().get(fresh.id))?.state, 'pending');
    assert.equal((await store().get(settled.id))?.state, 'denied');
    assert.deepEqual(await store().expireDue(now), [], 'a second sweep finds nothing');
  });

  it('purge deletes settled challenges created before the cut-off and keeps pending ones', async () => {
    const cut = T0 + 100 * TTL;
    const oldSettled = challenge({ createdAt: cut - 1, expiresAt: cut + TTL });
    const oldPending = challenge({ createdAt: cut - 1, expiresAt: cut + TTL });
    const newSettled = challenge({ createdAt: cut, expiresAt: cut + TTL });
    for (const c of [oldSettled, oldPending, newSettled]) await store().create(c);
    await store().settle(oldSettled.id, 'approved', cut);
    await store().settle(newSettled.id, 'approved', cut);
    assert.ok((await store().purge(cut)) >= 1);
    assert.equal(await store().get(oldSettled.id), undefined);
    assert.equal((await store().get(oldPending.id))?.state, 'pending');
    assert.equal((await store().get(newSettled.id))?.state, 'approved');
    assert.equal(await store().purge(cut), 0);
  });
});
