import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { forEachStoreBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import type { JWK } from 'jose';
import { SqlAuditLog } from '../audit/log.ts';
import { loadSigningKeys, NEXT_KEY_NOTICE_MS, SigningKeyRing } from './keys.ts';

forEachStoreBackend('signing keys', ({ db }) => {
  it('nodes starting together on an empty database create one first key and all publish it', async () => {
    await db().kysely.deleteFrom('signing_key').execute();
    const sealKey = randomBytes(32);
    const clock = new ManualClock();
    const sets = await Promise.all(Array.from({ length: 4 }, () => loadSigningKeys(db(), sealKey, clock)));
    assert.equal(sets[0]!.length, 1);
    assert.deepEqual(new Set(sets.map((keys) => keys.map((k) => k.kid).join())).size, 1, 'every node signs with, and publishes, the same key');
    assert.equal((await loadSigningKeys(db(), sealKey, clock))[0]!.kid, sets[0]![0]!.kid, 'a later start reuses it');
    assert.equal(sets[0]![0]!.alg, 'ES256');
  });
});

forEachStoreBackend('signing key rotation', ({ db }) => {
  const sealKey = randomBytes(32);
  const RETIRED_KEY_KEPT_MS = 10 * 3600_000;
  const setUp = async () => {
    await db().kysely.deleteFrom('signing_key').execute();
    const clock = new ManualClock();
    const audit = new SqlAuditLog(db(), clock);
    return { clock, ring: new SigningKeyRing({ db: db(), sealKey, clock, audit }, { retiredKeptMs: RETIRED_KEY_KEPT_MS }), load: () => loadSigningKeys(db(), sealKey, clock) };
  };
  const code = (expected: string) => (error: unknown) => (error as { code?: string }).code === expected;
  const signers = (keys: JWK[]) => keys.filter((k) => !k.key_ops).map((k) => k.kid);

  it('a next key is published for verification only; activated after a day it signs and the old one retires; a retired key goes a session lifetime later', async () => {
    const { clock, ring, load } = await setUp();
    const [first] = await load();
    clock.advance(1000);
    const next = await ring.add();
    await assert.rejects(ring.add(), code('NEXT_KEY_EXISTS'));
    let keys = await load();
    assert.deepEqual(keys.map((k) => k.kid), [first!.kid, next.kid], 'the signing key first');
    assert.deepEqual(signers(keys), [first!.kid]);
    assert.deepEqual(keys[1]!.key_ops, ['verify'], 'oidc-provider never signs with a key that may only verify');

    await assert.rejects(ring.activate(), code('TOO_SOON'));
    clock.advance(NEXT_KEY_NOTICE_MS);
    assert.deepEqual(await ring.activate(), { activated: next.kid, retired: [first!.kid] });
    await assert.rejects(ring.activate(), code('NO_NEXT_KEY'));
    keys = await load();
    assert.deepEqual(keys.map((k) => k.kid), [next.kid, first!.kid]);
    assert.deepEqual(signers(keys), [next.kid]);
    assert.deepEqual((await ring.list()).map((k) => [k.kid, k.state]), [[next.kid, 'active'], [first!.kid, 'retired']]);

    await assert.rejects(ring.remove(next.kid), code('KEY_IN_USE'));
    await assert.rejects(ring.remove(first!.kid!), code('TOO_SOON'));
    await assert.rejects(ring.remove('nope'), code('KEY_NOT_FOUND'));
    clock.advance(RETIRED_KEY_KEPT_MS - 1000);
    await assert.rejects(ring.remove(first!.kid!), code('TOO_SOON'));
    clock.advance(1000);
    await ring.remove(first!.kid!);
    assert.deepEqual((await load()).map((k) => k.kid), [next.kid]);

    const events = (await new SqlAuditLog(db(), clock).list()).filter((e) => e.event.startsWith('signing_key.'));
    assert.deepEqual(events.map((e) => [e.event, e.details.kid ?? e.details.activated]), [['signing_key.added', next.kid], ['signing_key.activated', next.kid], ['signing_key.removed', first!.kid]]);
  });

  it('a leaked key: the next one signs at once and the leaked one can go at once; a next key can be withdrawn', async () => {
    const { ring, load } = await setUp();
    const [leaked] = await load();
    const next = await ring.add();
    await ring.activate({ now: true });
    await ring.remove(leaked!.kid!, { now: true });
    assert.deepEqual((await load()).map((k) => k.kid), [next.kid]);
    const withdrawn = await ring.add();
    await ring.remove(withdrawn.kid);
    assert.deepEqual((await ring.list()).map((k) => k.kid), [next.kid]);
  });

  it('two operators activating at once: one wins, one key signs', async () => {
    const { clock, ring, load } = await setUp();
    await load();
    await ring.add();
    clock.advance(NEXT_KEY_NOTICE_MS);
    const outcomes = await Promise.allSettled([ring.activate(), ring.activate()]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    assert.equal((await ring.list()).filter((k) => k.state === 'active').length, 1);
  });
});
