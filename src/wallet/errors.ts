import { defineErrors } from '../lib/errors.ts';

/** The wallet's stable error codes. Messages are shown to the professional, hence in French. */
export const walletErrors = defineErrors({
  WALLET_CSRF_INVALID: [403, 'Le formulaire a expiré. Rechargez la page et recommencez.'],
  WALLET_LOGIN_EXPIRED: [400, 'La connexion au portefeuille a expiré ou a déjà servi. Recommencez depuis la page du portefeuille.'],
  WALLET_LOGIN_FAILED: [400, 'La connexion au portefeuille n’a pas pu aboutir. Recommencez.'],
  WALLET_ACR_TOO_LOW: [403, 'Le portefeuille exige une authentification forte par e-CPS.'],
  WALLET_SESSION_NOT_FOUND: [404, 'Cette session n’existe plus ou ne vous appartient pas.'],
  WALLET_DEVICE_NOT_FOUND: [404, 'Cet appareil n’existe pas ou ne vous appartient pas.'],
  WALLET_DEVICE_ALREADY_REVOKED: [409, 'Cet appareil est déjà révoqué.'],
  CONTACT_RATE_LIMITED: [429, 'Trop de demandes de changement de coordonnées en une heure. Réessayez plus tard.'],
  CONTACT_STEP_UP_REQUIRED: [403, 'Pour modifier vos coordonnées, confirmez d’abord votre identité avec votre e-CPS (validation de moins de 5 minutes).'],
  CONTACT_INVALID_EMAIL: [400, 'Cette adresse e-mail n’est pas valide.'],
  CONTACT_INVALID_MOBILE: [400, 'Ce numéro n’est pas un mobile français valide (par exemple 06 12 34 56 78).'],
  CONTACT_UNCHANGED: [400, 'C’est déjà votre coordonnée actuelle.'],
  CONTACT_CHANGE_NOT_FOUND: [404, 'Cette demande de changement n’existe pas ou ne vous appartient pas.'],
  CONTACT_CHANGE_NOT_PENDING: [409, 'Cette demande de changement n’attend plus de code.'],
  CONTACT_CODE_WRONG: [422, 'Code incorrect.'],
  CONTACT_CODE_EXPIRED: [410, 'Le code a expiré : faites une nouvelle demande.'],
  CONTACT_TOO_MANY_ATTEMPTS: [429, 'Trop de codes incorrects : la demande est annulée. Faites une nouvelle demande.'],
  CONTACT_CANCEL_LINK_INVALID: [404, 'Ce lien d’annulation n’est pas valide.'],
});
