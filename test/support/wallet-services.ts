// Services (relying parties) for the wallet's tests: the demo service logged in through a
// browser, and a generic openid-client login on the same browser.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { Jar, authorizationRequest, field, follow, submit } from './browser.ts';
import { DEMO_PRO, type TestVigie } from './harness.ts';
import type { DeviceSimulator } from '../../src/device/simulator.ts';
import { demoClientMetadata, startDemoService, type DemoService } from '../../demo-service/server.ts';
import type { ClientInput } from '../../src/oidc/clients.ts';

export interface TestDemo {
  demo: DemoService;
  secret: string;
  /** openid-client configured as the demo service (its id and secret), for refresh and introspection. */
  rp: client.Configuration;
  close(): Promise<void>;
}

/** Starts the demo service against the test provider and registers it (back-channel logout URI included). */
export async function startTestDemo(t: TestVigie): Promise<TestDemo> {
  const secret = randomBytes(32).toString('base64url');
  const demo = await startDemoService({ issuer: t.issuer, port: 0, host: '127.0.0.1', clientId: 'demo-sante', clientSecret: secret });
  await t.vigie.clients.put(demoClientMetadata(demo.url, secret) as ClientInput);
  const rp = await client.discovery(new URL(t.issuer), 'demo-sante', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
  return { demo, secret, rp, close: () => demo.close() };
}

/** Goes through Vigie's login page from wherever `start` leads, the device approving; follows until `stop`. */
export async function loginThrough(t: TestVigie, jar: Jar, start: string | URL, device: DeviceSimulator, serviceName: string, stop: (url: URL) => boolean = () => false, nationalId = DEMO_PRO.nationalId) {
  const first = await follow(jar, start, stop);
  if (stop(first.url)) return first;
  const loginHtml = await first.response.text();
  const action = /<form method="post" action="([^"]+)"/.exec(loginHtml)?.[1];
  assert.ok(action, `login form expected at ${first.url.href}: ${loginHtml.slice(0, 300)}`);
  const challengePage = await submit(jar, new URL(action, first.url), { csrf: field(loginHtml, 'csrf') ?? '', nationalId });
  const pageHtml = await challengePage.response.text();
  const displayCode = /<p class="code"[^>]*>(\d+)<\/p>/.exec(pageHtml)?.[1];
  assert.ok(displayCode, `challenge page expected: ${pageHtml.slice(0, 300)}`);
  const challenge = (await device.listChallenges()).body.challenges.find((c) => c.service.name === serviceName);
  assert.ok(challenge, `the device sees the request from ${serviceName}`);
  assert.equal((await device.approve(challenge.id, displayCode, '2468')).status, 200);
  return submit(jar, `${challengePage.url}/continue`, { csrf: field(pageHtml, 'csrf') ?? '' }, stop);
}

/** A browser logs in to the demo service (its own /login, openid-client behind it). */
export async function loginToDemo(t: TestVigie, d: TestDemo, device: DeviceSimulator, jar = new Jar()) {
  const before = new Set(d.demo.sessions.keys());
  const done = await loginThrough(t, jar, `${d.demo.url}/login`, device, 'Service de santé (démo)');
  const html = await done.response.text();
  assert.match(html, /Bonjour Camille MARTIN/, html.slice(0, 500));
  const session = [...d.demo.sessions.values()].find((s) => !before.has(s.id));
  assert.ok(session, 'the demo service opened a session');
  return { jar, session };
}

/**
 * In the same browser (single sign-on, no new approval): asks the demo client for `offline_access`
 * with `prompt=consent`, the way a service obtains a refresh token; returns the tokens.
 */
export async function offlineTokens(t: TestVigie, d: TestDemo, jar: Jar) {
  const { url, verifier, state } = await authorizationRequest(d.rp, { redirect_uri: `${d.demo.url}/callback`, scope: 'openid offline_access', prompt: 'consent' }, { nonce: false });
  const done = await follow(jar, url, (u) => u.href.startsWith(`${d.demo.url}/callback`));
  assert.ok(done.url.searchParams.get('code'), `a code was issued without a new approval: ${done.url.href}`);
  const tokens = await client.authorizationCodeGrant(d.rp, done.url, { pkceCodeVerifier: verifier, expectedState: state });
  assert.ok(tokens.refresh_token, 'offline_access with prompt=consent gives a refresh token');
  return tokens;
}
