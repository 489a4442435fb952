import { defineErrors } from '../lib/errors.ts';

/** Stable codes of the defences. Login-page messages are French (shown to the person). */
export const defenceErrors = defineErrors({
  LOGIN_THROTTLED: [429, 'Trop de demandes de connexion depuis votre réseau. Réessayez dans quelques minutes.'],
  SOURCE_BLOCKED: [429, 'Les demandes de connexion depuis votre réseau sont temporairement bloquées à la suite de signalements. Connectez-vous depuis un navigateur que vous utilisez habituellement, ou réessayez plus tard.'],
  BLOCK_NOT_FOUND: [404, 'No such active block.'],
  QUIET_PERIOD_INVALID: [400, 'The quiet period must end in the future, within one year.'],
  CHALLENGE_ALREADY_REPORTED: [409, 'This request has already been reported.'],
});
