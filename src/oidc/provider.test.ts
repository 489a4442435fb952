import { it } from 'node:test';
import assert from 'node:assert/strict';
import { absoluteSessionTtl } from './provider.ts';

it('a session lasts its lifetime from the login, however often it is saved again', () => {
  const now = 1_800_000_000;
  const ttl = absoluteSessionTtl(10 * 3600, () => now);
  const ctx = {} as never;
  assert.equal(ttl(ctx, {}), 10 * 3600, 'not logged in yet: the whole lifetime');
  assert.equal(ttl(ctx, { loginTs: now }), 10 * 3600);
  assert.equal(ttl(ctx, { loginTs: now - 9 * 3600 }), 3600, 'used 9 h after the login: an hour left, not 10 more');
  assert.equal(ttl(ctx, { loginTs: now - 11 * 3600 }), 1, 'past its lifetime: gone at once');
  assert.equal(ttl(ctx, { loginTs: now + 60 }), 10 * 3600, 'a login dated ahead (clock skew) gets no more than the lifetime');
});
