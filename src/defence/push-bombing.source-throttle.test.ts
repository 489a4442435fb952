// Threat: push bombing at scale. One source (an address, or a whole /24 it rotates through)
// fires login requests as fast as it can, or sprays many public identifiers to harass many
// professionals at once; a botnet floods the whole service. Defences: per-address and
// per-prefix rates for browsers that are not trusted (refused with a clear French message and
// Retry-After — the same answer for every identifier, so nothing is learnt about who exists),
// a cap on the distinct identifiers one source targets (beyond, silent), and a global circuit
// breaker on notifications caused by untrusted browsers (beyond, silent for five minutes).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, watchDeliveries, type Attempt } from '../../test/support/defence.ts';

async function professionals(t: TestVigie, count: number): Promise<string[]> {
  const rows = await t.vigie.db.kysely.selectFrom('professional').select('national_id').orderBy('national_id').limit(count).execute();
  return rows.map((r) => r.national_id);
}

describe('push bombing from one source: rates, spraying, circuit breaker', () => {
  let t: TestVigie;
  let deliveries: ReturnType<typeof watchDeliveries>;
  const attempt = (ip: string, identifier = DEMO_PRO.nationalId) => attemptLogin(t.rp, t.redirectUri, browserAt(ip), identifier);

  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true' } });
    deliveries = watchDeliveries(t.vigie.bus);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('refuses an address past 20 requests a minute, with a French message and Retry-After, whatever the identifier', async () => {
    for (let i = 0; i < 20; i += 1) assert.ok((await attempt('203.0.113.10', i % 2 ? DEMO_PRO.nationalId : '899999999999')).ok, `request ${i + 1}`);
    const known = await attempt('203.0.113.10');
    const unknown = await attempt('203.0.113.10', '899999999999');
    assert.ok(!known.ok && !unknown.ok);
    assert.equal(known.status, 429);
    assert.match(known.retryAfter ?? '', /^\d+$/);
    assert.match(known.alert, /Trop de demandes depuis votre connexion\. Réessayez dans \d+ secondes\./);
    assert.deepEqual([unknown.status, unknown.alert], [known.status, known.alert], 'no enumeration through refusals');
    assert.ok((await attempt('203.0.113.11')).ok, 'another address of the prefix is not refused yet');
    t.clock.advance(120_000);
    assert.ok((await attempt('203.0.113.10')).ok, 'the address may try again later');
    const refused = (await t.vigie.audit.list()).filter((e) => e.event === 'login.refused');
    assert.equal(refused.length, 1, 'a run of refusals is audited once');
    assert.equal(t.vigie.metrics.counter('vigie_login_decisions_total', '').get({ decision: 'refused', reason: 'ip_rate' }), 2);
  });

  it('journals a flood of refusals as one counted line per professional, source, reason and minute', async () => {
    t.clock.advance(120_000);
    for (let i = 0; i < 20; i += 1) assert.ok((await attempt('203.0.113.60', '899999999999')).ok);
    for (let i = 0; i < 30; i += 1) {
      const refused = await attempt('203.0.113.60');
      assert.ok(!refused.ok && refused.status === 429);
    }
    const lines = await t.vigie.db.kysely.selectFrom('defence_event').selectAll().where('national_id', '=', DEMO_PRO.nationalId).where('kind', '=', 'refused').where('at', '>=', t.clock.now() - 60_000).execute();
    assert.deepEqual(lines.map((l) => [l.prefix, l.reasons, Number(l.count)]), [['203.0.113.0/24', '["ip_rate"]', 30]], 'one row for the 30 refusals');
    const status = await t.vigie.defence.status(1);
    assert.equal(status.decisions.find((d) => d.kind === 'refused' && d.reasons[0] === 'ip_rate')?.count, 30, 'the operator still sees every refusal');
    assert.equal((await t.vigie.defence.summary(DEMO_PRO.nationalId, 1)).blocked >= 30, true, 'and so does the professional');
  });

  it('counts the address the load balancer saw, not what the client wrote before it in X-Forwarded-For', async () => {
    t.clock.advance(120_000);
    // Each request claims another origin; the balancer (one hop, VIGIE_TRUST_PROXY=true) appended the real one.
    for (let i = 0; i < 20; i += 1) assert.ok((await attempt(`100.64.${i}.1, 203.0.113.50`, '899999999999')).ok, `request ${i + 1}`);
    const refused = await attempt('100.64.99.1, 203.0.113.50', '899999999999');
    assert.ok(!refused.ok && refused.status === 429);
  });

  it('refuses a /24 past 60 requests a minute even when each address stays under its own rate', async () => {
    t.clock.advance(120_000);
    const results: Attempt[] = [];
    for (let i = 0; i < 61; i += 1) results.push(await attempt(`198.51.100.${i % 4}`, '899999999999'));
    assert.equal(results.filter((r) => r.ok).length, 60);
    const last = results.at(-1)!;
    assert.ok(!last.ok && last.status === 429);
    assert.ok((await attempt('198.51.101.1', '899999999999')).ok, 'the next /24 is another source');
  });

  it('refuses an IPv6 /48 past 4 × 60 requests a minute even when each of its /56 prefixes stays under its own rate', async () => {
    t.clock.advance(120_000);
    const results: Attempt[] = [];
    // Eight /56 prefixes of one /48, 31 requests each, each from its own address.
    for (let i = 0; i < 241; i += 1) results.push(await attempt(`2001:db8:7:${(i % 8).toString(16)}00::${(i + 1).toString(16)}`, '899999999999'));
    assert.equal(results.filter((r) => r.ok).length, 240);
    const last = results.at(-1)!;
    assert.ok(!last.ok && last.status === 429);
    assert.ok((await attempt('2001:db8:8::1', '899999999999')).ok, 'the next /48 is another site');
  });

  it('holds the requests of a source that targets more than 5 identifiers in an hour', async () => {
    t.clock.advance(3 * 3_600_000);
    const ids = await professionals(t, 7);
    for (const id of ids) await t.activateDevice(id);
    const results: Array<string | undefined> = [];
    for (const id of ids.slice(0, 6)) {
      const a = await attempt('192.0.2.50', id);
      assert.ok(a.ok);
      results.push(deliveries.of(a.challengeId));
    }
    assert.deepEqual(results, ['push', 'push', 'push', 'push', 'push', 'silent']);
    const again = await attempt('192.0.2.50', ids[0]);
    assert.ok(again.ok);
    assert.equal(deliveries.of(again.challengeId), 'silent', 'the spraying source stays held');
    assert.ok((await t.vigie.challenges.get(again.challengeId))?.context.holds?.includes('many_identifiers'));
    const elsewhere = await attempt('192.0.2.150', ids[6]);
    assert.ok(elsewhere.ok);
    assert.equal(deliveries.of(elsewhere.challengeId), 'push', 'addresses are counted separately');
  });
});

