/**
 * The national identifier ("Identification nationale PP") a professional types: `8` + RPPS
 * (12 digits). The bare 11-digit RPPS is accepted too and prefixed. Spaces and dots are ignored.
 */
export type IdentifierResult = { ok: true; nationalId: string } | { ok: false; message: string };

export function normaliseIdentifier(input: string): IdentifierResult {
  const compact = input.replace(/[\s.\-]/g, '');
  if (compact === '') return { ok: false, message: 'Saisissez votre identifiant national.' };
  if (!/^\d+$/.test(compact)) return { ok: false, message: "L'identifiant ne contient que des chiffres." };
  if (compact.length === 11) return { ok: true, nationalId: `8${compact}` };
  if (compact.length === 12) {
    if (!compact.startsWith('8')) return { ok: false, message: "Un identifiant national à 12 chiffres commence par 8 (8 suivi du numéro RPPS)." };
    return { ok: true, nationalId: compact };
  }
  return { ok: false, message: `L'identifiant national compte 12 chiffres (ou 11 pour le numéro RPPS seul) : vous en avez saisi ${compact.length}.` };
}
