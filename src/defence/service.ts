import type { Clock } from '../lib/clock.ts';
import { randomId } from '../lib/crypto.ts';
import type { Metrics, Counter } from '../lib/metrics.ts';
import type { AuditLog } from '../audit/log.ts';
import type { Challenge, ChallengeMode, Delivery } from '../challenge/challenge.ts';
import type { SettledChallenge } from '../challenge/service.ts';
import { describePlace, noGeo, type GeoLocator } from './geo.ts';
import { canonicalIp, prefixOf, SITE_FACTOR, sitePrefixOf, type Source } from './source.ts';
import type { DefencePolicy } from './policy.ts';
import { slidingCount, windowStartOf, type Block, type DefenceEvent, type DefenceStore, type JournalOverview, type NotificationSettings, type ProfessionalState } from './store.ts';
import { defenceErrors } from './errors.ts';
import { isIP } from 'node:net';
import { commonErrors } from '../lib/errors.ts';

const MINUTE = 60_000;
const reportKey = (challengeId: string) => `report:${challengeId}`;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const BREAKER_HOLD_MS = 5 * MINUTE;
const JOURNAL_KEEP_MS = 90 * DAY;
/** The prefix may target this many times more identifiers than one address before it is held. */
const PREFIX_TARGETS_FACTOR = 3;

/** Why a request from an untrusted browser (or any browser, for the user's settings) is created silent. */
export type HoldReason =
  | 'notifications_off' | 'quiet_period' | 'blocked' | 'reported_source' | 'many_identifiers' | 'circuit_breaker'
  | 'under_attack' | 'backoff' | 'new_country' | 'budget' | 'trusted_rate';
/** Risk signals noticed on a request; on a trusted browser, a new place switches to the typed code. */
export type RiskSignal = 'new_browser' | 'new_country' | 'new_region' | 'service_policy' | 'wrong_pick';
export type RefuseReason = 'source_blocked' | 'ip_rate' | 'prefix_rate';

export type Decision =
  | { kind: 'refuse'; reason: RefuseReason; retryAfterSeconds: number }
  | { kind: 'challenge'; mode: ChallengeMode; delivery: Delivery; trusted: boolean; holds: HoldReason[]; risk: RiskSignal[] };

export interface LoginAttempt {
  /** The national identifier as typed (normalised), known or not. */
  nationalId: string;
  /** In the directory. */
  known: boolean;
  /** Has an active device to notify. */
  hasDevice: boolean;
  clientId: string;
  source: Source;
  /**
   * When the browser's valid trusted-browser cookie for this professional was issued; null without
   * one. It counts only if issued after the professional's last revocation (forgetTrustedBrowsers).
   */
  trustedSince: number | null;
}

export interface DefenceStatus extends JournalOverview {
  since: number;
  now: number;
  held: ProfessionalState[];
  /** In force at `now`. */
  blocks: Block[];
}

export interface AttackSummary {
  since: number;
  days: number;
  /** Requests from unknown browsers that were not notified (silent) or refused. */
  blocked: number;
  /** Requests from unknown browsers that were notified. */
  notified: number;
  /** "Not me" answers and wrong codes. */
  reports: number;
  places: Array<{ place: string | null; count: number; lastAt: number }>;
  lastAt: number | null;
  message: string;
}

export interface DefenceServiceDeps {
  store: DefenceStore;
  policy: DefencePolicy;
  clock: Clock;
  audit: AuditLog;
  metrics: Metrics;
  geo?: GeoLocator;
}

/**
 * The push-bombing defences: one decision per login request (refuse, or create a challenge
 * notified or silent, with number matching or a typed code) and the lessons drawn from how each
 * challenge ended (back-off, "not me" blocks, wrong codes, reports from several professionals).
 * The policy in short (docs/defences.md has the full table):
 *  1. a browser that completed a login for this professional (trusted) is never refused or held
 *     by what attackers cause; it gets number matching unless its place is new;
 *  2. any other browser gets a typed code; its source is refused past per-address and per-prefix
 *     rates or when globally blocked; its request is created silent (visible in the app, no push)
 *     when blocked for this professional, reported, spraying identifiers, during back-off or
 *     attack mode, from a new country, past the daily budget, or when the global breaker is open;
 *  3. the professional's own settings (notifications off, quiet period) silence every push.
 * Refusals depend on the source only, never on the identifier, so the login page does not reveal
 * who exists; per-professional rules only choose between push and silent, which looks the same.
 */
