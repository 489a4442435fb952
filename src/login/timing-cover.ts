import { setTimeout as sleep } from 'node:timers/promises';

const SAMPLES = 64;
/** Below this many timed full answers, a draw from them says little: the cold-start rule applies. */
const MIN_SAMPLES = 16;
/**
 * Cold start: a full answer took 2.4 times as long as one without a device, on SQLite
 * (1.2 vs 0.5 ms) as on PostgreSQL + Redis (5.4 vs 2.2 ms; medians, 29 Nov). A ratio of the answer's
 * own duration follows the machine and its load, where a fixed duration would not.
 */
const COLD_START_FACTOR = { min: 2, max: 3 };

/**
 * Keeps the identifier form's answer time from telling who has the app. A login for a
 * professional with an activated device does the defences' bookkeeping and the delivery (several
 * reads and writes: on PostgreSQL and Redis, several round trips); one for an identifier nobody
 * can approve does not, and would answer measurably faster. So the durations of the first kind
 * are kept (the last 64), and an answer of the second kind is held until a duration drawn from
 * them: both then take the same time, as seen from outside. Until 16 full answers were timed (a
 * node that just started: hours, at night), an answer of the second kind is held to 2 to 3 times
 * its own duration instead of not at all.
 *
 * Real elapsed time (not the injected clock): this is about what a stopwatch sees.
 */
export class TimingCover {
  readonly #samples: number[] = [];
  #next = 0;
  readonly #random: () => number;

  constructor(options: { random?: () => number } = {}) {
    this.#random = options.random ?? Math.random;
  }

  /** Starts timing one answer. */
  start(): { elapsedMs(): number } {
    const began = performance.now();
    return { elapsedMs: () => performance.now() - began };
  }

  /** An answer that did the full work took `ms`. */
  record(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % SAMPLES;
  }

  /** How much longer an answer that did not do the full work, after `elapsedMs`, must wait. */
  holdFor(elapsedMs: number): number {
    if (this.#samples.length < MIN_SAMPLES) return elapsedMs * (COLD_START_FACTOR.min - 1 + this.#random() * (COLD_START_FACTOR.max - COLD_START_FACTOR.min));
    const target = this.#samples[Math.floor(this.#random() * this.#samples.length)]!;
    return Math.max(0, target - elapsedMs);
  }

  /** Waits out `holdFor(elapsedMs)`, to the nearest millisecond (what timers resolve). */
  async hold(elapsedMs: number): Promise<void> {
    const ms = Math.round(this.holdFor(elapsedMs));
    if (ms >= 1) await sleep(ms);
  }
}
