/** Display helpers shared by the wallet's pages, messages and CSV export (French, Paris time). */
const dateTime = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'short', timeZone: 'Europe/Paris' });
const longDateTime = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Paris' });
const isoParis = new Intl.DateTimeFormat('sv-SE', { dateStyle: 'short', timeStyle: 'medium', timeZone: 'Europe/Paris' });

export function formatDateTime(ms: number): string {
  return dateTime.format(new Date(ms));
}

export function formatLongDateTime(ms: number): string {
  return longDateTime.format(new Date(ms));
}

/** `2026-01-15 10:00:00` in Paris time: sortable, and read as a date by spreadsheets. */
export function formatSortable(ms: number): string {
  return isoParis.format(new Date(ms));
}

/** `c•••@demo.vigie.test`: enough to recognise one's address, not enough to learn someone else's. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '•••';
  return `${email[0]}•••${email.slice(at)}`;
}

/** `+33 6 •• •• •• 78`. */
export function maskMobile(mobile: string): string {
  const digits = mobile.replace(/\D/g, '');
  const tail = digits.slice(-2);
  return mobile.startsWith('+33') && digits.length === 11 ? `+33 ${digits[2]} •• •• •• ${tail}` : `•••${tail}`;
}

export function maskContact(kind: 'email' | 'mobile', value: string): string {
  return kind === 'email' ? maskEmail(value) : maskMobile(value);
}

/** `+33 6 12 34 56 78`. */
export function formatMobile(mobile: string): string {
  const digits = mobile.replace(/\D/g, '');
  if (mobile.startsWith('+33') && digits.length === 11) return `+33 ${digits[2]} ${digits.slice(3).match(/.{2}/g)!.join(' ')}`;
  return mobile;
}
