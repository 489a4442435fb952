import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
