/**
 * Streaming parser of the public RPPS open-data extract `PS_LibreAcces_Personne_activite_*.txt`:
 * UTF-8, `|`-separated, every line (header included) ends with a trailing `|`, one row per
 * professional ACTIVITY. Columns are matched by name, never by position, because newer files
 * append columns (`Code rôle`, `Code genre d'activité`...) and respell some labels.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { defineErrors } from '../lib/errors.ts';
import type { Activity, Exercise, Professional } from './model.ts';

export const extractErrors = defineErrors({
  EXTRACT_EMPTY: [400, "Le fichier d'extraction est vide : la ligne d'en-tête manque."],
  EXTRACT_MISSING_COLUMNS: [400, "Des colonnes obligatoires manquent dans l'en-tête du fichier d'extraction."],
});

export type ExerciseFields = Omit<Exercise, 'activities'>;

/** One valid data line. `activity` is absent when the line carries no practice site at all. */
export interface ExtractRow {
  line: number;
  idType: string;
  identifier: string;
  nationalId: string;
  exercise: ExerciseFields;
  activity: Activity | undefined;
}

/** A line that was rejected, with its 1-based physical line number (the header is line 1). */
export interface ExtractError {
  line: number;
  message: string;
}

export type ExtractItem = { kind: 'row'; row: ExtractRow } | { kind: 'error'; error: ExtractError };

/** What the header told us: known columns absent (left empty) and extra columns ignored. */
export interface ExtractHeader {
  columns: string[];
  missing: string[];
  unknown: string[];
}

// ---------------------------------------------------------------------------------------------
// Columns

type Field =
  | 'idType'
  | 'identifier'
  | 'nationalId'
  | 'libelleCiviliteDexercice'
  | 'libelleCivilite'
  | 'libelleCategorieProfessionnelle'
  | 'libelleTypeSavoirFaire'
  | 'libelleSavoirFaire'
  | 'libelleModeExercice'
  | 'libelleSecteurDactivite'
  | 'libelleSectionPharmacien'
  | 'libelleRole'
  | 'libelleGenreActivite'
  | keyof ExerciseFields
  | keyof Activity;

interface ColumnSpec {
  field: Field;
  /** The name in the reference header. */
  name: string;
  required?: boolean;
  /** Other spellings seen or plausible, beyond what the loose comparison already absorbs. */
  aliases?: string[];
}

/**
 * The known columns, in the order of the reference header. Required ones are those without which
 * a record cannot be identified or grouped; any other known column may be absent (left empty).
 */
