import { randomId, constantTimeEqual } from '../lib/crypto.ts';
import type { Clock } from '../lib/clock.ts';
import type { EventBus } from '../events/bus.ts';
import type { AuditLog } from '../audit/log.ts';
import { REPORTABLE_FOR_MS, drawCodes, isCodeShaped, type Challenge, type ChallengeMode, type ChallengeState, type Delivery, type DenyReason, type RequestContext } from './challenge.ts';
import type { ChallengeStore } from './store.ts';
import { challengeErrors } from './errors.ts';
import type { VigieError } from '../lib/errors.ts';

/** How long ended challenges stay in the store, from their creation: the wallet's history shows this long. */
export const HISTORY_KEEP_MS = 90 * 24 * 3600_000;

export interface StartChallenge {
  nationalId: string | null;
  interactionUid: string;
  clientId: string;
  clientName: string;
  mode: ChallengeMode;
  delivery: Delivery;
  context: RequestContext;
}

/** A challenge that has just left `pending`, as told to observers (exactly once per challenge). */
export interface SettledChallenge {
  challenge: Challenge;
  to: Exclude<ChallengeState, 'pending'>;
  reason: string | null;
  /** The device that settled it, if any. */
  deviceId: string | null;
}

export type SettledObserver = (event: SettledChallenge) => Promise<void>;
/** Told of a new challenge on the node that created it; starts its own work and returns at once. */
export type CreatedObserver = (challenge: Challenge) => void;
/** Hands an approved challenge over to what it approves; must not throw (see onApproved). */
export type ApprovalHandler = (approved: Challenge) => Promise<void>;

/** The challenge's life: creation, settlement by a device, expiry, single use by the login page. */
export class ChallengeService {
  readonly #store: ChallengeStore;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #audit: AuditLog;
  readonly #ttlMs: number;
  readonly #observers: SettledObserver[] = [];
  readonly #createdObservers = new Set<CreatedObserver>();
  readonly #approvalHandlers: ApprovalHandler[] = [];

