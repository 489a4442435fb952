/**
 * The French texts of every email and SMS. Nothing secret but the code itself; no name, no
 * identifier, nothing an intercepted SMS or a shared mailbox would reveal beyond the code.
 */
const SIGNATURE = '\n--\nVigie — Connexion des professionnels de santé\nCe message est automatique, merci de ne pas y répondre.';

const dateFormat = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Paris' });
// Digits only: month names are not all GSM 7-bit (« août »), and one such letter makes a whole SMS UCS-2.
const smsDateFormat = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'short', timeZone: 'Europe/Paris' });

export function formatDate(ms: number): string {
  return dateFormat.format(new Date(ms));
}

export function activationCodeEmail(input: { code: string; ttlMinutes: number }) {
  return {
    subject: 'Votre code d’activation e-CPS',
    text: [
      'Bonjour,',
      '',
      'Voici le code à saisir dans l’application e-CPS pour l’activer :',
      '',
      `    ${input.code}`,
      '',
      `Ce code est valable ${input.ttlMinutes} minutes et ne sert qu’une fois. Un second code vous a été envoyé par SMS : les deux sont nécessaires.`,
      '',
      'Vous n’avez pas demandé l’activation d’une e-CPS ? Ignorez ce message : sans ces deux codes, personne ne peut l’activer.',
      'Ne communiquez jamais ce code, même à une personne qui se présente comme le support.',
      SIGNATURE,
    ].join('\n'),
  };
}

export function activationCodeSms(input: { code: string; ttlMinutes: number }): string {
  // GSM 7-bit characters only (à and é are, ê is not): one SMS segment, no UCS-2 surcharge.
  return `Vigie e-CPS : votre code d'activation est ${input.code} (valable ${input.ttlMinutes} min). Ne le communiquez à personne, y compris au support.`;
}

/**
 * The device's name is left out: whoever activated it chose it, and an impostor would choose a
 * reassuring one (« Mise à jour du support, rien à faire ») for the one message meant to alarm.
 */
export function deviceActivatedEmail(input: { at: number; revokeUrl: string; revokeDays: number }) {
  return {
    subject: 'Une nouvelle e-CPS a été activée',
    text: [
      'Bonjour,',
      '',
      `Une e-CPS vient d’être activée sur votre compte le ${formatDate(input.at)}.`,
      '',
      'C’est vous ? Vous n’avez rien à faire.',
      '',
      'Ce n’était pas moi : révoquez immédiatement cette e-CPS en ouvrant ce lien, puis vérifiez vos coordonnées (e-mail et mobile) :',
      input.revokeUrl,
      '',
      `Ce lien reste valable ${input.revokeDays} jours.`,
      SIGNATURE,
    ].join('\n'),
  };
}

/** The notice by SMS, for a professional without an email on file: the same date and link. */
export function deviceActivatedSms(input: { at: number; revokeUrl: string }): string {
  // GSM 7-bit characters only (É, é and à are).
  return `Vigie e-CPS : une e-CPS a été activée sur votre compte le ${smsDateFormat.format(new Date(input.at))}. Pas vous ? Révoquez-la : ${input.revokeUrl}`;
}
