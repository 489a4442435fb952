import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseSync } from 'node:sqlite';
import { sql } from 'kysely';
import { openDatabase, migrate } from './db.ts';

it('SQLite file: WAL checkpoints run in the background, not on the connection serving requests', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigie-checkpoint-'));
  const db = openDatabase({ dataDir: dir });
  try {
    await migrate(db);
    const setting = async () => (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db.kysely)).rows[0]!.wal_autocheckpoint;
    for (let i = 0; (await setting()) !== 0; i++) {
      assert.ok(i < 200, 'the checkpointer never took over');
      await sleep(25);
    }
    const file = join(dir, 'vigie.sqlite');
    const before = (await stat(file)).size;
    // ~2 MB of new pages: only the WAL grows, until someone copies them into the database file.
    const payload = 'x'.repeat(2000);
    await db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < 1000; i++) {
        await trx.insertInto('audit_log').values({ seq: i + 1, at: i, actor: 'test', event: 'test', subject: null, details: payload, prev_hash: '', hash: String(i) }).execute();
      }
    });
    assert.ok((await stat(`${file}-wal`)).size > 2_000_000);
    for (let i = 0; (await stat(file)).size < before + 2_000_000; i++) {
      assert.ok(i < 200, 'the database file never received the WAL pages');
      await sleep(25);
    }
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** A database in a fresh folder, once its worker thread has taken over writes and checkpoints. */
async function withWorker(run: (db: ReturnType<typeof openDatabase>) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'vigie-writer-'));
  const db = openDatabase({ dataDir: dir });
  try {
    await migrate(db);
    for (let i = 0; (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db.kysely)).rows[0]!.wal_autocheckpoint !== 0; i++) {
      assert.ok(i < 200, 'the worker never took over');
      await sleep(25);
    }
    await run(db);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const insertAudit = 'insert into audit_log (seq, at, actor, event, subject, details, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?)';
const auditRow = (seq: number) => [seq, seq, 'test', 'test', null, '{}', '', `h${seq}`];

it('SQLite file: writes run on the worker thread, the main connection reads them at once, and errors keep SQLite’s codes', async () => {
  await withWorker(async (db) => {
    const written = db.sqlite!.query(insertAudit, auditRow(1));
    assert.ok(written instanceof Promise, 'a write is handed to the worker');
    assert.equal((await written).numAffectedRows, 1n);
    const read = db.sqlite!.query<{ hash: string }>('select hash from audit_log where seq = ?', [1]);
    assert.ok(read && !(read instanceof Promise), 'a read runs on the main connection');
    assert.deepEqual(read.rows.map((r) => r.hash), ['h1']);
    const updated = await db.sqlite!.query<{ seq: number }>('update audit_log set actor = ? where seq >= ? returning seq', ['other', 0]);
    assert.deepEqual(updated?.rows.map((r) => r.seq), [1]);
    // audit/log.ts tells a taken seq from other failures by these.
    await assert.rejects(async () => db.sqlite!.query(insertAudit, auditRow(1)), (error: Error & { errcode?: number }) => {
      assert.ok(error instanceof Error);
      assert.equal((error.errcode ?? 0) & 0xff, 19);
      assert.match(error.message, /UNIQUE constraint failed: audit_log\.seq/);
      return true;
    });
    const inserted = await db.kysely.insertInto('audit_log').values({ seq: 5, at: 5, actor: 'test', event: 'test', subject: null, details: '{}', prev_hash: '', hash: 'h5' }).executeTakeFirst();
    const [{ rowid }] = (db.sqlite!.query<{ rowid: number }>('select rowid from audit_log where seq = ?', [5]) as { rows: Array<{ rowid: number }> }).rows as [{ rowid: number }];
    assert.equal(inserted.insertId, BigInt(rowid), 'the rowid of the worker’s insert');
    // A value that cannot cross to the thread fails that write alone.
    await assert.rejects(async () => db.sqlite!.query(insertAudit, [...auditRow(6).slice(0, 7), () => 'h6']), /could not be cloned/);
    // Closing lets the writes already sent finish.
    const last = db.sqlite!.query(insertAudit, auditRow(2));
    await db.close();
    assert.equal((await last)?.numAffectedRows, 1n);
  });
});

