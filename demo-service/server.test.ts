import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { demoClientMetadata, startDemoService, type DemoService, type DemoSession } from './server.ts';
import { Jar, request, follow } from '../test/support/browser.ts';

const CLIENT_ID = 'demo-sante';
const CLIENT_SECRET = 'secret-de-test-suffisamment-long-0123456789';
const ACCOUNT_ID = '810000000001';
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const accountClaims = {
  sub: ACCOUNT_ID,
  SubjectNameID: ACCOUNT_ID,
  preferred_username: ACCOUNT_ID,
  given_name: 'Camille',
  family_name: 'Durand',
  SubjectRefPro: {
    exercices: [
      {
        codeProfession: '10',
        codeCategorieProfessionnelle: 'C',
        activities: [{ raisonSocialeSite: 'Cabinet du Port', libelleCommune: 'Marseille' }],
      },
    ],
  },
  otherIds: [{ identifiant: '10000000001', origine: 'RPPS', qualite: 1 }],
};

let providerServer: Server;
let provider: Provider;
let issuer: string;
let demo: DemoService;
let signingKey: CryptoKey;
/** acr the test provider's interaction puts on the login. */
let loginAcr = 'eidas1';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Auto-approving interactions: login with a fixed account and acr, then consent to everything asked. */
async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID, acr: loginAcr, amr: ['mfa', 'hwk'] } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: String(details.params.client_id) });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

before(async () => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  signingKey = privateKey;
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'ES256', use: 'sig' };

  providerServer = createServer();
  const providerPort = await listen(providerServer);
  issuer = `http://127.0.0.1:${providerPort}`;

  // The demo service discovers lazily, so it can start before the provider is ready.
  demo = await startDemoService({ issuer, port: 0, host: '127.0.0.1', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });

  provider = new Provider(issuer, {
    clients: [demoClientMetadata(demo.url, CLIENT_SECRET) as never],
    clientDefaults: { id_token_signed_response_alg: 'ES256' } as never,
    jwks: { keys: [jwk as never] },
    cookies: { keys: ['cle-de-test-cookies'] },
    acrValues: ['eidas1', 'faible'],
    scopes: ['openid', 'scope_all', 'offline_access'],
    claims: {
      openid: ['sub'],
      scope_all: ['SubjectNameID', 'preferred_username', 'given_name', 'family_name', 'SubjectRefPro', 'otherIds'],
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    // oidc-provider's outgoing requests refuse loopback/private addresses (SSRF protection):
    // let back-channel logout reach the demo service, which listens on 127.0.0.1, and nothing else.
    fetch: (url, init) => {
      if (init && String(url).startsWith(`${demo.url}/`)) {
        const { dispatcher: _ssrfProtected, ...rest } = init as RequestInit & { dispatcher?: unknown };
        return globalThis.fetch(url, rest);
      }
      return globalThis.fetch(url, init);
    },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ ...accountClaims, sub: id }) }),
  });
  provider.on('backchannel.error', (_client: unknown, error: unknown) => console.error('backchannel logout failed', error));
  const callback = provider.callback();
  providerServer.on('request', (req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    } else {
      callback(req, res);
    }
  });
});

after(async () => {
  await demo?.close();
  providerServer?.closeAllConnections();
  await new Promise<void>((resolve) => providerServer.close(() => resolve()));
});

beforeEach(() => {
  demo.sessions.clear();
  demo.backchannelLogouts.length = 0;
  loginAcr = 'eidas1';
});

function fakeSession(overrides: Partial<DemoSession> = {}): DemoSession {
  const id = randomUUID();
  return {
    id,
    sid: 'sid-1',
    sub: ACCOUNT_ID,
    idTokenClaims: { sub: ACCOUNT_ID, sid: 'sid-1', acr: 'eidas1' },
    claims: { sub: ACCOUNT_ID },
    idToken: 'x.y.z',
    tokens: { access_token: 'at' },
    csrf: 'csrf',
    createdAt: Date.now(),
    ...overrides,
  };
}

function addSession(overrides: Partial<DemoSession> = {}): DemoSession {
  const session = fakeSession(overrides);
  demo.sessions.set(session.id, session);
  return session;
}

async function logoutToken(claims: JWTPayload, key: CryptoKey = signingKey, kid = 'test-key'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: randomUUID(), events: { [EVENT]: {} }, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'logout+jwt' })
    .sign(key);
}

