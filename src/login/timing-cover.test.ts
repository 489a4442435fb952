import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TimingCover } from './timing-cover.ts';

describe('timing cover (who has the app does not show in the answer time)', () => {
  it('before 16 full answers were timed (a node just started), holds an answer to 2 to 3 times its own duration', () => {
    let draw = 0;
    const cover = new TimingCover({ random: () => draw });
    assert.equal(cover.holdFor(4), 4, 'twice its duration');
    draw = 0.5;
    assert.equal(cover.holdFor(4), 6);
    for (let i = 0; i < 15; i += 1) cover.record(100);
    assert.equal(cover.holdFor(4), 6, 'still cold with 15');
    cover.record(100);
    assert.equal(cover.holdFor(4), 96, 'from the 16th on, drawn from the timed answers');
  });

  it('holds an answer until a duration drawn from the full answers', () => {
    let draw = 0;
    const cover = new TimingCover({ random: () => draw });
    for (let i = 0; i < 4; i += 1) for (const ms of [10, 20, 30, 40]) cover.record(ms);
    draw = 0;
    assert.equal(cover.holdFor(4), 6);
    draw = 0.99;
    assert.equal(cover.holdFor(4), 36);
    // Already slower than the drawn duration: no extra wait.
    assert.equal(cover.holdFor(55), 0);
  });

  it('draws from the recent answers only (the last 64)', () => {
    const cover = new TimingCover({ random: Math.random });
    for (let i = 0; i < 64; i += 1) cover.record(5);
    for (let i = 0; i < 64; i += 1) cover.record(50);
    for (let i = 0; i < 200; i += 1) assert.equal(cover.holdFor(0), 50);
  });

  it('hold waits at least the drawn remainder', async () => {
    const cover = new TimingCover({ random: () => 0 });
    for (let i = 0; i < 16; i += 1) cover.record(40);
    const began = performance.now();
    await cover.hold(10);
    assert.ok(performance.now() - began >= 29, 'waited for the rest of the drawn duration');
    // Less than half a timer's resolution left: no wait (a timer would overshoot by more).
    const quick = performance.now();
    await cover.hold(39.6);
    assert.ok(performance.now() - quick < 1);
  });
});