it('SQLite file: a transaction that reads, then writes, is not refused because the worker wrote meanwhile', async () => {
  await withWorker(async (db) => {
    await db.sqlite!.query(insertAudit, auditRow(1));
    // A long write on the worker, sent just before the transaction opens. The transaction holds the
    // write lock from its start, after that write; a deferred one would read before it and write
    // after it, and be refused at once (SQLITE_BUSY: its snapshot is stale).
    const concurrent = db.sqlite!.query(
      `insert into audit_log (seq, at, actor, event, subject, details, prev_hash, hash)
       with recursive n(i) as (select 2 union all select i + 1 from n where i < 100001)
       select i, i, 'test', 'test', null, '{}', '', 'h' || i from n`,
      [],
    );
    await db.kysely.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('audit_log').select('seq').where('seq', '=', 1).executeTakeFirstOrThrow();
      // (Should the transaction have taken the lock first, the write waits for its commit: then
      // this gives up waiting for it after a while instead of holding the lock it needs.)
      await Promise.race([concurrent, sleep(1000)]);
      await trx.updateTable('audit_log').set({ actor: 'in-transaction' }).where('seq', '=', row.seq).execute();
    });
    assert.equal((await concurrent)?.numAffectedRows, 100_000n);
    const rows = await db.kysely.selectFrom('audit_log').select(['seq', 'actor']).where('seq', '<=', 2).orderBy('seq').execute();
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ seq: 1, actor: 'in-transaction' }, { seq: 2, actor: 'test' }]);
  });
});

it('SQLite file: Kysely’s writes go to the worker too, except inside a transaction', async () => {
  await withWorker(async (db) => {
    // total_changes() counts the rows this connection (the main one) changed.
    const changedHere = () => db.kysely.selectNoFrom(sql<number>`total_changes()`.as('n')).executeTakeFirstOrThrow().then((r) => r.n);
    const before = await changedHere();
    await db.kysely.insertInto('audit_log').values({ seq: 1, at: 1, actor: 'test', event: 'test', subject: null, details: '{}', prev_hash: '', hash: 'h1' }).execute();
    const swept = await db.kysely.updateTable('audit_log').set({ actor: 'swept' }).where('seq', '>=', 0).returning('seq').execute();
    assert.deepEqual(swept.map((r) => r.seq), [1]);
    assert.equal(await changedHere(), before, 'the worker wrote, not the main connection');
    await db.kysely.transaction().execute(async (trx) => {
      await trx.insertInto('audit_log').values({ seq: 2, at: 2, actor: 'test', event: 'test', subject: null, details: '{}', prev_hash: '', hash: 'h2' }).execute();
    });
    assert.equal(await changedHere(), before + 1, 'a transaction writes on the main connection');
    const rows = await db.kysely.selectFrom('audit_log').select(['seq', 'actor']).orderBy('seq').execute();
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ seq: 1, actor: 'swept' }, { seq: 2, actor: 'test' }]);
  });
});

it('SQLite file: a transaction waits for a write lock held elsewhere without stopping the event loop', async () => {
  await withWorker(async (db) => {
    const dir = (await sql<{ file: string }>`select file from pragma_database_list where name = 'main'`.execute(db.kysely)).rows[0]!.file;
    // An operator command, say, in the middle of a write.
    const other = new DatabaseSync(dir);
    other.exec('begin immediate');
    let ticks = 0;
    const ticking = setInterval(() => (ticks += 1), 2);
    const released = sleep(100).then(() => other.exec('commit'));
    try {
      const started = performance.now();
      await db.kysely.transaction().execute(async (trx) => {
        await trx.insertInto('audit_log').values({ seq: 1, at: 1, actor: 'test', event: 'test', subject: null, details: '{}', prev_hash: '', hash: 'h1' }).execute();
      });
      assert.ok(performance.now() - started >= 90, 'the transaction waited for the lock');
      assert.ok(ticks >= 10, `timers kept running while it waited (${ticks} ticks)`);
    } finally {
      clearInterval(ticking);
      await released;
      other.close();
    }
    assert.equal((await db.kysely.selectFrom('audit_log').select('seq').execute()).length, 1);
  });
});