async function postLogoutToken(token: string): Promise<Response> {
  return fetch(`${demo.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
    redirect: 'manual',
  });
}

describe('back-channel logout', () => {
  test('a valid logout token drops every session with its sid and only those', async () => {
    const a = addSession({ sid: 'sid-1' });
    const b = addSession({ sid: 'sid-1' });
    const other = addSession({ sid: 'sid-2' });
    const response = await postLogoutToken(await logoutToken({ sid: 'sid-1', sub: ACCOUNT_ID }));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(demo.sessions.has(a.id), false);
    assert.equal(demo.sessions.has(b.id), false);
    assert.equal(demo.sessions.has(other.id), true);
    assert.equal(demo.backchannelLogouts.length, 1);
    assert.deepEqual(
      { sid: demo.backchannelLogouts[0]?.sid, sub: demo.backchannelLogouts[0]?.sub, valid: demo.backchannelLogouts[0]?.valid },
      { sid: 'sid-1', sub: ACCOUNT_ID, valid: true },
    );
  });

  test('a logout token with only sub drops that subject’s sessions', async () => {
    const mine = addSession({ sid: 'sid-1', sub: ACCOUNT_ID });
    const someoneElse = addSession({ sid: 'sid-9', sub: '810000000002' });
    const response = await postLogoutToken(await logoutToken({ sub: ACCOUNT_ID }));
    assert.equal(response.status, 200);
    assert.equal(demo.sessions.has(mine.id), false);
    assert.equal(demo.sessions.has(someoneElse.id), true);
  });

  const invalid: Array<[string, () => Promise<string>]> = [
    ['wrong audience', () => logoutToken({ sid: 'sid-1', aud: 'autre-service' })],
    ['wrong issuer', () => logoutToken({ sid: 'sid-1', iss: 'https://evil.example' })],
    ['a nonce', () => logoutToken({ sid: 'sid-1', nonce: 'n-0S6_WzA2Mj' })],
    ['no events claim', () => logoutToken({ sid: 'sid-1', events: undefined })],
    ['another event', () => logoutToken({ sid: 'sid-1', events: { 'http://example.com/other': {} } })],
    ['neither sid nor sub', () => logoutToken({ sid: undefined, sub: undefined })],
    ['no iat', () => logoutToken({ sid: 'sid-1', iat: undefined })],
    ['expired', () => logoutToken({ sid: 'sid-1', iat: 1_000, exp: 2_000 })],
    ['a key the provider does not publish', async () => {
      const { privateKey } = await generateKeyPair('ES256');
      return logoutToken({ sid: 'sid-1' }, privateKey);
    }],
    ['an unsigned token', async () => {
      const now = Math.floor(Date.now() / 1000);
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${part({ alg: 'none' })}.${part({ iss: issuer, aud: CLIENT_ID, iat: now, events: { [EVENT]: {} }, sid: 'sid-1' })}.`;
    }],
    ['garbage', async () => 'not-a-jwt'],
  ];
  for (const [name, make] of invalid) {
    test(`a logout token with ${name} is rejected with 400 and keeps the session`, async () => {
      const session = addSession({ sid: 'sid-1' });
      const response = await postLogoutToken(await make());
      assert.equal(response.status, 400);
      const body = (await response.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_request');
      assert.equal(typeof body.error_description, 'string');
      assert.equal(demo.sessions.has(session.id), true);
      assert.equal(demo.backchannelLogouts.at(-1)?.valid, false);
      assert.ok(demo.backchannelLogouts.at(-1)?.error);
    });
  }

  test('a request without logout_token is rejected', async () => {
    const response = await fetch(`${demo.url}/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'foo=bar',
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
  });
});

describe('login', () => {
  test('GET /login redirects to the authorization endpoint with PKCE S256, state, nonce, scope and acr_values', async () => {
    const response = await fetch(`${demo.url}/login`, { redirect: 'manual' });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, `${issuer}/auth`);
    const p = location.searchParams;
    assert.equal(p.get('client_id'), CLIENT_ID);
    assert.equal(p.get('response_type'), 'code');
    assert.equal(p.get('redirect_uri'), `${demo.url}/callback`);
    assert.equal(p.get('code_challenge_method'), 'S256');
    assert.match(p.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((p.get('state') ?? '').length >= 20);
    assert.ok((p.get('nonce') ?? '').length >= 20);
    assert.equal(p.get('scope'), 'openid scope_all');
    assert.equal(p.get('acr_values'), 'eidas1');
    const cookie = response.headers.getSetCookie().find((c) => c.startsWith('demo_login='));
    assert.ok(cookie, 'pending login cookie set');
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);

    // Each login gets fresh values.
    const again = new URL((await fetch(`${demo.url}/login`, { redirect: 'manual' })).headers.get('location') ?? '');
    assert.notEqual(again.searchParams.get('state'), p.get('state'));
    assert.notEqual(again.searchParams.get('code_challenge'), p.get('code_challenge'));
  });

  test('full flow: login through the provider, then provider-initiated back-channel logout ends the session', async () => {
    const jar = new Jar();
    const { response, visited } = await follow(jar, `${demo.url}/login`);
    assert.equal(response.status, 200);
    assert.ok(visited.some((u) => u.pathname === '/callback'), 'went through the callback');
    const html = await response.text();
    assert.match(html, /<html lang="fr">/);
    assert.match(html, /Bonjour Camille Durand/);
    assert.match(html, /810000000001/);
    assert.match(html, /Médecin/);
    assert.match(html, /Cabinet du Port/);
    assert.match(html, /Marseille/);
    assert.match(html, /eidas1/);
    assert.match(html, /Se déconnecter/);

    assert.equal(demo.sessions.size, 1);
    const [session] = [...demo.sessions.values()];
    assert.ok(session);
    assert.equal(session.sub, ACCOUNT_ID);
    assert.ok(session.sid, 'sid claim taken from the ID token');
    assert.equal(session.idTokenClaims.acr, 'eidas1');
    assert.deepEqual(session.claims.SubjectRefPro, accountClaims.SubjectRefPro);

    // The user logs out at the provider (e.g. forced logout): the provider notifies the demo.
    const end = new URL(`${issuer}/session/end`);
    end.searchParams.set('id_token_hint', session.idToken);
    const confirm = await request(jar, end);
    assert.equal(confirm.status, 200);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await confirm.text())?.[1];
    assert.ok(xsrf, 'logout confirmation form');
    const done = await request(jar, `${issuer}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    assert.ok(done.status === 303 || done.status === 302, `end session answered ${done.status}`);

    for (let i = 0; i < 50 && demo.sessions.size > 0; i += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal(demo.sessions.size, 0, 'session dropped by the provider-signed logout token');
    const receipt = demo.backchannelLogouts.at(-1);
    assert.equal(receipt?.valid, true, receipt?.error);
    assert.equal(receipt?.sid, session.sid);

    const home = await request(jar, `${demo.url}/`);
    assert.match(await home.text(), /Se connecter avec Vigie \(e-CPS\)/);
  });

  test('an ID token without acr eidas1 is refused', async () => {
    loginAcr = 'faible';
    const { response } = await follow(new Jar(), `${demo.url}/login`);
    assert.equal(response.status, 400);
    assert.match(await response.text(), /Niveau d’authentification insuffisant/);
    assert.equal(demo.sessions.size, 0);
  });

  test('an authorization error shows a French error page with a retry link', async () => {
    const jar = new Jar();
    const login = await request(jar, `${demo.url}/login`);
    const state = new URL(login.headers.get('location') ?? '').searchParams.get('state') ?? '';
    const response = await request(jar, `${demo.url}/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(issuer)}`);
    assert.equal(response.status, 400);
    const html = await response.text();
    assert.match(html, /refusée ou annulée/);
    assert.match(html, /href="\/login"/);
    assert.doesNotMatch(html, /at .*\.ts:\d+/);
    assert.equal(demo.sessions.size, 0);
  });

  test('a callback without a pending login is refused', async () => {
    const response = await fetch(`${demo.url}/callback?code=abc&state=xyz`, { redirect: 'manual' });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /expiré/);
    assert.equal(demo.sessions.size, 0);
  });
});

describe('RP-initiated logout', () => {
  test('POST /logout drops the session and redirects to end_session with id_token_hint', async () => {
    const session = addSession({ idToken: 'header.payload.sig', csrf: 'jeton-csrf' });
    const response = await fetch(`${demo.url}/logout`, {
      method: 'POST',
      headers: { cookie: `demo_session=${session.id}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: 'jeton-csrf' }),
      redirect: 'manual',
    });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, `${issuer}/session/end`);
    assert.equal(location.searchParams.get('id_token_hint'), 'header.payload.sig');
    assert.equal(location.searchParams.get('post_logout_redirect_uri'), `${demo.url}/`);
    assert.equal(demo.sessions.has(session.id), false);
  });

  test('POST /logout without the CSRF token keeps the session', async () => {
    const session = addSession({ csrf: 'jeton-csrf' });
    const response = await fetch(`${demo.url}/logout`, {
      method: 'POST',
      headers: { cookie: `demo_session=${session.id}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: 'mauvais' }),
      redirect: 'manual',
    });
    assert.equal(response.status, 403);
    assert.equal(demo.sessions.has(session.id), true);
  });
});
