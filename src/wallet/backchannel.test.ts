// Threat: a forced logout that a service never hears of leaves the attacker logged in there.
// Deliveries are records retried with back-off; two nodes never send the same attempt; the
// outcome stays visible. Fake sender, injected clock, every SQL backend.
import { it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import { SqlAuditLog } from '../audit/log.ts';
import { LogoutDeliveries, MAX_ATTEMPTS, PermanentDeliveryError, RETRY_DELAYS_MS, describeFailure } from './backchannel.ts';
import { SqlDeliveryStore } from './store.ts';

forEachBackend('LogoutDeliveries', ({ db }) => {
  let clock: ManualClock;
  let calls: Array<{ clientId: string; sid: string }>;
  let failures: Map<string, () => Error>;
  let deliveries: LogoutDeliveries;
  let n = 0;
  const nationalId = () => `81000000${String(n).padStart(4, '0')}`;

  beforeEach(() => {
    n += 1;
    clock = new ManualClock();
    calls = [];
    failures = new Map();
    deliveries = new LogoutDeliveries({
      store: new SqlDeliveryStore(db()),
      audit: new SqlAuditLog(db(), clock),
      clock,
      sender: {
        async send({ clientId, sid }) {
          calls.push({ clientId, sid });
          const failure = failures.get(clientId);
          if (failure) throw failure();
        },
      },
    });
  });

  it('delivers at once and records it', async () => {
    const [d] = await deliveries.deliver([{ nationalId: nationalId(), sessionUid: 'u1', clientId: 'svc', sid: 's1', reason: 'wallet' }]);
    assert.deepEqual([d!.state, d!.attempts], ['delivered', 1]);
    assert.deepEqual(calls, [{ clientId: 'svc', sid: 's1' }]);
    assert.equal((await deliveries.listRecent(nationalId()))[0]?.state, 'delivered');
  });

  it('retries on the back-off schedule, then gives up after the last attempt', async () => {
    failures.set('svc', () => new Error('fetch failed'));
    const [first] = await deliveries.deliver([{ nationalId: nationalId(), sessionUid: 'u1', clientId: 'svc', sid: 's1', reason: 'wallet' }]);
    assert.deepEqual([first!.state, first!.attempts, first!.lastError, first!.nextAttemptAt], ['pending', 1, 'unreachable', clock.now() + RETRY_DELAYS_MS[0]]);
    for (const delay of RETRY_DELAYS_MS) {
      clock.advance(delay - 1);
      assert.equal(await deliveries.retryDue(), 0, 'not before its time');
      clock.advance(1);
      assert.equal(await deliveries.retryDue(), 1);
    }
    const [last] = await deliveries.listRecent(nationalId(), 365 * 24 * 3600_000);
    assert.deepEqual([last!.state, last!.attempts, last!.nextAttemptAt], ['failed', MAX_ATTEMPTS, null]);
    assert.equal(calls.length, MAX_ATTEMPTS);
    clock.advance(365 * 24 * 3600_000);
    assert.equal(await deliveries.retryDue(), 0, 'given up for good');
  });

  it('a service that comes back gets the token on the next retry; a permanent failure is not retried', async () => {
    failures.set('flaky', () => Object.assign(new Error('expected 200 OK from http://x, got: 503 Service Unavailable')));
    failures.set('gone', () => new PermanentDeliveryError('not_registered'));
    const out = await deliveries.deliver([
      { nationalId: nationalId(), sessionUid: 'u1', clientId: 'flaky', sid: 's1', reason: 'wallet' },
      { nationalId: nationalId(), sessionUid: 'u1', clientId: 'gone', sid: 's1', reason: 'wallet' },
    ]);
    assert.deepEqual(out.map((d) => [d.clientId, d.state, d.lastError]), [['flaky', 'pending', 'http_503'], ['gone', 'failed', 'not_registered']]);
    failures.delete('flaky');
    clock.advance(RETRY_DELAYS_MS[0]);
    await deliveries.retryDue();
    const states = new Map((await deliveries.listRecent(nationalId())).map((d) => [d.clientId, [d.state, d.attempts]]));
    assert.deepEqual(states.get('flaky'), ['delivered', 2]);
    assert.deepEqual(states.get('gone'), ['failed', 1]);
  });

  it('two nodes racing on a due retry send it once', async () => {
    failures.set('svc', () => new Error('fetch failed'));
    await deliveries.deliver([{ nationalId: nationalId(), sessionUid: 'u1', clientId: 'svc', sid: 's1', reason: 'wallet' }]);
    failures.delete('svc');
    calls = [];
    clock.advance(RETRY_DELAYS_MS[0]);
    await Promise.all([deliveries.retryDue(), deliveries.retryDue(), deliveries.retryDue()]);
    assert.equal(calls.length, 1);
  });

  it('queues the provider\'s own failed deliveries (RP-initiated logout) for the same retries', async () => {
    await deliveries.recordProviderFailure({ clientId: 'svc', accountId: nationalId(), sid: 's9', error: new Error('fetch failed') });
    const [queued] = await deliveries.listRecent(nationalId());
    assert.deepEqual([queued!.reason, queued!.state, queued!.attempts], ['rp_logout', 'pending', 1]);
    clock.advance(RETRY_DELAYS_MS[0]);
    await deliveries.retryDue();
    assert.deepEqual(calls, [{ clientId: 'svc', sid: 's9' }]);
  });

  it('describes failures briefly', () => {
    assert.equal(describeFailure(new Error('expected 200 OK from http://x/bcl, got: 500 Internal Server Error')), 'http_500');
    assert.equal(describeFailure(Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' })), 'timeout');
    assert.equal(describeFailure(new TypeError('fetch failed')), 'unreachable');
  });
});
