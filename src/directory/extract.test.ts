import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { VigieError } from '../lib/errors.ts';
import {
  CURRENT_HEADER,
  LEGACY_HEADER,
  columnKey,
  groupRows,
  parseExtract,
  type ExtractError,
  type ExtractHeader,
  type ExtractRow,
} from './extract.ts';

/** The historical header, verbatim from the national open-data documentation (MISSION.md). */
const MISSION_HEADER =
  "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|Code profession|Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|Code type savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|Code mode exercice|Libellé mode exercice|Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|Numéro FINESS établissement juridique|Identifiant technique de la structure|Raison sociale site|Enseigne commerciale site|Complément destinataire (coord. structure)|Complément point géographique (coord. structure)|Numéro Voie (coord. structure)|Indice répétition voie (coord. structure)|Code type de voie (coord. structure)|Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|Mention distribution (coord. structure)|Bureau cedex (coord. structure)|Code postal (coord. structure)|Code commune (coord. structure)|Libellé commune (coord. structure)|Code pays (coord. structure)|Libellé pays (coord. structure)|Téléphone (coord. structure)|Téléphone 2 (coord. structure)|Télécopie (coord. structure)|Adresse e-mail (coord. structure)|Code Département (structure)|Libellé Département (structure)|Ancien identifiant de la structure|Autorité d'enregistrement|Code secteur d'activité|Libellé secteur d'activité|Code section tableau pharmaciens|Libellé section tableau pharmaciens|";

type Values = Record<string, string>;

function person(rpps: string, extra: Values = {}): Values {
  return {
    "Type d'identifiant PP": '8',
    'Identifiant PP': rpps,
    'Identification nationale PP': '8' + rpps,
    "Code civilité d'exercice": 'DR',
    'Code civilité': 'MME',
    "Nom d'exercice": 'MARTIN',
    "Prénom d'exercice": 'Camille',
    'Code profession': '10',
    'Libellé profession': 'Médecin',
    'Code catégorie professionnelle': 'C',
    'Code type savoir-faire': 'S',
    'Code savoir-faire': 'SM26',
    ...extra,
  };
}

const LYON: Values = {
  'Code mode exercice': 'L',
  'Numéro SIRET site': '12345678200010',
  'Raison sociale site': 'CABINET DU DR CAMILLE MARTIN',
  'Numéro Voie (coord. structure)': '12',
  'Code type de voie (coord. structure)': 'R',
  'Libellé Voie (coord. structure)': 'DE LA REPUBLIQUE',
  'Code postal (coord. structure)': '69002',
  'Libellé commune (coord. structure)': 'Lyon',
  'Adresse e-mail (coord. structure)': 'cabinet@example.test',
  "Autorité d'enregistrement": 'CNOM/CNOM/CNOM',
  "Code secteur d'activité": 'SA07',
  'Code rôle': 'FON-01',
  "Code genre d'activité": 'GENR01',
};

const VILLEURBANNE: Values = {
  'Code mode exercice': 'S',
  'Numéro FINESS site': '690000017',
  'Raison sociale site': 'CENTRE HOSPITALIER DE VILLEURBANNE',
  'Code postal (coord. structure)': '69100',
  'Libellé commune (coord. structure)': 'Villeurbanne',
  "Code secteur d'activité": 'SA01',
};

function line(header: readonly string[], values: Values): string {
  return header.map((name) => values[name] ?? '').join('|') + '|';
}

function file(header: readonly string[], rows: Values[], eol = '\n'): string {
  return [header.join('|') + '|', ...rows.map((r) => line(header, r))].join(eol) + eol;
}

async function parse(text: string, onHeader?: (h: ExtractHeader) => void) {
  const rows: ExtractRow[] = [];
  const errors: ExtractError[] = [];
  let lines = -1;
  for await (const item of parseExtract(Readable.from([text]), { ...(onHeader ? { onHeader } : {}), onEnd: (s) => (lines = s.lines) })) {
    if (item.kind === 'row') rows.push(item.row);
    else errors.push(item.error);
  }
  return { rows, errors, lines };
}

