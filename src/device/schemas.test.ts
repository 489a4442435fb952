import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { activationCompleteBody } from './schemas.ts';

const body = (name: string) => ({ publicKey: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'B'.repeat(43) }, pin: '2468', name });

describe('device names (shown in the wallet, quoted in the new-device notice email)', () => {
  it('accepts what people call their phones', () => {
    for (const name of ['iPhone de Camille', 'Pixel 8 – cabinet', 'Téléphone pro n°2']) {
      assert.equal(activationCompleteBody.parse(body(name)).name, name);
    }
  });

  it('refuses line breaks, control and direction-changing characters', () => {
    for (const name of ['iPhone ».\n\nC’est vous ? Rien à faire.', 'a\rb', 'tab\there', 'x\u202eenohp', 'zero\u200bwidth', 'line\u2028break']) {
      const parsed = activationCompleteBody.safeParse(body(name));
      assert.equal(parsed.success, false, JSON.stringify(name));
      assert.match(JSON.stringify(parsed.error?.issues), /printable characters only/);
    }
  });
});
