/**
 * Private contact details (email and mobile used to activate the app): validation, normalisation
 * and the operator's CSV feed `national_id,email,mobile` (`,` or `;` separated, header required).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { defineErrors } from '../lib/errors.ts';
import type { Contacts } from './model.ts';
import type { ExtractError } from './extract.ts';

export const contactErrors = defineErrors({
  CONTACTS_EMPTY: [400, "Le fichier de coordonnées est vide : la ligne d'en-tête manque."],
  CONTACTS_BAD_HEADER: [400, "L'en-tête du fichier de coordonnées doit contenir les colonnes national_id, email et mobile."],
});

/** `8` + RPPS (11 digits) or `0` + ADELI (9 characters). */
export const NATIONAL_ID = /^(?:8\d{11}|0(?:\d{2}|2[AB])\d{7})$/;

// No control or format characters (NUL, bidi overrides) in the local part: they would reach the mail server or the screen.
const EMAIL = /^[^\s\p{C}@"<>(),;:]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/u;

/** Trims and lower-cases the domain; undefined when the address is not plausible. */
export function normaliseEmail(input: string): string | undefined {
  const value = input.trim();
  const at = value.lastIndexOf('@');
  if (at < 1 || value.length > 254 || at > 64) return undefined;
  const email = value.slice(0, at) + '@' + value.slice(at + 1).toLowerCase();
  return EMAIL.test(email) ? email : undefined;
}

/**
 * Overseas mobile ranges use their own country codes in E.164, not +33 (ARCEP numbering plan):
 * 0690/0691 Guadeloupe and Saint-Martin/Saint-Barthélemy, 0696/0697 Martinique, 0694 Guyane,
 * 0692/0693 La Réunion, 0639 Mayotte.
 */
const OVERSEAS_MOBILE: ReadonlyArray<readonly [RegExp, string]> = [
  [/^069[01]\d{6}$/, '+590'],
  [/^069[67]\d{6}$/, '+596'],
  [/^0694\d{6}$/, '+594'],
  [/^069[23]\d{6}$/, '+262'],
  [/^0639\d{6}$/, '+262'],
];

/**
 * Normalises a French mobile number to E.164: `06 12 34 56 78`, `06.12.34.56.78`,
 * `+33 6 12 34 56 78`, `+33 (0)6…`, `0033 6…` all become `+33612345678`; overseas mobiles get
 * their own country code. Landlines and anything else give undefined.
 */
export function normaliseMobile(input: string): string | undefined {
  let digits = input.trim().replace(/[\s.\-/]/g, '').replace('(0)', '');
  if (!/^\+?\d+$/.test(digits)) return undefined;
  if (digits.startsWith('00')) digits = '+' + digits.slice(2);
  let national = digits;
  let written: string | undefined;
  if (digits.startsWith('+')) {
    written = ['+33', '+590', '+596', '+594', '+262'].find((c) => digits.startsWith(c));
    if (!written) return undefined;
    national = '0' + digits.slice(written.length).replace(/^0/, '');
  }
  const overseas = OVERSEAS_MOBILE.find(([range]) => range.test(national));
  // An overseas country code must match the number's own range: `+590 6 12…` is no mobile of
  // Guadeloupe, and made into +33 6 12… it would send the codes to someone else.
  if (written && written !== '+33' && overseas?.[1] !== written) return undefined;
  if (overseas) return overseas[1] + national.slice(1);
  return /^0[67]\d{8}$/.test(national) ? '+33' + national.slice(1) : undefined;
}

/** Splits one CSV line; fields may be double-quoted (`""` escapes a quote). */
export function splitCsvLine(line: string, separator: string): string[] {
  if (!line.includes('"')) return line.split(separator);
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === separator) {
      fields.push(field);
      field = '';
    } else field += char;
  }
  fields.push(field);
  return fields;
}

export type ContactItem = { kind: 'row'; line: number; contacts: Contacts } | { kind: 'error'; error: ExtractError };

const HEADER_ALIASES: Record<'nationalId' | 'email' | 'mobile', string[]> = {
  nationalId: ['national_id', 'nationalid', 'identification nationale pp', 'identifiant national'],
  email: ['email', 'e-mail', 'mail', 'courriel'],
  mobile: ['mobile', 'telephone mobile', 'téléphone mobile', 'portable'],
};

/**
 * Streams the contacts CSV, yielding valid rows and rejected lines (with 1-based line numbers, the
 * header being line 1). Empty email or mobile fields are stored as null; an invalid one rejects
 * the line, as does a line without any contact.
 */
export async function* parseContacts(input: string | Readable, options: { onEnd?: (summary: { lines: number }) => void } = {}): AsyncGenerator<ContactItem> {
  const stream = typeof input === 'string' ? createReadStream(input) : input;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let failure: unknown;
  const onError = (error: unknown) => {
    failure ??= error;
    lines.close();
  };
  stream.once('error', onError);
  let lineNumber = 0;
  let layout: { separator: string; nationalId: number; email: number; mobile: number } | undefined;
  try {
    for await (const raw of lines) {
      lineNumber++;
      const text = (lineNumber === 1 ? raw.replace(/^\uFEFF/, '') : raw).replace(/\r$/, '');
      if (text.trim() === '') continue;
      if (!layout) {
        const separator = text.includes(';') ? ';' : ',';
        const names = splitCsvLine(text, separator).map((n) => n.trim().toLowerCase());
        const find = (key: keyof typeof HEADER_ALIASES) => names.findIndex((n) => HEADER_ALIASES[key].includes(n));
        layout = { separator, nationalId: find('nationalId'), email: find('email'), mobile: find('mobile') };
        if (layout.nationalId < 0 || layout.email < 0 || layout.mobile < 0) {
          throw contactErrors.CONTACTS_BAD_HEADER({ detail: `header: ${text.slice(0, 200)}` });
        }
        continue;
      }
      const fields = splitCsvLine(text, layout.separator);
      const fail = (message: string): ContactItem => ({ kind: 'error', error: { line: lineNumber, message } });
      const nationalId = (fields[layout.nationalId] ?? '').trim();
      const rawEmail = (fields[layout.email] ?? '').trim();
      const rawMobile = (fields[layout.mobile] ?? '').trim();
      if (!NATIONAL_ID.test(nationalId)) {
        yield fail(`identifiant national invalide : « ${nationalId} » (8 + RPPS sur 11 chiffres, ou 0 + ADELI)`);
        continue;
      }
      const email = rawEmail ? normaliseEmail(rawEmail) : null;
      if (email === undefined) {
        yield fail(`adresse e-mail invalide : « ${rawEmail} »`);
        continue;
      }
      const mobile = rawMobile ? normaliseMobile(rawMobile) : null;
      if (mobile === undefined) {
        yield fail(`numéro de mobile invalide : « ${rawMobile} » (mobile français attendu, par exemple 06 12 34 56 78)`);
        continue;
      }
      if (email === null && mobile === null) {
        yield fail('ni adresse e-mail ni numéro de mobile');
        continue;
      }
      yield { kind: 'row', line: lineNumber, contacts: { nationalId, email, mobile } };
    }
  } finally {
    stream.off('error', onError);
    lines.close();
    if (typeof input === 'string') stream.destroy();
  }
  if (failure) throw failure;
  if (!layout) throw contactErrors.CONTACTS_EMPTY();
  options.onEnd?.({ lines: lineNumber });
}
