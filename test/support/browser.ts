import * as client from 'openid-client';

/** A scripted browser for HTTP-level end-to-end tests: cookies and manual redirects. */
export class Jar {
  private cookies = new Map<string, Map<string, string>>();
  header(url: URL): string {
    return [...(this.cookies.get(url.host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  store(url: URL, response: Response): void {
    const jar = this.cookies.get(url.host) ?? new Map<string, string>();
    this.cookies.set(url.host, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const index = pair.indexOf('=');
      const name = pair.slice(0, index).trim();
      const value = pair.slice(index + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }
  get(host: string, name: string): string | undefined {
    return this.cookies.get(host)?.get(name);
  }
  /** Forgets the cookies whose name fails `keep` (a browser closed: its session cookies go). */
  retain(keep: (name: string) => boolean): void {
    for (const jar of this.cookies.values()) for (const name of [...jar.keys()]) if (!keep(name)) jar.delete(name);
  }
}

export async function request(jar: Jar, url: string | URL, init: RequestInit = {}): Promise<Response> {
  const target = new URL(url);
  const headers = new Headers(init.headers);
  const cookie = jar.header(target);
  if (cookie) headers.set('cookie', cookie);
  const response = await fetch(target, { ...init, headers, redirect: 'manual' });
  jar.store(target, response);
  return response;
}

/**
 * Drops a redirect's (small) body by reading it: cancelling it makes undici abort the stream with
 * a DOMException, whose stack capture was the load generator's costliest step per redirect.
 */
async function discard(response: Response): Promise<void> {
  await response.arrayBuffer();
}

/** Follows redirects by hand (with cookies) until a non-redirect response or a URL `stop` accepts. */
export async function follow(jar: Jar, start: string | URL, stop: (url: URL) => boolean = () => false): Promise<{ response: Response; visited: URL[]; url: URL }> {
  let url = new URL(start);
  const visited: URL[] = [url];
  for (let hop = 0; hop < 20; hop += 1) {
    const response = await request(jar, url);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { response, visited, url };
    await discard(response);
    url = new URL(location, url);
    visited.push(url);
    if (stop(url)) return { response, visited, url };
  }
  throw new Error('too many redirects');
}

/** Submits a form the way a browser does (urlencoded POST), then follows redirects. */
export async function submit(jar: Jar, action: string | URL, fields: Record<string, string>, stop?: (url: URL) => boolean) {
  const response = await request(jar, action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  const location = response.headers.get('location');
  if (response.status >= 300 && response.status < 400 && location) {
    await discard(response);
    const next = new URL(location, action);
    if (stop?.(next)) return { response, url: next, visited: [next] };
    return follow(jar, next, stop);
  }
  return { response, url: new URL(action), visited: [] as URL[] };
}

/** Reads a named hidden input or an attribute from server-rendered HTML. */
export function field(htmlText: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(htmlText)?.[1];
}

/**
 * What a service sends the browser to: an authorization request with PKCE (S256), a fresh state
 * and, unless `nonce: false`, a fresh nonce; returns the URL and what redeems its code.
 */
export async function authorizationRequest(rp: client.Configuration, params: Record<string, string>): Promise<{ url: URL; verifier: string; state: string; nonce: string }>;
export async function authorizationRequest(rp: client.Configuration, params: Record<string, string>, options: { nonce: false }): Promise<{ url: URL; verifier: string; state: string }>;
export async function authorizationRequest(rp: client.Configuration, params: Record<string, string>, options: { nonce?: boolean } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = options.nonce === false ? undefined : client.randomNonce();
  const url = client.buildAuthorizationUrl(rp, { ...params, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, ...(nonce ? { nonce } : {}) });
  return { url, verifier, state, nonce };
}
