import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { safeReturnTo } from './auth.ts';

describe('where the wallet sends the browser after login', () => {
  it('keeps the wallet pages it was asked for', () => {
    for (const path of ['/wallet', '/wallet/contacts', '/wallet/history?before=abc', '/wallet#devices']) assert.equal(safeReturnTo(path), path);
  });

  it('anything else goes to /wallet: other sites, other paths, and what cannot be a Location header', () => {
    for (const value of ['https://evil.example/wallet', '//evil.example/wallet', '/walletx', '/wallet\\..\\x', '/auth', '/wallet?x\r\nSet-Cookie: a=b', '/wallet?€', '/wallet? space', 42, undefined]) {
      assert.equal(safeReturnTo(value), '/wallet', JSON.stringify(value));
    }
  });
});
