import { ApiError } from './api.ts';

/** French texts for the provider's stable error codes (the API itself answers in English). */
const MESSAGES: Record<string, string> = {
  NETWORK: 'Connexion au serveur impossible. Vérifiez votre accès à Internet puis réessayez.',
  VALIDATION_FAILED: 'Saisie invalide : vérifiez les informations saisies.',
  BODY_TOO_LARGE: 'La requête est trop volumineuse.',
  SIGNATURE_MISSING: 'Ce téléphone n’a pas pu prouver son identité. Réessayez.',
  SIGNATURE_INVALID: 'Ce téléphone n’a pas pu prouver son identité. Réessayez.',
  SIGNATURE_STALE: 'L’heure de ce téléphone est trop décalée. Vérifiez la date et l’heure, puis réessayez.',
  SIGNATURE_REPLAYED: 'Cette requête a déjà été envoyée. Réessayez.',
  DEVICE_UNKNOWN: 'Cette e-CPS n’existe plus sur le serveur. Activez-la de nouveau.',
  DEVICE_REVOKED: 'Cette e-CPS a été révoquée. Activez-la de nouveau pour l’utiliser.',
  DEVICE_LOCKED: 'Votre e-CPS est verrouillée après trop de codes PIN erronés. Réactivez-la pour l’utiliser de nouveau.',
  PIN_WRONG: 'Code PIN incorrect.',
  PIN_TOO_WEAK: 'Ce code PIN est trop facile à deviner (comme 0000, 1234 ou 1111). Choisissez-en un autre.',
  ACTIVATION_INVALID: 'Ce code d’activation est invalide ou a expiré. Demandez-en un nouveau à votre support.',
  PUBLIC_KEY_INVALID: 'La clé de ce téléphone n’est pas acceptée. Recommencez l’activation.',
  REVOKE_LINK_INVALID: 'Ce lien est invalide, a expiré ou a déjà servi.',
  ACTIVATION_NOT_FOUND: 'Cette activation est introuvable. Recommencez.',
  ACTIVATION_EXPIRED: 'Les codes ont expiré. Recommencez pour en recevoir de nouveaux.',
  ACTIVATION_CODE_WRONG: 'Au moins un des deux codes est incorrect.',
  ACTIVATION_ATTEMPTS_EXHAUSTED: 'Trop d’erreurs de saisie : ces codes sont annulés. Recommencez pour en recevoir de nouveaux.',
  ACTIVATION_ALREADY_USED: 'Ces codes ont déjà servi. Recommencez l’activation.',
  ACTIVATION_NOT_VERIFIED: 'Saisissez d’abord les deux codes reçus.',
  ACTIVATION_KEY_MISMATCH: 'Cette activation a été commencée sur un autre appareil. Recommencez.',
  ACTIVATION_RATE_LIMITED: 'Trop de demandes de codes pour cet identifiant ou depuis votre connexion. Réessayez dans une heure.',
  ACTIVATION_DAILY_LIMIT: 'Trop de codes envoyés pour cet identifiant aujourd’hui. Réessayez demain, ou demandez un code d’activation à votre support.',
  RATE_LIMITED: 'Trop de demandes. Réessayez plus tard.',
  CHALLENGE_NOT_FOUND: 'Cette demande n’existe pas ou ne vous est pas adressée.',
  CHALLENGE_NOT_PENDING: 'Cette demande n’est plus en attente : elle a déjà été traitée ou annulée.',
  CHALLENGE_EXPIRED: 'Cette demande a expiré.',
  CHALLENGE_STILL_PENDING: 'Cette demande est encore en attente : refusez-la avec « Vous n’êtes pas à l’origine de la demande ? ».',
  CHALLENGE_NOT_REPORTABLE: 'Cette demande a reçu une réponse : elle ne peut plus être signalée.',
  CHALLENGE_SUPERSEDED: 'Cette demande a été remplacée par une demande plus récente du même navigateur : c’est à celle-ci qu’il faut répondre.',
  CHALLENGE_REPORT_TOO_LATE: 'Cette demande est trop ancienne pour être signalée.',
  CHALLENGE_ALREADY_REPORTED: 'Cette demande a déjà été signalée. Merci.',
  CHALLENGE_WRONG_CODE: 'Ce nombre ne correspond pas à celui de l’écran de connexion : la demande a été annulée par sécurité.',
  PUSH_ENDPOINT_INVALID: 'Les notifications de ce navigateur ne sont pas acceptées.',
};

/** How a request the person did not see in time ended (a notification opened late). */
export function endedRequest(state: string, reason: string | null): string {
  if (state === 'cancelled') {
    return reason === 'superseded' ? MESSAGES.CHALLENGE_SUPERSEDED! : 'Cette demande a été annulée depuis l’écran de connexion, avant que vous n’y répondiez.';
  }
  if (state === 'expired') return 'Cette demande a expiré sans réponse.';
  if (state === 'approved') return 'Cette demande a déjà été validée.';
  if (state === 'denied') return 'Cette demande a déjà été refusée.';
  return 'Cette demande a échoué : personne n’a été connecté.';
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    const base = MESSAGES[error.code] ?? (error.status >= 500 ? 'Le service rencontre un problème. Réessayez dans un instant.' : 'La demande n’a pas abouti.');
    if (error.code === 'PIN_WRONG' && error.attemptsLeft !== undefined) {
      return `${base} Il vous reste ${error.attemptsLeft} essai${error.attemptsLeft > 1 ? 's' : ''} avant le verrouillage de votre e-CPS.`;
    }
    if (error.code === 'ACTIVATION_CODE_WRONG' && error.attemptsLeft !== undefined) {
      return `${base} Il vous reste ${error.attemptsLeft} essai${error.attemptsLeft > 1 ? 's' : ''}.`;
    }
    return base;
  }
  return 'Une erreur inattendue est survenue. Réessayez.';
}