export class DefenceService {
  readonly #store: DefenceStore;
  readonly #policy: DefencePolicy;
  readonly #clock: Clock;
  readonly #audit: AuditLog;
  readonly #trustObservers: Array<(nationalId: string, actor: string) => Promise<unknown>> = [];
  readonly #geo: GeoLocator;
  readonly #decisions: Counter;
  readonly #signals: Counter;
  readonly #blocks: Counter;

  constructor(deps: DefenceServiceDeps) {
    this.#store = deps.store;
    this.#policy = deps.policy;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
    this.#geo = deps.geo ?? noGeo;
    this.#decisions = deps.metrics.counter('vigie_login_decisions_total', 'Login requests by decision (push, silent, none, refused) and main reason.');
    this.#signals = deps.metrics.counter('vigie_defence_signals_total', 'Outcomes the defences learn from (refused, expired, failed, not_me, wrong_code, approved).');
    this.#blocks = deps.metrics.counter('vigie_defence_blocks_total', 'Blocks created, by scope and reason.');
  }

  get policy(): DefencePolicy {
    return this.#policy;
  }

  /**
   * An endpoint's rate over an IPv6 site (activation): its /48 may send SITE_FACTOR times what one
   * source (a /56) may, however many of its 256 /56 prefixes it rotates through. Counts one request;
   * always true for IPv4, whose /24 is not one holder's.
   */
  async siteWithinRate(purpose: string, ip: string, perSourceLimit: number, windowMs: number): Promise<boolean> {
    const site = sitePrefixOf(ip);
    return site ? this.withinRate(`${purpose}-site:${site}`, SITE_FACTOR * perSourceLimit, windowMs) : true;
  }

