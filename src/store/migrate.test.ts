import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { skipWithoutPostgres } from '../../test/support/backends.ts';
import { createSchema, dropSchema, migrate, openDatabase } from './db.ts';

const url = process.env.DATABASE_URL;
if (!url) skipWithoutPostgres('migrations beside other schemas');
else describe('migrations beside other schemas [postgres]', () => {
  // Kysely's migrator reads every schema's tables from the catalog; a schema dropped during that
  // read made it fail with "schema … does not exist" (parallel test files, each in its schema).
  it('migrate succeeds while other schemas of the database are created and dropped', async () => {
    const admin = openDatabase({ databaseUrl: url });
    let churning = true;
    const churn = (async () => {
      while (churning) {
        const other = `churn_${randomBytes(4).toString('hex')}`;
        await createSchema(admin, other);
        await sql`create table ${sql.id(other)}.t (id serial primary key)`.execute(admin.kysely);
        await dropSchema(admin, other);
      }
    })();
    try {
      for (let i = 0; i < 8; i += 1) {
        const schema = `mig_${randomBytes(4).toString('hex')}`;
        await createSchema(admin, schema);
        const db = openDatabase({ databaseUrl: url, schema });
        try {
          assert.ok((await migrate(db)).length > 0, 'every migration applied');
        } finally {
          await db.close();
          await dropSchema(admin, schema);
        }
      }
    } finally {
      churning = false;
      await churn;
      await admin.close();
    }
  });
});
