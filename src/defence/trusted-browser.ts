import { constantTimeEqual, keyedHash, randomId } from '../lib/crypto.ts';

/**
 * Browser identity for the defences, in two cookies (HttpOnly, SameSite=Lax):
 * - `vigie_bid`: a random browser id, set on the login page. It names the requesting browser
 *   (one pending request per professional and browser; blocks by browser). Anyone can drop it
 *   or invent one: it never grants anything by itself.
 * - `vigie_tb_<h>`: "this browser completed a login for this professional", set when a login
 *   finishes. `<h>` is a keyed hash of the national identifier (the name does not reveal it);
 *   the value binds the professional, the browser id and the issue time under an HMAC whose key
 *   is derived from the root secret. A trusted browser keeps notifying normally while the
 *   professional is under attack from elsewhere, and gets number matching instead of a typed code.
 *   Nothing is stored per cookie: the professional (wallet) or the operator revokes them all at
 *   once, by time (DefenceService.forgetTrustedBrowsers).
 */
export const BROWSER_COOKIE = 'vigie_bid';
export const TRUST_PREFIX = 'vigie_tb_';
const BROWSER_ID = /^[A-Za-z0-9_-]{22}$/;
const BROWSER_COOKIE_DAYS = 400;

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index <= 0) continue;
    const name = part.slice(0, index).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(index + 1).trim());
  }
  return cookies;
}

function serialise(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

export class TrustedBrowsers {
  readonly #key: Buffer;
  readonly #ttlMs: number;
  readonly #secure: boolean;

  constructor(options: { key: Buffer; ttlDays: number; secure: boolean }) {
    this.#key = options.key;
    this.#ttlMs = options.ttlDays * 86_400_000;
    this.#secure = options.secure;
  }

  /** The browser id from the cookie, or a fresh one with the Set-Cookie header to send. */
  browserId(cookies: Map<string, string>): { id: string; setCookie?: string } {
    const existing = cookies.get(BROWSER_COOKIE);
    if (existing && BROWSER_ID.test(existing)) return { id: existing };
    const id = randomId(16);
    return { id, setCookie: serialise(BROWSER_COOKIE, id, BROWSER_COOKIE_DAYS * 86_400, this.#secure) };
  }

  #cookieName(nationalId: string): string {
    return `${TRUST_PREFIX}${keyedHash(this.#key, 'trusted-browser-name', nationalId).slice(0, 16)}`;
  }

  #mac(nationalId: string, browserId: string, issuedAt: number): string {
    return keyedHash(this.#key, 'trusted-browser', `${nationalId}\0${browserId}\0${issuedAt}`);
  }

  /** The Set-Cookie header that marks this browser as trusted for this professional. */
  issue(nationalId: string, browserId: string, now: number): string {
    const value = `${browserId}.${now}.${this.#mac(nationalId, browserId, now)}`;
    return serialise(this.#cookieName(nationalId), value, Math.floor(this.#ttlMs / 1000), this.#secure);
  }

  /**
   * When the browser's valid, unexpired trust cookie for this professional and this browser id was
   * issued; null without one. Whether the professional revoked it since is the defences' call
   * (DefenceService.decide).
   */
  trustedSince(cookies: Map<string, string>, nationalId: string, browserId: string, now: number): number | null {
    const value = cookies.get(this.#cookieName(nationalId));
    if (!value) return null;
    const [id, issued, mac] = value.split('.');
    if (!id || !issued || !mac || id !== browserId || !/^\d{1,16}$/.test(issued)) return null;
    const issuedAt = Number(issued);
    if (issuedAt > now + 60_000 || now - issuedAt > this.#ttlMs) return null;
    return constantTimeEqual(mac, this.#mac(nationalId, browserId, issuedAt)) ? issuedAt : null;
  }
}
