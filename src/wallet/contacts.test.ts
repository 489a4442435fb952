// Threat: a contact-detail change is an activation path. These tests pin the change's state
// machine and its rules (fresh approval, code, notice with cancel link, cooling-off) on every
// SQL backend, with the injected clock and a recording notifier.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import { SqlAuditLog } from '../audit/log.ts';
import { SqlDirectoryStore } from '../directory/store.ts';
import { CONTACT_CHANGE_STATES, CONTACT_TRANSITIONS, ContactChangeService, legalFrom } from './contacts.ts';
import type { ContactMessage } from './notifier.ts';
import { SqlContactChangeStore } from './store.ts';

const HOUR = 3600_000;

describe('contact change state machine', () => {
  it('ends in applied, cancelled, expired, failed or superseded, from which nothing leaves', () => {
    for (const state of ['applied', 'cancelled', 'expired', 'failed', 'superseded'] as const) assert.deepEqual(CONTACT_TRANSITIONS[state], []);
    assert.deepEqual(legalFrom('applied'), ['cooling_off'], 'only a confirmed change in cooling-off is ever applied');
    assert.deepEqual(legalFrom('cooling_off'), ['pending_code'], 'only the right code starts the cooling-off');
    assert.deepEqual(legalFrom('cancelled'), ['pending_code', 'cooling_off']);
    assert.deepEqual(legalFrom('cancelled', ['applied']), []);
    assert.equal(CONTACT_CHANGE_STATES.length, Object.keys(CONTACT_TRANSITIONS).length);
  });
});