  /** Counts one request against `key`; false past `limit` within the sliding window (the rates of other endpoints). */
  async withinRate(key: string, limit: number, windowMs: number): Promise<boolean> {
    const now = this.#clock.now();
    return slidingCount(await this.#store.hit(key, windowMs, now), windowMs, now) <= limit;
  }

  /** The source of a request as the defences see it. */
  source(ip: string, browserId: string): Source {
    const canonical = canonicalIp(ip);
    return { ip: canonical, prefix: prefixOf(canonical), browserId, geo: this.#geo.locate(canonical) };
  }

  async decide(attempt: LoginAttempt): Promise<Decision> {
    const p = this.#policy;
    const { source } = attempt;
    const known = attempt.known;
    const serviceTyped = p.typedClients.has(attempt.clientId);
    if (!p.enabled) {
      const mode = p.codeMode === 'typed' || serviceTyped ? 'typed' : 'pick';
      return { kind: 'challenge', mode, delivery: attempt.hasDevice && known ? 'push' : 'none', trusted: await this.#stillTrusted(attempt), holds: [], risk: [] };
    }
    const now = this.#clock.now();
    // IPv6: a /48 is one site's, and 256 /56 prefixes; rotating them must not escape its rate or its block.
    const site = sitePrefixOf(source.ip) ?? null;
    const [blocks, trusted] = await Promise.all([
      this.#store.matchingBlocks({ nationalId: known ? attempt.nationalId : null, prefix: source.prefix, site, browserId: source.browserId }, now),
      this.#stillTrusted(attempt),
    ]);

    // 1. The source (untrusted browsers only): refused past its rates or when globally blocked.
    let targets = { ip: 0, prefix: 0 };
    if (!trusted) {
      const global = blocks.find((b) => b.scope === 'global');
      if (global) return this.#refuse('source_blocked', global.expiresAt - now, attempt, now);
      const ipHits = slidingCount(await this.#store.hit(`ip:${source.ip}`, MINUTE, now), MINUTE, now);
      if (ipHits > p.perIpPerMinute) return this.#refuse('ip_rate', MINUTE, attempt, now);
      const prefixHits = slidingCount(await this.#store.hit(`prefix:${source.prefix}`, MINUTE, now), MINUTE, now);
      if (prefixHits > p.perPrefixPerMinute) return this.#refuse('prefix_rate', MINUTE, attempt, now);
      if (site) {
        const siteHits = slidingCount(await this.#store.hit(`site:${site}`, MINUTE, now), MINUTE, now);
        if (siteHits > SITE_FACTOR * p.perPrefixPerMinute) return this.#refuse('prefix_rate', MINUTE, attempt, now);
      }
      const [ip, prefix] = await Promise.all([
        this.#store.addDistinct(`targets:ip:${source.ip}`, attempt.nationalId, HOUR, now),
        this.#store.addDistinct(`targets:prefix:${source.prefix}`, attempt.nationalId, HOUR, now),
      ]);
      targets = { ip, prefix };
    }

    // 2. Number matching or typed code.
    const risk: RiskSignal[] = [];
    if (!trusted) risk.push('new_browser');
    if (serviceTyped) risk.push('service_policy');
    if (known && source.geo) {
      const places = await this.#store.knownPlaces(attempt.nationalId);
      if (places.length > 0) {
        if (!places.includes(countryKey(source.geo.country))) risk.push('new_country');
        else if (source.geo.region && !places.includes(regionKey(source.geo.country, source.geo.region))) risk.push('new_region');
      }
    }
    // A wrong pick from this very browser lately: a blind guess wins one time in three, a typed
    // code one in a million, and a trusted browser has no other brake (a shared workstation).
    if (trusted && known && (await this.#store.flag(wrongPickKey(attempt.nationalId, source.browserId), now)) !== undefined) risk.push('wrong_pick');
    const mode: ChallengeMode = p.codeMode === 'typed' || serviceTyped || (p.codeMode === 'adaptive' && (!trusted || risk.includes('new_country') || risk.includes('new_region') || risk.includes('wrong_pick'))) ? 'typed' : 'pick';

    // 3. Push or silent.
    if (!known || !attempt.hasDevice) return this.#challenge({ mode, delivery: 'none', trusted, holds: [], risk });
    // The reads below are independent of each other: they go at once (on PostgreSQL and Redis,
    // each is a round trip).
    const holds: HoldReason[] = [];
    const holdForSettings = (settings: NotificationSettings) => {
      if (!settings.pushEnabled) holds.push('notifications_off');
      if (settings.quietUntil !== null && settings.quietUntil > now) holds.push('quiet_period');
    };
    if (trusted) {
      const [settings, own] = await Promise.all([this.#store.getSettings(attempt.nationalId), this.#store.hit(`trusted:${attempt.nationalId}:${source.browserId}`, HOUR, now)]);
      holdForSettings(settings);
      // Only what this very browser caused holds it: a "not me" against its browser id (a stolen cookie), or its own rate.
      if (blocks.some((b) => b.scope === 'professional' && b.browserId === source.browserId)) holds.push('blocked');
      if (slidingCount(own, HOUR, now) > p.trustedPushesPerHour) holds.push('trusted_rate');
      return this.#challenge({ mode, delivery: holds.length ? 'silent' : 'push', trusted, holds, risk });
    }
    const [settings, signals, breaker, state] = await Promise.all([
      this.#store.getSettings(attempt.nationalId),
      // A source stays suspect as long as the block its signal caused: 30 days after a "not me",
      // a day after a wrong code (often a slip, and a shared network's whole prefix is at stake).
      this.#store.countSignals({ prefix: source.prefix, browserId: source.browserId, since: { not_me: now - p.notMeBlockDays * DAY, wrong_code: now - p.wrongCodeBlockHours * HOUR } }),
      this.#store.flag('breaker', now),
      this.#store.getState(attempt.nationalId),
    ]);
    holdForSettings(settings);
    if (blocks.some((b) => b.scope === 'professional')) holds.push('blocked');
    if (signals > 0) holds.push('reported_source');
    if (targets.ip > p.identifiersPerSourcePerHour || targets.prefix > PREFIX_TARGETS_FACTOR * p.identifiersPerSourcePerHour) holds.push('many_identifiers');
    if (breaker !== undefined) holds.push('circuit_breaker');
    if (risk.includes('new_country')) holds.push('new_country');
    if (state.underAttackUntil > now) holds.push('under_attack');
    if (state.backoffUntil > now) holds.push('backoff');
    if (holds.length === 0 && !(await this.#takeBudget(state, now))) holds.push('budget');
    if (holds.length === 0) await this.#countTowardsBreaker(now);
    return this.#challenge({ mode, delivery: holds.length ? 'silent' : 'push', trusted, holds, risk });
  }

  /** Whether the attempt's trusted-browser cookie was issued after the professional last revoked them all. */
  async #stillTrusted(attempt: LoginAttempt): Promise<boolean> {
    if (attempt.trustedSince === null || !attempt.known) return false;
    return attempt.trustedSince > (await this.#store.getState(attempt.nationalId)).trustResetAt;
  }

  /**
   * Revokes every trusted-browser cookie of this professional at once (the cookies are stateless:
   * those issued until now stop counting). A stolen or shared workstation then gets what any
   * unknown browser gets: typed codes, rates, holds during an attack. Browsers become trusted
   * again by completing a login.
   */
  async forgetTrustedBrowsers(nationalId: string, actor: string): Promise<void> {
    const now = this.#clock.now();
    // Never backwards, whichever node's clock revoked last.
    await this.#updateState(nationalId, now, (s) => ({ ...s, trustResetAt: Math.max(s.trustResetAt, now) }));
    await this.#audit.append({ actor, event: 'defence.trusted_browsers_forgotten', subject: nationalId, details: {} });
    for (const observer of this.#trustObservers) await observer(nationalId, actor);
  }

  /** Registers what else a revocation of trusted browsers ends (their pending requests: server.ts). */
  onTrustedBrowsersForgotten(observer: (nationalId: string, actor: string) => Promise<unknown>): void {
    this.#trustObservers.push(observer);
  }

  /** When the professional last revoked their trusted browsers; null if never. */
  async trustedBrowsersForgottenAt(nationalId: string): Promise<number | null> {
    const { trustResetAt } = await this.#store.getState(nationalId);
    return trustResetAt > 0 ? trustResetAt : null;
  }

  /** Journals a created challenge (the attack summary is made of this journal). */
  async recorded(challenge: Challenge, decision: Extract<Decision, { kind: 'challenge' }>, source: Source): Promise<void> {
    if (!this.#policy.enabled || !challenge.nationalId || challenge.delivery === 'none') return;
    if (decision.trusted && challenge.delivery === 'push') return;
    await this.#store.addEvent(this.#event(challenge.nationalId, challenge.delivery === 'push' ? 'push' : 'silent', decision.holds, decision.trusted, source, challenge.id));
  }

  /**
   * What a settled challenge teaches: an approval clears the back-off and makes its place known;
   * a pushed request refused, expired or failed doubles the back-off; "not me" and a wrong code
   * block the source for this professional, put them in attack mode and count as reports.
   */
  async learn(event: SettledChallenge): Promise<void> {
    const { challenge, to, reason } = event;
    if (!this.#policy.enabled || !challenge.nationalId) return;
    const p = this.#policy;
    const now = this.#clock.now();
    const nationalId = challenge.nationalId;
    const ctx = challenge.context;
    const trusted = ctx.trusted === true;
    const pushed = challenge.delivery === 'push';
    this.#signals.inc({ outcome: reason === 'not_me' || reason === 'wrong_code' ? reason : to });
    // Withdrawn (or superseded by its own next request) by an untrusted browser once its push went
    // out: an unanswered push, as if it had expired. Otherwise withdrawing, or submitting again and
    // letting the last one end silent, would be a way round the back-off; a professional who
    // submitted twice clears it by approving the second.
    if (to === 'cancelled' && (!pushed || trusted)) return;
    if (to === 'approved') {
      await this.#updateState(nationalId, now, (s) => ({ ...s, strikes: 0, backoffUntil: 0 }));
      if (ctx.geo) {
        await this.#store.rememberPlace(nationalId, countryKey(ctx.geo.country), now);
        if (ctx.geo.region) await this.#store.rememberPlace(nationalId, regionKey(ctx.geo.country, ctx.geo.region), now);
      }
      return;
    }
    // A wrong pick from the user's own trusted browser is most likely a slip, not an attack: no
    // block, but that browser gets typed codes for a day (see decide), so slips cannot be farmed.
    const fraud: 'not_me' | 'wrong_code' | null = reason === 'not_me' ? 'not_me' : reason === 'wrong_code' && !trusted ? 'wrong_code' : null;
    if (reason === 'wrong_code' && trusted && ctx.browserId) await this.#store.setFlag(wrongPickKey(nationalId, ctx.browserId), now + DAY);
    // A silent request that ends unanswered teaches nothing: the professional never saw it.
    if (!pushed && !fraud) return;
    const state = await this.#updateState(nationalId, now, (s) => {
      const next = { ...s };
      if (pushed) {
        next.strikes = s.strikes + 1;
        next.backoffUntil = now + Math.min(p.backoffBaseSeconds * 2 ** (next.strikes - 1), p.backoffMaxSeconds) * 1000;
      }
      if (fraud) next.underAttackUntil = Math.max(s.underAttackUntil, now + p.underAttackHours * HOUR);
      return next;
    });
    if (pushed) {
      await this.#audit.append({ actor: 'system', event: 'defence.backoff', subject: nationalId, details: { challengeId: challenge.id, outcome: reason ?? to, strikes: state.strikes, until: state.backoffUntil } });
    }
    if (fraud) await this.#blockReportedSource(challenge, fraud, event.deviceId, state.underAttackUntil, now);
  }

  /**
   * "Not me" on a request that ended before the professional could answer it (withdrawn by its
   * browser, or expired): what a "not me" answer does, once per request. Without it, an
   * attacker who withdraws each push at once would never be reported. The back-off was already
   * counted when the request ended (learn); this puts the professional in attack mode and blocks
   * the source. The caller checks that the request may be reported (ChallengeService.reportableFor).
   */
  async reported(challenge: Challenge, deviceId: string): Promise<void> {
    const now = this.#clock.now();
    // Atomic on every backend; two reports are never more than REPORTABLE_FOR_MS apart, so they
    // fall in the same window or in adjacent ones.
    const hits = await this.#store.hit(reportKey(challenge.id), HOUR, now);
    if (hits.current + hits.previous > 1) throw defenceErrors.CHALLENGE_ALREADY_REPORTED();
    if (!this.#policy.enabled || !challenge.nationalId) return;
    this.#signals.inc({ outcome: 'not_me' });
    const state = await this.#updateState(challenge.nationalId, now, (s) => ({ ...s, underAttackUntil: Math.max(s.underAttackUntil, now + this.#policy.underAttackHours * HOUR) }));
    await this.#blockReportedSource(challenge, 'not_me', deviceId, state.underAttackUntil, now);
  }

  /** Whether this request was already reported from the app (reported). */
  async wasReported(challengeId: string): Promise<boolean> {
    const seen = await this.#store.peek(reportKey(challengeId), HOUR, this.#clock.now());
    return seen.current + seen.previous > 0;
  }

  /** Journals the report and blocks its source for this professional (and everyone, past enough reporters). */
  async #blockReportedSource(challenge: Challenge, fraud: 'not_me' | 'wrong_code', deviceId: string | null | undefined, attackModeUntil: number, now: number): Promise<void> {
    const ctx = challenge.context;
    const nationalId = challenge.nationalId;
    if (!nationalId || !ctx.prefix) return;
    const p = this.#policy;
    const trusted = ctx.trusted === true;
    const source: Source = { ip: ctx.ip, prefix: ctx.prefix, browserId: ctx.browserId ?? '', geo: ctx.geo ?? null };
    const place = describePlace(source.geo);
    await this.#store.addSignal({ id: randomId(), at: now, kind: fraud, nationalId, ip: source.ip, prefix: source.prefix, site: sitePrefixOf(source.ip) ?? null, browserId: ctx.browserId ?? null, trusted });
    await this.#store.addEvent(this.#event(nationalId, fraud, [], trusted, source, challenge.id));
    const block: Block = {
      id: randomId(12),
      scope: 'professional',
      nationalId,
      // A trusted browser reported as "not me" is blocked by its id alone: its network may be the user's own.
      prefix: trusted ? null : source.prefix,
      browserId: ctx.browserId ?? null,
      reason: fraud,
      place,
      createdAt: now,
      expiresAt: now + (fraud === 'not_me' ? p.notMeBlockDays * DAY : p.wrongCodeBlockHours * HOUR),
      liftedAt: null,
      liftedBy: null,
    };
    await this.#store.addBlock(block);
    this.#blocks.inc({ scope: 'professional', reason: fraud });
    await this.#audit.append({
      actor: deviceId ? `device:${deviceId}` : 'system',
      event: fraud === 'not_me' ? 'defence.not_me' : 'defence.wrong_code',
      subject: nationalId,
      details: { challengeId: challenge.id, ...(challenge.state === 'pending' ? {} : { requestState: challenge.state }), blockId: block.id, ip: source.ip, prefix: block.prefix, browserId: block.browserId, place, until: block.expiresAt, attackModeUntil },
    });
    if (fraud === 'not_me' && !trusted) await this.#maybeBlockGlobally(source, place, now);
  }

  /**
   * Blocks the prefix for everyone past `VIGIE_GLOBAL_BLOCK_REPORTS` distinct reporters; on IPv6,
   * the whole /48 past SITE_FACTOR times as many over its /56 prefixes (the factor of the rates:
   * a site rotating its prefixes is caught, a provider's /48 of many customers is not blocked
   * for a few of them).
   */
  async #maybeBlockGlobally(source: Source, place: string | null, now: number): Promise<void> {
    const p = this.#policy;
    const since = now - p.notMeBlockDays * DAY;
    const site = sitePrefixOf(source.ip) ?? null;
    const [ofPrefix, ofSite] = await Promise.all([this.#store.distinctReporters({ prefix: source.prefix }, since), site ? this.#store.distinctReporters({ site }, since) : 0]);
    const target = ofPrefix >= p.globalBlockReports ? source.prefix : site && ofSite >= SITE_FACTOR * p.globalBlockReports ? site : null;
    if (!target) return;
    const reporters = target === site ? ofSite : ofPrefix;
    const active = await this.#store.matchingBlocks({ nationalId: null, prefix: source.prefix, site, browserId: null }, now);
    if (active.some((b) => b.scope === 'global' && (b.prefix === target || b.prefix === site))) return;
    const block: Block = {
      id: randomId(12), scope: 'global', nationalId: null, prefix: target, browserId: null, reason: 'reports', place,
      createdAt: now, expiresAt: now + p.globalBlockHours * HOUR, liftedAt: null, liftedBy: null,
    };
    await this.#store.addBlock(block);
    this.#blocks.inc({ scope: 'global', reason: 'reports' });
    await this.#audit.append({ actor: 'system', event: 'defence.global_block', subject: null, details: { blockId: block.id, prefix: block.prefix, place, reporters, until: block.expiresAt } });
  }

  // ------------------------------------------------------------------ settings (device protocol)

  async settings(nationalId: string): Promise<NotificationSettings> {
    return this.#store.getSettings(nationalId);
  }

  async updateSettings(nationalId: string, change: { pushEnabled?: boolean; quietUntil?: number | null }, actor: string): Promise<NotificationSettings> {
    const now = this.#clock.now();
    if (change.quietUntil !== undefined && change.quietUntil !== null && (change.quietUntil <= now || change.quietUntil > now + 366 * DAY)) throw defenceErrors.QUIET_PERIOD_INVALID();
    const current = await this.#store.getSettings(nationalId);
    const next = { pushEnabled: change.pushEnabled ?? current.pushEnabled, quietUntil: change.quietUntil === undefined ? current.quietUntil : change.quietUntil };
    await this.#store.putSettings(nationalId, next, now);
    await this.#audit.append({ actor, event: 'defence.settings_changed', subject: nationalId, details: next });
    return { ...next, updatedAt: now };
  }

  // ------------------------------------------------------------------ attack summary (device protocol)

  async summary(nationalId: string, days: number): Promise<AttackSummary> {
    const now = this.#clock.now();
    const since = now - days * DAY;
    const events = await this.#store.events(nationalId, since, 10_000);
    const foreign = events.filter((e) => !e.trusted);
    const blocked = foreign.filter((e) => e.kind === 'silent' || e.kind === 'refused');
    const byPlace = new Map<string | null, { place: string | null; count: number; lastAt: number }>();
    for (const e of blocked) {
      const entry = byPlace.get(e.place) ?? { place: e.place, count: 0, lastAt: 0 };
      entry.count += e.count;
      entry.lastAt = Math.max(entry.lastAt, e.at);
      byPlace.set(e.place, entry);
    }
    const places = [...byPlace.values()].sort((a, b) => b.count - a.count || b.lastAt - a.lastAt);
    const lastAt = blocked.length ? Math.max(...blocked.map((e) => e.at)) : null;
    const total = (lines: DefenceEvent[]) => lines.reduce((sum, e) => sum + e.count, 0);
    return {
      since,
      days,
      blocked: total(blocked),
      notified: total(foreign.filter((e) => e.kind === 'push')),
      reports: total(events.filter((e) => e.kind === 'not_me' || e.kind === 'wrong_code')),
      places,
      lastAt,
      message: summaryMessage(total(blocked), places, lastAt, now, days),
    };
  }

  // ------------------------------------------------------------------ operator

  /**
   * What the defences did over the last `minutes`, for the operator during an attack (`vigie
   * defence status`): decisions and their reasons, the most requested professionals, the busiest
   * sources, who is held now, the blocks in force. The rate counters and the circuit breaker live
   * in the nodes (or Redis): /metrics has them.
   */
  async status(minutes: number, top = 10): Promise<DefenceStatus> {
    const now = this.#clock.now();
    const since = now - minutes * MINUTE;
    const [journal, held, blocks] = await Promise.all([this.#store.overview(since, top), this.#store.heldProfessionals(now, top), this.#store.listBlocks({ now })]);
    return { since, now, ...journal, held, blocks };
  }

  async listBlocks(options: { includeInactive?: boolean } = {}): Promise<Block[]> {
    return this.#store.listBlocks({ now: this.#clock.now(), ...options });
  }

  async liftBlock(id: string, actor: string): Promise<Block> {
    const block = await this.#store.liftBlock(id, this.#clock.now(), actor);
    if (!block) throw defenceErrors.BLOCK_NOT_FOUND();
    await this.#audit.append({ actor, event: 'defence.block_lifted', subject: block.nationalId, details: { blockId: block.id, scope: block.scope, prefix: block.prefix, browserId: block.browserId } });
    return block;
  }

  /** Blocks a prefix globally by hand (operator). */
  /** The operator's block of an address's prefix (/24, /56) for everyone; with `site`, of its whole IPv6 /48. */
  async blockPrefix(ip: string, hours: number, actor: string, options: { site?: boolean } = {}): Promise<Block> {
    if (!isIP(canonicalIp(ip))) throw commonErrors.VALIDATION_FAILED({ message: `Not an IP address: ${ip}` });
    const now = this.#clock.now();
    const source = this.source(ip, '');
    const prefix = options.site ? sitePrefixOf(source.ip) : source.prefix;
    if (!prefix) throw commonErrors.VALIDATION_FAILED({ message: `A site (/48) is an IPv6 notion: ${ip} is an IPv4 address` });
    const block: Block = {
      id: randomId(12), scope: 'global', nationalId: null, prefix, browserId: null, reason: 'operator', place: describePlace(source.geo),
      createdAt: now, expiresAt: now + hours * HOUR, liftedAt: null, liftedBy: null,
    };
    await this.#store.addBlock(block);
    this.#blocks.inc({ scope: 'global', reason: 'operator' });
    await this.#audit.append({ actor, event: 'defence.global_block', subject: null, details: { blockId: block.id, prefix: block.prefix, until: block.expiresAt, reason: 'operator' } });
    return block;
  }

  async purge(): Promise<number> {
    return this.#store.purge(this.#clock.now(), JOURNAL_KEEP_MS);
  }

  // ------------------------------------------------------------------ internals

  #challenge(d: Omit<Extract<Decision, { kind: 'challenge' }>, 'kind'>): Decision {
    this.#decisions.inc({ decision: d.delivery, reason: d.holds[0] ?? (d.trusted ? 'trusted' : 'none') });
    return { kind: 'challenge', ...d };
  }

  async #refuse(reason: RefuseReason, retryMs: number, attempt: LoginAttempt, now: number): Promise<Decision> {
    const retryAfterSeconds = Math.max(1, Math.ceil(retryMs / 1000));
    this.#decisions.inc({ decision: 'refused', reason });
    // One journal line per professional, prefix, reason and minute, counting the refusals: a flood
    // must not write (and keep for 90 days) a row per request.
    if (attempt.known) {
      const line = this.#event(attempt.nationalId, 'refused', [reason], false, attempt.source, null);
      await this.#store.addEvent({ ...line, id: `refused.${attempt.nationalId}.${attempt.source.prefix}.${reason}.${windowStartOf(now, MINUTE)}` });
    }
    // A flood would otherwise write one audit entry per request: one per source, reason and minute is enough.
    if ((await this.#store.hit(`refusal:${reason}:${attempt.source.prefix}`, MINUTE, now)).current === 1) {
      await this.#audit.append({
        actor: `browser:${attempt.source.ip}`,
        event: 'login.refused',
        subject: attempt.known ? attempt.nationalId : null,
        details: { reason, clientId: attempt.clientId, prefix: attempt.source.prefix, place: describePlace(attempt.source.geo), retryAfterSeconds },
      });
    }
    return { kind: 'refuse', reason, retryAfterSeconds };
  }

  #event(nationalId: string, kind: DefenceEvent['kind'], reasons: string[], trusted: boolean, source: Source, challengeId: string | null): DefenceEvent {
    return {
      id: randomId(), at: this.#clock.now(), nationalId, kind, reasons, trusted,
      ip: source.ip, prefix: source.prefix, browserId: source.browserId || null, place: describePlace(source.geo), challengeId, count: 1,
    };
  }

  /** Takes one push from the professional's daily budget for untrusted browsers; false when spent. */
  async #takeBudget(read: ProfessionalState, now: number): Promise<boolean> {
    // The state just read is the first guess; a lost compare-and-set reads it again.
    let state = read;
    for (let attempt = 0; attempt < 8; attempt += 1) {
      if (attempt > 0) state = await this.#store.getState(read.nationalId);
      const recent = state.pushTimes.filter((t) => t > now - DAY);
      if (recent.length >= this.#policy.untrustedPushesPerDay) return false;
      if (await this.#store.casState({ ...state, pushTimes: [...recent, now] }, now)) return true;
    }
    return false;
  }

  async #updateState(nationalId: string, now: number, change: (s: ProfessionalState) => ProfessionalState): Promise<ProfessionalState> {
    for (let attempt = 0; attempt < 8; attempt += 1) {
      const state = await this.#store.getState(nationalId);
      const next = change(state);
      if (JSON.stringify(next) === JSON.stringify(state)) return state;
      if (await this.#store.casState(next, now)) return next;
    }
    throw new Error(`defence state of ${nationalId}: too much contention`);
  }

  /** Opens the global breaker for a while when untrusted pushes exceed the configured rate. */
  async #countTowardsBreaker(now: number): Promise<void> {
    const pushes = slidingCount(await this.#store.hit('breaker:pushes', MINUTE, now), MINUTE, now);
    if (pushes > this.#policy.breakerPushesPerMinute && (await this.#store.flag('breaker', now)) === undefined) {
      await this.#store.setFlag('breaker', now + BREAKER_HOLD_MS);
      this.#blocks.inc({ scope: 'breaker', reason: 'rate' });
      await this.#audit.append({ actor: 'system', event: 'defence.breaker_open', subject: null, details: { pushesPerMinute: Math.round(pushes), until: now + BREAKER_HOLD_MS } });
    }
  }
}

function wrongPickKey(nationalId: string, browserId: string): string {
  return `wrong-pick:${nationalId}:${browserId}`;
}

function countryKey(country: string): string {
  return `c:${country}`;
}

function regionKey(country: string, region: string): string {
  return `r:${country}-${region}`;
}

const TIME = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' });
const DATE = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', day: '2-digit', month: '2-digit' });

function when(at: number, now: number): string {
  return DATE.format(at) === DATE.format(now) ? `à ${TIME.format(at)}` : `le ${DATE.format(at)} à ${TIME.format(at)}`;
}

function from(place: string | null): string {
  return place ? `depuis ${place.split(', ')[0]}` : "d'une origine inconnue";
}

/** "7 demandes bloquées depuis Lyon, la dernière à 14:02". */
export function summaryMessage(count: number, places: Array<{ place: string | null; count: number }>, lastAt: number | null, now: number, days: number): string {
  if (count === 0 || lastAt === null) return days === 1 ? 'Aucune demande suspecte aujourd’hui.' : `Aucune demande suspecte ces ${days} derniers jours.`;
  const noun = count === 1 ? 'demande bloquée' : 'demandes bloquées';
  const origin = places.length === 1
    ? from(places[0]!.place)
    : `(${places.slice(0, 3).map((p) => `${p.count} ${from(p.place)}`).join(', ')}${places.length > 3 ? ', …' : ''})`;
  return count === 1 ? `${count} ${noun} ${origin}, ${when(lastAt, now)}` : `${count} ${noun} ${origin}, la dernière ${when(lastAt, now)}`;
}
