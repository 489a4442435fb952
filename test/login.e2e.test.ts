// End to end: a service (openid-client) logs a professional in through the real provider; the
// authenticator simulator approves over the signed device protocol. Runs on SQLite, and on
// PostgreSQL too when DATABASE_URL is set.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { startTestVigie, startBrowserLogin, continueLogin, resumeLogin, interactionUrl, DEMO_PRO, type TestVigie } from './support/harness.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';
import { Jar, authorizationRequest, field, follow, request, submit } from './support/browser.ts';
import { skipWithoutPostgres, skipWithoutRedis } from './support/backends.ts';
import { TimingCover } from '../src/login/timing-cover.ts';

const backends = [
  { name: 'sqlite', postgres: false, redis: false },
  ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true, redis: false }] : []),
  // Several-node mode: short-lived state and events in Redis, the rest in PostgreSQL (or SQLite).
  ...(process.env.REDIS_URL ? [{ name: 'redis', postgres: Boolean(process.env.DATABASE_URL), redis: true }] : []),
];
if (!process.env.DATABASE_URL) skipWithoutPostgres('e-CPS login end to end');
if (!process.env.REDIS_URL) skipWithoutRedis('e-CPS login end to end');

/** A second professional of the demo directory. */
const OTHER_PRO = '810000450386';

async function pendingChallenge(device: DeviceSimulator) {
  const list = await device.listChallenges();
  assert.equal(list.status, 200);
  const [challenge] = list.body.challenges;
  assert.ok(challenge, 'the device sees the pending request');
  return challenge;
}

async function assertNoCode(t: TestVigie, result: { url: URL; response: Response }) {
  assert.ok(!result.url.href.startsWith(t.redirectUri), 'the browser was not sent back to the service with a code');
  assert.equal(result.url.searchParams.get('code'), null);
}

