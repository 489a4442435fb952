// Helpers for the defence tests and the attack simulator: a scripted browser that comes from a
// given address (X-Forwarded-For, with VIGIE_TRUST_PROXY=true), and the bus events that say
// whether a request was pushed.
import * as client from 'openid-client';
import { Jar, authorizationRequest, field } from './browser.ts';
import type { EventBus } from '../../src/events/bus.ts';

export interface SourceBrowser {
  jar: Jar;
  /** The address the requests come from, as a load balancer would say it. */
  ip: string | undefined;
}

export function browserAt(ip?: string, jar = new Jar()): SourceBrowser {
  return { jar, ip };
}

async function send(browser: SourceBrowser, url: URL, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const cookie = browser.jar.header(url);
  if (cookie) headers.set('cookie', cookie);
  if (browser.ip) headers.set('x-forwarded-for', browser.ip);
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  browser.jar.store(url, response);
  return response;
}

/** GET (or POST a form), then follow redirects by hand until a page or a URL `stop` accepts. */
export async function navigate(browser: SourceBrowser, start: string | URL, form?: Record<string, string>, stop: (url: URL) => boolean = () => false): Promise<{ response: Response; url: URL }> {
  let url = new URL(start);
  let response = form
    ? await send(browser, url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() })
    : await send(browser, url);
  for (let hop = 0; hop < 20; hop += 1) {
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { response, url };
    await response.body?.cancel();
    url = new URL(location, url);
    if (stop(url)) return { response, url };
    response = await send(browser, url);
  }
  throw new Error('too many redirects');
}

export type Attempt =
  | { ok: true; browser: SourceBrowser; challengeId: string; challengeUrl: URL; displayCode: string; mode: 'pick' | 'typed'; csrf: string; verifier: string; state: string }
  | { ok: false; browser: SourceBrowser; status: number; alert: string; retryAfter: string | null };

/** A browser goes from the service to the login page and types an identifier. */
export async function attemptLogin(rp: client.Configuration, redirectUri: string, browser: SourceBrowser, identifier: string, extra: Record<string, string> = {}): Promise<Attempt> {
  const { url, verifier, state } = await authorizationRequest(rp, { redirect_uri: redirectUri, scope: 'openid', prompt: 'login', ...extra }, { nonce: false });
  const loginPage = await navigate(browser, url);
  const loginHtml = await loginPage.response.text();
  if (loginPage.response.status !== 200) throw new Error(`login page: ${loginPage.response.status} ${loginHtml.slice(0, 200)}`);
  const action = /<form method="post" action="([^"]+)"/.exec(loginHtml)?.[1];
  const csrf = field(loginHtml, 'csrf');
  if (!action || !csrf) throw new Error('login form not found');
  const page = await navigate(browser, new URL(action, loginPage.url), { csrf, nationalId: identifier });
  const pageHtml = await page.response.text();
  const displayCode = /<p class="code"[^>]*>(\d+)<\/p>/.exec(pageHtml)?.[1];
  if (!displayCode) return { ok: false, browser, status: page.response.status, alert: /role="alert">([^<]*)</.exec(pageHtml)?.[1] ?? '', retryAfter: page.response.headers.get('retry-after') };
  const challengeId = page.url.pathname.split('/').pop()!;
  return { ok: true, browser, challengeId, challengeUrl: page.url, displayCode, mode: displayCode.length === 6 ? 'typed' : 'pick', csrf, verifier, state };
}

/** Submits the challenge page's continue form; true when the browser is sent back to the service with a code. */
export async function finishLogin(attempt: Extract<Attempt, { ok: true }>, redirectUri: string): Promise<boolean> {
  const result = await navigate(attempt.browser, `${attempt.challengeUrl}/continue`, { csrf: attempt.csrf }, (u) => u.href.startsWith(redirectUri));
  if (!result.url.href.startsWith(redirectUri)) await result.response.body?.cancel();
  return result.url.href.startsWith(redirectUri) && result.url.searchParams.has('code');
}

/** Records how each challenge was delivered, from the bus ('challenge.created'). */
export function watchDeliveries(bus: EventBus) {
  const deliveries = new Map<string, string>();
  const unsubscribe = bus.subscribe('challenge.created', (event) => {
    deliveries.set(event.challengeId, event.delivery);
  });
  return {
    of: (challengeId: string) => deliveries.get(challengeId),
    pushes: () => [...deliveries.values()].filter((d) => d === 'push').length,
    stop: unsubscribe,
  };
}

/** A wrong code of the same shape as the right one. */
export function wrongCode(code: string): string {
  return String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');
}
