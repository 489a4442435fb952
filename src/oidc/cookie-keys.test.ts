// Threat: a forged or altered oidc-provider cookie (`_session`, `_interaction`) taken as ours.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { CookieKeys } from './cookie-keys.ts';

const data = '_session=Xyz123; path=/';

it('signs with HMAC-SHA256 (base64url) and verifies only the same data under a known key', () => {
  const keys = new CookieKeys(['first-secret']);
  const digest = keys.sign(data);
  assert.equal(digest, createHmac('sha256', 'first-secret').update(data).digest('base64url'));
  assert.equal(keys.index(data, digest), 0);
  assert.equal(keys.verify(data, digest), true);
  assert.equal(keys.verify(`${data}x`, digest), false, 'other data');
  assert.equal(new CookieKeys(['another-secret']).verify(data, digest), false, 'other key');
  assert.equal(keys.verify(data, digest.slice(0, -1)), false, 'truncated');
  assert.equal(keys.verify(data, `${digest}!`), false, 'a stray character is not ignored');
  assert.equal(keys.verify(data, ''), false);
});

it('after a rotation the new key signs and the old one still verifies, at its index', () => {
  const before = new CookieKeys(['old-secret']);
  const after = new CookieKeys(['new-secret', Buffer.from('old-secret')]);
  const oldDigest = before.sign(data);
  assert.equal(after.index(data, oldDigest), 1);
  assert.equal(after.index(data, after.sign(data)), 0);
  assert.notEqual(after.sign(data), oldDigest);
  assert.throws(() => new CookieKeys([]), /at least one/);
});