const COLUMNS: readonly ColumnSpec[] = [
  { field: 'idType', name: "Type d'identifiant PP", required: true },
  { field: 'identifier', name: 'Identifiant PP', required: true },
  { field: 'nationalId', name: 'Identification nationale PP', required: true, aliases: ['Identifiant national PP'] },
  { field: 'codeCiviliteDexercice', name: "Code civilité d'exercice" },
  { field: 'libelleCiviliteDexercice', name: "Libellé civilité d'exercice" },
  { field: 'codeCivilite', name: 'Code civilité' },
  { field: 'libelleCivilite', name: 'Libellé civilité' },
  { field: 'nomDexercice', name: "Nom d'exercice", required: true },
  { field: 'prenomDexercice', name: "Prénom d'exercice", required: true },
  { field: 'codeProfession', name: 'Code profession', required: true },
  { field: 'libelleProfession', name: 'Libellé profession' },
  { field: 'codeCategorieProfessionnelle', name: 'Code catégorie professionnelle' },
  { field: 'libelleCategorieProfessionnelle', name: 'Libellé catégorie professionnelle' },
  { field: 'codeTypeSavoirFaire', name: 'Code type savoir-faire', required: true },
  { field: 'libelleTypeSavoirFaire', name: 'Libellé type savoir-faire' },
  { field: 'codeSavoirFaire', name: 'Code savoir-faire', required: true },
  { field: 'libelleSavoirFaire', name: 'Libellé savoir-faire' },
  { field: 'codeModeExercice', name: 'Code mode exercice' },
  { field: 'libelleModeExercice', name: 'Libellé mode exercice' },
  { field: 'numeroSiretSite', name: 'Numéro SIRET site' },
  { field: 'numeroSirenSite', name: 'Numéro SIREN site' },
  { field: 'numeroFinessSite', name: 'Numéro FINESS site' },
  { field: 'numeroFinessetablissementJuridique', name: 'Numéro FINESS établissement juridique', aliases: ['Numéro FINESS EJ'] },
  { field: 'identifiantTechniqueDeLaStructure', name: 'Identifiant technique de la structure' },
  { field: 'raisonSocialeSite', name: 'Raison sociale site' },
  { field: 'enseigneCommercialeSite', name: 'Enseigne commerciale site' },
  { field: 'complementDestinataire', name: 'Complément destinataire (coord. structure)' },
  { field: 'complementPointGeographique', name: 'Complément point géographique (coord. structure)' },
  { field: 'numeroVoie', name: 'Numéro Voie (coord. structure)' },
  { field: 'indiceRepetitionVoie', name: 'Indice répétition voie (coord. structure)' },
  { field: 'codeTypeDeVoie', name: 'Code type de voie (coord. structure)' },
  { field: 'libelleTypeDeVoie', name: 'Libellé type de voie (coord. structure)' },
  { field: 'libelleVoie', name: 'Libellé Voie (coord. structure)' },
  { field: 'mentionDistribution', name: 'Mention distribution (coord. structure)' },
  { field: 'bureauCedex', name: 'Bureau cedex (coord. structure)' },
  { field: 'codePostal', name: 'Code postal (coord. structure)' },
  { field: 'codeCommune', name: 'Code commune (coord. structure)' },
  { field: 'libelleCommune', name: 'Libellé commune (coord. structure)' },
  { field: 'codePays', name: 'Code pays (coord. structure)' },
  { field: 'libellePays', name: 'Libellé pays (coord. structure)' },
  { field: 'telephone', name: 'Téléphone (coord. structure)' },
  { field: 'telephone2', name: 'Téléphone 2 (coord. structure)' },
  { field: 'telecopie', name: 'Télécopie (coord. structure)', aliases: ['Fax (coord. structure)'] },
  { field: 'adresseEMail', name: 'Adresse e-mail (coord. structure)', aliases: ['Adresse mail (coord. structure)', 'Courriel (coord. structure)'] },
  { field: 'codeDepartement', name: 'Code Département (structure)' },
  { field: 'libelleDepartement', name: 'Libellé Département (structure)' },
  { field: 'ancienIdentifiantDeLaStructure', name: 'Ancien identifiant de la structure' },
  { field: 'autoriteDenregistrement', name: "Autorité d'enregistrement" },
  { field: 'codeSecteurDactivite', name: "Code secteur d'activité" },
  { field: 'libelleSecteurDactivite', name: "Libellé secteur d'activité" },
  { field: 'codeSectionPharmacien', name: 'Code section tableau pharmaciens', aliases: ['Code section pharmacien'] },
  { field: 'libelleSectionPharmacien', name: 'Libellé section tableau pharmaciens', aliases: ['Libellé section pharmacien'] },
  // Appended by newer files.
  { field: 'codeRole', name: 'Code rôle' },
  { field: 'libelleRole', name: 'Libellé rôle' },
  { field: 'codeGenreActivite', name: "Code genre d'activité" },
  { field: 'libelleGenreActivite', name: "Libellé genre d'activité" },
];

/** The reference header of the older files (52 columns), for tools and tests. */
export const LEGACY_HEADER: readonly string[] = COLUMNS.slice(0, 52).map((c) => c.name);
/** The header of newer files: the legacy one plus role and kind of activity (56 columns). */
export const CURRENT_HEADER: readonly string[] = COLUMNS.map((c) => c.name);