  constructor(deps: { store: ChallengeStore; bus: EventBus; clock: Clock; audit: AuditLog; ttlSeconds: number }) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
    this.#ttlMs = deps.ttlSeconds * 1000;
  }

  /**
   * Registers a domain observer of settlements (the defences learn from them). It runs after the
   * winning compare-and-set, on the node that won it, so each settlement is observed once.
   */
  onSettled(observer: SettledObserver): void {
    this.#observers.push(observer);
  }

  /**
   * Registers an observer of new challenges (the Web Push delivery). Unlike the bus's
   * `challenge.created`, heard by every node, it runs once: on the node that created it.
   */
  onCreated(observer: CreatedObserver): () => void {
    this.#createdObservers.add(observer);
    return () => this.#createdObservers.delete(observer);
  }

  /**
   * Registers what an approval finishes (the login page's interaction). It runs on the node that
   * won the approval, before anyone hears of it: the page that learns "approved" can go straight
   * to the finished login. It handles its own failures (the page has a slower path left).
   */
  onApproved(handler: ApprovalHandler): void {
    this.#approvalHandlers.push(handler);
  }

  async start(input: StartChallenge): Promise<Challenge> {
    const now = this.#clock.now();
    const challenge: Challenge = {
      id: randomId(),
      ...input,
      ...drawCodes(input.mode),
      state: 'pending',
      reason: null,
      deviceId: null,
      createdAt: now,
      expiresAt: now + this.#ttlMs,
      settledAt: null,
      consumedAt: null,
    };
    await this.#store.create(challenge);
    await this.#audit.append({
      actor: `browser:${input.context.ip}`,
      event: 'challenge.created',
      subject: input.nationalId,
      details: {
        challengeId: challenge.id, clientId: input.clientId, mode: input.mode, delivery: input.delivery, place: input.context.place, browser: input.context.browser,
        ...(input.context.holds?.length ? { holds: input.context.holds } : {}),
        ...(input.context.risk?.length ? { risk: input.context.risk } : {}),
        ...(input.context.trusted !== undefined ? { trusted: input.context.trusted } : {}),
      },
    });
    await this.#bus.publish('challenge.created', { challengeId: challenge.id, nationalId: input.nationalId, delivery: input.delivery });
    for (const observer of this.#createdObservers) observer(challenge);
    return challenge;
  }

  /** Reads a challenge, settling it as expired first when its time is up. */
  async get(id: string): Promise<Challenge | undefined> {
    const challenge = await this.#store.get(id);
    if (challenge?.state === 'pending' && challenge.expiresAt <= this.#clock.now()) {
      await this.#expire(challenge);
      return this.#store.get(id);
    }
    return challenge;
  }

  async listPending(nationalId: string): Promise<Challenge[]> {
    return this.#store.listPending(nationalId, this.#clock.now());
  }

  /** Loads a challenge that a device of `nationalId` may act on, or explains why not. */
  async pendingFor(id: string, nationalId: string): Promise<Challenge> {
    const challenge = await this.#addressedTo(id, nationalId);
    if (challenge.state === 'expired') throw challengeErrors.CHALLENGE_EXPIRED();
    if (challenge.state !== 'pending') throw challengeErrors.CHALLENGE_NOT_PENDING();
    return challenge;
  }

  /** Loads a request that ended unanswered, which a device of `nationalId` may report as "not me". */
  async reportableFor(id: string, nationalId: string): Promise<Challenge> {
    const challenge = await this.#addressedTo(id, nationalId);
    const refusal = this.#reportRefusal(challenge);
    if (refusal) throw refusal;
    return challenge;
  }

  /**
   * Any request addressed to `nationalId`, whatever its state, and whether it may be reported: what
   * the app shows when a notification is opened after its request ended (an attacker's request is
   * often withdrawn at once, before the person could answer it).
   */
  async outcomeFor(id: string, nationalId: string): Promise<{ challenge: Challenge; reportable: boolean }> {
    const challenge = await this.#addressedTo(id, nationalId);
    return { challenge, reportable: this.#reportRefusal(challenge) === undefined };
  }

  async #addressedTo(id: string, nationalId: string): Promise<Challenge> {
    const challenge = await this.get(id);
    if (!challenge || challenge.nationalId !== nationalId) throw challengeErrors.CHALLENGE_NOT_FOUND();
    return challenge;
  }

  #reportRefusal(challenge: Challenge): VigieError | undefined {
    if (challenge.state === 'pending') return challengeErrors.CHALLENGE_STILL_PENDING();
    if (challenge.state !== 'cancelled' && challenge.state !== 'expired') return challengeErrors.CHALLENGE_NOT_REPORTABLE();
    // Its browser made a newer request, which ends in an answer or a report of its own (same
    // source). Were that one approved, this one was the person's own: reporting it would block them.
    if (challenge.reason === 'superseded') return challengeErrors.CHALLENGE_SUPERSEDED();
    if (this.#clock.now() - challenge.createdAt > REPORTABLE_FOR_MS) return challengeErrors.CHALLENGE_REPORT_TOO_LATE();
    return undefined;
  }

  /** The device's answer with the code the user picked or typed. A wrong code fails the challenge. */
  async approve(challenge: Challenge, deviceId: string, code: string): Promise<void> {
    const matches = isCodeShaped(challenge.mode, code) && constantTimeEqual(code, challenge.displayCode);
    if (!matches) {
      await this.#settle(challenge, 'failed', { actor: `device:${deviceId}`, reason: 'wrong_code', deviceId });
      throw challengeErrors.CHALLENGE_WRONG_CODE();
    }
    await this.#settle(challenge, 'approved', { actor: `device:${deviceId}`, deviceId });
  }

  async deny(challenge: Challenge, deviceId: string, reason: DenyReason): Promise<void> {
    await this.#settle(challenge, 'denied', { actor: `device:${deviceId}`, reason, deviceId });
  }

  async fail(challenge: Challenge, deviceId: string, reason: string): Promise<void> {
    await this.#settle(challenge, 'failed', { actor: `device:${deviceId}`, reason, deviceId });
  }

  async cancel(challenge: Challenge, actor: string): Promise<void> {
    await this.#settle(challenge, 'cancelled', { actor, reason: 'cancelled' });
  }

  /** Cancels the pending challenges one browser has open for one professional (at most one pending per browser). */
  cancelPendingFrom(nationalId: string, browserId: string, actor: string): Promise<number> {
    return this.#cancelPending(nationalId, (c) => c.context.browserId === browserId, actor, 'superseded');
  }

  /** Cancels a professional's pending challenges asked by browsers trusted then: the professional has just revoked that trust. */
  cancelPendingTrusted(nationalId: string, actor: string): Promise<number> {
    return this.#cancelPending(nationalId, (c) => c.context.trusted === true, actor, 'cancelled');
  }

  async #cancelPending(nationalId: string, which: (c: Challenge) => boolean, actor: string, reason: string): Promise<number> {
    let cancelled = 0;
    for (const c of await this.listPending(nationalId)) {
      if (!which(c)) continue;
      try {
        await this.#settle(c, 'cancelled', { actor, reason });
        cancelled += 1;
      } catch {
        // Settled meanwhile by someone else: nothing left to cancel.
      }
    }
    return cancelled;
  }

  /** Spends an approved challenge to finish its login; true for exactly one caller. */
  async consume(id: string): Promise<boolean> {
    return this.#store.consume(id, this.#clock.now());
  }

  /** Forgets ended challenges created longer ago than the history keeps (HISTORY_KEEP_MS); the audit log keeps their trail. */
  async purge(): Promise<number> {
    return this.#store.purge(this.#clock.now() - HISTORY_KEEP_MS);
  }

  /** Expires every overdue challenge and tells the pages waiting on them. */
  async expireDue(): Promise<number> {
    const expired = await this.#store.expireDue(this.#clock.now());
    for (const c of expired) {
      await this.#announceExpiry(c);
      if (this.#observers.length) {
        const full = await this.#store.get(c.id);
        if (full) await this.#notify({ challenge: full, to: 'expired', reason: null, deviceId: null });
      }
    }
    return expired.length;
  }

  async #expire(challenge: Challenge): Promise<void> {
    if (await this.#store.settle(challenge.id, 'expired', this.#clock.now())) {
      await this.#announceExpiry(challenge);
      await this.#notify({ challenge, to: 'expired', reason: null, deviceId: null });
    }
  }

  async #announceExpiry(c: Pick<Challenge, 'id' | 'nationalId'>): Promise<void> {
    await this.#audit.append({ actor: 'system', event: 'challenge.expired', subject: c.nationalId, details: { challengeId: c.id } });
    await this.#bus.publish('challenge.settled', { challengeId: c.id, state: 'expired', nationalId: c.nationalId });
  }

  async #settle(challenge: Challenge, to: Exclude<ChallengeState, 'pending'>, how: { actor: string; reason?: string; deviceId?: string }): Promise<void> {
    const won = await this.#store.settle(challenge.id, to, this.#clock.now(), { reason: how.reason ?? null, deviceId: how.deviceId ?? null });
    if (!won) {
      const current = await this.get(challenge.id);
      throw current?.state === 'expired' ? challengeErrors.CHALLENGE_EXPIRED() : challengeErrors.CHALLENGE_NOT_PENDING();
    }
    await this.#audit.append({
      actor: how.actor,
      event: `challenge.${to}`,
      subject: challenge.nationalId,
      details: { challengeId: challenge.id, clientId: challenge.clientId, ...(how.reason ? { reason: how.reason } : {}) },
    });
    if (to === 'approved') {
      const approved: Challenge = { ...challenge, state: 'approved', deviceId: how.deviceId ?? null, settledAt: this.#clock.now() };
      for (const handler of this.#approvalHandlers) await handler(approved);
    }
    await this.#bus.publish('challenge.settled', { challengeId: challenge.id, state: to, nationalId: challenge.nationalId, reason: how.reason ?? null });
    await this.#notify({ challenge, to, reason: how.reason ?? null, deviceId: how.deviceId ?? null });
  }

  async #notify(event: SettledChallenge): Promise<void> {
    for (const observer of this.#observers) await observer(event);
  }
}
