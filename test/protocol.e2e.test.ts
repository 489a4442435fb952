// Protocol features services rely on, exercised with a real OIDC client (openid-client) against
// the real provider: discovery, the three client authentication methods, revocation,
// introspection, and the login page's live status stream (SSE).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, exportJWK, SignJWT, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { request as httpRequest } from 'node:http';
import * as client from 'openid-client';
import { startTestVigie, startBrowserLogin, continueLogin, resumeLogin, DEMO_PRO, type TestVigie } from './support/harness.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';
import { authorizationRequest, field, follow, request, submit, type Jar } from './support/browser.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.ts';
import { createVigie } from '../src/server.ts';
import { freePort } from './support/harness.ts';
import { NEXT_KEY_NOTICE_MS } from '../src/oidc/keys.ts';

async function approvedLogin(t: TestVigie, device: DeviceSimulator, rp: client.Configuration = t.rp) {
  const login = await startBrowserLogin(t, DEMO_PRO.nationalId, {}, rp);
  const { challenges } = (await device.listChallenges()).body;
  const challenge = challenges[0]!;
  assert.equal((await device.approve(challenge.id, login.displayCode, '2468')).status, 200);
  const callback = await continueLogin(t, login);
  return client.authorizationCodeGrant(rp, callback.url, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
}

/** Reads server-sent `state` events until one is not `pending`. */
async function nextSettledState(jar: Jar, url: string): Promise<Array<{ state: string; resume: boolean }>> {
  const response = await request(jar, url, { headers: { accept: 'text/event-stream' } });
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const states: Array<{ state: string; resume: boolean }> = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return states;
    buffer += value;
    for (const match of buffer.matchAll(/event: state\ndata: (\{[^\n]*\})\n\n/g)) states.push(JSON.parse(match[1]!) as { state: string; resume: boolean });
    buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
    if (states.some((s) => s.state !== 'pending')) {
      await reader.cancel();
      return states;
    }
  }
}

