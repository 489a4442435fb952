import { defineErrors } from '../lib/errors.ts';

export const challengeErrors = defineErrors({
  CHALLENGE_NOT_FOUND: [404, 'This request does not exist or is not addressed to this device.'],
  CHALLENGE_NOT_PENDING: [409, 'This request is no longer pending.'],
  CHALLENGE_EXPIRED: [410, 'This request has expired.'],
  CHALLENGE_WRONG_CODE: [422, 'Wrong code: the request has been cancelled.'],
});
