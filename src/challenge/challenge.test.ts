import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CHALLENGE_STATES, TRANSITIONS, canTransition, drawCodes, isCodeShaped, type ChallengeState } from './challenge.ts';

const TERMINAL = CHALLENGE_STATES.filter((s) => s !== 'pending');

describe('challenge transitions', () => {
  it('a pending challenge may reach every terminal state, and not itself', () => {
    for (const to of TERMINAL) assert.equal(canTransition('pending', to), true, `pending → ${to}`);
    assert.equal(canTransition('pending', 'pending'), false);
    assert.deepEqual([...TRANSITIONS.pending].sort(), [...TERMINAL].sort());
  });

  it('nothing leaves a terminal state', () => {
    for (const from of TERMINAL) {
      assert.deepEqual(TRANSITIONS[from], [], `${from} has no way out`);
      for (const to of CHALLENGE_STATES) assert.equal(canTransition(from, to as ChallengeState), false, `${from} → ${to}`);
    }
  });

  it('the table covers every state', () => {
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...CHALLENGE_STATES].sort());
  });
});

describe('drawCodes', () => {
  it('pick: three distinct 2-digit candidates including the display code', () => {
    for (let i = 0; i < 200; i += 1) {
      const { displayCode, candidates } = drawCodes('pick');
      assert.match(displayCode, /^\d{2}$/);
      assert.equal(candidates.length, 3);
      assert.equal(new Set(candidates).size, 3);
      for (const c of candidates) assert.match(c, /^\d{2}$/);
      assert.ok(candidates.includes(displayCode));
    }
  });

  it('typed: a 6-digit code and no candidates', () => {
    for (let i = 0; i < 50; i += 1) {
      const { displayCode, candidates } = drawCodes('typed');
      assert.match(displayCode, /^\d{6}$/);
      assert.deepEqual(candidates, []);
    }
  });

  it('the display code is not always at the same position and every digit position varies', () => {
    const positions = [0, 0, 0];
    const pickDigits = [new Set<string>(), new Set<string>()];
    const typedDigits = Array.from({ length: 6 }, () => new Set<string>());
    for (let i = 0; i < 3000; i += 1) {
      const pick = drawCodes('pick');
      positions[pick.candidates.indexOf(pick.displayCode)]! += 1;
      [...pick.displayCode].forEach((d, k) => pickDigits[k]!.add(d));
      [...drawCodes('typed').displayCode].forEach((d, k) => typedDigits[k]!.add(d));
    }
    // Uniform would be 1000 each; 700 is far outside any plausible random deviation.
    for (const count of positions) assert.ok(count > 700, `display code positions ${positions.join('/')}`);
    for (const seen of [...pickDigits, ...typedDigits]) assert.equal(seen.size, 10, 'each digit position takes all ten values');
  });
});

describe('isCodeShaped', () => {
  it('accepts exactly 2 digits in pick mode and 6 in typed mode', () => {
    assert.equal(isCodeShaped('pick', '07'), true);
    assert.equal(isCodeShaped('typed', '012345'), true);
    for (const bad of ['7', '007', '0a', ' 07', '07\n', '', '٠٧']) assert.equal(isCodeShaped('pick', bad), false, JSON.stringify(bad));
    for (const bad of ['12345', '1234567', '12345a', '12 345', '07']) assert.equal(isCodeShaped('typed', bad), false, JSON.stringify(bad));
  });
});
