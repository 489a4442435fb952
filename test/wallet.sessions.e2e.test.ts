// Threat: an attacker who got one approval holds a Vigie session and service sessions in the
// professional's name. The wallet must show it and cut it off for real: provider session gone,
// grants and tokens revoked (refresh refused, introspection inactive at once), a back-channel
// logout token with `sid` delivered to every service (retried with back-off, outcome visible).
// End to end with openid-client as the demo service; SQLite, and PostgreSQL when DATABASE_URL is set.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { startTestVigie, startBrowserLogin, continueLogin, freePort, DEMO_PRO, type TestVigie } from './support/harness.ts';
import { Jar, follow, request, submit } from './support/browser.ts';
import { skipWithoutPostgres, skipWithoutRedis } from './support/backends.ts';
import { walletLogin } from './support/wallet.ts';
import { loginToDemo, offlineTokens, startTestDemo, type TestDemo } from './support/wallet-services.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';
import { MAX_ATTEMPTS, RETRY_DELAYS_MS } from '../src/wallet/backchannel.ts';

const backends = [
  { name: 'sqlite', postgres: false, redis: false },
  ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true, redis: false }] : []),
  // Several-node mode: short-lived provider models in Redis, sessions and grants in SQL.
  ...(process.env.REDIS_URL ? [{ name: 'redis', postgres: Boolean(process.env.DATABASE_URL), redis: true }] : []),
];
if (!process.env.DATABASE_URL) skipWithoutPostgres('wallet sessions and forced logout');
if (!process.env.REDIS_URL) skipWithoutRedis('wallet sessions and forced logout');

const LUCAS = '810000450386';

/** The provider session in which `clientId` got this `sid` (what the logout token will carry). */
async function sessionUidOf(t: TestVigie, clientId: string, sid: string): Promise<string> {
  const rows = await t.vigie.db.kysely.selectFrom('oidc_model').select('payload').where('model', '=', 'Session').execute();
  const payload = rows.map((r) => JSON.parse(r.payload) as { uid: string; authorizations?: Record<string, { sid?: string }> }).find((p) => p.authorizations?.[clientId]?.sid === sid);
  assert.ok(payload, `a session holds ${clientId}/${sid}`);
  return payload.uid;
}

function sessionUids(html: string): string[] {
  return [...html.matchAll(/data-session="([^"]+)"/g)].map((m) => m[1]!);
}

async function postForm(jar: Jar, url: string, fields: Record<string, string>) {
  return submit(jar, url, fields);
}