forEachBackend('ContactChangeService', ({ db }) => {
  let clock: ManualClock;
  let sent: ContactMessage[];
  let ended: string[];
  let service: ContactChangeService;
  let directory: SqlDirectoryStore;
  let nationalId: string;
  let counter = 0;

  beforeEach(async () => {
    clock = new ManualClock();
    sent = [];
    ended = [];
    counter += 1;
    nationalId = `8100000000${String(counter).padStart(2, '0')}`;
    directory = new SqlDirectoryStore(db(), clock);
    await directory.upsertContacts([{ nationalId, email: 'ancienne@exemple.fr', mobile: '+33612345678' }]);
    service = new ContactChangeService(
      {
        store: new SqlContactChangeStore(db()),
        directory,
        notifier: { send: async (m) => void sent.push(m) },
        audit: new SqlAuditLog(db(), clock),
        clock,
        endAllSessions: async (id) => {
          ended.push(id);
          return { sessionsEnded: 2 };
        },
      },
      { codeKey: Buffer.alloc(32, 7), coolingOffMs: 72 * HOUR, codeTtlMs: 15 * 60_000, stepUpMs: 5 * 60_000, cancelUrl: (token) => `https://vigie.test/wallet/contacts/cancel/${token}` },
    );
  });

  const codeOf = (to: string) => /\b(\d{6})\b/.exec(sent.find((m) => m.to === to)!.text)![1]!;
  const cancelTokenOf = (to: string) => /cancel\/([A-Za-z0-9_-]+)/.exec(sent.find((m) => m.to === to)!.text)![1]!;

  it('refuses without an approval younger than the step-up window', async () => {
    const approvedAt = clock.now();
    clock.advance(5 * 60_000 + 1);
    await assert.rejects(service.request({ nationalId, kind: 'email', value: 'nouvelle@exemple.fr', authenticatedAt: approvedAt, actor: 't' }), { code: 'CONTACT_STEP_UP_REQUIRED' });
    assert.deepEqual(sent, []);
  });

  it('validates and normalises the new value, and refuses the current one', async () => {
    const now = clock.now();
    await assert.rejects(service.request({ nationalId, kind: 'email', value: 'pas une adresse', authenticatedAt: now, actor: 't' }), { code: 'CONTACT_INVALID_EMAIL' });
    await assert.rejects(service.request({ nationalId, kind: 'mobile', value: '01 23 45 67 89', authenticatedAt: now, actor: 't' }), { code: 'CONTACT_INVALID_MOBILE' });
    await assert.rejects(service.request({ nationalId, kind: 'mobile', value: '06 12 34 56 78', authenticatedAt: now, actor: 't' }), { code: 'CONTACT_UNCHANGED' });
    const change = await service.request({ nationalId, kind: 'mobile', value: '0033 7 11 22 33 44', authenticatedAt: now, actor: 't' });
    assert.equal(change.newValue, '+33711223344');
  });

  it('code to the new contact, notice to the old one; cooling-off before the directory changes', async () => {
    const change = await service.request({ nationalId, kind: 'email', value: 'nouvelle@exemple.fr', authenticatedAt: clock.now(), actor: 't' });
    assert.deepEqual(sent.map((m) => [m.channel, m.to]), [['email', 'nouvelle@exemple.fr'], ['email', 'ancienne@exemple.fr']]);
    assert.doesNotMatch(sent[1]!.text, new RegExp(codeOf('nouvelle@exemple.fr')));
    await assert.rejects(service.confirm({ nationalId: '899999999999', id: change.id, code: codeOf('nouvelle@exemple.fr'), actor: 't' }), { code: 'CONTACT_CHANGE_NOT_FOUND' });
    const confirmed = await service.confirm({ nationalId, id: change.id, code: codeOf('nouvelle@exemple.fr'), actor: 't' });
    assert.equal(confirmed.usableAt, clock.now() + 72 * HOUR);
    await assert.rejects(service.confirm({ nationalId, id: change.id, code: codeOf('nouvelle@exemple.fr'), actor: 't' }), { code: 'CONTACT_CHANGE_NOT_PENDING' });
    clock.advance(72 * HOUR - 1);
    assert.equal((await service.usableContacts(nationalId))?.email, 'ancienne@exemple.fr');
    clock.advance(1);
    assert.equal((await service.usableContacts(nationalId))?.email, 'nouvelle@exemple.fr');
    assert.equal(await service.applyDue(), 0, 'applied once');
    assert.equal((await service.list(nationalId))[0]?.state, 'applied');
    // Too late to cancel now.
    const late = await service.cancelByLink(cancelTokenOf('ancienne@exemple.fr'), 'link');
    assert.equal(late.outcome, 'too_late');
    assert.deepEqual(ended, []);
  });

  it('the code expires, and five wrong codes fail the change', async () => {
    const first = await service.request({ nationalId, kind: 'email', value: 'a@exemple.fr', authenticatedAt: clock.now(), actor: 't' });
    clock.advance(15 * 60_000);
    await assert.rejects(service.confirm({ nationalId, id: first.id, code: codeOf('a@exemple.fr'), actor: 't' }), { code: 'CONTACT_CODE_EXPIRED' });
    const second = await service.request({ nationalId, kind: 'email', value: 'b@exemple.fr', authenticatedAt: clock.now(), actor: 't' });
    const wrong = codeOf('b@exemple.fr') === '000000' ? '111111' : '000000';
    for (let i = 0; i < 4; i += 1) await assert.rejects(service.confirm({ nationalId, id: second.id, code: wrong, actor: 't' }), { code: 'CONTACT_CODE_WRONG' });
    await assert.rejects(service.confirm({ nationalId, id: second.id, code: wrong, actor: 't' }), { code: 'CONTACT_TOO_MANY_ATTEMPTS' });
    await assert.rejects(service.confirm({ nationalId, id: second.id, code: codeOf('b@exemple.fr'), actor: 't' }), { code: 'CONTACT_CHANGE_NOT_PENDING' });
    assert.deepEqual((await service.list(nationalId)).map((c) => c.state), ['failed', 'expired']);
  });

  it('a new request supersedes the one in progress; the cancel link cancels and ends every session', async () => {
    const first = await service.request({ nationalId, kind: 'mobile', value: '07 00 00 00 01', authenticatedAt: clock.now(), actor: 't' });
    const firstToken = cancelTokenOf('+33612345678');
    await service.confirm({ nationalId, id: first.id, code: codeOf('+33700000001'), actor: 't' });
    sent = [];
    clock.advance(1000);
    const second = await service.request({ nationalId, kind: 'mobile', value: '07 00 00 00 02', authenticatedAt: clock.now(), actor: 't' });
    const states = new Map((await service.list(nationalId)).map((c) => [c.id, c.state]));
    assert.equal(states.get(first.id), 'superseded');
    assert.equal(states.get(second.id), 'pending_code');
    assert.equal((await service.cancelByLink(firstToken, 'link')).outcome, 'already_settled');
    const result = await service.cancelByLink(cancelTokenOf('+33612345678'), 'link');
    assert.deepEqual(result, { outcome: 'cancelled', sessionsEnded: 2 });
    assert.deepEqual(ended, [nationalId]);
    clock.advance(100 * HOUR);
    await service.applyDue();
    assert.equal((await directory.getContacts(nationalId))?.mobile, '+33612345678');
    await assert.rejects(service.byCancelToken('x'.repeat(43)), { code: 'CONTACT_CANCEL_LINK_INVALID' });
  });

  it('without a previous email, the notice goes to the mobile; a failed send fails the change (closed)', async () => {
    await directory.upsertContacts([{ nationalId, email: null, mobile: '+33612345678' }]);
    await service.request({ nationalId, kind: 'email', value: 'premiere@exemple.fr', authenticatedAt: clock.now(), actor: 't' });
    assert.deepEqual(sent.map((m) => [m.channel, m.to]), [['email', 'premiere@exemple.fr'], ['sms', '+33612345678']]);
    const broken = new ContactChangeService(
      { store: new SqlContactChangeStore(db()), directory, notifier: { send: async () => { throw new Error('smtp down'); } }, audit: new SqlAuditLog(db(), clock), clock, endAllSessions: async () => ({ sessionsEnded: 0 }) },
      { codeKey: Buffer.alloc(32, 7), coolingOffMs: HOUR, codeTtlMs: 60_000, stepUpMs: 60_000, cancelUrl: (t) => t },
    );
    await assert.rejects(broken.request({ nationalId, kind: 'mobile', value: '07 99 99 99 99', authenticatedAt: clock.now(), actor: 't' }), { code: 'UNAVAILABLE' });
    assert.equal((await broken.list(nationalId)).find((c) => c.newValue === '+33799999999')?.state, 'failed');
  });
});
