// The e-CPS app shows every error the device protocol can answer in French (app/src/messages.ts):
// the API answers in English, and a professional must never see « La demande n’a pas abouti. »
// for something the server named.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../app/src/api.ts';
import { describe as frenchMessage } from '../app/src/messages.ts';
import { deviceErrors } from '../src/device/errors.ts';
import { challengeErrors } from '../src/challenge/errors.ts';
import { defenceErrors } from '../src/defence/errors.ts';
import { commonErrors } from '../src/lib/errors.ts';

it('every error code of the device protocol has a French message in the app', () => {
  const answered = { ...deviceErrors, ...challengeErrors, CHALLENGE_ALREADY_REPORTED: defenceErrors.CHALLENGE_ALREADY_REPORTED, VALIDATION_FAILED: commonErrors.VALIDATION_FAILED, RATE_LIMITED: commonErrors.RATE_LIMITED };
  const fallback = frenchMessage(new ApiError('SOMETHING_NEW', 400, 'Something new.'));
  const missing = Object.entries(answered).filter(([code, error]) => frenchMessage(new ApiError(code, error().status, error().message)) === fallback).map(([code]) => code);
  assert.deepEqual(missing, []);
});