describe('directory extract parser', () => {
  it('knows the historical 52-column header verbatim, and the newer one appends the 4 role columns', () => {
    assert.equal(LEGACY_HEADER.join('|') + '|', MISSION_HEADER);
    assert.deepEqual(CURRENT_HEADER.slice(52), ['Code rôle', 'Libellé rôle', "Code genre d'activité", "Libellé genre d'activité"]);
  });

  it('maps the newer columns by name onto Activity and Exercise fields', async () => {
    const { rows, errors } = await parse(file(CURRENT_HEADER, [person('10000000017', LYON)]));
    assert.deepEqual(errors, []);
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.line, 2);
    assert.equal(row.nationalId, '810000000017');
    assert.equal(row.exercise.nomDexercice, 'MARTIN');
    assert.equal(row.exercise.prenomDexercice, 'Camille');
    assert.equal(row.exercise.codeSavoirFaire, 'SM26');
    assert.equal(row.exercise.codeCivilite, 'MME');
    const a = row.activity!;
    assert.equal(a.numeroSiretSite, '12345678200010');
    assert.equal(a.codePostal, '69002');
    assert.equal(a.adresseEMail, 'cabinet@example.test');
    assert.equal(a.codeRole, 'FON-01');
    assert.equal(a.codeGenreActivite, 'GENR01');
    assert.equal(a.codeSecteurDactivite, 'SA07');
    assert.equal(a.autoriteDenregistrement, 'CNOM/CNOM/CNOM');
    assert.equal(a.libelleVoie, 'DE LA REPUBLIQUE');
  });

  it('reads an older header without the role columns, leaving them empty and saying so', async () => {
    let header: ExtractHeader | undefined;
    const { rows, errors } = await parse(file(LEGACY_HEADER, [person('10000000017', { ...LYON, "Code section tableau pharmaciens": 'A' })]), (h) => (header = h));
    assert.deepEqual(errors, []);
    assert.equal(rows[0]!.activity!.codeRole, '');
    assert.equal(rows[0]!.activity!.codeGenreActivite, '');
    assert.equal(rows[0]!.activity!.codeSectionPharmacien, 'A');
    assert.equal(rows[0]!.activity!.codePostal, '69002');
    assert.deepEqual(header!.missing, ['Code rôle', 'Libellé rôle', "Code genre d'activité", "Libellé genre d'activité"]);
    assert.deepEqual(header!.unknown, []);
  });

  it('matches respelled, reordered columns and tolerates unknown extra ones', async () => {
    const renamed: Record<string, string> = {
      'Code postal (coord. structure)': 'CODE POSTAL (coord.structure)',
      'Adresse e-mail (coord. structure)': 'Adresse email (coord. structure)',
      'Code type de voie (coord. structure)': 'Code type voie (coord. structure)',
      'Code section tableau pharmaciens': 'Code section tableau pharmacien',
      "Code secteur d'activité": 'Code secteur d’activite',
      "Nom d'exercice": "NOM D'EXERCICE",
    };
    const header = [...CURRENT_HEADER].reverse();
    header.splice(3, 0, 'Date de mise à jour');
    const values = person('10000000017', { ...LYON, 'Code section tableau pharmaciens': 'H', 'Date de mise à jour': '2026-11-23' });
    const text = [header.map((h) => renamed[h] ?? h).join('|') + '|', line(header, values)].join('\n');
    let seen: ExtractHeader | undefined;
    const { rows, errors } = await parse(text, (h) => (seen = h));
    assert.deepEqual(errors, []);
    const a = rows[0]!.activity!;
    assert.equal(a.codePostal, '69002');
    assert.equal(a.adresseEMail, 'cabinet@example.test');
    assert.equal(a.codeTypeDeVoie, 'R');
    assert.equal(a.codeSectionPharmacien, 'H');
    assert.equal(a.codeSecteurDactivite, 'SA07');
    assert.equal(rows[0]!.exercise.nomDexercice, 'MARTIN');
    assert.deepEqual(seen!.unknown, ['Date de mise à jour']);
    assert.deepEqual(seen!.missing, []);
  });

  it('keeps distinct columns apart under the loose comparison', () => {
    const keys = CURRENT_HEADER.map(columnKey);
    assert.equal(new Set(keys).size, keys.length);
    assert.notEqual(columnKey('Téléphone (coord. structure)'), columnKey('Téléphone 2 (coord. structure)'));
    assert.notEqual(columnKey('Code civilité'), columnKey("Code civilité d'exercice"));
  });

  it('refuses a header that lacks required columns, naming them', async () => {
    const header = CURRENT_HEADER.filter((h) => h !== 'Identifiant PP' && h !== "Nom d'exercice");
    await assert.rejects(parse(file(header, [])), (error: unknown) => {
      assert.ok(error instanceof VigieError);
      assert.equal(error.code, 'EXTRACT_MISSING_COLUMNS');
      assert.match(error.message, /« Identifiant PP »/);
      assert.match(error.message, /« Nom d'exercice »/);
      return true;
    });
  });

  it('accepts a header-only file and refuses an empty one', async () => {
    const result = await parse(CURRENT_HEADER.join('|') + '|\n');
    assert.deepEqual(result, { rows: [], errors: [], lines: 1 });
    await assert.rejects(parse(''), (error: unknown) => error instanceof VigieError && error.code === 'EXTRACT_EMPTY');
  });

  it('accepts a UTF-8 BOM and CRLF line ends (the trailing | would otherwise leave a stray \\r field)', async () => {
    const text = '\uFEFF' + file(LEGACY_HEADER, [person('10000000017', LYON), person('10000000025', VILLEURBANNE)], '\r\n');
    const { rows, errors } = await parse(text);
    assert.deepEqual(errors, []);
    assert.deepEqual(rows.map((r) => r.nationalId), ['810000000017', '810000000025']);
    assert.equal(rows[1]!.activity!.libelleCommune, 'Villeurbanne');
    assert.equal(rows[0]!.activity!.codeSecteurDactivite, 'SA07');
  });

  it('reports malformed rows with their line numbers and skips them, keeping the others', async () => {
    const good = line(CURRENT_HEADER, person('10000000017', LYON));
    const lines = [
      CURRENT_HEADER.join('|') + '|',
      good, // 2
      good.split('|').slice(0, 40).join('|') + '|', // 3: truncated
      line(CURRENT_HEADER, person('1000000001', LYON)), // 4: 10 digits
      line(CURRENT_HEADER, person('10000000025', { 'Identification nationale PP': '810000000033' })), // 5: 12 digits, another RPPS
      line(CURRENT_HEADER, person('10000000041', { "Nom d'exercice": '  ' })), // 6: no name
      line(CURRENT_HEADER, person('10000000058', { "Type d'identifiant PP": '3' })), // 7
      '', // 8: blank, ignored
      line(CURRENT_HEADER, person('10000000066', { 'Code profession': '' })), // 9
      line(CURRENT_HEADER, person('10000000074', VILLEURBANNE)), // 10
    ];
    const { rows, errors, lines: count } = await parse(lines.join('\n'));
    assert.equal(count, 10);
    assert.deepEqual(rows.map((r) => [r.line, r.nationalId]), [[2, '810000000017'], [10, '810000000074']]);
    assert.deepEqual(errors.map((e) => e.line), [3, 4, 5, 6, 7, 9]);
    assert.match(errors[0]!.message, /nombre de champs incorrect : 40 au lieu de 56/);
    assert.match(errors[1]!.message, /11 chiffres attendus.*« 1000000001 »/);
    assert.match(errors[2]!.message, /« 810000000033 ».*« 810000000025 » attendu/);
    assert.match(errors[3]!.message, /Nom d'exercice/);
    assert.match(errors[4]!.message, /Type d'identifiant PP.*« 3 »/);
    assert.match(errors[5]!.message, /Code profession/);
  });

  it('accepts ADELI identifiers (type 0) and rejects malformed ones', async () => {
    const adeli = (id: string, national = '0' + id) =>
      person('x', { "Type d'identifiant PP": '0', 'Identifiant PP': id, 'Identification nationale PP': national, 'Code profession': '60' });
    const { rows, errors } = await parse(file(CURRENT_HEADER, [adeli('691234567'), adeli('2A1234567'), adeli('69123456')]));
    assert.deepEqual(rows.map((r) => r.nationalId), ['0691234567', '02A1234567']);
    assert.deepEqual(errors.map((e) => e.line), [4]);
  });

  it('reads a file from a path and reports a missing one', async () => {
    const { rows } = await (async () => {
      const out: ExtractRow[] = [];
      for await (const item of parseExtract(new URL('../../fixtures/PS_LibreAcces_Personne_activite_202611230000.txt', import.meta.url).pathname)) {
        if (item.kind === 'row') out.push(item.row);
      }
      return { rows: out };
    })();
    assert.equal(rows[0]!.nationalId, '810000000017');
    await assert.rejects(async () => {
      for await (const _ of parseExtract('/nonexistent/PS_LibreAcces_Personne_activite_x.txt'));
    }, /ENOENT/);
  });
});

describe('directory extract grouping', () => {
  it('folds activity rows into one professional with exercises grouped by profession and know-how', async () => {
    const { rows } = await parse(
      file(CURRENT_HEADER, [
        person('10000000017', LYON),
        person('10000000017', VILLEURBANNE),
        person('10000000017', LYON), // exact duplicate: dropped
        person('10000000017', { ...LYON, 'Code savoir-faire': 'SM04', 'Libellé savoir-faire': 'Cardiologie' }),
        person('10000000017', { 'Code profession': '21', 'Libellé profession': 'Pharmacien', 'Code type savoir-faire': '', 'Code savoir-faire': '' }),
        person('10000000025', { "Nom d'exercice": 'DURAND', "Prénom d'exercice": 'Paul' }), // no activity at all
      ]),
    );
    const professionals = groupRows(rows);
    assert.equal(professionals.length, 2);
    const [camille, paul] = professionals;
    assert.equal(camille!.nationalId, '810000000017');
    assert.equal(camille!.idType, '8');
    assert.equal(camille!.identifier, '10000000017');
    assert.equal(camille!.familyName, 'MARTIN');
    assert.equal(camille!.givenName, 'Camille');
    assert.deepEqual(
      camille!.exercises.map((e) => [e.codeProfession, e.codeSavoirFaire, e.activities.map((a) => a.codePostal)]),
      [
        ['10', 'SM26', ['69002', '69100']],
        ['10', 'SM04', ['69002']],
        ['21', '', []],
      ],
    );
    assert.equal(paul!.familyName, 'DURAND');
    assert.equal(paul!.exercises.length, 1);
    assert.deepEqual(paul!.exercises[0]!.activities, []);
  });

  it('merges rows of one person that are not consecutive within the same group', async () => {
    const { rows } = await parse(file(CURRENT_HEADER, [person('10000000017', LYON), person('10000000025'), person('10000000017', VILLEURBANNE)]));
    const professionals = groupRows(rows);
    assert.deepEqual(professionals.map((p) => p.nationalId), ['810000000017', '810000000025']);
    assert.equal(professionals[0]!.exercises[0]!.activities.length, 2);
  });
});