describe('push bombing from a botnet: global circuit breaker', () => {
  let t: TestVigie;
  let deliveries: ReturnType<typeof watchDeliveries>;
  const attempt = (ip: string, identifier = DEMO_PRO.nationalId) => attemptLogin(t.rp, t.redirectUri, browserAt(ip), identifier);

  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true', VIGIE_BREAKER_PUSHES_PER_MINUTE: '4' } });
    deliveries = watchDeliveries(t.vigie.bus);
    for (const id of await professionals(t, 7)) await t.activateDevice(id);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('opens a global circuit breaker for five minutes past the configured notification rate', async () => {
    const ids = await professionals(t, 7);
    const fire = async (n: number) => {
      const a = await attempt(`198.18.${n}.1`, ids[n % ids.length]);
      assert.ok(a.ok);
      return deliveries.of(a.challengeId);
    };
    // The limit is 4 a minute: the 5th push trips the breaker, the next ones are held.
    assert.deepEqual([await fire(1), await fire(2), await fire(3), await fire(4), await fire(5), await fire(6)], ['push', 'push', 'push', 'push', 'push', 'silent']);
    assert.ok((await t.vigie.audit.list()).some((e) => e.event === 'defence.breaker_open'));
    t.clock.advance(5 * 60_000 + 1000);
    assert.equal(await fire(0), 'push', 'closed again');
  });
});
