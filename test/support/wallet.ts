// Logging in to the wallet (/wallet) the way a browser does, over HTTP: the wallet sends the
// browser through Vigie's own login page, the device approves, the browser comes back logged in.
import assert from 'node:assert/strict';
import { Jar, field, follow, submit } from './browser.ts';
import { DEMO_PRO, type TestVigie } from './harness.ts';
import type { DeviceSimulator } from '../../src/device/simulator.ts';

export interface WalletBrowser {
  jar: Jar;
  /** The page the browser landed on after login, and its URL. */
  html: string;
  url: URL;
  /** The wallet session's CSRF token, read from the page. */
  csrf: string;
}

export async function walletLogin(t: TestVigie, device: DeviceSimulator, options: { jar?: Jar; nationalId?: string; pin?: string; path?: string } = {}): Promise<WalletBrowser> {
  const jar = options.jar ?? new Jar();
  const start = await follow(jar, `${t.issuer}${options.path ?? '/wallet'}`);
  const loginHtml = await start.response.text();
  assert.equal(start.response.status, 200, loginHtml.slice(0, 300));
  assert.match(loginHtml, /Portefeuille Vigie/, 'the login page names the wallet as the requesting service');
  const action = /<form method="post" action="([^"]+)"/.exec(loginHtml)?.[1];
  assert.ok(action, 'login form');
  const challengePage = await submit(jar, new URL(action, start.url), { csrf: field(loginHtml, 'csrf') ?? '', nationalId: options.nationalId ?? DEMO_PRO.nationalId });
  const pageHtml = await challengePage.response.text();
  const displayCode = /<p class="code"[^>]*>(\d+)<\/p>/.exec(pageHtml)?.[1];
  assert.ok(displayCode, `challenge page expected, got ${challengePage.response.status}: ${pageHtml.slice(0, 300)}`);
  const list = await device.listChallenges();
  const challenge = list.body.challenges.find((c) => c.service.name === 'Portefeuille Vigie');
  assert.ok(challenge, 'the device sees the wallet login request');
  const approved = await device.approve(challenge.id, displayCode, options.pin ?? '2468');
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const done = await submit(jar, `${challengePage.url}/continue`, { csrf: field(pageHtml, 'csrf') ?? '' });
  const html = await done.response.text();
  assert.equal(done.response.status, 200, html.slice(0, 500));
  return { jar, html, url: done.url, csrf: field(html, 'csrf') ?? '' };
}
