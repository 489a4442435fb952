import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { forEachStoreBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import { loadSigningKeys } from './keys.ts';

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
