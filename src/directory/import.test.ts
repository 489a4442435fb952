import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { forEachBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import { VigieError } from '../lib/errors.ts';
import { migrate, openDatabase, type Db } from '../store/db.ts';
import { claimsFor } from './claims.ts';
import { normaliseEmail, normaliseMobile } from './contacts.ts';
import type { ExtractError } from './extract.ts';
import { importContacts, importExtract, type ImportProgress } from './import.ts';
import type { Professional } from './model.ts';
import { SqlDirectoryStore, type DirectoryStore } from './store.ts';

const EXTRACT = fileURLToPath(new URL('../../fixtures/PS_LibreAcces_Personne_activite_202611230000.txt', import.meta.url));
const CONTACTS = fileURLToPath(new URL('../../fixtures/demo-contacts.csv', import.meta.url));
const extractLines = readFileSync(EXTRACT, 'utf8').split('\n').filter(Boolean);
const CAMILLE = '810000000017';

async function snapshot(db: Db) {
  return {
    professionals: await db.kysely.selectFrom('professional').selectAll().orderBy('national_id').execute(),
    contacts: await db.kysely.selectFrom('professional_contact').selectAll().orderBy('national_id').execute(),
  };
}

async function sqlite(): Promise<Db> {
  const db = openDatabase({ sqlitePath: ':memory:' });
  await migrate(db);
  return db;
}

forEachBackend('directory import of the demo fixture', ({ db }) => {
  const clock = new ManualClock();
  const store = () => new SqlDirectoryStore(db(), clock);

  it('imports the 300 generated professionals and their contacts', async () => {
    const progress: ImportProgress[] = [];
    const result = await importExtract(EXTRACT, store(), { batchSize: 100, onProgress: (p) => progress.push(p) });
    assert.deepEqual(result, { lines: extractLines.length, rows: extractLines.length - 1, professionals: 300, errors: 0, batches: 3 });
    assert.deepEqual(progress.map((p) => p.professionals), [100, 200, 300]);
    assert.ok(progress[0]!.lines < progress[1]!.lines && progress[2]!.lines === extractLines.length);

    const contacts = await importContacts(CONTACTS, store());
    assert.deepEqual(contacts, { lines: 301, rows: 300, professionals: 300, errors: 0, batches: 1 });
    assert.deepEqual(await store().count(), { professionals: 300, contacts: 300 });
  });

  it('holds Dr Camille MARTIN with her two activities, in the national claim shape', async () => {
    const camille = (await store().get(CAMILLE))!;
    assert.equal(camille.familyName, 'MARTIN');
    assert.equal(camille.givenName, 'Camille');
    assert.equal(camille.exercises.length, 1);
    assert.deepEqual(camille.exercises[0]!.activities.map((a) => [a.libelleCommune, a.codeModeExercice]), [['Lyon', 'L'], ['Villeurbanne', 'S']]);
    assert.deepEqual(await store().getContacts(CAMILLE), { nationalId: CAMILLE, email: 'camille.martin@demo.vigie.test', mobile: '+33612345678' });

    const claims = claimsFor(camille) as { SubjectRefPro: { codeCivilite: string; exercices: { codeProfession: string; activities: Record<string, string>[] }[] } } & Record<string, unknown>;
    assert.equal(claims.SubjectNameID, CAMILLE);
    assert.equal(claims.preferred_username, CAMILLE);
    assert.equal(claims.family_name, 'MARTIN');
    assert.deepEqual(claims.otherIds, [{ identifiant: '10000000017', origine: 'RPPS', qualite: 1 }]);
    assert.equal(claims.SubjectRefPro.codeCivilite, 'MME');
    const [cabinet, hospital] = claims.SubjectRefPro.exercices[0]!.activities;
    assert.equal(cabinet!.codePostal, '69002');
    assert.equal(hospital!.raisonSocialeSite, 'CENTRE HOSPITALIER DE VILLEURBANNE');
    assert.equal(Object.keys(cabinet!).length, 30);
    assert.equal('libelleCommune' in cabinet!, false);
    assert.equal('sub' in claims, false);
  });

  it('re-importing the same files is idempotent: identical rows, updated_at included', async () => {
    const before = await snapshot(db());
    clock.advance(3_600_000);
    await importExtract(EXTRACT, store(), { batchSize: 37 });
    await importContacts(CONTACTS, store());
    assert.deepEqual(await snapshot(db()), before);
  });
});

describe('directory import', () => {
  it('never splits one person across batches, whatever the batch size', async () => {
    const small = await sqlite();
    const large = await sqlite();
    try {
      const clock = new ManualClock();
      const bySmall = await importExtract(EXTRACT, new SqlDirectoryStore(small, clock), { batchSize: 1 });
      const byLarge = await importExtract(EXTRACT, new SqlDirectoryStore(large, clock), { batchSize: 10_000 });
      assert.equal(bySmall.batches, 300);
      assert.equal(byLarge.batches, 1);
      assert.deepEqual(await snapshot(small), await snapshot(large));
      const camille = await new SqlDirectoryStore(small).get(CAMILLE);
      assert.equal(camille!.exercises[0]!.activities.length, 2);
    } finally {
      await small.close();
      await large.close();
    }
  });

  it('reports a malformed line in the middle of a file with its number and imports the rest', async () => {
    const db = await sqlite();
    try {
      const lines = extractLines.slice(0, 41);
      const victim = lines[19]!.split('|');
      const victimId = victim[2]!;
      victim[1] = victim[1]!.slice(0, 9); // RPPS cut to 9 digits: line 20
      lines[19] = victim.join('|');
      const errors: ExtractError[] = [];
      const result = await importExtract(Readable.from([lines.join('\n') + '\n']), new SqlDirectoryStore(db), { batchSize: 5, onError: (e) => errors.push(e) });
      assert.equal(result.errors, 1);
      assert.equal(result.rows, 39);
      assert.equal(result.lines, 41);
      assert.deepEqual(errors.map((e) => e.line), [20]);
      assert.match(errors[0]!.message, /11 chiffres/);
      const others = new Set(lines.slice(1).filter((_, i) => i !== 18).map((l) => l.split('|')[2]));
      const store = new SqlDirectoryStore(db);
      assert.equal((await store.count()).professionals, others.size);
      if (!others.has(victimId)) assert.equal(await store.get(victimId), undefined);
      assert.ok(await store.get(lines[40]!.split('|')[2]!));
    } finally {
      await db.close();
    }
  });

  it('an oversized field or line is reported and skipped, not stored', async () => {
    const db = await sqlite();
    try {
      const lines = extractLines.slice(0, 6);
      const longName = lines[2]!.split('|');
      const nameIndex = lines[0]!.split('|').indexOf("Nom d'exercice");
      longName[nameIndex] = 'X'.repeat(600);
      lines[2] = longName.join('|');
      lines[4] = lines[4]! + 'Y'.repeat(60_000);
      const errors: ExtractError[] = [];
      const result = await importExtract(Readable.from([lines.join('\n') + '\n']), new SqlDirectoryStore(db), { onError: (e) => errors.push(e) });
      assert.deepEqual(errors.map((e) => e.line), [3, 5]);
      assert.match(errors[0]!.message, /champ n° \d+ trop long : 600 caractères \(au plus 512\)/);
      assert.match(errors[1]!.message, /ligne trop longue/);
      assert.equal(result.rows, 3);
      const stored = await new SqlDirectoryStore(db).get(longName[2]!);
      assert.ok(!JSON.stringify(stored ?? {}).includes('X'.repeat(600)));
    } finally {
      await db.close();
    }
  });

  it('stops at a failing batch: earlier batches stay, the failed one leaves nothing', async () => {
    const db = await sqlite();
    try {
      const real = new SqlDirectoryStore(db);
      let calls = 0;
      let failed: Professional[] = [];
      const flaky: DirectoryStore = {
        ...bind(real),
        async upsertProfessionals(list: Professional[]) {
          if (++calls === 3) {
            // The batch's last record breaks NOT NULL: the store's transaction must undo the rest.
            failed = list;
            return real.upsertProfessionals([...list.slice(0, -1), { ...list.at(-1)!, givenName: null as unknown as string }]);
          }
          return real.upsertProfessionals(list);
        },
      };
      await assert.rejects(importExtract(EXTRACT, flaky, { batchSize: 50 }));
      assert.equal(failed.length, 50);
      assert.equal((await real.count()).professionals, 100);
      for (const p of failed) assert.equal(await real.get(p.nationalId), undefined);
    } finally {
      await db.close();
    }
  });

  it('refuses an extract whose header lacks required columns before writing anything', async () => {
    const db = await sqlite();
    try {
      const text = extractLines[0]!.replace('Identification nationale PP|', '') + '\n';
      await assert.rejects(importExtract(Readable.from([text]), new SqlDirectoryStore(db)), (e: unknown) => e instanceof VigieError && /Identification nationale PP/.test(e.message));
      assert.deepEqual(await new SqlDirectoryStore(db).count(), { professionals: 0, contacts: 0 });
    } finally {
      await db.close();
    }
  });
});

describe('directory contacts import', () => {
  it('accepts ; as separator, normalises mobiles and emails, reports bad rows by line and skips them', async () => {
    const db = await sqlite();
    try {
      const csv = [
        '\uFEFFnational_id;email;mobile', // 1
        '810000000017;Camille.Martin@Demo.Vigie.TEST;06 12 34 56 78', // 2
        '810000000025;paul.durand@demo.vigie.test;+33 (0)7 98 76 54 32', // 3
        '810000000033;pas-une-adresse;0612345678', // 4: bad email
        '810000000041;ok@demo.vigie.test;01 23 45 67 89', // 5: landline
        '12345;ok@demo.vigie.test;0612345678', // 6: bad national id
        '', // 7: blank
        '810000000058;;0033 6 11 22 33 44', // 8: no email, fine
        '810000000066;;', // 9: nothing to store
        '810000000074;"lea.roux@demo.vigie.test";0692 12 34 56', // 10: La Réunion
        '0691234567;adeli@demo.vigie.test;07.11.22.33.44', // 11: ADELI
        '810000000017;camille.martin@demo.vigie.test;+33611111111', // 12: repeated id, last wins
      ].join('\r\n');
      const errors: ExtractError[] = [];
      const store = new SqlDirectoryStore(db);
      const result = await importContacts(Readable.from([csv]), store, { onError: (e) => errors.push(e) });
      assert.deepEqual(result, { lines: 12, rows: 6, professionals: 5, errors: 4, batches: 1 });
      assert.deepEqual(errors.map((e) => e.line), [4, 5, 6, 9]);
      assert.match(errors[0]!.message, /e-mail invalide/);
      assert.match(errors[1]!.message, /mobile invalide/);
      assert.match(errors[2]!.message, /identifiant national invalide/);
      assert.deepEqual(await store.getContacts('810000000017'), { nationalId: '810000000017', email: 'camille.martin@demo.vigie.test', mobile: '+33611111111' });
      assert.deepEqual(await store.getContacts('810000000025'), { nationalId: '810000000025', email: 'paul.durand@demo.vigie.test', mobile: '+33798765432' });
      assert.deepEqual(await store.getContacts('810000000058'), { nationalId: '810000000058', email: null, mobile: '+33611223344' });
      assert.equal((await store.getContacts('810000000074'))?.mobile, '+262692123456');
      assert.equal((await store.getContacts('0691234567'))?.mobile, '+33711223344');
      assert.equal(await store.getContacts('810000000033'), undefined);
    } finally {
      await db.close();
    }
  });

  it('refuses a file without the expected header', async () => {
    const db = await sqlite();
    try {
      await assert.rejects(
        importContacts(Readable.from(['810000000017,camille.martin@demo.vigie.test,+33612345678\n']), new SqlDirectoryStore(db)),
        (e: unknown) => e instanceof VigieError && e.code === 'CONTACTS_BAD_HEADER',
      );
      await assert.rejects(importContacts(Readable.from(['']), new SqlDirectoryStore(db)), (e: unknown) => e instanceof VigieError && e.code === 'CONTACTS_EMPTY');
    } finally {
      await db.close();
    }
  });

  it('normalises French mobile numbers to E.164 and rejects the rest', () => {
    for (const input of ['0612345678', '06 12 34 56 78', '06.12.34.56.78', '06-12-34-56-78', '+33612345678', '+33 6 12 34 56 78', '+33 (0)6 12 34 56 78', '0033612345678']) {
      assert.equal(normaliseMobile(input), '+33612345678', input);
    }
    assert.equal(normaliseMobile('0690 12 34 56'), '+590690123456');
    assert.equal(normaliseMobile('+596 696 12 34 56'), '+596696123456');
    assert.equal(normaliseMobile('0639 12 34 56'), '+262639123456');
    // An overseas country code with a number outside its ranges is refused, not made a metropolitan mobile.
    for (const input of ['0123456789', '061234567', '06123456789', '+44 7911 123456', '06 12 34 56 7a', '', '+33 1 23 45 67 89', '+590 6 12 34 56 78', '+262612345678', '+269 6 12 34 56 78', '+596 690 12 34 56']) {
      assert.equal(normaliseMobile(input), undefined, input);
    }
  });

  it('validates email shapes', () => {
    assert.equal(normaliseEmail(' Camille.Martin@Demo.Vigie.Test '), 'Camille.Martin@demo.vigie.test');
    for (const input of ['camille', 'camille@', '@demo.vigie.test', 'camille@demo', 'ca mille@demo.vigie.test', 'a@b@c.fr', 'camille@-demo.fr', 'a\u0000b@demo.vigie.test', 'a\u202eb@demo.vigie.test']) {
      assert.equal(normaliseEmail(input), undefined, input);
    }
  });
});

function bind(store: DirectoryStore): DirectoryStore {
  return {
    upsertProfessionals: (list) => store.upsertProfessionals(list),
    get: (id) => store.get(id),
    upsertContacts: (list) => store.upsertContacts(list),
    getContacts: (id) => store.getContacts(id),
    count: () => store.count(),
  };
}
