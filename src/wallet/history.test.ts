// The history's outcome rules, cursor and CSV export, without a database.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { auditOutcome, decodeCursor, encodeCursor, labelOf, outcomeOf, toCsv, type Attempt } from './history.ts';

describe('connection history', () => {
  it('derives each outcome from state, reason, delivery and holds', () => {
    const cases: Array<[Parameters<typeof outcomeOf>[0], string]> = [
      [{ state: 'approved', reason: null, delivery: 'push' }, 'approved'],
      [{ state: 'approved', reason: null, delivery: 'silent' }, 'approved'],
      [{ state: 'pending', reason: null, delivery: 'push' }, 'pending'],
      [{ state: 'denied', reason: 'refused', delivery: 'push' }, 'refused'],
      [{ state: 'denied', reason: 'not_me', delivery: 'silent' }, 'not_me'],
      [{ state: 'failed', reason: 'wrong_code', delivery: 'push' }, 'wrong_code'],
      [{ state: 'failed', reason: 'device_locked', delivery: 'push' }, 'device_locked'],
      [{ state: 'expired', reason: null, delivery: 'push' }, 'expired'],
      [{ state: 'expired', reason: null, delivery: 'silent', holds: ['budget'] }, 'silent'],
      [{ state: 'expired', reason: null, delivery: 'silent', holds: ['quiet_period', 'reported_source'] }, 'blocked'],
      [{ state: 'expired', reason: null, delivery: 'none' }, 'none'],
      [{ state: 'cancelled', reason: 'superseded', delivery: 'push' }, 'superseded'],
      [{ state: 'cancelled', reason: 'cancelled', delivery: 'push' }, 'cancelled'],
      // Values a future defence might record: they pass through untouched.
      [{ state: 'failed', reason: 'captcha', delivery: 'push' }, 'captcha'],
      [{ state: 'expired', reason: null, delivery: 'quarantined' }, 'quarantined'],
    ];
    for (const [input, expected] of cases) assert.equal(outcomeOf(input), expected, JSON.stringify(input));
  });

  it('reads refusals recorded by the defences, and any other login.<outcome> event', () => {
    assert.equal(auditOutcome('login.refused', { reason: 'ip_rate' }), 'throttled');
    assert.equal(auditOutcome('login.refused', { reason: 'prefix_rate' }), 'throttled');
    assert.equal(auditOutcome('login.refused', { reason: 'source_blocked' }), 'blocked');
    assert.equal(auditOutcome('login.refused', { reason: 'something_new' }), 'refused_by_server');
    assert.equal(auditOutcome('login.throttled', {}), 'throttled');
    assert.equal(auditOutcome('login.geo_fenced', {}), 'geo_fenced');
  });

  it('labels every known outcome in French and keeps unknown ones visible and suspicious', () => {
    assert.deepEqual(labelOf('approved'), { label: 'Approuvée', suspicious: false });
    assert.equal(labelOf('not_me').suspicious, true);
    assert.deepEqual(labelOf('geo_fenced'), { label: 'Autre issue (geo_fenced)', suspicious: true });
  });

  it('cursors round-trip and refuse anything else', () => {
    const cursor = { at: 1_768_467_600_000, key: 'c:AbC-_12' };
    assert.deepEqual(decodeCursor(encodeCursor(cursor)), cursor);
    assert.deepEqual(decodeCursor(encodeCursor({ at: 5, key: 'a:000000000042' })), { at: 5, key: 'a:000000000042' });
    for (const bad of [undefined, '', 'x', '12.b:abc', '12.c:', '12.c:a b', "1.c:x' or 1=1", 42]) assert.equal(decodeCursor(bad), undefined, String(bad));
  });

  it('exports CSV with semicolons and a BOM, quoting and neutralising formulas', () => {
    const attempt: Attempt = { key: 'c:1', at: Date.UTC(2026, 0, 15, 9, 0, 0), clientId: 'x', service: '=cmd|"/c calc"', outcome: 'not_me', delivery: 'push', reason: 'not_me', detail: null, ip: '203.0.113.7', browser: 'Firefox; Windows', place: null, suspicious: true };
    const csv = toCsv([attempt]);
    assert.ok(csv.startsWith('\uFEFFDate (heure de Paris);Service;'));
    const line = csv.split('\r\n')[1]!;
    assert.equal(line, `2026-01-15 10:00:00;"'=cmd|""/c calc""";« Ce n’était pas moi »;not_me;oui;Notification envoyée;;;"Firefox; Windows";203.0.113.7;c:1`);
  });
});
