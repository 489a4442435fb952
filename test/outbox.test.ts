// The outbox: where emails and SMS go without SMTP_URL / VIGIE_SMS_URL. Readable with
// `vigie outbox`, and on /dev/outbox in development only (it holds activation codes).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestVigie } from './support/harness.ts';
import { migrate, openDatabase } from '../src/store/db.ts';
import { SqlOutboxStore } from '../src/notify/outbox.ts';
import { run } from '../src/cli/main.ts';

describe('outbox', () => {
  it('/dev/outbox shows the messages in development, and does not exist otherwise', async () => {
    for (const env of ['development', 'test'] as const) {
      const t = await startTestVigie({ env: { NODE_ENV: env, VIGIE_DEMO: 'false', VIGIE_TRUST_PROXY: 'true' } });
      try {
        await fetch(`${t.issuer}/device/v1/activation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nationalId: '810000000017' }) });
        await t.vigie.authenticator.activation.drain();
        const page = await fetch(`${t.issuer}/dev/outbox`);
        if (env === 'development') {
          assert.equal(page.status, 200);
          const html = await page.text();
          assert.match(html, /Votre code d’activation e-CPS/);
          assert.match(html, /SMS · .* à \+33612345678/);
          // Another machine of the network (a server on 0.0.0.0 to try the app on a phone) does not see it.
          for (const forwarded of ['192.168.1.20', '127.0.0.1']) assert.equal((await fetch(`${t.issuer}/dev/outbox`, { headers: { 'x-forwarded-for': forwarded } })).status, 404, forwarded);
        } else assert.equal(page.status, 404);
      } finally {
        await t.close();
      }
    }
  });

  it('`vigie outbox` prints the messages, oldest first, filtered by channel', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigie-outbox-'));
    const saved = { VIGIE_DATA_DIR: process.env.VIGIE_DATA_DIR, DATABASE_URL: process.env.DATABASE_URL };
    process.env.VIGIE_DATA_DIR = dir;
    delete process.env.DATABASE_URL;
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: unknown) => lines.push(String(line));
    try {
      const db = openDatabase({ dataDir: dir });
      await migrate(db);
      const outbox = new SqlOutboxStore(db);
      await outbox.add({ channel: 'sms', recipient: '+33612345678', subject: null, body: 'code 111111', createdAt: 1 });
      await outbox.add({ channel: 'email', recipient: 'a@demo.vigie.test', subject: 'Sujet', body: 'code 222222', createdAt: 2 });
      await outbox.add({ channel: 'sms', recipient: '+33612345678', subject: null, body: 'code 333333', createdAt: 3 });
      await db.close();
      assert.equal(await run(['outbox', '--channel', 'sms']), 0);
      assert.equal(lines.length, 2);
      assert.match(lines[0]!, /^--- sms to \+33612345678 at 1970-01-01T00:00:00\.001Z\ncode 111111/);
      assert.match(lines[1]!, /code 333333/);
      await assert.rejects(run(['outbox', '--channel', 'fax']), /email or sms/);
    } finally {
      console.log = log;
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
