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
  // Activation by email + SMS codes (activation.ts).
  ACTIVATION_NOT_FOUND: [404, 'Unknown activation: start again.'],
  ACTIVATION_EXPIRED: [410, 'This activation has expired: start again.'],
  ACTIVATION_CODE_WRONG: [422, 'One of the codes is wrong.'],
  ACTIVATION_ATTEMPTS_EXHAUSTED: [403, 'Too many wrong codes: this activation is cancelled, start again.'],
  ACTIVATION_ALREADY_USED: [409, 'These codes have already been used.'],
  ACTIVATION_NOT_VERIFIED: [409, 'Enter the two codes before choosing a PIN.'],
  ACTIVATION_KEY_MISMATCH: [403, 'This activation was verified with another device key.'],
  ACTIVATION_RATE_LIMITED: [429, 'Too many activation requests: try again later.'],
  ACTIVATION_DAILY_LIMIT: [429, 'Too many activation codes sent for this identifier today: try again tomorrow, or ask the support for an activation code.'],
  REVOKE_LINK_INVALID: [410, 'This link is invalid, has expired or has already been used.'],
  PUSH_ENDPOINT_INVALID: [400, 'The push subscription endpoint is not acceptable.'],
});
