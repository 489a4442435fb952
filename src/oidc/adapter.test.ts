import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { AdapterPayload } from 'oidc-provider';
import { forEachStoreBackend } from '../../test/support/backends.ts';
import { RedisOidcModelStore } from '../store/redis/oidc-model-store.ts';
import { SplitOidcModelStore } from './split-store.ts';
import { MemoryOidcModelStore } from './memory-models.ts';
import { ManualClock } from '../lib/clock.ts';
import { randomId } from '../lib/crypto.ts';
import { SqlOidcModelStore, adapterFactory } from './adapter.ts';

forEachStoreBackend('OidcModelStore', ({ db, redis, memory }) => {
  const clock = new ManualClock();
  // With Redis (several nodes) or in memory (one node), Interaction, AuthorizationCode... go
  // there and the rest stays in SQL. The memory variant lives as long as its store object.
  const inMemory = new MemoryOidcModelStore(clock);
  const store = () => {
    const r = redis();
    if (r) return new SplitOidcModelStore(db(), clock, new RedisOidcModelStore(r, clock));
    return memory ? new SplitOidcModelStore(db(), clock, inMemory) : new SqlOidcModelStore(db(), clock);
  };
  const adapter = (model: string) => new (adapterFactory(store()))(model);

  it('upsert then find returns the payload; another model with the same id is separate', async () => {
    const id = randomId();
    const session: AdapterPayload = { accountId: '810000000017', loginTs: 1, kind: 'Session' };
    await adapter('Session').upsert(id, session, 3600);
    assert.deepEqual(await adapter('Session').find(id), session);
    assert.equal(await adapter('AccessToken').find(id), undefined);
    assert.equal(await adapter('Session').find(randomId()), undefined);
  });

  it('upsert replaces the payload and the expiry of an existing row', async () => {
    const id = randomId();
    await adapter('Grant').upsert(id, { accountId: 'a', kind: 'Grant' }, 10);
    await adapter('Grant').upsert(id, { accountId: 'b', kind: 'Grant' }, 3600);
    clock.advance(60_000);
    assert.deepEqual(await adapter('Grant').find(id), { accountId: 'b', kind: 'Grant' });
  });

  it('a row is gone once its TTL has passed; without a TTL it never expires', async () => {
    const id = randomId();
    const forever = randomId();
    await adapter('AuthorizationCode').upsert(id, { kind: 'AuthorizationCode', grantId: 'g-ttl' }, 60);
    await store().upsert('Client', forever, { client_id: forever }, undefined);
    clock.advance(59_999);
    assert.ok(await adapter('AuthorizationCode').find(id));
    clock.advance(1);
    assert.equal(await adapter('AuthorizationCode').find(id), undefined);
    clock.advance(365 * 86_400_000);
    assert.deepEqual(await store().find('Client', forever), { client_id: forever });
  });

  it('findByUid and findByUserCode look up by the secondary keys, within the model and the TTL', async () => {
    const uid = randomId();
    const userCode = `UC-${randomId(4)}`;
    await adapter('Interaction').upsert(randomId(), { kind: 'Interaction', uid }, 60);
    await adapter('DeviceCode').upsert(randomId(), { kind: 'DeviceCode', userCode }, 60);
    assert.deepEqual(await adapter('Interaction').findByUid(uid), { kind: 'Interaction', uid });
    assert.deepEqual(await adapter('DeviceCode').findByUserCode(userCode), { kind: 'DeviceCode', userCode });
    assert.equal(await adapter('Session').findByUid(uid), undefined);
    assert.equal(await adapter('Interaction').findByUid(randomId()), undefined);
    assert.equal(await adapter('DeviceCode').findByUserCode('nope'), undefined);
    clock.advance(60_000);
    assert.equal(await adapter('Interaction').findByUid(uid), undefined);
    assert.equal(await adapter('DeviceCode').findByUserCode(userCode), undefined);
  });

  it('consume marks the row consumed (epoch seconds) and keeps it readable', async () => {
    const id = randomId();
    await adapter('AuthorizationCode').upsert(id, { kind: 'AuthorizationCode' }, 60);
    assert.equal((await adapter('AuthorizationCode').find(id))?.consumed, undefined);
    await adapter('AuthorizationCode').consume(id);
    const found = await adapter('AuthorizationCode').find(id);
    assert.equal(found?.consumed, Math.floor(clock.now() / 1000));
    assert.equal(found?.kind, 'AuthorizationCode');
  });

  it('consume: of two uses of one code at once, exactly one wins; the other is a replay (invalid_grant) and the grant goes with its tokens', async () => {
    for (const model of ['AuthorizationCode', 'RefreshToken']) {
      const grantId = randomId();
      const id = randomId();
      const token = randomId();
      await adapter('Grant').upsert(grantId, { kind: 'Grant', accountId: '810000000017' }, 3600);
      await adapter(model).upsert(id, { kind: model, grantId }, 60);
      await adapter('AccessToken').upsert(token, { kind: 'AccessToken', grantId }, 3600);
      const outcomes = await Promise.allSettled([adapter(model).consume(id), adapter(model).consume(id)]);
      assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'], model);
      const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      assert.equal((lost.reason as { error?: string }).error, 'invalid_grant');
      assert.equal(await adapter('AccessToken').find(token), undefined, `${model}: the tokens of the grant are revoked`);
      assert.equal(await adapter('Grant').find(grantId), undefined, `${model}: and the grant`);
      await assert.rejects(adapter(model).consume(randomId()), { error: 'invalid_grant' }, 'nothing to consume');
    }
  });

  it('destroy removes one row of one model', async () => {
    const id = randomId();
    await adapter('Session').upsert(id, { kind: 'Session' }, 60);
    await adapter('Grant').upsert(id, { kind: 'Grant' }, 60);
    await adapter('Session').destroy(id);
    assert.equal(await adapter('Session').find(id), undefined);
    assert.ok(await adapter('Grant').find(id));
  });

  it('revokeByGrantId removes every model of that grant and nothing else', async () => {
    const grantId = randomId();
    const other = randomId();
    const ids = { code: randomId(), access: randomId(), refresh: randomId(), kept: randomId() };
    await adapter('AuthorizationCode').upsert(ids.code, { grantId }, 60);
    await adapter('AccessToken').upsert(ids.access, { grantId }, 60);
    await adapter('RefreshToken').upsert(ids.refresh, { grantId }, 60);
    await adapter('AccessToken').upsert(ids.kept, { grantId: other }, 60);
    await adapter('AccessToken').revokeByGrantId(grantId);
    assert.equal(await adapter('AuthorizationCode').find(ids.code), undefined);
    assert.equal(await adapter('AccessToken').find(ids.access), undefined);
    assert.equal(await adapter('RefreshToken').find(ids.refresh), undefined);
    assert.deepEqual(await adapter('AccessToken').find(ids.kept), { grantId: other });
  });

  it('purgeExpired deletes expired rows only and list reads a model', async () => {
    const model = `Purge${randomId(4)}`;
    await store().upsert(model, 'a-short', { n: 1 }, 1);
    await store().upsert(model, 'b-long', { n: 2 }, 3600);
    await store().upsert(model, 'c-forever', { n: 3 }, undefined);
    clock.advance(1000);
    assert.ok((await store().purgeExpired()) >= 1);
    assert.deepEqual(await store().list(model), [{ id: 'b-long', payload: { n: 2 } }, { id: 'c-forever', payload: { n: 3 } }]);
    assert.equal(await store().purgeExpired(), 0);
  });

  it('clients are cached per node: this node\'s changes are seen at once, another writer\'s after the delay', async () => {
    const clients = store();
    const id = `client-${randomId(4)}`;
    assert.equal(await clients.find('Client', id), undefined);
    await db().kysely.insertInto('oidc_model').values({ model: 'Client', id, payload: JSON.stringify({ client_id: id, client_name: 'A' }), grant_id: null, user_code: null, uid: null, account_id: null, expires_at: null, consumed_at: null }).execute();
    assert.equal((await clients.find('Client', id))?.client_name, 'A', 'an unknown id is not remembered as unknown');
    await db().kysely.updateTable('oidc_model').set({ payload: JSON.stringify({ client_id: id, client_name: 'B' }) }).where('id', '=', id).execute();
    assert.equal((await clients.find('Client', id))?.client_name, 'A', 'another writer is seen after the cache delay');
    const copy = await clients.find('Client', id);
    copy!.client_name = 'mutated by a caller';
    assert.equal((await clients.find('Client', id))?.client_name, 'A', 'callers get copies');
    await clients.upsert('Client', id, { client_id: id, client_name: 'C' }, undefined);
    assert.equal((await clients.find('Client', id))?.client_name, 'C');
    await clients.destroy('Client', id);
    assert.equal(await clients.find('Client', id), undefined);
  });

  if (memory) {
    it('in memory, purgeExpired forgets expired short-lived models with their lookups; a new writer of a uid wins it', async () => {
      const own = new MemoryOidcModelStore(clock);
      const uid = randomId();
      const grantId = randomId();
      const [first, second, kept] = [randomId(), randomId(), randomId()];
      await own.upsert('Interaction', first, { kind: 'Interaction', uid, grantId }, 10);
      await own.upsert('Interaction', second, { kind: 'Interaction', uid }, 60);
      await own.upsert('AuthorizationCode', kept, { kind: 'AuthorizationCode', grantId }, 60);
      assert.equal((await own.findBy('Interaction', 'uid', uid))?.kind, 'Interaction');
      clock.advance(10_000);
      assert.ok((await own.purgeExpired()) >= 1);
      assert.deepEqual(await own.findBy('Interaction', 'uid', uid), { kind: 'Interaction', uid }, 'the uid still leads to the live entry');
      await own.revokeByGrantId(grantId);
      assert.equal(await own.find('AuthorizationCode', kept), undefined);
      clock.advance(60_000);
      assert.equal(await own.purgeExpired(), 1, 'only the second interaction was left');
      assert.equal(await own.findBy('Interaction', 'uid', uid), undefined);
    });
  }
}, { memory: true });
