import { defineErrors } from '../lib/errors.ts';

export const deviceErrors = defineErrors({
  SIGNATURE_MISSING: [401, 'The request is not signed.'],
  SIGNATURE_INVALID: [401, 'The request signature is invalid.'],
  SIGNATURE_STALE: [401, 'The request timestamp is outside the accepted window.'],
  SIGNATURE_REPLAYED: [401, 'This request has already been received.'],
  DEVICE_UNKNOWN: [401, 'Unknown device.'],
  DEVICE_LOCKED: [403, 'This device is locked after too many wrong PINs; activate it again.'],
  DEVICE_REVOKED: [403, 'This device has been revoked; activate it again.'],
  PIN_WRONG: [403, 'Wrong PIN.'],
  PIN_TOO_WEAK: [422, 'This PIN is too easy to guess.'],
  ACTIVATION_INVALID: [403, 'The activation code is invalid or has expired.'],
  PUBLIC_KEY_INVALID: [400, 'The public key must be an ECDSA P-256 JWK.'],
});