const STOP_WORDS = new Set(['d', 'de', 'du', 'des', 'l', 'la', 'le', 'les']);

/**
 * Compares column names loosely: case, accents, punctuation, spacing, the parenthesised
 * qualifier ("(coord. structure)" / "(structure)"), French articles and plural `s` do not count.
 * So "Code type voie (coord.structure)" matches "Code type de voie (coord. structure)".
 */
export function columnKey(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/\([^)]*\)/g, ' ')
    .split(/[^a-z0-9]+/)
    .filter((token) => token && !STOP_WORDS.has(token))
    .map((token) => (token.length > 3 && token.endsWith('s') ? token.slice(0, -1) : token))
    .join('');
}

const COLUMN_BY_KEY: ReadonlyMap<string, ColumnSpec> = (() => {
  const map = new Map<string, ColumnSpec>();
  for (const spec of COLUMNS) {
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      const key = columnKey(name);
      const taken = map.get(key);
      // A collision would silently route one column into another: fail at load, not in production.
      if (taken && taken !== spec) throw new Error(`extract: column names "${taken.name}" and "${name}" collide`);
      map.set(key, spec);
    }
  }
  return map;
})();

/** Every Activity field, in the order of the national file. */
export const ACTIVITY_FIELDS = [
  'codeModeExercice',
  'codeSecteurDactivite',
  'codeSectionPharmacien',
  'codeRole',
  'codeGenreActivite',
  'numeroSiretSite',
  'numeroSirenSite',
  'numeroFinessSite',
  'numeroFinessetablissementJuridique',
  'identifiantTechniqueDeLaStructure',
  'raisonSocialeSite',
  'enseigneCommercialeSite',
  'complementDestinataire',
  'complementPointGeographique',
  'numeroVoie',
  'indiceRepetitionVoie',
  'codeTypeDeVoie',
  'libelleTypeDeVoie',
  'libelleVoie',
  'mentionDistribution',
  'bureauCedex',
  'codePostal',
  'codeCommune',
  'libelleCommune',
  'codePays',
  'libellePays',
  'telephone',
  'telephone2',
  'telecopie',
  'adresseEMail',
  'codeDepartement',
  'libelleDepartement',
  'ancienIdentifiantDeLaStructure',
  'autoriteDenregistrement',
] as const satisfies readonly (keyof Activity)[];

/** Column position of every known field in one file, or -1 when the file lacks it. */
type Layout = { width: number } & Record<Field, number>;

/** Reads the header line; throws EXTRACT_MISSING_COLUMNS naming the required columns it lacks. */
export function parseHeader(line: string): { layout: Layout; header: ExtractHeader } {
  const columns = splitLine(line.replace(/^\uFEFF/, '').replace(/\r$/, '')).map((c) => c.trim());
  const layout = { width: columns.length } as Layout;
  for (const spec of COLUMNS) layout[spec.field] = -1;
  const unknown: string[] = [];
  columns.forEach((name, index) => {
    const spec = COLUMN_BY_KEY.get(columnKey(name));
    if (spec && layout[spec.field] === -1) layout[spec.field] = index;
    else unknown.push(name);
  });
  const absent = COLUMNS.filter((spec) => layout[spec.field] === -1);
  const missingRequired = absent.filter((spec) => spec.required).map((spec) => spec.name);
  if (missingRequired.length > 0) {
    throw extractErrors.EXTRACT_MISSING_COLUMNS({
      message: `Colonnes obligatoires absentes de l'en-tête du fichier d'extraction : ${missingRequired.map((n) => `« ${n} »`).join(', ')}.`,
    });
  }
  return { layout, header: { columns, missing: absent.map((spec) => spec.name), unknown } };
}

/** Splits on `|`, dropping the empty field the mandatory trailing `|` leaves behind. */
function splitLine(line: string): string[] {
  const fields = line.split('|');
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  return fields;
}

