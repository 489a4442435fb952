import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constantTimeEqual, keyedHash, randomId, seal, unseal } from './crypto.ts';

describe('crypto helpers', () => {
  it('random ids never start with "-", so operators can pass them to the command line', () => {
    // 1 in 64 base64url ids would start with '-': 5000 draws would all but surely show one.
    for (let i = 0; i < 5000; i += 1) assert.ok(!randomId(6).startsWith('-'));
  });

  it('keyed hashes depend on key, purpose and value', () => {
    const key = Buffer.alloc(32, 1);
    assert.equal(keyedHash(key, 'pin', '2468'), keyedHash(key, 'pin', '2468'));
    assert.notEqual(keyedHash(key, 'pin', '2468'), keyedHash(key, 'code', '2468'));
    assert.notEqual(keyedHash(key, 'pin', '2468'), keyedHash(Buffer.alloc(32, 2), 'pin', '2468'));
  });

  it('compares in constant time, including different lengths', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
  });

  it('sealed values open with the key only, and a truncated tag is refused', () => {
    const key = Buffer.alloc(32, 7);
    const sealed = seal(key, 'secret');
    assert.equal(unseal(key, sealed), 'secret');
    assert.throws(() => unseal(Buffer.alloc(32, 8), sealed));
    const [iv, tag, body] = sealed.split('.');
    assert.throws(() => unseal(key, [iv, Buffer.from(tag!, 'base64url').subarray(0, 4).toString('base64url'), body].join('.')));
  });
});
