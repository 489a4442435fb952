// Threat: an attacker far from the professional — abroad, or with a stolen trusted-browser
// cookie used from elsewhere — counts on the professional not noticing where a request comes
// from. Defence: risk signals from offline GeoIP (geoip-lite ships its database): a request from
// a country where the professional never completed a login is silent for unknown browsers and
// asks a trusted browser for the typed code; a new region asks a trusted browser for the typed
// code too. The place is shown to the professional with each request. (New browser, many
// identifiers from one source and earlier reports are the other signals: see the typed-code,
// source-throttle and not-me tests.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, finishLogin, watchDeliveries, type SourceBrowser } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';

// Places in geoip-lite's shipped database.
const ILE_DE_FRANCE = '82.64.1.1'; // Montesson, FR-IDF
const PAYS_DE_LA_LOIRE = '176.128.0.1'; // Les Herbiers, FR-PDL
const GERMANY = '185.220.101.1';
const UNITED_STATES = '45.0.0.1';

describe('risk signals: new country, new region', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  let deliveries: ReturnType<typeof watchDeliveries>;
  const jarOfTheRealUser = browserAt(ILE_DE_FRANCE).jar;
  const login = async (browser: SourceBrowser) => {
    const attempt = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
    assert.ok(attempt.ok);
    const challenge = await t.vigie.challenges.get(attempt.challengeId);
    return { attempt, challenge: challenge!, delivery: deliveries.of(attempt.challengeId) };
  };

  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true' } });
    device = await t.activateDevice();
    deliveries = watchDeliveries(t.vigie.bus);
    const first = await login({ jar: jarOfTheRealUser, ip: ILE_DE_FRANCE });
    assert.equal(first.challenge.context.place, 'Montesson, France', 'the place shown on the device');
    const seen = await device.call<{ context: { place: string | null } }>('GET', `/challenges/${first.attempt.challengeId}`);
    assert.equal(seen.body.context.place, 'Montesson, France');
    await device.approve(first.attempt.challengeId, first.attempt.displayCode, '2468');
    assert.equal(await finishLogin(first.attempt, t.redirectUri), true);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('a trusted browser in a known place gets number matching', async () => {
    const home = await login({ jar: jarOfTheRealUser, ip: ILE_DE_FRANCE });
    assert.deepEqual([home.attempt.mode, home.delivery, home.challenge.context.risk], ['pick', 'push', []]);
    await device.deny(home.attempt.challengeId, 'refused');
    t.clock.advance(3_600_000);
  });

  it('a trusted browser in a new region or country is still notified but must type the code', async () => {
    const region = await login({ jar: jarOfTheRealUser, ip: PAYS_DE_LA_LOIRE });
    assert.deepEqual([region.attempt.mode, region.delivery, region.challenge.context.risk], ['typed', 'push', ['new_region']]);
    await device.deny(region.attempt.challengeId, 'refused');
    t.clock.advance(3_600_000);
    const abroad = await login({ jar: jarOfTheRealUser, ip: GERMANY });
    assert.deepEqual([abroad.attempt.mode, abroad.delivery, abroad.challenge.context.risk], ['typed', 'push', ['new_country']]);
    assert.equal(abroad.challenge.context.place, 'Allemagne');
    await device.deny(abroad.attempt.challengeId, 'refused');
    t.clock.advance(3_600_000);
  });

  it('an unknown browser from a new country is silent; from the professional’s country it is notified', async () => {
    const foreign = await login(browserAt(UNITED_STATES));
    assert.equal(foreign.delivery, 'silent');
    assert.deepEqual(foreign.challenge.context.holds, ['new_country']);
    assert.equal(foreign.challenge.context.place, 'États-Unis');
    const domestic = await login(browserAt(PAYS_DE_LA_LOIRE));
    assert.deepEqual([domestic.attempt.mode, domestic.delivery], ['typed', 'push']);
  });
});
