import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPinShaped, isTrivialPin } from './pin.ts';

describe('PIN rules', () => {
  it('a PIN is exactly four ASCII digits', () => {
    for (const pin of ['2468', '0000', '9071']) assert.equal(isPinShaped(pin), true, pin);
    for (const pin of ['246', '24680', '24a8', ' 2468', '2468\n', '', '٢٤٦٨']) assert.equal(isPinShaped(pin), false, JSON.stringify(pin));
  });

  it('repeated digits are trivial', () => {
    for (const pin of ['0000', '1111', '5555', '9999']) assert.equal(isTrivialPin(pin), true, pin);
  });

  it('straight runs up or down are trivial', () => {
    for (const pin of ['0123', '1234', '6789', '9876', '4321', '3210']) assert.equal(isTrivialPin(pin), true, pin);
  });

  it('the most common PINs are trivial', () => {
    for (const pin of ['1212', '1122', '1010', '2000', '1004', '6969', '2580', '0852', '1313', '2020', '2001', '1990', '1980']) assert.equal(isTrivialPin(pin), true, pin);
  });

  it('ordinary PINs are accepted, including near-misses of the patterns', () => {
    for (const pin of ['2468', '1357', '8642', '9071', '1235', '0001', '1123', '8901', '9012', '3817']) assert.equal(isTrivialPin(pin), false, pin);
  });

  it('refuses exactly the 37 pattern PINs out of 10,000, no more', () => {
    let refused = 0;
    for (let n = 0; n < 10_000; n += 1) if (isTrivialPin(String(n).padStart(4, '0'))) refused += 1;
    // 10 repeated + 7 up + 7 down + 13 common = 37.
    assert.equal(refused, 37);
  });
});
