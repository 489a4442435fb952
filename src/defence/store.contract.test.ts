// The DefenceStore contract, run against every implementation: memory, SQLite, PostgreSQL (when
// DATABASE_URL is set). A Redis store (issue 6) joins by adding itself to `implementations`.
// Threat covered: a store whose counters, compare-and-set or blocks were not atomic or not
// time-bounded would let a bombing run past its limits on a busy or multi-node deployment.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, forRedisBackend } from '../../test/support/backends.ts';
import { RedisDefenceStore } from '../store/redis/defence-store.ts';
import { LocalCountersDefenceStore, MemoryDefenceStore } from './memory-store.ts';
import { SqlDefenceStore, emptyState, slidingCount, type Block, type DefenceStore } from './store.ts';

const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);
const MINUTE = 60_000;

function block(overrides: Partial<Block>): Block {
  return {
    id: `b${Math.random().toString(36).slice(2, 10)}`, scope: 'professional', nationalId: '810000000017', prefix: '203.0.113.0/24', browserId: 'browser-a',
    reason: 'not_me', place: 'Lyon, France', createdAt: T0, expiresAt: T0 + 86_400_000, liftedAt: null, liftedBy: null, ...overrides,
  };
}

/** `nativeTtl`: the store forgets expired windows by itself (Redis) rather than on `purge`. */
function contract(name: string, open: () => DefenceStore, options: { nativeTtl?: boolean } = {}) {
  describe(`DefenceStore contract [${name}]`, () => {
    let store: DefenceStore;
    before(() => {
      store = open();
    });

    it('counts hits per fixed window, sees the previous window, and estimates a sliding count', async () => {
      assert.deepEqual(await store.peek('ip:a', MINUTE, T0), { current: 0, previous: 0, windowStart: T0 });
      for (let i = 1; i <= 3; i += 1) assert.equal((await store.hit('ip:a', MINUTE, T0 + i)).current, i);
      const next = await store.hit('ip:a', MINUTE, T0 + MINUTE + 15_000);
      assert.deepEqual(next, { current: 1, previous: 3, windowStart: T0 + MINUTE });
      assert.equal(slidingCount(next, MINUTE, T0 + MINUTE + 15_000), 1 + 3 * 0.75);
      assert.deepEqual(await store.peek('ip:a', MINUTE, T0 + 3 * MINUTE), { current: 0, previous: 0, windowStart: T0 + 3 * MINUTE });
      assert.equal((await store.hit('ip:b', MINUTE, T0)).current, 1, 'keys are independent');
    });

    it('counts concurrent hits exactly', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => store.hit('race', MINUTE, T0)));
      assert.deepEqual(results.map((r) => r.current).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('counts distinct members over the current and previous windows', async () => {
      assert.equal(await store.addDistinct('targets', 'p1', 3_600_000, T0), 1);
      assert.equal(await store.addDistinct('targets', 'p1', 3_600_000, T0 + 1), 1);
      assert.equal(await store.addDistinct('targets', 'p2', 3_600_000, T0 + 2), 2);
      assert.equal(await store.addDistinct('targets', 'p3', 3_600_000, T0 + 3_600_000), 3, 'the previous hour still counts');
      assert.equal(await store.addDistinct('targets', 'p4', 3_600_000, T0 + 3 * 3_600_000), 1, 'older hours do not');
    });

    it('keeps flags until their end', async () => {
      assert.equal(await store.flag('breaker', T0), undefined);
      await store.setFlag('breaker', T0 + 5 * MINUTE);
      assert.equal(await store.flag('breaker', T0 + MINUTE), T0 + 5 * MINUTE);
      assert.equal(await store.flag('breaker', T0 + 5 * MINUTE), undefined);
    });

    it('writes professional state by compare-and-set: exactly one of two racers wins', async () => {
      const initial = await store.getState('810000000017');
      assert.deepEqual(initial, emptyState('810000000017'));
      assert.equal(await store.casState({ ...initial, strikes: 1, pushTimes: [T0] }, T0), true);
      assert.equal(await store.casState({ ...initial, strikes: 9 }, T0), false, 'a stale version loses');
      const current = await store.getState('810000000017');
      assert.deepEqual({ strikes: current.strikes, pushTimes: current.pushTimes, version: current.version }, { strikes: 1, pushTimes: [T0], version: 1 });
      const racers = await Promise.all([store.casState({ ...current, strikes: 2 }, T0), store.casState({ ...current, strikes: 3 }, T0)]);
      assert.deepEqual(racers.sort(), [false, true]);
      const fresh = await Promise.all([store.casState({ ...emptyState('810000000025'), strikes: 1 }, T0), store.casState({ ...emptyState('810000000025'), strikes: 2 }, T0)]);
      assert.deepEqual(fresh.sort(), [false, true], 'the first write races too');
    });

    it('keeps every field of the state, the trusted-browser revocation time included, through both writes', async () => {
      const inserted = { ...emptyState('810000000033'), strikes: 2, backoffUntil: T0 + MINUTE, underAttackUntil: T0 + 2 * MINUTE, pushTimes: [T0 - 1, T0], trustResetAt: T0 - 5 };
      assert.equal(await store.casState(inserted, T0), true);
      assert.deepEqual(await store.getState('810000000033'), { ...inserted, version: 1 });
      const updated = { ...inserted, version: 1, strikes: 0, trustResetAt: T0 + 7 };
      assert.equal(await store.casState(updated, T0), true);
      assert.deepEqual(await store.getState('810000000033'), { ...updated, version: 2 });
    });

    it('matches blocks by scope, prefix, browser and time; lifts once', async () => {
      const byPrefix = block({ browserId: null });
      const byBrowser = block({ prefix: null, browserId: 'browser-z' });
      const global = block({ scope: 'global', nationalId: null, prefix: '198.51.100.0/24', browserId: null, reason: 'reports' });
      const ended = block({ prefix: '192.0.2.0/24', expiresAt: T0 + 1 });
      for (const b of [byPrefix, byBrowser, global, ended]) await store.addBlock(b);
      const ids = async (q: { nationalId: string | null; prefix: string; site?: string; browserId: string | null }, at = T0 + 10) => (await store.matchingBlocks({ site: null, ...q }, at)).map((b) => b.id).sort();
      assert.deepEqual(await ids({ nationalId: '810000000017', prefix: '203.0.113.0/24', browserId: 'other' }), [byPrefix.id]);
      assert.deepEqual(await ids({ nationalId: '810000000017', prefix: '192.0.2.0/24', browserId: 'browser-z' }), [byBrowser.id], 'the ended one no longer counts');
      assert.deepEqual(await ids({ nationalId: '810000000025', prefix: '203.0.113.0/24', browserId: 'browser-z' }), [], 'professional blocks concern their professional only');
      assert.deepEqual(await ids({ nationalId: null, prefix: '198.51.100.0/24', browserId: null }), [global.id], 'global blocks concern everyone');
      // An IPv6 site (/48) blocked for everyone: every /56 prefix of it, and nothing else.
      const site = block({ scope: 'global', nationalId: null, prefix: '2001:db8:7::/48', browserId: null, reason: 'reports' });
      await store.addBlock(site);
      assert.deepEqual(await ids({ nationalId: null, prefix: '2001:db8:7:500::/56', site: '2001:db8:7::/48', browserId: null }), [site.id]);
      assert.deepEqual(await ids({ nationalId: null, prefix: '2001:db8:8::/56', site: '2001:db8:8::/48', browserId: null }), []);
      assert.deepEqual(await ids({ nationalId: null, prefix: '198.51.100.0/24', browserId: null }), [global.id], 'IPv4 has no site');
      assert.ok(await store.liftBlock(site.id, T0 + 15, 'operator'));
      assert.equal((await store.listBlocks({ now: T0 + 20 })).length, 3);
      assert.equal((await store.listBlocks({ now: T0 + 20, includeInactive: true })).length, 5);
      const lifted = await store.liftBlock(global.id, T0 + 20, 'operator');
      assert.equal(lifted?.liftedBy, 'operator');
      assert.equal(await store.liftBlock(global.id, T0 + 30, 'operator'), undefined, 'once');
      assert.equal(await store.liftBlock(ended.id, T0 + 30, 'operator'), undefined, 'an ended block is not lifted');
      assert.deepEqual(await ids({ nationalId: null, prefix: '198.51.100.0/24', browserId: null }, T0 + 40), []);
    });

    it('counts signals against a source and distinct reporters of a prefix', async () => {
      const signal = (nationalId: string, kind: 'not_me' | 'wrong_code', at: number, browserId: string | null = null, trusted = false) =>
        store.addSignal({ id: `s${Math.random()}`, at, kind, nationalId, ip: '203.0.113.9', prefix: '203.0.113.0/24', site: null, browserId, trusted });
      await signal('810000000017', 'not_me', T0);
      await signal('810000000017', 'not_me', T0 + 1);
      await signal('810000000025', 'wrong_code', T0 + 2, 'browser-q');
      await signal('810000000033', 'not_me', T0 - 40 * 86_400_000);
      assert.equal(await store.distinctReporters({ prefix: '203.0.113.0/24' }, T0 - 86_400_000), 1, 'wrong codes and old reports are not reports here');
      const day = { not_me: T0 - 86_400_000, wrong_code: T0 - 86_400_000 };
      assert.equal(await store.countSignals({ prefix: '203.0.113.0/24', browserId: null, since: day }), 3);
      assert.equal(await store.countSignals({ prefix: '192.0.2.0/24', browserId: 'browser-q', since: day }), 1, 'by browser id too');
      assert.equal(await store.countSignals({ prefix: '192.0.2.0/24', browserId: null, since: day }), 0);
      // Each kind over its own window.
      assert.equal(await store.countSignals({ prefix: '203.0.113.0/24', browserId: null, since: { not_me: T0 - 86_400_000, wrong_code: T0 + 3 } }), 2, 'the wrong code is too old');
      assert.equal(await store.countSignals({ prefix: '203.0.113.0/24', browserId: null, since: { not_me: T0 + 2, wrong_code: T0 - 86_400_000 } }), 1, 'the not-me reports are too old');
      assert.equal(await store.countSignals({ prefix: '203.0.113.0/24', browserId: null, since: { not_me: T0 - 41 * 86_400_000, wrong_code: T0 } }), 4);
      // Reported from a browser trusted for that professional: its browser is suspect, not its network.
      await signal('810000000041', 'not_me', T0 + 3, 'browser-t', true);
      assert.equal(await store.countSignals({ prefix: '203.0.113.0/24', browserId: null, since: day }), 3, 'not by prefix');
      assert.equal(await store.countSignals({ prefix: '192.0.2.0/24', browserId: 'browser-t', since: day }), 1, 'by its browser id');
      assert.equal(await store.distinctReporters({ prefix: '203.0.113.0/24' }, T0 - 86_400_000), 1, 'not a report against the network');
      // IPv6: reporters of a /48 over all its /56 prefixes.
      for (const [i, nationalId] of ['810000000058', '810000000066', '810000000074'].entries()) {
        await store.addSignal({ id: `v6${i}`, at: T0, kind: 'not_me', nationalId, ip: `2001:db8:7:${i}00::1`, prefix: `2001:db8:7:${i}00::/56`, site: '2001:db8:7::/48', browserId: null, trusted: false });
      }
      assert.equal(await store.distinctReporters({ site: '2001:db8:7::/48' }, T0 - 1), 3);
      assert.equal(await store.distinctReporters({ prefix: '2001:db8:7:100::/56' }, T0 - 1), 1);
    });

    it('remembers places and notification settings', async () => {
      assert.deepEqual(await store.knownPlaces('810000000017'), []);
      await store.rememberPlace('810000000017', 'c:FR', T0);
      await store.rememberPlace('810000000017', 'c:FR', T0 + 1);
      await store.rememberPlace('810000000017', 'r:FR-ARA', T0);
      assert.deepEqual((await store.knownPlaces('810000000017')).sort(), ['c:FR', 'r:FR-ARA']);
      assert.deepEqual(await store.getSettings('810000000017'), { pushEnabled: true, quietUntil: null, updatedAt: null });
      await store.putSettings('810000000017', { pushEnabled: false, quietUntil: T0 + 5 }, T0);
      assert.deepEqual(await store.getSettings('810000000017'), { pushEnabled: false, quietUntil: T0 + 5, updatedAt: T0 });
      await store.putSettings('810000000017', { pushEnabled: true, quietUntil: null }, T0 + 1);
      assert.deepEqual(await store.getSettings('810000000017'), { pushEnabled: true, quietUntil: null, updatedAt: T0 + 1 });
    });

    it('journals events newest first and purges what is old', async () => {
      const event = (at: number, kind: 'silent' | 'refused') => ({
        id: `e${Math.random()}`, at, nationalId: '810000000041', kind, reasons: ['budget'], trusted: false, ip: '203.0.113.9', prefix: '203.0.113.0/24', browserId: null, place: 'Lyon, France', challengeId: null, count: 1,
      });
      await store.addEvent(event(T0, 'silent'));
      await store.addEvent(event(T0 + 2, 'refused'));
      await store.addEvent(event(T0 - 100 * 86_400_000, 'silent'));
      const recent = await store.events('810000000041', T0 - 1, 10);
      assert.deepEqual(recent.map((e) => e.kind), ['refused', 'silent']);
      assert.deepEqual(recent[0]?.reasons, ['budget']);
      assert.equal(recent[0]?.trusted, false);
      // The same line again (refusals of one source within a minute): it adds up, and moves to its latest time.
      const flood = { ...event(T0 + 3, 'refused'), id: 'refused-line' };
      await store.addEvent(flood);
      await store.addEvent({ ...flood, at: T0 + 4, count: 2 });
      const [line] = await store.events('810000000041', T0 + 3, 10);
      assert.deepEqual([line?.id, line?.count, line?.at], ['refused-line', 3, T0 + 4]);
      assert.ok((await store.purge(T0 + 10 * MINUTE, 90 * 86_400_000)) > 0);
      assert.equal((await store.events('810000000041', 0, 10)).length, 3, 'the 100-day-old line is gone');
      if (!options.nativeTtl) assert.deepEqual(await store.peek('ip:a', MINUTE, T0 + MINUTE), { current: 0, previous: 0, windowStart: T0 + MINUTE }, 'expired windows are gone');
    });

    it("counts every professional's journal for the operator: decisions, most requested, busiest sources", async () => {
      const since = T0 + 200 * 86_400_000; // after every line written above
      let n = 0;
      const line = (nationalId: string | null, kind: 'push' | 'silent' | 'refused' | 'not_me', reasons: string[], prefix: string, trusted = false, count = 1, id = `o${(n += 1)}`) =>
        store.addEvent({ id, at: since + n, nationalId, kind, reasons, trusted, ip: prefix.replace('0/24', '9'), prefix, browserId: null, place: null, challengeId: null, count });
      for (let i = 0; i < 3; i += 1) await line('810000000090', 'silent', ['backoff'], '198.51.100.0/24');
      await line('810000000090', 'push', [], '198.51.100.0/24');
      await line('810000000091', 'silent', ['backoff'], '198.51.100.0/24');
      // Five refusals on one line.
      await line('810000000091', 'refused', ['ip_rate'], '198.51.100.0/24', false, 2, 'refusals');
      await line('810000000091', 'refused', ['ip_rate'], '198.51.100.0/24', false, 3, 'refusals');
      await line('810000000091', 'not_me', [], '198.51.100.0/24');
      await line('810000000092', 'push', [], '192.0.2.0/24', true);
      await line(null, 'silent', [], '203.0.113.0/24');
      await store.addEvent({ id: 'old', at: since - 1, nationalId: '810000000099', kind: 'push', reasons: [], trusted: false, ip: '192.0.2.1', prefix: '192.0.2.0/24', browserId: null, place: null, challengeId: null, count: 1 });

      const overview = await store.overview(since, 2);
      const decisions = overview.decisions.map((d) => `${d.kind} ${d.reasons.join(',')} ${d.count}`).sort();
      assert.deepEqual(decisions, ['not_me  1', 'push  2', 'refused ip_rate 5', 'silent  1', 'silent backoff 4']);
      assert.deepEqual(overview.professionals, [{ nationalId: '810000000091', requests: 6, pushed: 0 }, { nationalId: '810000000090', requests: 4, pushed: 1 }], 'the top 2 by requests (a report is not one), the line before `since` left out');
      assert.deepEqual(overview.prefixes, [{ prefix: '198.51.100.0/24', requests: 10, professionals: 2 }, { prefix: '203.0.113.0/24', requests: 1, professionals: 0 }], 'untrusted browsers only');
    });

    it('lists the professionals held right now (attack mode or back-off), the longest-held first', async () => {
      const now = T0 + 300 * 86_400_000;
      const put = (nationalId: string, backoffUntil: number, underAttackUntil: number) =>
        store.casState({ ...emptyState(nationalId), strikes: 2, backoffUntil, underAttackUntil }, now);
      await put('810000000093', now + MINUTE, 0);
      await put('810000000094', now + MINUTE, now + 60 * MINUTE);
      await put('810000000095', now - MINUTE, now - MINUTE);
      const held = await store.heldProfessionals(now, 10);
      assert.deepEqual(held.map((s) => [s.nationalId, s.strikes]), [['810000000094', 2], ['810000000093', 2]]);
      assert.equal(held[0]?.underAttackUntil, now + 60 * MINUTE);
      assert.deepEqual((await store.heldProfessionals(now, 1)).map((s) => s.nationalId), ['810000000094']);
    });
  });
}

contract('memory', () => new MemoryDefenceStore());
forEachBackend('DefenceStore contract (SQL)', ({ db }) => {
  contract('sql', () => new SqlDefenceStore(db()));
});
// One node without Redis: counters and flags in memory, the rest in SQL (a database of its own).
forEachBackend('DefenceStore contract (SQL, local counters)', ({ db }) => {
  contract('sql with local counters', () => new LocalCountersDefenceStore(db()));
});
// Counters and flags in Redis, the rest in SQL (src/store/redis/defence-store.ts): when REDIS_URL is set.
forRedisBackend('DefenceStore contract (Redis)', ({ db, redis }) => {
  contract('redis', () => new RedisDefenceStore(db(), redis()), { nativeTtl: true });
});