for (const backend of backends) {
  describe(`e-CPS login end to end [${backend.name}]`, () => {
    let t: TestVigie;
    let device: DeviceSimulator;
    before(async () => {
      // Every login here comes from 127.0.0.1 within the same minute of the injected clock (about
      // twenty): the per-address rate (tested in src/defence/) must not decide these tests.
      t = await startTestVigie({ postgres: backend.postgres, redis: backend.redis, env: { VIGIE_CHALLENGES_PER_IP_PER_MINUTE: '100' } });
      device = await t.activateDevice();
    });
    after(async () => t.close());

    it('logs in: authorize → identifier → typed code + PIN on the device → code → tokens → userinfo; then number matching from that browser', async () => {
      const login = await startBrowserLogin(t);
      assert.match(login.pageHtml, /Service de test/);
      const challenge = await pendingChallenge(device);
      assert.equal(challenge.service.name, 'Service de test');
      // A browser that never completed a login types a 6-digit code (docs/defences.md).
      assert.equal(challenge.mode, 'typed');
      assert.deepEqual(challenge.candidates, []);
      assert.match(login.displayCode, /^\d{6}$/);

      const approved = await device.approve(challenge.id, login.displayCode, '2468');
      assert.equal(approved.status, 200, JSON.stringify(approved.body));

      // The approval handed the login to its interaction: the page goes straight to where it finishes.
      const status = await (await request(login.jar, `${login.challengeUrl}/status`)).json();
      assert.deepEqual([status.state, status.resume], ['approved', true]);
      const callback = await resumeLogin(t, login);
      assert.ok(callback.url.href.startsWith(t.redirectUri), `redirected to ${callback.url.href}`);
      const tokens = await client.authorizationCodeGrant(t.rp, callback.url, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
      const idClaims = tokens.claims();
      assert.ok(idClaims);
      assert.equal(idClaims.sub, DEMO_PRO.nationalId);
      assert.equal(idClaims.acr, 'eidas1');
      assert.deepEqual(idClaims.amr, ['pop', 'pin', 'mca']);
      assert.equal(idClaims.SubjectNameID, DEMO_PRO.nationalId);

      const userinfo = await client.fetchUserInfo(t.rp, tokens.access_token, DEMO_PRO.nationalId);
      assert.equal(userinfo.given_name, DEMO_PRO.givenName);
      assert.equal(userinfo.family_name, DEMO_PRO.familyName);
      assert.equal(userinfo.preferred_username, DEMO_PRO.nationalId);
      const ref = userinfo.SubjectRefPro as { exercices: Array<{ codeProfession: string; activities: Array<{ libelleCommune?: string }> }> };
      assert.equal(ref.exercices[0]?.codeProfession, '10');
      assert.equal(ref.exercices[0]?.activities.length, 2);
      assert.deepEqual(userinfo.otherIds, [{ identifiant: DEMO_PRO.rpps, origine: 'RPPS', qualite: 1 }]);

      // The same approval cannot be spent twice, by either path.
      const replay = await continueLogin(t, login);
      await assertNoCode(t, replay);
      assert.match(await replay.response.text(), /Demande déjà utilisée/);
      await assertNoCode(t, await resumeLogin(t, login));

      // The browser is now trusted for this professional: number matching, one of three.
      const again = await startBrowserLogin(t, DEMO_PRO.nationalId, { prompt: 'login' }, t.rp, login.jar);
      const second = await pendingChallenge(device);
      assert.equal(second.mode, 'pick');
      assert.equal(second.candidates.length, 3);
      assert.equal(new Set(second.candidates).size, 3);
      assert.ok(second.candidates.includes(again.displayCode));
      assert.equal((await device.approve(second.id, again.displayCode, '2468')).status, 200);
      assert.ok((await continueLogin(t, again)).url.href.startsWith(t.redirectUri));
    });

    it('accepts the bare 11-digit RPPS on the login page', async () => {
      const login = await startBrowserLogin(t, DEMO_PRO.rpps);
      const challenge = await pendingChallenge(device);
      assert.ok(login.challengeUrl.pathname.endsWith(`/${challenge.id}`));
      await device.deny(challenge.id, 'refused');
    });

    it('a page reloaded after approval offers to continue; once used, it says so', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      const reloaded = await (await request(login.jar, login.challengeUrl)).text();
      assert.match(reloaded, /Connexion validée/);
      assert.match(reloaded, /<form id="continue" method="post"/);
      assert.doesNotMatch(reloaded, /annulée/);
      assert.ok((await continueLogin(t, login)).url.href.startsWith(t.redirectUri));
      assert.match(await (await request(login.jar, login.challengeUrl)).text(), /Demande déjà utilisée/);
    });

    it('an approval that could not be handed to its interaction is finished by the continue form', async (test) => {
      // max_age: the ID token then carries auth_time.
      const login = await startBrowserLogin(t, DEMO_PRO.nationalId, { max_age: '600' });
      const challenge = await pendingChallenge(device);
      const find = test.mock.method(t.vigie.provider.Interaction, 'find', async () => {
        throw new Error('interaction store unavailable');
      }, { times: 1 });
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      assert.equal(find.mock.callCount(), 1);
      // Nothing waits in the interaction: the page must not go straight to /auth/:uid.
      const status = await (await request(login.jar, `${login.challengeUrl}/status`)).json();
      assert.deepEqual([status.state, status.resume], ['approved', false]);
      const reloaded = await (await request(login.jar, login.challengeUrl)).text();
      assert.match(reloaded, /Connexion validée/);
      // The person comes back to the page 100 s after approving on the phone.
      t.clock.advance(100_000);
      const callback = await continueLogin(t, login);
      assert.ok(callback.url.href.startsWith(t.redirectUri), `redirected to ${callback.url.href}`);
      const tokens = await client.authorizationCodeGrant(t.rp, callback.url, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
      assert.equal(tokens.claims()?.sub, DEMO_PRO.nationalId);
      // auth_time (and so max_age, and the wallet's step-up) counts from the approval, not from the return.
      const age = Date.now() / 1000 - Number(tokens.claims()?.auth_time);
      assert.ok(age >= 99 && age <= 103, `auth_time is ${age.toFixed(1)} s old`);
    });

    it('a late approval of a request the page has left does not change who logs in', async () => {
      const other = await t.activateDevice(OTHER_PRO, '1357');
      // A's identifier first, then back to the identifier page (the browser's back button: A's
      // request stays on A's phone) and another professional's.
      const first = await startBrowserLogin(t);
      const identifierPage = await follow(first.jar, interactionUrl(first.challengeUrl));
      const identifierHtml = await identifierPage.response.text();
      const action = /<form method="post" action="([^"]+\/login)"/.exec(identifierHtml)![1]!;
      const second = await submit(first.jar, new URL(action, identifierPage.url), { csrf: field(identifierHtml, 'csrf')!, nationalId: OTHER_PRO });
      const secondHtml = await second.response.text();
      const secondCode = /<p class="code"[^>]*>(\d+)<\/p>/.exec(secondHtml)![1]!;
      const left = await pendingChallenge(device);
      const current = await pendingChallenge(other);
      assert.equal((await other.approve(current.id, secondCode, '1357')).status, 200);
      // A approves the request the page left before the page's navigation lands: not handed over.
      assert.equal((await device.approve(left.id, first.displayCode, '2468')).status, 200);
      const callback = await resumeLogin(t, { jar: first.jar, challengeUrl: second.url, pageHtml: secondHtml });
      const tokens = await client.authorizationCodeGrant(t.rp, callback.url, { pkceCodeVerifier: first.verifier, expectedState: first.state, expectedNonce: first.nonce });
      assert.equal(tokens.claims()?.sub, OTHER_PRO);
      // The left page's continue form does not log anyone in.
      await assertNoCode(t, await continueLogin(t, first));
    });

    it('"Recommencer avec un autre identifiant" withdraws the request from the phone and shows the identifier form', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      const restart = /<form method="post" action="([^"]+\/restart)" data-leave>/.exec(login.pageHtml)?.[1];
      assert.ok(restart, 'the code page offers to start again');
      const again = await submit(login.jar, new URL(restart, login.challengeUrl), { csrf: login.csrf, challenge: challenge.id });
      assert.equal(again.response.status, 200);
      assert.match(await again.response.text(), /Identifiant national/);
      assert.equal((await device.listChallenges()).body.challenges.length, 0);
      assert.equal((await t.vigie.challenges.get(challenge.id))?.state, 'cancelled');
      // Without the page's CSRF token nothing is withdrawn.
      const other = await startBrowserLogin(t);
      const kept = await pendingChallenge(device);
      const forged = await request(other.jar, interactionUrl(other.challengeUrl, '/restart'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=x&challenge=${kept.id}` });
      assert.equal(forged.status, 403);
      assert.equal((await t.vigie.challenges.get(kept.id))?.state, 'pending');
      // Nor with this browser's own token and another page's request, nor without the page's cookie.
      const mine = await startBrowserLogin(t, OTHER_PRO);
      const restartMine = interactionUrl(mine.challengeUrl, '/restart');
      assert.equal((await submit(mine.jar, restartMine, { csrf: mine.csrf, challenge: kept.id })).response.status, 200);
      assert.equal((await t.vigie.challenges.get(kept.id))?.state, 'pending');
      const cookieless = await request(new Jar(), restartMine, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${encodeURIComponent(mine.csrf)}&challenge=${kept.id}` });
      assert.equal(cookieless.status, 400);
      await device.deny(kept.id, 'refused');
    });

    it('starting again after the request was approved takes that login back from the page', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      // The approval wins the race against the button.
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      const restart = interactionUrl(login.challengeUrl, '/restart');
      assert.equal((await submit(login.jar, restart, { csrf: login.csrf, challenge: challenge.id })).response.status, 200);
      // Back to the code's page: nothing waits any more, no code for the service.
      assert.match(await (await request(login.jar, login.challengeUrl)).text(), /Demande déjà utilisée/);
      await assertNoCode(t, await resumeLogin(t, login));
    });

    it('the cancel button withdraws the request from the phone and returns access_denied to the service', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      const abort = /<form method="post" action="([^"]+\/abort)" data-leave>/.exec(login.pageHtml)?.[1];
      assert.ok(abort, 'the code page has a cancel button');
      assert.match(login.pageHtml, new RegExp(`name="challenge" value="${challenge.id}"`));
      const back = await submit(login.jar, new URL(abort, login.challengeUrl), { csrf: login.csrf, challenge: challenge.id }, (u) => u.href.startsWith(t.redirectUri));
      assert.equal(back.url.searchParams.get('error'), 'access_denied');
      assert.equal(back.url.searchParams.get('code'), null);
      assert.equal((await device.listChallenges()).body.challenges.length, 0);
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 409);
    });

    it('an approval after the person cancelled is not handed over: access_denied, no code', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      // Cancelled from a page that does not name the challenge: it stays pending on the phone.
      const abort = await request(login.jar, interactionUrl(login.challengeUrl, '/abort'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${encodeURIComponent(login.csrf)}` });
      assert.equal(abort.status, 303);
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      const back = await follow(login.jar, new URL(abort.headers.get('location')!, login.challengeUrl), (u) => u.href.startsWith(t.redirectUri));
      assert.equal(back.url.searchParams.get('error'), 'access_denied');
      assert.equal(back.url.searchParams.get('code'), null);
    });

    it('another browser cannot finish the login, even with its address; an expired one says so in French', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      const stranger = await resumeLogin(t, { ...login, jar: new Jar() });
      await assertNoCode(t, stranger);
      assert.match(await stranger.response.text(), /Cette demande de connexion a expiré ou a déjà été utilisée/);
      // The browser that asked still can.
      assert.ok((await resumeLogin(t, login)).url.href.startsWith(t.redirectUri));
    });

    it('the trusted-browser cookie goes only to the browser id that asked, and not on single sign-on', async () => {
      const trustCookies = (jar: Jar) => jar.header(new URL(t.issuer)).split('; ').filter((c) => c.startsWith('vigie_tb_'));
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      // The browser id changed between the request and the end of the login.
      login.jar.store(new URL(t.issuer), new Response(null, { headers: { 'set-cookie': `vigie_bid=${'B'.repeat(22)}; Path=/` } }));
      assert.ok((await resumeLogin(t, login)).url.href.startsWith(t.redirectUri));
      assert.deepEqual(trustCookies(login.jar), []);
      // The session is reused without a new approval: no trust either.
      const { url } = await authorizationRequest(t.rp, { redirect_uri: t.redirectUri, scope: 'openid scope_all', acr_values: 'eidas1' });
      const sso = await follow(login.jar, url, (u) => u.href.startsWith(t.redirectUri));
      assert.ok(sso.url.searchParams.get('code'), 'single sign-on');
      assert.deepEqual(trustCookies(login.jar), []);
    });

    it('an approval whose interaction has gone meanwhile ends with the expired message', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      const uid = login.challengeUrl.pathname.split('/')[2]!;
      await (await t.vigie.provider.Interaction.find(uid))!.destroy();
      assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
      const status = await (await request(login.jar, `${login.challengeUrl}/status`)).json();
      assert.deepEqual([status.state, status.resume], ['approved', false]);
      const outcome = await continueLogin(t, login);
      await assertNoCode(t, outcome);
      assert.equal(outcome.response.status, 400);
      assert.match(await outcome.response.text(), /Cette demande de connexion a expiré/);
    });

    it('a wrong code picked fails the challenge: no code is issued', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      const wrong = challenge.mode === 'pick' ? challenge.candidates.find((c) => c !== login.displayCode)! : String((Number(login.displayCode) + 1) % 1_000_000).padStart(6, '0');
      const result = await device.approve(challenge.id, wrong, '2468');
      assert.equal(result.status, 422);
      assert.equal(result.body.error, 'CHALLENGE_WRONG_CODE');
      const status = await request(login.jar, `${login.challengeUrl}/status`);
      assert.equal((await status.json()).state, 'failed');
      const outcome = await continueLogin(t, login);
      await assertNoCode(t, outcome);
      assert.match(await outcome.response.text(), /Demande annulée/);
      // A settled challenge cannot be approved afterwards with the right code.
      const late = await device.approve(challenge.id, login.displayCode, '2468');
      assert.equal(late.status, 409);
    });

    it('a denial ends the login with a French message and no code', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      assert.equal((await device.deny(challenge.id, 'not_me')).status, 200);
      const outcome = await continueLogin(t, login);
      await assertNoCode(t, outcome);
      assert.match(await outcome.response.text(), /refusée/);
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      assert.ok(audit.some((e) => e.event === 'challenge.denied' && e.details.reason === 'not_me'));
    });

    it('expiry after 60 s (injected clock): the page says expired, the device can no longer approve', async () => {
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(device);
      t.clock.advance(61_000);
      const status = await request(login.jar, `${login.challengeUrl}/status`);
      assert.equal((await status.json()).state, 'expired');
      const late = await device.approve(challenge.id, login.displayCode, '2468');
      assert.equal(late.status, 410);
      const outcome = await continueLogin(t, login);
      await assertNoCode(t, outcome);
      assert.match(await outcome.response.text(), /expiré/);
    });

    it('three wrong PINs lock the device and end the login without a code', async () => {
      const second = await t.activateDevice(DEMO_PRO.nationalId, '8642');
      const login = await startBrowserLogin(t);
      const challenge = await pendingChallenge(second);
      const first = await second.approve(challenge.id, login.displayCode, '1357');
      assert.equal(first.status, 403);
      assert.equal(first.body.error, 'PIN_WRONG');
      assert.equal((await second.approve(challenge.id, login.displayCode, '1357')).body.error, 'PIN_WRONG');
      const third = await second.approve(challenge.id, login.displayCode, '1357');
      assert.equal(third.body.error, 'DEVICE_LOCKED');
      // Locked: even the right PIN is refused now.
      const after = await second.listChallenges();
      assert.equal(after.status, 403);
      const outcome = await continueLogin(t, login);
      await assertNoCode(t, outcome);
      const status = await request(login.jar, `${login.challengeUrl}/status`);
      assert.equal((await status.json()).state, 'failed');
    });

    it('answers the same way for an unknown identifier (no enumeration), and the challenge just expires', async (test) => {
      // Timing too: the known professional's answer is a sample, the unknown one is held to match.
      const record = test.mock.method(TimingCover.prototype, 'record');
      const hold = test.mock.method(TimingCover.prototype, 'hold');
      const known = await startBrowserLogin(t);
      assert.deepEqual([record.mock.callCount(), hold.mock.callCount()], [1, 0]);
      const unknown = await startBrowserLogin(t, '899999999999');
      assert.deepEqual([record.mock.callCount(), hold.mock.callCount()], [1, 1]);
      const shape = (html: string) => html.replace(/\/(interaction|auth)\/[^"]+/g, 'URL').replace(/value="[^"]*"/g, 'value=""').replace(/<p class="code"[^>]*>\d+<\/p>/, 'CODE').replace(/aria-label="[^"]*"/, '').replace(/\d+ secondes/, 'N secondes');
      assert.equal(shape(unknown.pageHtml), shape(known.pageHtml));
      assert.match(unknown.pageHtml, /Si vous n'avez pas encore activé votre e-CPS/);
      const pending = await device.listChallenges();
      for (const c of pending.body.challenges) await device.deny(c.id, 'refused');
    });

    it('rejects malformed identifiers with a precise French message', async () => {
      for (const [input, message] of [['12345', /12 chiffres/], ['81000000001A', /chiffres/], ['910000000017', /commence par 8/], ['', /Saisissez/]] as const) {
        await assert.rejects(startBrowserLogin(t, input), (error: Error) => message.test(error.message) || assert.fail(error.message));
      }
    });
  });
}
