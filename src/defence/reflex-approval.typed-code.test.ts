// Threat: approval by reflex. A bombed professional taps "approve" without reading, or believes
// a colleague asked. With number matching (pick one of three) a blind pick wins one time in
// three; NIST SP 800-63B-4 no longer accepts comparing codes for this reason. Defence: a browser
// that is not trusted (and any service configured so) gets a 6-digit code shown on the login
// page that must be typed in the app (a blind guess wins one time in a million), compared in
// constant time; a wrong code fails the request and counts as a strong fraud signal that blocks
// the source for this professional and puts them in attack mode.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, finishLogin, watchDeliveries, wrongCode } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';

describe('approval by reflex: typed code for browsers that are not trusted', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  let deliveries: ReturnType<typeof watchDeliveries>;

  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true' } });
    device = await t.activateDevice();
    deliveries = watchDeliveries(t.vigie.bus);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('shows an unknown browser a 6-digit code to type; the device gets no candidates to pick from', async () => {
    const attacker = await attemptLogin(t.rp, t.redirectUri, browserAt('198.51.100.7'), DEMO_PRO.nationalId);
    assert.ok(attacker.ok);
    assert.equal(attacker.mode, 'typed');
    assert.match(attacker.displayCode, /^\d{6}$/);
    const seen = await device.show(attacker.challengeId);
    assert.equal(seen.body.mode, 'typed');
    assert.deepEqual(seen.body.candidates, []);
    const codes = new Set<string>();
    for (let i = 0; i < 20; i += 1) {
      t.clock.advance(61_000);
      const a = await attemptLogin(t.rp, t.redirectUri, browserAt(`198.18.${i}.1`), '899999999999');
      assert.ok(a.ok);
      codes.add(a.displayCode);
    }
    assert.ok(codes.size >= 19, 'codes are drawn at random');
  });

  it('a reflex approval with made-up digits fails, gives no login, blocks the source and holds what follows', async () => {
    t.clock.advance(3_600_000);
    const attacker = await attemptLogin(t.rp, t.redirectUri, browserAt('192.0.2.44'), DEMO_PRO.nationalId);
    assert.ok(attacker.ok);
    assert.equal(deliveries.of(attacker.challengeId), 'push');
    const reflex = await device.approve(attacker.challengeId, wrongCode(attacker.displayCode), '2468');
    assert.equal(reflex.status, 422);
    assert.equal(reflex.body.error, 'CHALLENGE_WRONG_CODE');
    assert.equal(await finishLogin(attacker, t.redirectUri), false, 'no authorization code for the attacker');
    // A pick-mode answer does not fit a typed challenge either.
    const another = await attemptLogin(t.rp, t.redirectUri, browserAt('192.0.2.45'), DEMO_PRO.nationalId);
    assert.ok(another.ok);
    assert.equal(deliveries.of(another.challengeId), 'silent', 'held after the wrong code');
    assert.deepEqual((await t.vigie.challenges.get(another.challengeId))?.context.holds?.sort(), ['backoff', 'blocked', 'reported_source', 'under_attack']);
    assert.equal((await device.approve(another.challengeId, another.displayCode.slice(0, 2), '2468')).status, 422);
    const blocks = await t.vigie.defence.listBlocks();
    assert.ok(blocks.some((b) => b.reason === 'wrong_code' && b.prefix === '192.0.2.0/24' && b.nationalId === DEMO_PRO.nationalId));
  });

  it('the real user types the code shown on the page and is logged in', async () => {
    t.clock.advance(25 * 3_600_000);
    const real = await attemptLogin(t.rp, t.redirectUri, browserAt('198.51.100.200'), DEMO_PRO.nationalId);
    assert.ok(real.ok);
    assert.equal(real.mode, 'typed');
    assert.equal((await device.approve(real.challengeId, real.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(real, t.redirectUri), true);
  });
});

describe('approval by reflex: services that always ask for the typed code', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true', VIGIE_TYPED_CODE_CLIENTS: 'other-rp, test-rp' } });
    device = await t.activateDevice();
  });
  after(async () => t.close());

  it('keeps the typed code even for a trusted browser', async () => {
    const browser = browserAt('198.51.100.8');
    const first = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
    assert.ok(first.ok);
    assert.equal((await device.approve(first.challengeId, first.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(first, t.redirectUri), true);
    const second = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
    assert.ok(second.ok);
    assert.equal((await t.vigie.challenges.get(second.challengeId))?.context.trusted, true);
    assert.equal(second.mode, 'typed');
  });
});
