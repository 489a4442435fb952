import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { VigieError } from '../lib/errors.ts';
import { migrate, openDatabase, type Db } from '../store/db.ts';
import { InProcessBus, type EventMap } from '../events/bus.ts';
import { SqlAuditLog } from '../audit/log.ts';
import { SqlChallengeStore } from './store.ts';
import { HISTORY_KEEP_MS, ChallengeService, type StartChallenge } from './service.ts';

const TTL_SECONDS = 60;
const PRO = '810000000017';

const input = (overrides: Partial<StartChallenge> = {}): StartChallenge => ({
  nationalId: PRO,
  interactionUid: 'interaction-1',
  clientId: 'rp',
  clientName: 'Service de test',
  mode: 'pick',
  delivery: 'push',
  context: { ip: '192.0.2.7', userAgent: 'UA', browser: 'Firefox', place: 'Lyon' },
  ...overrides,
});

function wrongCode(code: string): string {
  return code.length === 2 ? String((Number(code) + 1) % 100).padStart(2, '0') : String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

function isCode(code: string) {
  return (error: unknown) => error instanceof VigieError && error.code === code;
}

describe('ChallengeService', () => {
  let db: Db;
  let clock: ManualClock;
  let bus: InProcessBus;
  let audit: SqlAuditLog;
  let service: ChallengeService;
  let created: Array<EventMap['challenge.created']>;
  let settled: Array<EventMap['challenge.settled']>;

  beforeEach(async () => {
    db = openDatabase({ sqlitePath: ':memory:' });
    await migrate(db);
    clock = new ManualClock();
    bus = new InProcessBus();
    audit = new SqlAuditLog(db, clock);
    service = new ChallengeService({ store: new SqlChallengeStore(db), bus, clock, audit, ttlSeconds: TTL_SECONDS });
    created = [];
    settled = [];
    bus.subscribe('challenge.created', (p) => created.push(p));
    bus.subscribe('challenge.settled', (p) => settled.push(p));
  });
  afterEach(async () => {
    await bus.close();
    await db.close();
  });

  it('start stores a pending challenge, publishes challenge.created and writes the audit log', async () => {
    const c = await service.start(input());
    assert.equal(c.state, 'pending');
    assert.equal(c.expiresAt, clock.now() + TTL_SECONDS * 1000);
    assert.ok(c.candidates.includes(c.displayCode));
    assert.deepEqual(await service.get(c.id), c);
    assert.deepEqual(created, [{ challengeId: c.id, nationalId: PRO, delivery: 'push' }]);
    const [entry] = await audit.list();
    assert.equal(entry?.event, 'challenge.created');
    assert.equal(entry?.subject, PRO);
    assert.equal(entry?.actor, 'browser:192.0.2.7');
    assert.equal(entry?.details.challengeId, c.id);
    assert.ok(!Object.values(entry?.details ?? {}).includes(c.displayCode), 'the code is not written to the audit log');
  });

  it('purge forgets challenges settled more than HISTORY_KEEP_MS ago, not the recent ones', async () => {
    const old = await service.start(input());
    await service.deny(old, 'dev-1', 'refused');
    clock.advance(HISTORY_KEEP_MS - 60_000);
    const recent = await service.start(input());
    await service.deny(recent, 'dev-1', 'refused');
    clock.advance(120_000);
    assert.equal(await service.purge(), 1);
    assert.equal(await service.get(old.id), undefined);
    assert.equal((await service.get(recent.id))?.state, 'denied');
  });

  it('approve with the right code settles approved and publishes challenge.settled', async () => {
    const c = await service.start(input());
    const pending = await service.pendingFor(c.id, PRO);
    await service.approve(pending, 'device-1', c.displayCode);
    const after = await service.get(c.id);
    assert.equal(after?.state, 'approved');
    assert.equal(after?.deviceId, 'device-1');
    assert.deepEqual(settled, [{ challengeId: c.id, state: 'approved', nationalId: PRO, reason: null }]);
    assert.equal((await audit.list()).at(-1)?.event, 'challenge.approved');
    assert.equal(await service.consume(c.id), true);
    assert.equal(await service.consume(c.id), false);
  });

  it('approve in typed mode needs the 6-digit code', async () => {
    const c = await service.start(input({ mode: 'typed' }));
    assert.equal(c.candidates.length, 0);
    await service.approve(await service.pendingFor(c.id, PRO), 'device-1', c.displayCode);
    assert.equal((await service.get(c.id))?.state, 'approved');
  });

  it('a wrong code fails the challenge with CHALLENGE_WRONG_CODE; a second try finds it no longer pending', async () => {
    const c = await service.start(input());
    await assert.rejects(service.approve(c, 'device-1', wrongCode(c.displayCode)), isCode('CHALLENGE_WRONG_CODE'));
    const after = await service.get(c.id);
    assert.equal(after?.state, 'failed');
    assert.equal(after?.reason, 'wrong_code');
    assert.deepEqual(settled, [{ challengeId: c.id, state: 'failed', nationalId: PRO, reason: 'wrong_code' }]);
    await assert.rejects(service.approve(c, 'device-1', c.displayCode), isCode('CHALLENGE_NOT_PENDING'));
    await assert.rejects(service.pendingFor(c.id, PRO), isCode('CHALLENGE_NOT_PENDING'));
    assert.equal(await service.consume(c.id), false);
  });

  it('a badly shaped code (the right digits padded) is a wrong code', async () => {
    const c = await service.start(input());
    await assert.rejects(service.approve(c, 'device-1', `${c.displayCode} `), isCode('CHALLENGE_WRONG_CODE'));
    assert.equal((await service.get(c.id))?.state, 'failed');
  });

  it('get() after the TTL settles the challenge as expired and announces it once', async () => {
    const c = await service.start(input());
    clock.advance(TTL_SECONDS * 1000 - 1);
    assert.equal((await service.get(c.id))?.state, 'pending');
    clock.advance(1);
    assert.equal((await service.get(c.id))?.state, 'expired');
    assert.equal((await service.get(c.id))?.state, 'expired');
    await Promise.all([service.get(c.id), service.get(c.id)]);
    assert.equal(await service.expireDue(), 0);
    assert.deepEqual(settled, [{ challengeId: c.id, state: 'expired', nationalId: PRO }]);
    assert.equal((await audit.list()).filter((e) => e.event === 'challenge.expired').length, 1);
  });

  it('approving after expiry is refused with CHALLENGE_EXPIRED, even with the right code', async () => {
    const c = await service.start(input());
    const pending = await service.pendingFor(c.id, PRO);
    clock.advance(TTL_SECONDS * 1000);
    await assert.rejects(service.approve(pending, 'device-1', c.displayCode), isCode('CHALLENGE_EXPIRED'));
    await assert.rejects(service.pendingFor(c.id, PRO), isCode('CHALLENGE_EXPIRED'));
    assert.equal((await service.get(c.id))?.state, 'expired');
    assert.equal(await service.consume(c.id), false);
    assert.deepEqual(settled.map((s) => s.state), ['expired']);
  });

  it('expireDue settles overdue challenges and announces each', async () => {
    const a = await service.start(input());
    const b = await service.start(input({ nationalId: null, delivery: 'none' }));
    clock.advance(TTL_SECONDS * 1000);
    assert.equal(await service.expireDue(), 2);
    assert.deepEqual(settled.map((s) => s.challengeId).sort(), [a.id, b.id].sort());
    assert.equal(await service.expireDue(), 0);
  });

  it('pendingFor another professional, or an unknown id, is CHALLENGE_NOT_FOUND', async () => {
    const c = await service.start(input());
    await assert.rejects(service.pendingFor(c.id, '810000450386'), isCode('CHALLENGE_NOT_FOUND'));
    await assert.rejects(service.pendingFor('unknown-id', PRO), isCode('CHALLENGE_NOT_FOUND'));
    const anonymous = await service.start(input({ nationalId: null }));
    await assert.rejects(service.pendingFor(anonymous.id, PRO), isCode('CHALLENGE_NOT_FOUND'));
  });

  it('deny and cancel settle once; the loser of a race learns it is no longer pending', async () => {
    const c = await service.start(input());
    const results = await Promise.allSettled([service.deny(c, 'device-1', 'not_me'), service.approve(c, 'device-2', c.displayCode)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const loser = results.find((r) => r.status === 'rejected');
    assert.ok(loser && isCode('CHALLENGE_NOT_PENDING')(loser.reason));
    assert.equal(settled.length, 1);
    await assert.rejects(service.cancel(c, 'browser'), isCode('CHALLENGE_NOT_PENDING'));
  });

  it('the audit chain stays valid across the whole life of challenges', async () => {
    const c = await service.start(input());
    await service.approve(c, 'device-1', c.displayCode);
    await service.start(input());
    clock.advance(TTL_SECONDS * 1000);
    await service.expireDue();
    assert.deepEqual(await audit.verify(), { ok: true, entries: 4 });
  });
});
