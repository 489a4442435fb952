import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, isPublicIp, prefixOf, sitePrefixOf } from './source.ts';

describe('sources: prefixes and public addresses', () => {
  it('groups IPv4 by /24 and IPv6 by /56', () => {
    assert.equal(prefixOf('203.0.113.77'), '203.0.113.0/24');
    assert.equal(prefixOf('::ffff:203.0.113.77'), '203.0.113.0/24');
    assert.equal(prefixOf('2a01:cb00:1234:5678::1'), '2a01:cb00:1234:5600::/56');
    assert.equal(prefixOf('2a01:cb00:1234:56ff:abcd::9'), '2a01:cb00:1234:5600::/56');
    assert.equal(prefixOf('2a01:cb00::1'), '2a01:cb00:0:0::/56');
    assert.equal(prefixOf('::1'), '0:0:0:0::/56');
    assert.notEqual(prefixOf('2a01:cb00:1234:5700::1'), prefixOf('2a01:cb00:1234:5600::1'));
    assert.match(prefixOf('not an address'), /^invalid:/);
  });

  it('groups IPv6 sites by /48 too; IPv4 has no site prefix (its /24 is one)', () => {
    assert.equal(sitePrefixOf('2a01:cb00:1234:5678::1'), '2a01:cb00:1234::/48');
    assert.equal(sitePrefixOf('2a01:cb00:1234:ff00::9'), sitePrefixOf('2a01:cb00:1234:0100::9'));
    assert.notEqual(sitePrefixOf('2a01:cb00:1235::1'), sitePrefixOf('2a01:cb00:1234::1'));
    assert.equal(sitePrefixOf('203.0.113.77'), undefined);
    assert.equal(sitePrefixOf('::ffff:203.0.113.77'), undefined);
  });

  it('knows which addresses have no place', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.20.0.1', '100.64.0.1', '203.0.113.5', '198.18.4.2', '::1', 'fd00::1', 'fe80::1', '2001:db8::1', '::ffff:127.0.0.1']) {
      assert.equal(isPublicIp(ip), false, ip);
    }
    for (const ip of ['90.84.0.1', '185.220.101.1', '2a01:cb00::1', '::ffff:90.84.0.1']) assert.equal(isPublicIp(ip), true, ip);
    assert.equal(canonicalIp('::ffff:90.84.0.1'), '90.84.0.1');
  });
});