describe('OIDC protocol features', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  before(async () => {
    t = await startTestVigie();
    device = await t.activateDevice();
  });
  after(async () => t.close());

  it('discovery advertises PKCE S256, the client auth methods, back-channel and RP-initiated logout, eidas1', () => {
    const meta = t.rp.serverMetadata();
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(new Set(meta.token_endpoint_auth_methods_supported), new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt']));
    assert.equal(meta.backchannel_logout_supported, true);
    assert.equal(meta.backchannel_logout_session_supported, true);
    assert.ok(meta.end_session_endpoint);
    assert.ok(meta.revocation_endpoint);
    assert.ok(meta.introspection_endpoint);
    assert.deepEqual(meta.acr_values_supported, ['eidas1']);
    assert.ok((meta.scopes_supported ?? []).includes('scope_all'));
    // Pushed authorization requests are not served: not advertised either.
    assert.equal(meta.pushed_authorization_request_endpoint, undefined);
  });

  it('publishes an ES256 signing key in the JWKS', async () => {
    const jwks = (await (await fetch(`${t.issuer}/jwks`)).json()) as { keys: Array<{ kty: string; crv: string; alg: string; d?: string }> };
    assert.ok(jwks.keys.length >= 1);
    assert.ok(jwks.keys.every((k) => k.kty === 'EC' && k.crv === 'P-256' && k.alg === 'ES256'));
    assert.ok(jwks.keys.every((k) => k.d === undefined), 'no private part is published');
  });

  it('refuses an authorization request without PKCE', async () => {
    const url = new URL(`${t.issuer}/auth`);
    url.search = new URLSearchParams({ client_id: 'test-rp', response_type: 'code', scope: 'openid', redirect_uri: t.redirectUri, state: 's' }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    const location = new URL(response.headers.get('location') ?? '', t.issuer);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.match(location.searchParams.get('error_description') ?? '', /PKCE/);
  });

  it('introspection says active, then inactive once the access token is revoked', async () => {
    const tokens = await approvedLogin(t, device);
    const active = await client.tokenIntrospection(t.rp, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.sub, DEMO_PRO.nationalId);
    await client.tokenRevocation(t.rp, tokens.access_token);
    const inactive = await client.tokenIntrospection(t.rp, tokens.access_token);
    assert.equal(inactive.active, false);
  });

  it('a service introspects its own tokens only', async () => {
    const tokens = await approvedLogin(t, device);
    const secret = 'o'.repeat(40);
    await t.vigie.clients.put({ client_id: 'nosy-rp', client_name: 'Service curieux', redirect_uris: [t.redirectUri], client_secret: secret });
    const nosy = await client.discovery(new URL(t.issuer), 'nosy-rp', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
    const seen = await client.tokenIntrospection(nosy, tokens.access_token);
    assert.equal(seen.active, false);
    assert.equal(seen.sub, undefined);
    assert.equal((await client.tokenIntrospection(t.rp, tokens.access_token)).active, true);
  });

  it('refresh tokens (offline access granted later, by single sign-on) outlive the 10-hour session, up to their 14 days', async () => {
    const secret = 'r'.repeat(40);
    await t.vigie.clients.put({ client_id: 'offline-rp', client_name: 'Service hors ligne', redirect_uris: [t.redirectUri], client_secret: secret, grant_types: ['authorization_code', 'refresh_token'] });
    const rp = await client.discovery(new URL(t.issuer), 'offline-rp', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
    const login = await startBrowserLogin(t, DEMO_PRO.nationalId, {}, rp);
    const { challenges } = (await device.listChallenges()).body;
    assert.equal((await device.approve(challenges[0]!.id, login.displayCode, '2468')).status, 200);
    await continueLogin(t, login);
    // The same browser, later: the service asks for offline access (no new approval).
    const offline = await authorizationRequest(rp, { redirect_uri: t.redirectUri, scope: 'openid offline_access', prompt: 'consent' });
    const back = await follow(login.jar, offline.url, (u) => u.href.startsWith(t.redirectUri));
    const tokens = await client.authorizationCodeGrant(rp, back.url, { pkceCodeVerifier: offline.verifier, expectedState: offline.state, expectedNonce: offline.nonce });
    assert.ok(tokens.refresh_token);
    t.clock.advance(11 * 3600_000);
    const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token);
    assert.ok(refreshed.access_token, 'past the session, the refresh token still works');
    t.clock.advance(14 * 24 * 3600_000);
    await assert.rejects(client.refreshTokenGrant(rp, refreshed.refresh_token ?? tokens.refresh_token), (error: { error?: string }) => error.error === 'invalid_grant');
  });

  it('single sign-on does not extend the session: it ends its lifetime after the approval', async () => {
    const login = await startBrowserLogin(t, DEMO_PRO.nationalId);
    const { challenges } = (await device.listChallenges()).body;
    assert.equal((await device.approve(challenges[0]!.id, login.displayCode, '2468')).status, 200);
    await continueLogin(t, login);
    const sessionId = login.jar.get(new URL(t.issuer).host, '_session')!;
    const expiry = async () => {
      const row = await t.vigie.db.kysely.selectFrom('oidc_model').select(['payload', 'expires_at']).where('model', '=', 'Session').where('id', '=', sessionId).executeTakeFirstOrThrow();
      return { exp: (JSON.parse(row.payload) as { exp: number }).exp, expiresAt: Number(row.expires_at) };
    };
    const first = await expiry();
    // oidc-provider dates in whole seconds, by the real clock: let one pass.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const { url } = await authorizationRequest(t.rp, { redirect_uri: t.redirectUri, scope: 'openid scope_all' });
    const sso = await follow(login.jar, url, (u) => u.href.startsWith(t.redirectUri));
    assert.ok(sso.url.searchParams.get('code'), 'single sign-on');
    const after = await expiry();
    assert.equal(after.exp, first.exp, 'the session still ends when it did');
    assert.ok(after.expiresAt <= first.expiresAt + 1000, 'and its row too');
  });

  it("the provider's own pages (logout, errors) cannot be framed and run no script but their own", async () => {
    for (const path of ['/session/end', '/auth?client_id=nobody']) {
      const response = await fetch(`${t.issuer}${path}`, { redirect: 'manual' });
      assert.match(response.headers.get('content-type') ?? '', /text\/html/, path);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
      const csp = response.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, path);
      // 'self', and the hashes of oidc-provider's own inline scripts (the logout form's submit).
      const scriptSrc = csp.split(';').find((d) => d.trim().startsWith('script-src'))!.trim().split(/\s+/).slice(1);
      assert.ok(scriptSrc.length > 0 && scriptSrc.every((source) => source === "'self'" || /^'sha256-[A-Za-z0-9+/]+=*'$/.test(source)), csp);
      assert.match(csp, /default-src 'none'/, path);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    }
  });

  it('RP-initiated logout: the confirmation ends the session and returns to the service', async () => {
    const login = await startBrowserLogin(t, DEMO_PRO.nationalId);
    const { challenges } = (await device.listChallenges()).body;
    assert.equal((await device.approve(challenges[0]!.id, login.displayCode, '2468')).status, 200);
    const callback = await continueLogin(t, login);
    const tokens = await client.authorizationCodeGrant(t.rp, callback.url, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
    const sessionId = login.jar.get(new URL(t.issuer).host, '_session')!;
    const end = client.buildEndSessionUrl(t.rp, { id_token_hint: tokens.id_token!, state: 'bye' });
    const confirm = await request(login.jar, end);
    assert.equal(confirm.status, 200);
    const pageHtml = await confirm.text();
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(pageHtml)![1]!;
    const done = await submit(login.jar, action, { xsrf: field(pageHtml, 'xsrf')!, logout: 'yes' }, () => true);
    assert.equal(done.response.status, 303);
    assert.equal(await t.vigie.db.kysely.selectFrom('oidc_model').select('id').where('model', '=', 'Session').where('id', '=', sessionId).executeTakeFirst(), undefined, 'the session is gone');
  });

  it('response_mode=form_post: the auto-submitting page runs under the policy, its one inline script allowed by hash', async () => {
    const login = await startBrowserLogin(t, DEMO_PRO.nationalId);
    const { challenges } = (await device.listChallenges()).body;
    assert.equal((await device.approve(challenges[0]!.id, login.displayCode, '2468')).status, 200);
    await continueLogin(t, login);
    const { url } = await authorizationRequest(t.rp, { redirect_uri: t.redirectUri, scope: 'openid', response_mode: 'form_post' });
    const response = await request(login.jar, url);
    assert.equal(response.status, 200);
    const body = await response.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(body)![1]!;
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    const hash = `'sha256-${createHash('sha256').update(script).digest('base64')}'`;
    assert.ok(csp.split(';').find((d) => d.trim().startsWith('script-src'))!.split(/\s+/).includes(hash), csp);
    assert.match(body, new RegExp(`<form method="post" action="${t.redirectUri.replace(/[.]/g, '\\.')}">`));
  });

  it('authenticates services with client_secret_post and private_key_jwt', async () => {
    const secret = 's'.repeat(40);
    await t.vigie.clients.put({ client_id: 'post-rp', client_name: 'Service POST', redirect_uris: [t.redirectUri], client_secret: secret, token_endpoint_auth_method: 'client_secret_post' });
    const post = await client.discovery(new URL(t.issuer), 'post-rp', undefined, client.ClientSecretPost(secret), { execute: [client.allowInsecureRequests] });
    assert.equal((await approvedLogin(t, device, post)).claims()?.sub, DEMO_PRO.nationalId);

    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'rp-key', alg: 'ES256', use: 'sig' };
    await t.vigie.clients.put({ client_id: 'jwt-rp', client_name: 'Service JWT', redirect_uris: [t.redirectUri], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    const jwt = await client.discovery(new URL(t.issuer), 'jwt-rp', { token_endpoint_auth_signing_alg: 'ES256' }, client.PrivateKeyJwt({ key: privateKey, kid: 'rp-key' }), { execute: [client.allowInsecureRequests] });
    assert.equal((await approvedLogin(t, device, jwt)).claims()?.sub, DEMO_PRO.nationalId);

    // Only a keyed hash of the secret is stored: a database dump does not give it.
    const row = await t.vigie.db.kysely.selectFrom('oidc_model').select('payload').where('model', '=', 'Client').where('id', '=', 'post-rp').executeTakeFirstOrThrow();
    assert.ok(!row.payload.includes(secret), 'the secret is not stored');
    assert.match(JSON.parse(row.payload).client_secret, /^hmac-sha256:[\w-]{43}$/);

    // A wrong secret is refused at the token endpoint.
    const wrong = await client.discovery(new URL(t.issuer), 'post-rp', undefined, client.ClientSecretPost('x'.repeat(40)), { execute: [client.allowInsecureRequests] });
    await assert.rejects(approvedLogin(t, device, wrong), (error: { error?: string }) => error.error === 'invalid_client');
  });

  // client_secret_basic: refused with 401 and a WWW-Authenticate challenge naming the error.
  const refusedAsInvalidClient = (error: { status?: number; cause?: Array<{ parameters?: { error?: string } }> }) =>
    error.status === 401 && error.cause?.[0]?.parameters?.error === 'invalid_client';

  it('a client secret stored in clear by an earlier version still authenticates, and start-up replaces it by its hash', async () => {
    const secret = 'c'.repeat(40);
    const metadata = { client_id: 'legacy-rp', client_name: 'Service ancien', redirect_uris: [t.redirectUri], response_types: ['code'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic' };
    await t.vigie.db.kysely.insertInto('oidc_model').values({ model: 'Client', id: 'legacy-rp', payload: JSON.stringify({ ...metadata, client_secret: secret }), grant_id: null, user_code: null, uid: null, account_id: null, expires_at: null, consumed_at: null }).execute();
    const legacy = await client.discovery(new URL(t.issuer), 'legacy-rp', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
    assert.equal((await approvedLogin(t, device, legacy)).claims()?.sub, DEMO_PRO.nationalId);
    const wrongLegacy = await client.discovery(new URL(t.issuer), 'legacy-rp', undefined, client.ClientSecretBasic('d'.repeat(40)), { execute: [client.allowInsecureRequests] });
    await assert.rejects(approvedLogin(t, device, wrongLegacy), refusedAsInvalidClient);

    // What createVigie runs at every start-up; a second run finds nothing left to do.
    assert.ok((await t.vigie.clients.hashClearSecrets()) >= 1);
    assert.equal(await t.vigie.clients.hashClearSecrets(), 0);
    const stored = (await t.vigie.clients.get('legacy-rp'))!;
    assert.match(String(stored.client_secret), /^hmac-sha256:/);
    assert.deepEqual({ ...stored, client_secret: undefined }, { ...metadata, client_secret: undefined }, 'the rest of the registration is kept');
    assert.equal((await approvedLogin(t, device, legacy)).claims()?.sub, DEMO_PRO.nationalId, 'the same secret works against its hash');
    await assert.rejects(approvedLogin(t, device, wrongLegacy), refusedAsInvalidClient);
    // A secret that would read as a hash is refused at registration.
    await assert.rejects(t.vigie.clients.put({ client_id: 'odd-rp', client_name: 'X', redirect_uris: [t.redirectUri], client_secret: `hmac-sha256:${'a'.repeat(43)}` }), /client_secret: must not start with hmac-sha256:/);
  });

  it('private_key_jwt: an assertion must name this provider, whatever the Host header says, and be short-lived', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'aud-key', alg: 'ES256', use: 'sig' };
    await t.vigie.clients.put({ client_id: 'aud-rp', client_name: 'Service JWT 2', redirect_uris: [t.redirectUri], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    const now = Math.floor(Date.now() / 1000);
    const assertion = (aud: string, lifetime = 60) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'aud-key' }).setIssuer('aud-rp').setSubject('aud-rp').setAudience(aud).setJti(randomBytes(12).toString('hex')).setIssuedAt(now).setExpirationTime(now + lifetime).sign(privateKey);
    // Introspection authenticates the service; node:http, since fetch will not send another Host.
    const introspect = async (jwt: string, host: string) => {
      const body = new URLSearchParams({ token: 'nothing', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt }).toString();
      const url = new URL('/token/introspection', t.issuer);
      return new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(url, { method: 'POST', headers: { host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    };
    const ownHost = new URL(t.issuer).host;
    assert.equal((await introspect(await assertion(t.issuer), ownHost)).status, 200, 'for this provider: accepted');
    // Signed by the service for another server, sent here with that server's name as Host.
    const foreign = await introspect(await assertion('http://other-as.example/token/introspection'), 'other-as.example');
    assert.equal(foreign.status, 401);
    assert.match(foreign.body, /invalid_client/);
    const longLived = await introspect(await assertion(t.issuer, 3600), ownHost);
    assert.equal(longLived.status, 401, 'an assertion valid an hour is refused');
  });

  it('streams the challenge outcome to the login page over SSE', async () => {
    const login = await startBrowserLogin(t);
    const statesPromise = nextSettledState(login.jar, `${login.challengeUrl}/events`);
    const { challenges } = (await device.listChallenges()).body;
    await device.approve(challenges[0]!.id, login.displayCode, '2468');
    const states = await statesPromise;
    assert.deepEqual(states[0], { state: 'pending', resume: false });
    // Handed to the interaction before the page hears of it: the page's script goes to /auth/:uid.
    assert.deepEqual(states.at(-1), { state: 'approved', resume: true });
    assert.ok((await resumeLogin(t, login)).url.href.startsWith(t.redirectUri));
  });

  it('caps the live streams of one challenge (3 per node); a closed one frees its place', async () => {
    const login = await startBrowserLogin(t);
    const open = async () => {
      const controller = new AbortController();
      const response = await request(login.jar, `${login.challengeUrl}/events`, { signal: controller.signal });
      return { status: response.status, retryAfter: response.headers.get('retry-after'), close: () => controller.abort() };
    };
    const streams = [await open(), await open(), await open()];
    assert.deepEqual(streams.map((s) => s.status), [200, 200, 200]);
    const refused = await open();
    assert.equal(refused.status, 429);
    assert.equal(refused.retryAfter, '5');
    streams[0]!.close();
    let again = await open();
    for (let i = 0; again.status === 429 && i < 50; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      again = await open();
    }
    assert.equal(again.status, 200);
    for (const s of [...streams, again]) s.close();
    const { challenges } = (await device.listChallenges()).body;
    for (const c of challenges) await device.deny(c.id, 'refused');
  });

  it('answers malformed login-page input with 400, never a server error', async () => {
    const login = await startBrowserLogin(t);
    const long = await request(login.jar, `${t.issuer}/interaction/${'u'.repeat(80)}`, { headers: { accept: 'application/json' } });
    assert.equal(long.status, 400);
    assert.equal((await long.json()).error, 'VALIDATION_FAILED');
    const csrf = await request(login.jar, `${login.challengeUrl}/continue`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: `csrf=${'x'.repeat(300)}` });
    assert.equal(csrf.status, 400);
    const { challenges } = (await device.listChallenges()).body;
    for (const c of challenges) await device.deny(c.id, 'refused');
  });

  it('refuses a challenge\'s page, status, stream and continuation to a browser without its signed interaction cookie', async () => {
    const login = await startBrowserLogin(t);
    const other = await startBrowserLogin(t);
    const uid = decodeURIComponent(login.challengeUrl.pathname.split('/')[2]!);
    const forged = `_interaction=${uid}; _interaction.sig=${'A'.repeat(43)}`;
    const unsigned = `_interaction=${uid}`;
    for (const path of ['', '/status', '/events']) {
      assert.equal((await fetch(`${login.challengeUrl}${path}`)).status, 400, `no cookie: ${path}`);
      for (const cookie of [forged, unsigned]) assert.equal((await fetch(`${login.challengeUrl}${path}`, { headers: { cookie } })).status, 400, `${cookie}: ${path}`);
      // Another login's browser holds a valid cookie, for its own interaction only.
      assert.equal((await request(other.jar, `${login.challengeUrl}${path}`)).status, 400, `another browser: ${path}`);
    }
    const continued = await request(other.jar, `${login.challengeUrl}/continue`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
    assert.equal(continued.status, 400);
    assert.equal((await request(login.jar, `${login.challengeUrl}/status`)).status, 200, 'its own browser still follows it');
    const { challenges } = (await device.listChallenges()).body;
    for (const c of challenges) await device.deny(c.id, 'refused');
  });
});

describe('cookies behind a TLS-terminating proxy', () => {
  it('every provider cookie is Secure when the public URL is https, though the connection is plain http', async () => {
    const port = await freePort();
    const config = loadConfig({ NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', VIGIE_DATA_DIR: await mkdtemp(join(tmpdir(), 'vigie-tls-')), LOG_LEVEL: 'silent', VIGIE_SECRET: randomBytes(32).toString('hex'), VIGIE_ISSUER: 'https://vigie.example', VIGIE_DEMO: 'false' });
    const vigie = await createVigie(config, { logger: pino({ level: 'silent' }) });
    try {
      const local = await vigie.listen();
      await vigie.clients.put({ client_id: 'tls-rp', client_name: 'Service', redirect_uris: ['https://service.example/cb'], client_secret: 'x'.repeat(40) });
      const auth = new URL(`${local}/auth`);
      auth.search = new URLSearchParams({ client_id: 'tls-rp', redirect_uri: 'https://service.example/cb', response_type: 'code', scope: 'openid', code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' }).toString();
      const response = await fetch(auth, { redirect: 'manual' });
      assert.equal(response.status, 303);
      const cookies = response.headers.getSetCookie();
      assert.ok(cookies.some((c) => c.startsWith('_interaction=')), cookies.join('\n'));
      for (const cookie of cookies) assert.match(cookie, /;\s*secure/i, cookie);
    } finally {
      await vigie.close();
    }
  });
});

describe('signing key rotation, across node restarts', () => {
  it('a next key is published but does not sign; activated, it signs after the restart while the retired key still verifies (and logs out); removed, it is gone', async () => {
    const t = await startTestVigie();
    try {
      const device = await t.activateDevice();
      const jwks = async () => (await (await fetch(`${t.issuer}/jwks`)).json()) as JSONWebKeySet;
      // What a service does with an ID token it was given: check its signature against the JWKS
      // (oidc-provider dates tokens by the real clock, not the test's).
      const verifies = async (idToken: string) => jwtVerify(idToken, createLocalJWKSet(await jwks()), { issuer: t.issuer, audience: 'test-rp' }).then(() => true, () => false);
      const kidOf = (tokens: { id_token?: string }) => decodeProtectedHeader(tokens.id_token!).kid;
      // A service logging its user out sends back the ID token of the login, however old (oidc-provider checks its signature).
      const logoutPage = async (idToken: string) => (await fetch(`${t.issuer}/session/end?${new URLSearchParams({ id_token_hint: idToken, client_id: 'test-rp' })}`)).status;

      const before = await approvedLogin(t, device);
      const first = kidOf(before);
      const next = await t.vigie.signingKeys.add();
      await t.restart();
      assert.deepEqual((await jwks()).keys.map((k) => [k.kid, k.key_ops]), [[first, undefined], [next.kid, ['verify']]], 'published for verification only');
      assert.equal(kidOf(await approvedLogin(t, device)), first, 'the next key does not sign');

      t.clock.advance(NEXT_KEY_NOTICE_MS);
      await t.vigie.signingKeys.activate();
      assert.equal(kidOf(await approvedLogin(t, device)), first, 'a node signs with what it read when it started');
      await t.restart();
      const after = await approvedLogin(t, device);
      assert.equal(kidOf(after), next.kid);
      assert.ok(await verifies(after.id_token!));
      assert.ok(await verifies(before.id_token!), 'the retired key still verifies the ID tokens it signed');
      assert.equal(await logoutPage(before.id_token!), 200, 'a session opened before the rotation can still be logged out');

      await assert.rejects(t.vigie.signingKeys.remove(first!), /for a session lifetime/);
      t.clock.advance(t.vigie.config.sessionTtlHours * 3600_000);
      await t.vigie.signingKeys.remove(first!);
      await t.restart();
      assert.deepEqual((await jwks()).keys.map((k) => k.kid), [next.kid]);
      assert.equal(await verifies(before.id_token!), false);
      assert.equal(await logoutPage(before.id_token!), 400);
      assert.ok(await verifies(after.id_token!));
    } finally {
      await t.close();
    }
  });
});

describe('authorization requests: each stores an interaction, so their size and rate are bounded', () => {
  let t: TestVigie;
  before(async () => {
    t = await startTestVigie({ env: { VIGIE_AUTHORIZATIONS_PER_IP_PER_MINUTE: '3' } });
  });
  after(async () => t.close());

  it('past its rate, an address gets 429 with Retry-After (a French page for a browser); a minute later it may again', async () => {
    const ask = async (accept = 'text/html') => {
      const { url } = await authorizationRequest(t.rp, { redirect_uri: t.redirectUri, scope: 'openid' });
      return fetch(url, { redirect: 'manual', headers: { accept } });
    };
    for (let i = 0; i < 3; i += 1) {
      const response = await ask();
      assert.equal(response.status, 303, `request ${i + 1}`);
      assert.match(response.headers.get('location') ?? '', /\/interaction\//);
    }
    const refused = await ask();
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '60');
    assert.match(await refused.text(), /Trop de demandes/);
    assert.equal((await ask('application/json')).status, 429);
    // However written: oidc-provider's router ignores the case and a trailing slash.
    for (const path of ['/auth/', '/AUTH']) {
      const { url } = await authorizationRequest(t.rp, { redirect_uri: t.redirectUri, scope: 'openid' });
      url.pathname = path;
      assert.equal((await fetch(url, { redirect: 'manual' })).status, path === '/AUTH' ? 404 : 429, path);
    }
    t.clock.advance(2 * 60_000);
    assert.equal((await ask()).status, 303);
  });

  it('a request larger than 4 KB is refused before it is stored', async () => {
    t.clock.advance(2 * 60_000);
    const { url } = await authorizationRequest(t.rp, { redirect_uri: t.redirectUri, scope: 'openid' });
    url.searchParams.set('login_hint', 'y'.repeat(5000));
    const response = await fetch(url, { redirect: 'manual', headers: { accept: 'application/json' } });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { message: string }).message, /larger than 4096 bytes/);
    const body = new URLSearchParams({ client_id: 'test-rp', redirect_uri: t.redirectUri, response_type: 'code', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', login_hint: 'y'.repeat(5000) });
    const posted = await fetch(`${t.issuer}/auth`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body });
    assert.equal(posted.status, 400);
    // A body of unknown length (chunked) could be as large as oidc-provider would read.
    const chunked = await fetch(`${t.issuer}/auth`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new Blob([new URLSearchParams({ client_id: 'test-rp', response_type: 'code', scope: 'openid' }).toString()]).stream(),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 400);
  });
});