const RPPS = /^\d{11}$/;
/** ADELI: 9 characters, the first two being the département (2A/2B in Corsica). */
const ADELI = /^(?:\d{2}|2[AB])\d{7}$/;

/**
 * The longest field the national file holds is an address line or a company name, well under
 * this: a longer one is a broken or hostile file, and would otherwise be stored and sent in every
 * ID token of that person.
 */
export const MAX_FIELD_LENGTH = 512;

/** Parses one data line (without its line terminator) against a file's layout. */
export function parseLine(text: string, lineNumber: number, layout: Layout): ExtractRow | ExtractError {
  // Checked before splitting: a line cannot hold more than its fields and their separators.
  if (text.length > (MAX_FIELD_LENGTH + 1) * layout.width) {
    return { line: lineNumber, message: `ligne trop longue : ${text.length} caractères (au plus ${MAX_FIELD_LENGTH} par champ)` };
  }
  const fields = splitLine(text);
  if (fields.length !== layout.width) {
    return { line: lineNumber, message: `nombre de champs incorrect : ${fields.length} au lieu de ${layout.width}` };
  }
  const tooLong = fields.findIndex((field) => field.length > MAX_FIELD_LENGTH);
  if (tooLong !== -1) return { line: lineNumber, message: `champ n° ${tooLong + 1} trop long : ${fields[tooLong]!.length} caractères (au plus ${MAX_FIELD_LENGTH})` };
  const get = (field: Field): string => {
    const index = layout[field];
    return index === -1 ? '' : (fields[index] ?? '').trim();
  };
  const idType = get('idType');
  const identifier = get('identifier');
  const nationalId = get('nationalId');
  const fail = (message: string): ExtractError => ({ line: lineNumber, message });

  if (idType === '8') {
    if (!RPPS.test(identifier)) return fail(`« Identifiant PP » invalide pour un RPPS (type 8) : 11 chiffres attendus, reçu « ${identifier} »`);
  } else if (idType === '0') {
    if (!ADELI.test(identifier)) return fail(`« Identifiant PP » invalide pour un ADELI (type 0) : 9 caractères attendus, reçu « ${identifier} »`);
  } else {
    return fail(`« Type d'identifiant PP » inconnu : « ${idType} » (attendu 8 pour RPPS ou 0 pour ADELI)`);
  }
  if (nationalId !== idType + identifier) {
    return fail(`« Identification nationale PP » « ${nationalId} » différente du type suivi de l'identifiant (« ${idType}${identifier} » attendu)`);
  }
  const nomDexercice = get('nomDexercice');
  if (!nomDexercice) return fail("« Nom d'exercice » manquant");
  const codeProfession = get('codeProfession');
  if (!/^\d{1,3}$/.test(codeProfession)) return fail(`« Code profession » invalide : « ${codeProfession} »`);

  const exercise: ExerciseFields = {
    codeProfession,
    libelleProfession: get('libelleProfession'),
    codeCategorieProfessionnelle: get('codeCategorieProfessionnelle'),
    codeCiviliteDexercice: get('codeCiviliteDexercice'),
    codeCivilite: get('codeCivilite'),
    nomDexercice,
    prenomDexercice: get('prenomDexercice'),
    codeTypeSavoirFaire: get('codeTypeSavoirFaire'),
    codeSavoirFaire: get('codeSavoirFaire'),
  };
  const activity = {} as Activity;
  let hasActivity = false;
  for (const field of ACTIVITY_FIELDS) {
    const value = get(field);
    activity[field] = value;
    if (value) hasActivity = true;
  }
  return { line: lineNumber, idType, identifier, nationalId, exercise, activity: hasActivity ? activity : undefined };
}

export interface ParseOptions {
  onHeader?: (header: ExtractHeader) => void;
  /** Called once the whole input was read, with the number of physical lines (header included). */
  onEnd?: (summary: { lines: number }) => void;
}

