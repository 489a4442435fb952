// Threat: an attack nobody sees. Silent requests protect the professional from notifications,
// but a bombing that leaves no trace can neither be investigated by the operator nor understood
// by the professional, who then does not know why to be careful. Defence: every decision
// (notified, silent and why, refused, "not me", wrong code, blocks) goes to the hash-chained audit
// log and to Prometheus counters at /metrics; the app gets a summary after an attack
// ("7 demandes bloquées depuis Lyon, la dernière à 14:02").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, watchDeliveries } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';
import type { AttackSummary } from './service.ts';

const LYON = '90.65.0.'; // Lyon (FR-ARA) in geoip-lite's database
const TOKEN = 'metrics-token-for-the-tests';

describe('visibility: audit, counters and the attack summary', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  let deliveries: ReturnType<typeof watchDeliveries>;

  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true', VIGIE_METRICS_TOKEN: TOKEN } });
    device = await t.activateDevice();
    deliveries = watchDeliveries(t.vigie.bus);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('tells the professional what was stopped, from where and when', async () => {
    const quiet = await device.call<AttackSummary>('GET', '/attack-summary');
    assert.equal(quiet.status, 200);
    assert.equal(quiet.body.message, 'Aucune demande suspecte ces 7 derniers jours.');

    const first = await attemptLogin(t.rp, t.redirectUri, browserAt(`${LYON}10`), DEMO_PRO.nationalId);
    assert.ok(first.ok);
    assert.equal(deliveries.of(first.challengeId), 'push');
    await device.deny(first.challengeId, 'not_me');
    for (let i = 0; i < 7; i += 1) {
      t.clock.advance(60_000);
      const again = await attemptLogin(t.rp, t.redirectUri, browserAt(`${LYON}${20 + i}`), DEMO_PRO.nationalId);
      assert.ok(again.ok);
      assert.equal(deliveries.of(again.challengeId), 'silent');
    }
    const lastAt = t.clock.now();
    t.clock.advance(10 * 60_000);

    const summary = await device.call<AttackSummary>('GET', '/attack-summary?days=1');
    assert.equal(summary.status, 200);
    const hhmm = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(lastAt);
    const sameDay = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', day: '2-digit', month: '2-digit' });
    const when = sameDay.format(lastAt) === sameDay.format(t.clock.now()) ? `à ${hhmm}` : `le ${sameDay.format(lastAt)} à ${hhmm}`;
    assert.equal(summary.body.message, `7 demandes bloquées depuis Lyon, la dernière ${when}`);
    assert.deepEqual([summary.body.blocked, summary.body.notified, summary.body.reports, summary.body.lastAt], [7, 1, 1, lastAt]);
    assert.deepEqual(summary.body.places, [{ place: 'Lyon, France', count: 7, lastAt }]);
    assert.equal((await device.call('GET', '/attack-summary?days=0')).status, 400);
  });

  it('writes every decision to the audit log, whose chain stays intact', async () => {
    const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
    const created = audit.filter((e) => e.event === 'challenge.created');
    assert.equal(created.length, 8);
    assert.deepEqual(created[0]?.details.risk, ['new_browser']);
    assert.equal(created[0]?.details.delivery, 'push');
    assert.ok(created.slice(1).every((e) => e.details.delivery === 'silent' && (e.details.holds as string[]).includes('blocked')));
    const notMe = audit.find((e) => e.event === 'defence.not_me');
    assert.equal(notMe?.details.place, 'Lyon, France');
    assert.equal(notMe?.details.prefix, '90.65.0.0/24');
    assert.deepEqual(await t.vigie.audit.verify(), { ok: true, entries: (await t.vigie.audit.list()).length });
  });

  it('counts decisions, signals and blocks at /metrics, behind its token', async () => {
    assert.equal((await fetch(`${t.issuer}/metrics`)).status, 401);
    const response = await fetch(`${t.issuer}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^# TYPE vigie_login_decisions_total counter$/m);
    assert.match(text, /^vigie_login_decisions_total\{decision="push",reason="none"\} 1$/m);
    assert.match(text, /^vigie_login_decisions_total\{decision="silent",reason="blocked"\} 7$/m);
    assert.match(text, /^vigie_defence_signals_total\{outcome="not_me"\} 1$/m);
    assert.match(text, /^vigie_defence_blocks_total\{reason="not_me",scope="professional"\} 1$/m);
  });
});
