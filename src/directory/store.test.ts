import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../../test/support/backends.ts';
import { ManualClock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import type { Activity, Professional } from './model.ts';
import { SqlDirectoryStore } from './store.ts';

function activity(codePostal: string): Activity {
  return {
    codeModeExercice: 'L', codeSecteurDactivite: 'SA07', codeSectionPharmacien: '', codeRole: 'FON-01', codeGenreActivite: 'GENR01',
    numeroSiretSite: '12345678200010', numeroSirenSite: '123456782', numeroFinessSite: '', numeroFinessetablissementJuridique: '',
    identifiantTechniqueDeLaStructure: 'R1', raisonSocialeSite: 'CABINET', enseigneCommercialeSite: '', complementDestinataire: '',
    complementPointGeographique: '', numeroVoie: '12', indiceRepetitionVoie: '', codeTypeDeVoie: 'R', libelleTypeDeVoie: 'Rue',
    libelleVoie: 'DE LA REPUBLIQUE', mentionDistribution: '', bureauCedex: `${codePostal} LYON`, codePostal, codeCommune: '69382',
    libelleCommune: 'Lyon', codePays: '99000', libellePays: 'France', telephone: '0478000017', telephone2: '', telecopie: '',
    adresseEMail: '', codeDepartement: '69', libelleDepartement: 'Rhône', ancienIdentifiantDeLaStructure: '', autoriteDenregistrement: 'CNOM/CNOM/CNOM',
  };
}

function professional(n: number, familyName = `NOM${n}`): Professional {
  const identifier = String(10_000_000_000 + n);
  return {
    nationalId: '8' + identifier,
    idType: '8',
    identifier,
    familyName,
    givenName: 'Camille',
    exercises: [
      {
        codeProfession: '10', libelleProfession: 'Médecin', codeCategorieProfessionnelle: 'C', codeCiviliteDexercice: 'DR', codeCivilite: 'MME',
        nomDexercice: familyName, prenomDexercice: 'Camille', codeTypeSavoirFaire: 'S', codeSavoirFaire: 'SM26',
        activities: [activity('69002'), activity('69100')],
      },
    ],
  };
}

function range(from: number, count: number): Professional[] {
  return Array.from({ length: count }, (_, i) => professional(from + i));
}

async function updatedAt(db: Db, table: 'professional' | 'professional_contact', nationalId: string): Promise<number | undefined> {
  const row = await db.kysely.selectFrom(table).select('updated_at').where('national_id', '=', nationalId).executeTakeFirst();
  return row?.updated_at;
}

forEachBackend('SqlDirectoryStore', ({ db }) => {
  const clock = new ManualClock();
  const store = () => new SqlDirectoryStore(db(), clock);

  it('stores and reads back a professional with exercises and activities', async () => {
    const p = professional(1);
    await store().upsertProfessionals([p]);
    assert.deepEqual(await store().get(p.nationalId), p);
    assert.equal(await store().get('899999999999'), undefined);
  });

  it('re-upserting the same record changes nothing, not even updated_at; a change replaces it', async () => {
    const p = professional(2);
    await store().upsertProfessionals([p]);
    const first = await updatedAt(db(), 'professional', p.nationalId);
    const before = await store().count();
    clock.advance(60_000);
    await store().upsertProfessionals([p]);
    assert.deepEqual(await store().count(), before);
    assert.equal(await updatedAt(db(), 'professional', p.nationalId), first);

    clock.advance(60_000);
    const moved = { ...p, familyName: 'DURAND', exercises: [{ ...p.exercises[0]!, activities: [activity('69003')] }] };
    await store().upsertProfessionals([moved]);
    assert.deepEqual(await store().get(p.nationalId), moved);
    assert.equal(await updatedAt(db(), 'professional', p.nationalId), clock.now());
    assert.deepEqual(await store().count(), before);
  });

  it('keeps the last record when a list repeats an identifier', async () => {
    await store().upsertProfessionals([professional(3, 'PREMIER'), professional(4), professional(3, 'DERNIER')]);
    assert.equal((await store().get(professional(3).nationalId))?.familyName, 'DERNIER');
  });

  it('writes lists larger than one statement (several chunks) and counts them', async () => {
    const before = await store().count();
    await store().upsertProfessionals(range(1000, 1234));
    const after = await store().count();
    assert.equal(after.professionals - before.professionals, 1234);
    assert.equal((await store().get(professional(1000 + 1233).nationalId))?.familyName, 'NOM2233');
  });

  it('writes a batch atomically: a bad record in a later chunk leaves nothing of the batch behind', async () => {
    const before = await store().count();
    const existing = professional(1000);
    const batch = [...range(5000, 600), { ...existing, familyName: 'CHANGÉ' }];
    // Forced through a cast: NOT NULL family_name fails inside the second INSERT statement.
    batch[550] = { ...batch[550]!, familyName: null as unknown as string };
    await assert.rejects(store().upsertProfessionals(batch));
    assert.deepEqual(await store().count(), before);
    assert.equal(await store().get(professional(5000).nationalId), undefined);
    assert.equal((await store().get(existing.nationalId))?.familyName, 'NOM1000');
  });

  it('stores, replaces and clears contact details', async () => {
    const id = professional(1).nationalId;
    assert.equal(await store().getContacts(id), undefined);
    const before = await store().count();
    await store().upsertContacts([{ nationalId: id, email: 'camille.martin@demo.vigie.test', mobile: '+33612345678' }]);
    assert.deepEqual(await store().getContacts(id), { nationalId: id, email: 'camille.martin@demo.vigie.test', mobile: '+33612345678' });
    const first = await updatedAt(db(), 'professional_contact', id);
    clock.advance(1000);
    await store().upsertContacts([{ nationalId: id, email: 'camille.martin@demo.vigie.test', mobile: '+33612345678' }]);
    assert.equal(await updatedAt(db(), 'professional_contact', id), first);
    await store().upsertContacts([{ nationalId: id, email: null, mobile: '+33798765432' }]);
    assert.deepEqual(await store().getContacts(id), { nationalId: id, email: null, mobile: '+33798765432' });
    assert.equal(await updatedAt(db(), 'professional_contact', id), clock.now());
    assert.equal((await store().count()).contacts, before.contacts + 1);
  });

  it('writes contacts atomically', async () => {
    const before = await store().count();
    const list = range(7000, 700).map((p) => ({ nationalId: p.nationalId, email: `${p.identifier}@demo.vigie.test`, mobile: null }));
    // A value neither driver can bind (node:sqlite refuses objects, pg calls toPostgres), placed in
    // the second INSERT statement, after the first one succeeded.
    const unbindable = { toPostgres: () => { throw new Error('unbindable'); } };
    list[650] = { ...list[650]!, email: unbindable as unknown as string };
    await assert.rejects(store().upsertContacts(list));
    assert.deepEqual(await store().count(), before);
    assert.equal(await store().getContacts(list[0]!.nationalId), undefined);
    list.splice(650, 1);
    await store().upsertContacts(list);
    assert.equal((await store().count()).contacts, before.contacts + 699);
  });

  it('refuses a record without a national identifier (SQLite would accept NULL in a TEXT primary key)', async () => {
    const before = await store().count();
    await assert.rejects(store().upsertContacts([{ nationalId: null as unknown as string, email: null, mobile: '+33612345678' }]), TypeError);
    await assert.rejects(store().upsertProfessionals([{ ...professional(9), nationalId: '' }]), TypeError);
    assert.deepEqual(await store().count(), before);
  });
});
