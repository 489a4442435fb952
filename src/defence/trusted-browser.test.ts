// Threat: an attacker forges or transplants the trusted-browser cookie to escape the throttles
// that apply to unknown browsers, or reuses one professional's trust for another.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BROWSER_COOKIE, TrustedBrowsers, parseCookies } from './trusted-browser.ts';

const now = Date.UTC(2026, 0, 15, 9);
const trust = new TrustedBrowsers({ key: randomBytes(32), ttlDays: 180, secure: true });
const jar = (...setCookies: string[]) => parseCookies(setCookies.map((c) => c.split(';')[0]).join('; '));

describe('trusted-browser cookies', () => {
  it('mints a browser id once and keeps a valid one', () => {
    const fresh = trust.browserId(new Map());
    assert.match(fresh.id, /^[A-Za-z0-9_-]{22}$/);
    assert.match(fresh.setCookie ?? '', new RegExp(`^${BROWSER_COOKIE}=${fresh.id}; Path=/; Max-Age=\\d+; HttpOnly; SameSite=Lax; Secure$`));
    assert.deepEqual(trust.browserId(jar(fresh.setCookie!)), { id: fresh.id });
    assert.notEqual(trust.browserId(new Map([[BROWSER_COOKIE, 'short']])).id, 'short');
  });

  it('trusts only the professional and the browser it was issued for, within its lifetime', () => {
    const browserId = trust.browserId(new Map()).id;
    const cookie = trust.issue('810000000017', browserId, now);
    assert.match(cookie, /HttpOnly; SameSite=Lax; Secure$/);
    assert.doesNotMatch(cookie, /810000000017/, 'the cookie does not name the professional');
    const cookies = jar(cookie);
    assert.equal(trust.trustedSince(cookies, '810000000017', browserId, now + 1000), now, 'issued then');
    assert.equal(trust.trustedSince(cookies, '810000000025', browserId, now), null, 'another professional');
    assert.equal(trust.trustedSince(cookies, '810000000017', trust.browserId(new Map()).id, now), null, 'copied to another browser id');
    assert.equal(trust.trustedSince(cookies, '810000000017', browserId, now + 181 * 86_400_000), null, 'expired');
  });

  it('rejects tampered values and values signed with another key', () => {
    const browserId = trust.browserId(new Map()).id;
    const [pair] = trust.issue('810000000017', browserId, now).split(';');
    const [name, value] = pair!.split('=') as [string, string];
    const [id, issued, mac] = value.split('.') as [string, string, string];
    const forged = (v: string) => new Map([[name, v]]);
    assert.equal(trust.trustedSince(forged(`${id}.${Number(issued) + 1}.${mac}`), '810000000017', browserId, now), null);
    assert.equal(trust.trustedSince(forged(`${id}.${issued}.${mac.slice(0, -2)}AA`), '810000000017', browserId, now), null);
    const other = new TrustedBrowsers({ key: randomBytes(32), ttlDays: 180, secure: true });
    assert.equal(trust.trustedSince(jar(other.issue('810000000017', browserId, now)), '810000000017', browserId, now), null);
  });
});
