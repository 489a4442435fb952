// What only the Redis variants do, beyond the shared store contracts (challenge/store.test.ts,
// device/store.test.ts, oidc/adapter.test.ts, defence/store.contract.test.ts): native TTLs, the
// event bus between nodes, the SQL record kept beside Redis, and the activation flows of the
// operator code. Each run works under its own key prefix and deletes it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forRedisBackend, openTestRedis } from '../../../test/support/backends.ts';
import { systemClock } from '../../lib/clock.ts';
import { randomId } from '../../lib/crypto.ts';
import { SqlChallengeStore } from '../../challenge/store.ts';
import { SqlDeviceStore, type ActivationFlow, type Device } from '../../device/store.ts';
import type { Challenge } from '../../challenge/challenge.ts';
import { parseRedisUrl } from './client.ts';
import { RedisChallengeStore } from './challenge-store.ts';
import { RedisActivationStore, RedisNonceDeviceStore } from './device-store.ts';
import { RedisBus } from '../../events/redis-bus.ts';

const T0 = Date.now();

function challenge(overrides: Partial<Challenge> = {}): Challenge {
  return {
    id: randomId(), nationalId: '810000000017', interactionUid: randomId(), clientId: 'rp', clientName: 'Service', mode: 'pick', displayCode: '42',
    candidates: ['17', '42', '88'], delivery: 'push', context: { ip: '192.0.2.1', userAgent: 'UA', browser: 'Firefox', place: null }, state: 'pending',
    reason: null, deviceId: null, createdAt: T0, expiresAt: T0 + 60_000, settledAt: null, consumedAt: null, ...overrides,
  };
}

function flow(overrides: Partial<ActivationFlow> = {}): ActivationFlow {
  return { id: randomId(), nationalId: '810000000017', method: 'operator_code', codeHash: 'h', attempts: 0, state: 'pending', createdAt: T0, expiresAt: T0 + 900_000, settledAt: null, deviceId: null, ...overrides };
}

function device(overrides: Partial<Device> = {}): Device {
  return { id: randomId(), nationalId: '810000000017', name: 'Téléphone', publicKey: { kty: 'EC' }, pinHash: 'p', pinFailures: 0, state: 'active', createdAt: T0, lastUsedAt: null, revokedAt: null, ...overrides };
}

describe('REDIS_URL prefix', () => {
  it('takes the key prefix from the URL and passes the rest to ioredis', () => {
    assert.deepEqual(parseRedisUrl('redis://10.0.0.5:6379/2?prefix=prod:'), { url: 'redis://10.0.0.5:6379/2', prefix: 'prod:' });
    assert.equal(parseRedisUrl('redis://127.0.0.1:6379').prefix, 'vigie:');
    assert.throws(() => parseRedisUrl('redis://127.0.0.1:6379?prefix=a*b'), /prefix/);
  });
});

forRedisBackend('Redis stores', ({ db, redis }) => {
  it('challenges carry a native TTL: their lifetime plus the retention for the login page', async () => {
    const c = challenge();
    await new RedisChallengeStore(redis()).create(c);
    const ttl = await redis().client.pttl(redis().key('ch', c.id));
    assert.ok(ttl > 60_000 && ttl <= 60_000 + 15 * 60_000, `ttl ${ttl}`);
  });

  it('with a SQL record: Redis decides, the row follows (created, settled, expired)', async () => {
    const history = new SqlChallengeStore(db());
    const store = new RedisChallengeStore(redis(), { history });
    const approved = challenge();
    const overdue = challenge({ createdAt: T0 - 120_000, expiresAt: T0 - 60_000 });
    await store.create(approved);
    await store.create(overdue);
    assert.equal((await history.get(approved.id))?.state, 'pending');
    assert.equal(await store.settle(approved.id, 'approved', T0 + 1, { deviceId: 'd' }), true);
    assert.equal(await store.settle(approved.id, 'denied', T0 + 2), false);
    assert.deepEqual({ ...(await history.get(approved.id)), context: undefined }, { ...(await store.get(approved.id)), context: undefined, consumedAt: null });
    assert.ok((await store.expireDue(T0)).some((e) => e.id === overdue.id));
    assert.equal((await history.get(overdue.id))?.state, 'expired');
  });

  it('a nonce is refused while remembered and forgotten after its TTL', async () => {
    const store = new RedisNonceDeviceStore(db(), redis(), systemClock);
    const id = randomId();
    assert.equal(await store.rememberNonce(id, 'n', Date.now() + 1000), true);
    assert.equal(await store.rememberNonce(id, 'n', Date.now() + 1000), false);
    await redis().client.pexpire(redis().key('nonce', id, 'n'), 20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(await store.rememberNonce(id, 'n', Date.now() + 1000), true);
    assert.ok(await new SqlDeviceStore(db()).purgeNonces(Date.now()) >= 0);
  });

  it('operator-code activation flows: latest pending, one completion, undone when the device cannot be written', async () => {
    const store = new RedisActivationStore(redis(), db());
    const nationalId = `8100${randomId(4)}`;
    const older = flow({ nationalId, createdAt: T0 });
    const newer = flow({ nationalId, createdAt: T0 + 1 });
    await store.create(older);
    await store.create(newer);
    assert.deepEqual(await store.latestPending(nationalId, T0 + 2), newer);
    const d = device({ nationalId });
    const racers = await Promise.all([store.complete(newer.id, d, T0 + 3), store.complete(newer.id, device({ nationalId }), T0 + 3)]);
    assert.deepEqual(racers.sort(), [false, true]);
    assert.equal((await new SqlDeviceStore(db()).listByProfessional(nationalId)).length, 1);
    assert.equal(await store.latestPending(nationalId, T0 + 3), undefined, 'an earlier code does not come back once the newest is used');
    // Same device id again: the SQL insert fails and the flow goes back to pending.
    const third = flow({ nationalId, createdAt: T0 + 4 });
    await store.create(third);
    const existing = (await new SqlDeviceStore(db()).listByProfessional(nationalId))[0]!;
    await assert.rejects(store.complete(third.id, device({ id: existing.id, nationalId }), T0 + 5));
    assert.equal((await store.get(third.id))?.state, 'pending');
    assert.equal(await store.complete(third.id, device({ nationalId }), third.expiresAt), false, 'not at or past the deadline');
  });
});

describe('Redis event bus between nodes', { skip: process.env.REDIS_URL ? false : 'REDIS_URL is not set' }, () => {
  let a: Awaited<ReturnType<typeof openTestRedis>>;
  let b: Awaited<ReturnType<typeof openTestRedis>>;
  before(async () => {
    a = await openTestRedis();
    b = await openTestRedis();
  });
  after(async () => {
    await a?.dispose();
    await b?.dispose();
  });

  it('an event published on one node reaches the listeners of another, and only within its prefix', async () => {
    const nodeA = await RedisBus.open(a);
    const nodeB = await RedisBus.open({ ...a, client: a.duplicate() });
    const otherDeployment = await RedisBus.open(b);
    try {
      const seen: string[] = [];
      const leaked: string[] = [];
      const received = new Promise<void>((resolve) => nodeB.subscribe('challenge.settled', (e) => (seen.push(e.challengeId), resolve())));
      otherDeployment.subscribe('challenge.settled', (e) => leaked.push(e.challengeId));
      await nodeA.publish('challenge.settled', { challengeId: 'c1', state: 'approved', nationalId: null });
      await received;
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(seen, ['c1']);
      assert.deepEqual(leaked, []);
    } finally {
      await nodeA.close();
      await nodeB.close();
      await otherDeployment.close();
    }
  });
});
