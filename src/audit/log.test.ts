// Threat: someone with write access to the database edits or deletes audit
// rows to hide what a device or an operator did. Every later link must break and `verify` must
// name the first entry that no longer matches.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import { GENESIS_HASH, SqlAuditLog, entryHash } from './log.ts';

forEachBackend('SqlAuditLog', ({ db }) => {
  const clock = new ManualClock();
  const log = () => new SqlAuditLog(db(), clock);

  it('appends chained entries from the genesis hash; verify is ok on an empty and a filled log', async () => {
    assert.deepEqual(await log().verify(), { ok: true, entries: 0 });
    const first = await log().append({ actor: 'system', event: 'test.first' });
    clock.advance(1000);
    const second = await log().append({ actor: 'operator', event: 'test.second', subject: '810000000017', details: { deviceId: 'd1', n: 2 } });
    assert.equal(first.seq, 1);
    assert.equal(first.prevHash, GENESIS_HASH);
    assert.equal(first.subject, null);
    assert.deepEqual(first.details, {});
    assert.equal(second.seq, 2);
    assert.equal(second.prevHash, first.hash);
    assert.equal(second.hash, entryHash(first.hash, second));
    assert.match(second.hash, /^[0-9a-f]{64}$/);
    assert.deepEqual(await log().list(), [first, second]);
    assert.deepEqual(await log().list({ subject: '810000000017' }), [second]);
    assert.deepEqual(await log().list({ afterSeq: 1 }), [second]);
    assert.deepEqual(await log().verify(), { ok: true, entries: 2 });
  });

  it('concurrent appends (20 at once) keep one gapless, valid chain', async () => {
    const before = (await log().verify()).entries;
    const entries = await Promise.all(Array.from({ length: 20 }, (_, i) => log().append({ actor: 'system', event: 'test.concurrent', details: { i } })));
    assert.deepEqual(entries.map((e) => e.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => before + i + 1));
    assert.deepEqual(await log().verify(), { ok: true, entries: before + 20 });
  });

  it('an entry appended by another process (an operator command) in between is linked to, not overwritten', async () => {
    const mine = await log().append({ actor: 'system', event: 'test.mine' });
    // What `vigie` run from a shell does: its own connection, its own append, unknown to this process.
    const theirs = { seq: mine.seq + 1, at: clock.now(), actor: 'operator', event: 'test.theirs', subject: null, details: {} };
    const theirHash = entryHash(mine.hash, theirs);
    await db().kysely.insertInto('audit_log').values({ ...theirs, details: '{}', prev_hash: mine.hash, hash: theirHash }).execute();
    const next = await log().append({ actor: 'system', event: 'test.next' });
    assert.equal(next.seq, mine.seq + 2);
    assert.equal(next.prevHash, theirHash);
    assert.deepEqual((await log().list({ afterSeq: mine.seq - 1 })).map((e) => e.event), ['test.mine', 'test.theirs', 'test.next']);
    assert.equal((await log().verify()).ok, true);
  });

  it('editing one row’s details is detected at that row', async () => {
    const target = await log().append({ actor: 'device:d1', event: 'device.locked', subject: '810000000017', details: { failures: 3 } });
    await log().append({ actor: 'system', event: 'test.after' });
    await db().kysely.updateTable('audit_log').set({ details: JSON.stringify({ failures: 1 }) }).where('seq', '=', target.seq).execute();
    const result = await log().verify();
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.brokenAt === target.seq, JSON.stringify(result));
    assert.ok(!result.ok && /content/.test(result.reason));
    // Restore for the next test.
    await db().kysely.updateTable('audit_log').set({ details: JSON.stringify({ failures: 3 }) }).where('seq', '=', target.seq).execute();
    assert.equal((await log().verify()).ok, true);
  });

  it('rewriting a row and its own hash is still detected, at the next link', async () => {
    const target = await log().append({ actor: 'operator', event: 'activation.code_issued', subject: '810000000017' });
    const next = await log().append({ actor: 'system', event: 'test.after' });
    const forged = { ...target, actor: 'system' };
    const original = await db().kysely.selectFrom('audit_log').select(['actor', 'hash']).where('seq', '=', target.seq).executeTakeFirstOrThrow();
    await db().kysely.updateTable('audit_log').set({ actor: forged.actor, hash: entryHash(target.prevHash, forged) }).where('seq', '=', target.seq).execute();
    const result = await log().verify();
    assert.ok(!result.ok && result.brokenAt === next.seq && /link/.test(result.reason), JSON.stringify(result));
    await db().kysely.updateTable('audit_log').set(original).where('seq', '=', target.seq).execute();
    assert.equal((await log().verify()).ok, true);
  });

  it('a head recorded outside the database shows entries deleted from the end, and a chain rewritten from an entry on', async () => {
    for (let i = 0; i < 3; i += 1) await log().append({ actor: 'system', event: 'test.recorded', details: { i } });
    const head = (await log().head())!;
    assert.deepEqual(await log().verify({ expect: head }), { ok: true, entries: head.seq });

    // Deleting the newest entries leaves a valid chain: only the recorded head shows it.
    const tail = await db().kysely.selectFrom('audit_log').selectAll().where('seq', '>', head.seq - 2).execute();
    await db().kysely.deleteFrom('audit_log').where('seq', '>', head.seq - 2).execute();
    assert.equal((await log().verify()).ok, true);
    const truncated = await log().verify({ expect: head });
    assert.ok(!truncated.ok && truncated.brokenAt === head.seq && /deleted/.test(truncated.reason), JSON.stringify(truncated));
    await db().kysely.insertInto('audit_log').values(tail).execute();

    // Rewriting an entry and every later link (the hash needs no secret) leaves a valid chain too.
    const entries = await log().list({ afterSeq: head.seq - 3 });
    let prevHash = entries[0]!.prevHash;
    for (const e of entries) {
      const actor = e.seq === head.seq - 2 ? 'nobody' : e.actor;
      const hash = entryHash(prevHash, { ...e, actor });
      await db().kysely.updateTable('audit_log').set({ actor, prev_hash: prevHash, hash }).where('seq', '=', e.seq).execute();
      prevHash = hash;
    }
    assert.equal((await log().verify()).ok, true);
    const rewritten = await log().verify({ expect: head });
    assert.ok(!rewritten.ok && rewritten.brokenAt === head.seq && /rewritten/.test(rewritten.reason), JSON.stringify(rewritten));
    for (const e of entries) await db().kysely.updateTable('audit_log').set({ actor: e.actor, prev_hash: e.prevHash, hash: e.hash }).where('seq', '=', e.seq).execute();
    assert.deepEqual(await log().verify({ expect: head }), { ok: true, entries: head.seq });
  });

  it('deleting a middle row is reported as a missing entry at its seq', async () => {
    await log().append({ actor: 'system', event: 'test.before' });
    const middle = await log().append({ actor: 'browser:192.0.2.1', event: 'challenge.created', subject: '810000000017' });
    await log().append({ actor: 'system', event: 'test.after' });
    await db().kysely.deleteFrom('audit_log').where('seq', '=', middle.seq).execute();
    const result = await log().verify();
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.brokenAt === middle.seq && /missing/.test(result.reason), JSON.stringify(result));
    assert.equal(result.entries, middle.seq - 1);
  });
});