for (const backend of backends) {
  describe(`wallet sessions and forced logout [${backend.name}]`, () => {
    let t: TestVigie;
    let device: DeviceSimulator;
    let d: TestDemo;
    const servers: Server[] = [];
    /** Test services are closed even when a test fails, so the process can exit. */
    const track = (server: Server) => {
      servers.push(server);
      return server;
    };
    before(async () => {
      t = await startTestVigie({ postgres: backend.postgres, redis: backend.redis });
      device = await t.activateDevice();
      d = await startTestDemo(t);
    });
    after(async () => {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
      await d.close();
      await t.close();
    });

    it('the wallet asks for a fresh e-CPS approval even when the browser already has a Vigie session', async () => {
      const jar = new Jar();
      await loginToDemo(t, d, device, jar);
      const start = await follow(jar, `${t.issuer}/wallet`);
      assert.match(start.url.pathname, /^\/interaction\//, 'single sign-on is not enough for the wallet');
      assert.match(await start.response.text(), /Portefeuille Vigie/);
      const login = await request(jar, `${t.issuer}/wallet/login`);
      const location = new URL(login.headers.get('location')!);
      assert.equal(location.searchParams.get('prompt'), 'login');
      assert.equal(location.searchParams.get('acr_values'), 'eidas1');
      assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    });

    it('lists every session in the professional\'s name, with its services, place and browser; the wallet\'s own is marked', async () => {
      const attacker = await loginToDemo(t, d, device);
      const wallet = await walletLogin(t, device);
      const uids = sessionUids(wallet.html);
      assert.ok(uids.length >= 2, 'the attacker\'s session and the wallet\'s');
      const views = await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId);
      const attackerUid = await sessionUidOf(t, 'demo-sante', attacker.session.sid!);
      const attackerView = views.find((v) => v.uid === attackerUid);
      assert.ok(attackerView);
      assert.deepEqual(attackerView.services.map((x) => x.name), ['Service de santé (démo)']);
      assert.ok(uids.includes(attackerView.uid));
      assert.equal(attackerView.ip, '127.0.0.1');
      assert.match(wallet.html, /Service de santé \(démo\)/);
      assert.match(wallet.html, /Cette session \(portefeuille\)/);
      // The session context comes from the approved challenge of that login.
      const row = await t.vigie.db.kysely.selectFrom('provider_session_info').select(['challenge_id', 'browser']).where('session_uid', '=', attackerUid!).executeTakeFirstOrThrow();
      assert.ok(row.challenge_id, 'the session names the challenge that opened it');
      const opened = await t.vigie.db.kysely.selectFrom('challenge').select(['state', 'national_id', 'context']).where('id', '=', row.challenge_id).executeTakeFirstOrThrow();
      assert.equal(opened.state, 'approved');
      assert.equal(opened.national_id, DEMO_PRO.nationalId);
      assert.equal(row.browser, (JSON.parse(opened.context) as { browser: string }).browser);
      const info = await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId);
      assert.ok(info.every((s) => s.startedAt > 0 && s.lastUsedAt >= s.startedAt - 1000));
    });

    it('forced logout cuts off: back-channel token with sid, demo session gone, refresh refused, introspection inactive', async () => {
      const attacker = await loginToDemo(t, d, device);
      const demoSession = attacker.session;
      const offline = await offlineTokens(t, d, attacker.jar);
      assert.equal((await client.tokenIntrospection(d.rp, demoSession.tokens.access_token)).active, true);
      assert.equal((await client.tokenIntrospection(d.rp, offline.refresh_token!)).active, true);

      const wallet = await walletLogin(t, device);
      const target = { uid: await sessionUidOf(t, 'demo-sante', demoSession.sid!) };
      assert.ok(sessionUids(wallet.html).includes(target.uid), 'the attacker\'s session is listed');
      const receiptsBefore = d.demo.backchannelLogouts.length;
      const ended = await postForm(wallet.jar, `${t.issuer}/wallet/sessions/${target.uid}/end`, { csrf: wallet.csrf });
      const html = await ended.response.text();
      assert.equal(ended.url.pathname, '/wallet');
      assert.match(html, /La session a été déconnectée/);
      assert.match(html, /Déconnexion reçue par le service/);
      assert.ok(!sessionUids(html).includes(target.uid));

      // The demo service received a valid logout token naming the session, and dropped its own session.
      const receipts = d.demo.backchannelLogouts.slice(receiptsBefore);
      assert.equal(receipts.length, 1);
      assert.equal(receipts[0]!.valid, true, receipts[0]!.error);
      assert.equal(receipts[0]!.sid, demoSession.sid);
      assert.equal(receipts[0]!.sub, DEMO_PRO.nationalId);
      assert.equal(d.demo.sessions.has(demoSession.id), false);
      const page = await request(attacker.jar, `${d.demo.url}/`);
      assert.doesNotMatch(await page.text(), /Bonjour/);

      // Tokens: refresh refused, introspection inactive at once (access and refresh).
      await assert.rejects(client.refreshTokenGrant(d.rp, offline.refresh_token!), (e: unknown) => e instanceof client.ResponseBodyError && e.error === 'invalid_grant');
      assert.equal((await client.tokenIntrospection(d.rp, demoSession.tokens.access_token)).active, false);
      assert.equal((await client.tokenIntrospection(d.rp, offline.access_token)).active, false);
      assert.equal((await client.tokenIntrospection(d.rp, offline.refresh_token!)).active, false);
      await assert.rejects(client.fetchUserInfo(d.rp, demoSession.tokens.access_token, DEMO_PRO.nationalId));

      // The provider session is gone: the attacker's browser must log in again.
      assert.equal(await t.vigie.wallet.sessions.exists(target.uid), false);
      const again = await follow(attacker.jar, `${d.demo.url}/login`);
      assert.match(again.url.pathname, /^\/interaction\//);

      // Audited, with the delivery outcome.
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      const endedEntry = audit.find((e) => e.event === 'session.ended' && e.details.sessionUid === target.uid);
      assert.ok(endedEntry);
      assert.equal(endedEntry.actor, `wallet:${DEMO_PRO.nationalId}`);
      assert.ok(audit.some((e) => e.event === 'backchannel.delivered' && e.details.sid === demoSession.sid));
      // The wallet's own session is untouched.
      assert.equal((await request(wallet.jar, `${t.issuer}/wallet`)).status, 200);
    });

    it('the logout token is a signed OIDC back-channel logout token (events, sid, no nonce)', async () => {
      // Capture what oidc-provider sends through the wallet's sender by registering a recording service.
      const tokens: string[] = [];
      const server: Server = track(createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c));
        req.on('end', () => {
          tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
          res.writeHead(200).end();
        });
      }));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const secret = randomBytes(32).toString('base64url');
      await t.vigie.clients.put({ client_id: 'svc-recorder', client_name: 'Service enregistreur', redirect_uris: [t.redirectUri], client_secret: secret, backchannel_logout_uri: `http://127.0.0.1:${port}/bcl` });
      const rp = await client.discovery(new URL(t.issuer), 'svc-recorder', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
      const login = await startBrowserLogin(t, DEMO_PRO.nationalId, {}, rp);
      const challenge = (await device.listChallenges()).body.challenges.find((c) => c.service.name === 'Service enregistreur')!;
      await device.approve(challenge.id, login.displayCode, '2468');
      const callback = await continueLogin(t, login);
      const idToken = (await client.authorizationCodeGrant(rp, callback.url, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce })).claims()!;
      const uid = await sessionUidOf(t, 'svc-recorder', String(idToken.sid));
      await t.vigie.wallet.sessions.end(DEMO_PRO.nationalId, uid, { actor: 'test', reason: 'wallet' });
      assert.equal(tokens.length, 1);
      const claims = decodeJwt(tokens[0]!);
      assert.equal(claims.iss, t.issuer);
      assert.equal(claims.aud, 'svc-recorder');
      assert.equal(claims.sub, DEMO_PRO.nationalId);
      assert.equal(claims.sid, idToken.sid);
      assert.ok(claims.jti && claims.iat);
      assert.deepEqual(claims.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
      assert.equal('nonce' in claims, false);
    });

    it('an unreachable service is shown, retried with back-off, then given up; a service that comes back gets it', async () => {
      const downPort = await freePort();
      let flakyCalls = 0;
      const flaky: Server = track(createServer((req, res) => {
        req.resume();
        flakyCalls += 1;
        res.writeHead(flakyCalls === 1 ? 503 : 200).end();
      }));
      await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
      const flakyPort = (flaky.address() as AddressInfo).port;
      const rps: client.Configuration[] = [];
      for (const [id, name, uri] of [['svc-down', 'Service en panne', `http://127.0.0.1:${downPort}/bcl`], ['svc-flaky', 'Service instable', `http://127.0.0.1:${flakyPort}/bcl`]] as const) {
        const secret = randomBytes(32).toString('base64url');
        await t.vigie.clients.put({ client_id: id, client_name: name, redirect_uris: [t.redirectUri], client_secret: secret, backchannel_logout_uri: uri });
        rps.push(await client.discovery(new URL(t.issuer), id, undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] }));
      }
      // One attacker browser, logged in to both services (the second one by single sign-on).
      const jar = new Jar();
      const first = await startBrowserLogin(t, DEMO_PRO.nationalId, {}, rps[0], jar);
      const challenge = (await device.listChallenges()).body.challenges.find((c) => c.service.name === 'Service en panne')!;
      await device.approve(challenge.id, first.displayCode, '2468');
      await continueLogin(t, first);
      const sso = client.buildAuthorizationUrl(rps[1]!, { redirect_uri: t.redirectUri, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const ssoDone = await follow(jar, sso, (u) => u.href.startsWith(t.redirectUri));
      assert.ok(ssoDone.url.searchParams.get('code'));

      const wallet = await walletLogin(t, device);
      const uid = (await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId)).find((s) => s.services.some((x) => x.clientId === 'svc-down'))!.uid;
      const ended = await postForm(wallet.jar, `${t.issuer}/wallet/sessions/${uid}/end`, { csrf: wallet.csrf });
      const html = await ended.response.text();
      assert.match(html, /Service en panne/);
      assert.match(html, new RegExp(`Pas encore reçue : service injoignable \\(essai 1 sur ${MAX_ATTEMPTS}\\)`));
      assert.match(html, /Pas encore reçue : réponse HTTP 503 du service/);
      assert.match(html, /data-poll-url="\/wallet\/deliveries.json"/);

      const status = async () => ((await (await request(wallet.jar, `${t.issuer}/wallet/deliveries.json`, { headers: { accept: 'application/json' } })).json()) as { deliveries: Array<{ clientId: string; state: string; attempts: number; text: string }> }).deliveries;
      let list = await status();
      assert.deepEqual(list.filter((x) => x.clientId === 'svc-down').map((x) => [x.state, x.attempts]), [['pending', 1]]);

      // Not due yet: nothing happens. (The background sweep may run too: assertions are on states.)
      t.clock.advance(RETRY_DELAYS_MS[0] - 1000);
      await t.vigie.wallet.deliveries.retryDue();
      list = await status();
      assert.deepEqual(list.filter((x) => x.clientId === 'svc-down' || x.clientId === 'svc-flaky').map((x) => [x.clientId, x.attempts]).sort(), [['svc-down', 1], ['svc-flaky', 1]]);
      // Due: the flaky service answers now; the down one fails again, and so on until it is given up.
      t.clock.advance(1000);
      await t.vigie.wallet.deliveries.retryDue();
      list = await status();
      assert.deepEqual(list.find((x) => x.clientId === 'svc-flaky')?.state, 'delivered');
      assert.deepEqual(list.filter((x) => x.clientId === 'svc-down').map((x) => [x.state, x.attempts]), [['pending', 2]]);
      for (const delay of RETRY_DELAYS_MS.slice(1)) {
        t.clock.advance(delay);
        await t.vigie.wallet.deliveries.retryDue();
      }
      // Hours later the wallet session has expired: the professional logs in again and sees the outcome.
      const later = await walletLogin(t, device);
      assert.match(later.html, /Échec : service injoignable après 6 essais/);
      list = ((await (await request(later.jar, `${t.issuer}/wallet/deliveries.json`)).json()) as { deliveries: typeof list }).deliveries;
      const down = list.find((x) => x.clientId === 'svc-down')!;
      assert.deepEqual([down.state, down.attempts], ['failed', MAX_ATTEMPTS]);
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      assert.ok(audit.some((e) => e.event === 'backchannel.failed' && e.details.clientId === 'svc-down' && e.details.attempts === MAX_ATTEMPTS));
      assert.ok(audit.some((e) => e.event === 'backchannel.delivered' && e.details.clientId === 'svc-flaky' && e.details.attempts === 2));
    });

    it('« Me déconnecter partout » ends every session, the wallet\'s own too, and leaves no grant or token behind', async () => {
      const attacker = await loginToDemo(t, d, device);
      const offline = await offlineTokens(t, d, attacker.jar);
      const wallet = await walletLogin(t, device);
      const ended = await postForm(wallet.jar, `${t.issuer}/wallet/sessions/end-all`, { csrf: wallet.csrf });
      const html = await ended.response.text();
      assert.equal(ended.response.status, 200);
      assert.match(html, /Vous êtes déconnecté partout/);
      assert.match(html, /Déconnexion reçue par le service/);
      assert.deepEqual(await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId), []);
      assert.equal(d.demo.sessions.size, 0);
      const left = await t.vigie.db.kysely.selectFrom('oidc_model').select('model').where('account_id', '=', DEMO_PRO.nationalId).where('model', 'in', ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode']).execute();
      assert.deepEqual(left, []);
      assert.equal((await client.tokenIntrospection(d.rp, offline.refresh_token!)).active, false);
      await assert.rejects(client.refreshTokenGrant(d.rp, offline.refresh_token!));
      // The wallet session ended with its provider session: back to the login page.
      const back = await follow(wallet.jar, `${t.issuer}/wallet`);
      assert.match(back.url.pathname, /^\/interaction\//);
    });

    it('cross-user: a professional can never see or end another\'s sessions, nor touch their devices or contact changes', async () => {
      const lucasDevice = await t.activateDevice(LUCAS, '1357');
      const camille = await walletLogin(t, device);
      const camilleUids = sessionUids(camille.html);
      assert.ok(camilleUids.length >= 1);
      const lucas = await walletLogin(t, lucasDevice, { nationalId: LUCAS, pin: '1357' });
      assert.match(lucas.html, /LOPEZ/);
      for (const uid of camilleUids) assert.ok(!lucas.html.includes(uid), 'Camille\'s sessions are not listed for Lucas');

      // Ending Camille's session from Lucas's wallet: not found, and nothing happened.
      for (const uid of camilleUids) {
        const attempt = await postForm(lucas.jar, `${t.issuer}/wallet/sessions/${uid}/end`, { csrf: lucas.csrf });
        assert.equal(attempt.response.status, 404);
        assert.equal(await t.vigie.wallet.sessions.exists(uid), true);
      }
      assert.equal((await request(camille.jar, `${t.issuer}/wallet`)).status, 200);

      // Camille's device cannot be revoked by Lucas.
      const camilleDevice = device.state.deviceId!;
      const revoke = await postForm(lucas.jar, `${t.issuer}/wallet/devices/${camilleDevice}/revoke`, { csrf: lucas.csrf });
      assert.equal(revoke.response.status, 404);
      assert.equal((await device.listChallenges()).status, 200, 'Camille\'s device still works');

      // Camille's contact change cannot be confirmed or cancelled by Lucas.
      const change = await t.vigie.wallet.contacts.request({ nationalId: DEMO_PRO.nationalId, kind: 'email', value: 'camille.autre@exemple.fr', authenticatedAt: t.clock.now(), actor: 'test' });
      for (const action of ['confirm', 'cancel']) {
        const r = await postForm(lucas.jar, `${t.issuer}/wallet/contacts/${change.id}/${action}`, { csrf: lucas.csrf, code: '000000' });
        assert.equal(r.response.status, 404);
      }
      assert.equal((await t.vigie.wallet.contacts.list(DEMO_PRO.nationalId)).find((c) => c.id === change.id)?.state, 'pending_code');

      // Lucas's history holds none of Camille's attempts.
      const history = await (await request(lucas.jar, `${t.issuer}/wallet/history`)).text();
      assert.doesNotMatch(history, /Service de santé \(démo\)/);

      // CSRF: missing, or another session's token, is refused.
      const noCsrf = await postForm(lucas.jar, `${t.issuer}/wallet/sessions/end-all`, {});
      assert.equal(noCsrf.response.status, 403);
      const foreignCsrf = await postForm(lucas.jar, `${t.issuer}/wallet/sessions/end-all`, { csrf: camille.csrf });
      assert.equal(foreignCsrf.response.status, 403);
      assert.ok((await t.vigie.wallet.sessions.list(LUCAS)).length >= 1);

      // Without a wallet session, actions lead to the login.
      const anonymous = await request(new Jar(), `${t.issuer}/wallet/sessions/end-all`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
      assert.equal(anonymous.status, 303);
      assert.match(anonymous.headers.get('location')!, /^\/wallet\/login/);
    });

    it('devices: lists the professional\'s e-CPS, revokes one, and shares the notification settings', async () => {
      const spare = await t.activateDevice(DEMO_PRO.nationalId, '9753');
      const wallet = await walletLogin(t, device);
      const page = await (await request(wallet.jar, `${t.issuer}/wallet/devices`)).text();
      assert.ok(page.includes(`data-device="${spare.state.deviceId}"`));
      assert.match(page, /Activée le/);
      const revoked = await postForm(wallet.jar, `${t.issuer}/wallet/devices/${spare.state.deviceId}/revoke`, { csrf: wallet.csrf });
      assert.match(await revoked.response.text(), /L’appareil a été révoqué/);
      assert.equal((await spare.listChallenges()).status, 403, 'a revoked device is refused');
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      assert.ok(audit.some((e) => e.event === 'device.revoked' && e.details.deviceId === spare.state.deviceId && e.actor === `wallet:${DEMO_PRO.nationalId}`));

      const saved = await postForm(wallet.jar, `${t.issuer}/wallet/notifications`, { csrf: wallet.csrf, push: 'on', quiet: '8h' });
      assert.match(await saved.response.text(), /Pas de notification jusqu’au/);
      const settings = await t.vigie.defence.settings(DEMO_PRO.nationalId);
      assert.equal(settings.pushEnabled, true);
      assert.equal(settings.quietUntil, t.clock.now() + 8 * 3600_000);
      await postForm(wallet.jar, `${t.issuer}/wallet/notifications`, { csrf: wallet.csrf, push: 'on', quiet: 'none' });
      assert.equal((await t.vigie.defence.settings(DEMO_PRO.nationalId)).quietUntil, null);
    });

    it('trusted browsers: revoked all at once from the devices page, CSRF checked, on record', async () => {
      const wallet = await walletLogin(t, device);
      const page = await (await request(wallet.jar, `${t.issuer}/wallet/devices`)).text();
      assert.match(page, /Navigateurs de confiance/);
      assert.doesNotMatch(page, /Dernier retrait de confiance/);
      const forged = await postForm(wallet.jar, `${t.issuer}/wallet/trusted-browsers/forget`, { csrf: 'x'.repeat(43) });
      assert.equal(forged.response.status, 403);
      assert.equal(await t.vigie.defence.trustedBrowsersForgottenAt(DEMO_PRO.nationalId), null, 'a forged request changes nothing');
      const done = await postForm(wallet.jar, `${t.issuer}/wallet/trusted-browsers/forget`, { csrf: wallet.csrf });
      const html = await done.response.text();
      assert.match(html, /Plus aucun navigateur n’est de confiance/);
      assert.match(html, /Dernier retrait de confiance/);
      assert.equal(await t.vigie.defence.trustedBrowsersForgottenAt(DEMO_PRO.nationalId), t.clock.now());
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      assert.ok(audit.some((e) => e.event === 'defence.trusted_browsers_forgotten' && e.actor === `wallet:${DEMO_PRO.nationalId}`));
    });
  });
}
