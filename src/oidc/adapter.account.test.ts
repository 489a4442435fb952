// The wallet's lookups on oidc-provider's storage: an account's sessions, and removing every row
// of an account (forced logout everywhere), on every SQL backend.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import { randomId } from '../lib/crypto.ts';
import { SqlOidcModelStore } from './adapter.ts';

forEachBackend('SqlOidcModelStore by account', ({ db }) => {
  const clock = new ManualClock();
  const store = () => new SqlOidcModelStore(db(), clock);

  it('lists an account\'s unexpired rows of one model, and nobody else\'s', async () => {
    const mine = randomId();
    const old = randomId();
    await store().upsert('Session', mine, { accountId: '810000000017', uid: randomId(), kind: 'Session' }, 3600);
    await store().upsert('Session', old, { accountId: '810000000017', uid: randomId(), kind: 'Session' }, 10);
    await store().upsert('Session', randomId(), { accountId: '810000450386', uid: randomId(), kind: 'Session' }, 3600);
    await store().upsert('Grant', randomId(), { accountId: '810000000017', kind: 'Grant' }, 3600);
    clock.advance(10_000);
    assert.deepEqual((await store().listByAccount('Session', '810000000017')).map((r) => r.id), [mine]);
  });

  it('destroys every row of an account but never a client', async () => {
    const account = `81${randomId(4).replace(/\D/g, '1').padEnd(10, '3').slice(0, 10)}`;
    for (const model of ['Session', 'Grant', 'AccessToken', 'RefreshToken']) await store().upsert(model, randomId(), { accountId: account, kind: model }, 3600);
    await store().upsert('Client', 'c-' + randomId(), { client_id: 'x', accountId: account } as never, undefined);
    const removed = await store().destroyByAccount(account);
    assert.equal(removed, 4);
    for (const model of ['Session', 'Grant', 'AccessToken', 'RefreshToken']) assert.deepEqual(await store().listByAccount(model, account), []);
  });
});
