import { defineErrors } from '../lib/errors.ts';

export const challengeErrors = defineErrors({
  CHALLENGE_NOT_FOUND: [404, 'This request does not exist or is not addressed to this device.'],
  CHALLENGE_NOT_PENDING: [409, 'This request is no longer pending.'],
  CHALLENGE_EXPIRED: [410, 'This request has expired.'],
  CHALLENGE_WRONG_CODE: [422, 'Wrong code: the request has been cancelled.'],
  CHALLENGE_STILL_PENDING: [409, 'This request is still pending: deny it with the reason not_me instead.'],
  CHALLENGE_NOT_REPORTABLE: [409, 'Only a request that ended unanswered (withdrawn or expired) can be reported.'],
  CHALLENGE_SUPERSEDED: [409, 'This request was replaced by a newer one from the same browser: answer or report that one instead.'],
  CHALLENGE_REPORT_TOO_LATE: [410, 'This request is too old to be reported.'],
});