/**
 * Streams an extract (a file path or a readable stream of UTF-8 text), yielding every data line as
 * a row or as an error, in file order. Blank lines are skipped; an optional BOM and CRLF line
 * ends are accepted. Throws before yielding anything if the header is absent or lacks a
 * required column.
 */
export async function* parseExtract(input: string | Readable, options: ParseOptions = {}): AsyncGenerator<ExtractItem> {
  const stream = typeof input === 'string' ? createReadStream(input) : input;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  // A read failure (missing file, broken stream) ends the iteration and is rethrown below.
  let failure: unknown;
  const onError = (error: unknown) => {
    failure ??= error;
    lines.close();
  };
  stream.once('error', onError);
  let lineNumber = 0;
  let layout: Layout | undefined;
  try {
    for await (const raw of lines) {
      lineNumber++;
      const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (!layout) {
        const parsed = parseHeader(text);
        layout = parsed.layout;
        options.onHeader?.(parsed.header);
        continue;
      }
      if (text.trim() === '') continue;
      const result = parseLine(text, lineNumber, layout);
      yield 'message' in result ? { kind: 'error', error: result } : { kind: 'row', row: result };
    }
  } finally {
    stream.off('error', onError);
    lines.close();
    if (typeof input === 'string') stream.destroy();
  }
  if (failure) throw failure;
  if (!layout) throw extractErrors.EXTRACT_EMPTY();
  options.onEnd?.({ lines: lineNumber });
}

// ---------------------------------------------------------------------------------------------
// Grouping

/**
 * Folds activity rows into professionals: one professional per national identifier, one exercise
 * per (profession, type of know-how, know-how), the activities of each exercise in file order
 * (exact duplicates dropped).
 *
 * Assumption: the national file lists all rows of one person consecutively (it is sorted by
 * identifier). The importer only closes a batch between two different persons, so a person is
 * never split across batches; rows of one person that reappear later in the SAME batch are still
 * merged here. Rows reappearing after their batch was written would replace the stored record
 * (last write wins) rather than be merged with it.
 */
export class ProfessionalBuffer {
  readonly #byId = new Map<string, Professional>();

  get size(): number {
    return this.#byId.size;
  }

  has(nationalId: string): boolean {
    return this.#byId.has(nationalId);
  }

  add(row: ExtractRow): void {
    let professional = this.#byId.get(row.nationalId);
    if (!professional) {
      professional = {
        nationalId: row.nationalId,
        idType: row.idType,
        identifier: row.identifier,
        familyName: row.exercise.nomDexercice,
        givenName: row.exercise.prenomDexercice,
        exercises: [],
      };
      this.#byId.set(row.nationalId, professional);
    }
    let exercise = professional.exercises.find(
      (e) =>
        e.codeProfession === row.exercise.codeProfession &&
        e.codeTypeSavoirFaire === row.exercise.codeTypeSavoirFaire &&
        e.codeSavoirFaire === row.exercise.codeSavoirFaire,
    );
    if (!exercise) {
      exercise = { ...row.exercise, activities: [] };
      professional.exercises.push(exercise);
    }
    const activity = row.activity;
    if (activity && !exercise.activities.some((a) => sameActivity(a, activity))) exercise.activities.push(activity);
  }

  /** Returns the professionals gathered so far, in order of first appearance, and empties the buffer. */
  take(): Professional[] {
    const list = [...this.#byId.values()];
    this.#byId.clear();
    return list;
  }
}

function sameActivity(a: Activity, b: Activity): boolean {
  return ACTIVITY_FIELDS.every((field) => a[field] === b[field]);
}

/** Groups a finite list of rows at once (tests, small files). */
export function groupRows(rows: Iterable<ExtractRow>): Professional[] {
  const buffer = new ProfessionalBuffer();
  for (const row of rows) buffer.add(row);
  return buffer.take();
}
