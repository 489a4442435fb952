import type { Db } from '../store/db.ts';
import { prepared } from '../store/prepared.ts';
import type { DefenceBlockTable, DefenceEventTable, DefenceStateTable } from '../store/schema.ts';

/**
 * Storage of the defences, behind one interface with atomic primitives, so the SQL store (one or
 * several nodes on PostgreSQL), the memory store (one node, tests) and a Redis store (issue 6)
 * are interchangeable and held to one contract suite (store.contract.test.ts).
 *
 * Every time is passed in (`now`), never read from a system clock: rate windows are fixed
 * windows numbered by `floor(now / windowMs)`, so the injected clock alone decides which window
 * a hit falls in. That is why the counters are ours rather than rate-limiter-flexible's: its
 * stores read `Date.now()` (memory) or rely on the server's TTLs (Redis), which an injected or
 * accelerated clock — the tests and the simulated day of `bench:attack` — cannot move. A Redis
 * implementation keeps the same shape: the window number in the key, INCR, and a PEXPIRE that
 * only collects garbage.
 */
export interface RateWindow {
  /** Hits in the current fixed window (including this one for `hit`). */
  current: number;
  /** Hits in the window before it. */
  previous: number;
  /** Start of the current window. */
  windowStart: number;
}

/** Sliding-window estimate from two fixed windows: the previous one weighs what is left of it. */
export function slidingCount(w: RateWindow, windowMs: number, now: number): number {
  const elapsed = Math.min(1, Math.max(0, (now - w.windowStart) / windowMs));
  return w.current + w.previous * (1 - elapsed);
}

export function windowStartOf(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

/** What the defences remember about one professional; written by compare-and-set on `version`. */
export interface ProfessionalState {
  nationalId: string;
  /** Pushed requests in a row that ended refused, expired or failed (an approval resets it). */
  strikes: number;
  /** Until then, requests from untrusted browsers are silent (back-off after the last strike). */
  backoffUntil: number;
  /** Until then (after a "not me" or a wrong code), requests from untrusted browsers are silent. */
  underAttackUntil: number;
  /** Times of the recent pushes caused by untrusted browsers (the daily budget). */
  pushTimes: number[];
  /** Trusted-browser cookies issued at or before this time no longer count (0: never revoked). */
  trustResetAt: number;
  /** 0 when never written. */
  version: number;
}

export function emptyState(nationalId: string): ProfessionalState {
  return { nationalId, strikes: 0, backoffUntil: 0, underAttackUntil: 0, pushTimes: [], trustResetAt: 0, version: 0 };
}

export type BlockScope = 'professional' | 'global';
export type BlockReason = 'not_me' | 'wrong_code' | 'reports' | 'operator';

/**
 * A block. `professional`: the source (its prefix, or its browser id) may not notify that
 * professional. `global`: the prefix may not start logins at all (reports from several
 * professionals, or the operator).
 */
export interface Block {
  id: string;
  scope: BlockScope;
  nationalId: string | null;
  prefix: string | null;
  browserId: string | null;
  reason: BlockReason;
  place: string | null;
  createdAt: number;
  expiresAt: number;
  liftedAt: number | null;
  liftedBy: string | null;
}

export type SignalKind = 'not_me' | 'wrong_code';

/** A fraud signal against a source, raised by one professional's device. */
export interface FraudSignal {
  id: string;
  at: number;
  kind: SignalKind;
  nationalId: string;
  ip: string;
  prefix: string;
  /** IPv6: the /48 of `prefix` (source.ts `sitePrefixOf`); null for IPv4. */
  site: string | null;
  browserId: string | null;
  /**
   * The reported request came from a browser trusted for that professional: only its browser id
   * is suspect, not its prefix (perhaps the professional's own network).
   */
  trusted: boolean;
}

export interface NotificationSettings {
  /** false: no push at all; logins remain possible by opening the app (pull). */
  pushEnabled: boolean;
  /** "Je ne me connecte pas avant le …": no push until then. */
  quietUntil: number | null;
  updatedAt: number | null;
}

export const DEFAULT_SETTINGS: NotificationSettings = { pushEnabled: true, quietUntil: null, updatedAt: null };

export type EventKind = 'push' | 'silent' | 'refused' | 'not_me' | 'wrong_code';
/** The lines that stand for a login request (the others are reports about one). */
export const REQUEST_KINDS: readonly EventKind[] = ['push', 'silent', 'refused'];

/** The journal of every professional over a period, for the operator (`vigie defence status`). */
export interface JournalOverview {
  /** Lines by kind and reasons: push, silent with its holds, refused with its reason, not_me, wrong_code. */
  decisions: Array<{ kind: EventKind; reasons: string[]; count: number }>;
  /** The most requested professionals (push, silent and refused lines), with how many of their requests notified them. */
  professionals: Array<{ nationalId: string; requests: number; pushed: number }>;
  /** The prefixes with the most requests (push, silent and refused lines) from untrusted browsers, and how many professionals each asked for. */
  prefixes: Array<{ prefix: string; requests: number; professionals: number }>;
}

/** One line of a professional's defence journal (what the attack summary is made of). */
export interface DefenceEvent {
  id: string;
  at: number;
  nationalId: string | null;
  kind: EventKind;
  reasons: string[];
  trusted: boolean;
  ip: string;
  prefix: string;
  browserId: string | null;
  place: string | null;
  challengeId: string | null;
  /**
   * How many requests the line stands for: 1, except for refusals, which share a line per
   * professional, source prefix, reason and minute (same `id`: `addEvent` adds up).
   */
  count: number;
}

export interface DefenceStore {
  /** Counts one hit of `key` in the window containing `now`. */
  hit(key: string, windowMs: number, now: number): Promise<RateWindow>;
  peek(key: string, windowMs: number, now: number): Promise<RateWindow>;
  /** Adds `member` to the set of `key` for the current window; returns the distinct members of this window and the previous one. */
  addDistinct(key: string, member: string, windowMs: number, now: number): Promise<number>;
  /** A short-lived flag (e.g. the circuit breaker is open until `until`). */
  setFlag(key: string, until: number): Promise<void>;
  /** The flag's end when it is still up at `now`. */
  flag(key: string, now: number): Promise<number | undefined>;

  getState(nationalId: string): Promise<ProfessionalState>;
  /** Writes `next` when the stored version is still `next.version`; stores `version + 1`. */
  casState(next: ProfessionalState, now: number): Promise<boolean>;

  addBlock(block: Block): Promise<void>;
  /** Active blocks concerning a request: global on its prefix or its IPv6 site (/48), or for this professional on its prefix or browser id. */
  matchingBlocks(query: { nationalId: string | null; prefix: string; site: string | null; browserId: string | null }, now: number): Promise<Block[]>;
  listBlocks(options: { now: number; includeInactive?: boolean; limit?: number }): Promise<Block[]>;
  /** Lifts an active block; returns it, or undefined when there is no such active block. */
  liftBlock(id: string, now: number, by: string): Promise<Block | undefined>;

  addSignal(signal: FraudSignal): Promise<void>;
  /** Signals against this prefix (untrusted ones) or this browser id, by any professional, each kind counted since its own time. */
  countSignals(query: { prefix: string; browserId: string | null; since: Record<SignalKind, number> }): Promise<number>;
  /** Distinct professionals who reported (`not_me`) requests from untrusted browsers of this prefix, or of this IPv6 site (/48), since `since`. */
  distinctReporters(source: { prefix: string } | { site: string }, since: number): Promise<number>;

  rememberPlace(nationalId: string, place: string, now: number): Promise<void>;
  knownPlaces(nationalId: string): Promise<string[]>;

  getSettings(nationalId: string): Promise<NotificationSettings>;
  putSettings(nationalId: string, settings: Omit<NotificationSettings, 'updatedAt'>, now: number): Promise<void>;

  /** Journals a line; a line with the same `id` already there takes its `count` in addition, and its `at`. */
  addEvent(event: DefenceEvent): Promise<void>;
  /** A professional's journal since `since`, newest first. */
  events(nationalId: string, since: number, limit: number): Promise<DefenceEvent[]>;
  /** Every professional's journal since `since`, counted; `top` lines in each ranking. */
  overview(since: number, top: number): Promise<JournalOverview>;
  /** Professionals whose untrusted requests are held at `now` (attack mode or back-off), the longest-held first. */
  heldProfessionals(now: number, limit: number): Promise<ProfessionalState[]>;

  /** Deletes expired windows and flags, and journal lines, signals and ended blocks older than `keepMs`. */
  purge(now: number, keepMs: number): Promise<number>;
}

function toState(row: DefenceStateTable): ProfessionalState {
  return {
    nationalId: row.national_id,
    strikes: row.strikes,
    backoffUntil: Number(row.backoff_until),
    underAttackUntil: Number(row.under_attack_until),
    pushTimes: JSON.parse(row.push_times) as number[],
    trustResetAt: Number(row.trust_reset_at),
    version: row.version,
  };
}

function toBlock(row: DefenceBlockTable): Block {
  return {
    id: row.id,
    scope: row.scope as BlockScope,
    nationalId: row.national_id,
    prefix: row.prefix,
    browserId: row.browser_id,
    reason: row.reason as BlockReason,
    place: row.place,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    liftedAt: row.lifted_at,
    liftedBy: row.lifted_by,
  };
}

function toEvent(row: DefenceEventTable): DefenceEvent {
  return {
    id: row.id,
    at: row.at,
    nationalId: row.national_id,
    kind: row.kind as EventKind,
    reasons: JSON.parse(row.reasons) as string[],
    trusted: row.trusted === 1,
    ip: row.ip,
    prefix: row.prefix,
    browserId: row.browser_id,
    place: row.place,
    challengeId: row.challenge_id,
    count: Number(row.count),
  };
}

// The statements of every login, built once (store/prepared.ts).
const stateOf = prepared((db, nationalId: string) => db.selectFrom('defence_state').selectAll().where('national_id', '=', nationalId));
const updateState = prepared((db, strikes: number, backoffUntil: number, underAttackUntil: number, pushTimes: string, trustResetAt: number, version: number, updatedAt: number, nationalId: string, expectedVersion: number) =>
  db.updateTable('defence_state')
    .set({ strikes, backoff_until: backoffUntil, under_attack_until: underAttackUntil, push_times: pushTimes, trust_reset_at: trustResetAt, version, updated_at: updatedAt })
    .where('national_id', '=', nationalId)
    .where('version', '=', expectedVersion),
);
// One statement for every request: a NULL professional, site or browser id matches nothing (`= NULL`).
const blocksMatching = prepared((db, now: number, prefix: string, site: string | null, nationalId: string | null, browserId: string | null) =>
  db.selectFrom('defence_block')
    .selectAll()
    .where('lifted_at', 'is', null)
    .where('expires_at', '>', now)
    .where((eb) =>
      eb.or([
        eb.and([eb('scope', '=', 'global'), eb.or([eb('prefix', '=', prefix), eb('prefix', '=', site)])]),
        eb.and([eb('scope', '=', 'professional'), eb('national_id', '=', nationalId), eb.or([eb('prefix', '=', prefix), eb('browser_id', '=', browserId)])]),
      ]),
    ),
);
// `at >= oldest` repeats the kinds' own bounds so that both indexes range over `at`.
const signalsSince = prepared((db, oldest: number, notMeSince: number, wrongCodeSince: number, prefix: string, browserId: string | null) =>
  db.selectFrom('defence_signal')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('at', '>=', oldest)
    .where((eb) => eb.or([eb.and([eb('kind', '=', 'not_me'), eb('at', '>=', notMeSince)]), eb.and([eb('kind', '=', 'wrong_code'), eb('at', '>=', wrongCodeSince)])]))
    .where((eb) => eb.or([eb.and([eb('prefix', '=', prefix), eb('trusted', '=', 0)]), eb('browser_id', '=', browserId)])),
);
const settingsOf = prepared((db, nationalId: string) => db.selectFrom('notification_settings').selectAll().where('national_id', '=', nationalId));
const insertEvent = prepared((db, id: string, at: number, nationalId: string | null, kind: string, reasons: string, trusted: number, ip: string, prefix: string, browserId: string | null, place: string | null, challengeId: string | null, count: number) =>
  db.insertInto('defence_event')
    .values({ id, at, national_id: nationalId, kind, reasons, trusted, ip, prefix, browser_id: browserId, place, challenge_id: challengeId, count })
    .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ count: eb('defence_event.count', '+', eb.ref('excluded.count')), at: eb.ref('excluded.at') }))),
);

/** The SQL store (SQLite or PostgreSQL): every write is one atomic statement. */
export class SqlDefenceStore implements DefenceStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async hit(key: string, windowMs: number, now: number): Promise<RateWindow> {
    const windowStart = windowStartOf(now, windowMs);
    const row = await this.#db.kysely
      .insertInto('defence_counter')
      .values({ key, window_start: windowStart, count: 1, expires_at: windowStart + 2 * windowMs })
      .onConflict((oc) => oc.columns(['key', 'window_start']).doUpdateSet((eb) => ({ count: eb('defence_counter.count', '+', 1) })))
      .returning('count')
      .executeTakeFirstOrThrow();
    const previous = await this.#db.kysely
      .selectFrom('defence_counter')
      .select('count')
      .where('key', '=', key)
      .where('window_start', '=', windowStart - windowMs)
      .executeTakeFirst();
    return { current: Number(row.count), previous: Number(previous?.count ?? 0), windowStart };
  }

  async peek(key: string, windowMs: number, now: number): Promise<RateWindow> {
    const windowStart = windowStartOf(now, windowMs);
    const rows = await this.#db.kysely
      .selectFrom('defence_counter')
      .select(['window_start', 'count'])
      .where('key', '=', key)
      .where('window_start', 'in', [windowStart, windowStart - windowMs])
      .execute();
    const at = (start: number) => Number(rows.find((r) => Number(r.window_start) === start)?.count ?? 0);
    return { current: at(windowStart), previous: at(windowStart - windowMs), windowStart };
  }

  async addDistinct(key: string, member: string, windowMs: number, now: number): Promise<number> {
    const windowStart = windowStartOf(now, windowMs);
    await this.#db.kysely
      .insertInto('defence_distinct')
      .values({ key, window_start: windowStart, member, expires_at: windowStart + 2 * windowMs })
      .onConflict((oc) => oc.columns(['key', 'window_start', 'member']).doNothing())
      .execute();
    const row = await this.#db.kysely
      .selectFrom('defence_distinct')
      .select((eb) => eb.fn.count<number>('member').distinct().as('n'))
      .where('key', '=', key)
      .where('window_start', 'in', [windowStart, windowStart - windowMs])
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async setFlag(key: string, until: number): Promise<void> {
    await this.#db.kysely
      .insertInto('defence_flag')
      .values({ key, until })
      .onConflict((oc) => oc.column('key').doUpdateSet({ until }))
      .execute();
  }

  async flag(key: string, now: number): Promise<number | undefined> {
    const row = await this.#db.kysely.selectFrom('defence_flag').select('until').where('key', '=', key).where('until', '>', now).executeTakeFirst();
    return row ? Number(row.until) : undefined;
  }

  async getState(nationalId: string): Promise<ProfessionalState> {
    const row = (await stateOf(this.#db, nationalId)).rows[0];
    return row ? toState(row) : emptyState(nationalId);
  }

  async casState(next: ProfessionalState, now: number): Promise<boolean> {
    const values = {
      strikes: next.strikes,
      backoff_until: next.backoffUntil,
      under_attack_until: next.underAttackUntil,
      push_times: JSON.stringify(next.pushTimes),
      trust_reset_at: next.trustResetAt,
      version: next.version + 1,
      updated_at: now,
    };
    if (next.version === 0) {
      const result = await this.#db.kysely
        .insertInto('defence_state')
        .values({ national_id: next.nationalId, ...values })
        .onConflict((oc) => oc.column('national_id').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    }
    const updated = await updateState(this.#db, values.strikes, values.backoff_until, values.under_attack_until, values.push_times, values.trust_reset_at, values.version, values.updated_at, next.nationalId, next.version);
    return updated.numAffectedRows === 1n;
  }

  async addBlock(b: Block): Promise<void> {
    await this.#db.kysely
      .insertInto('defence_block')
      .values({
        id: b.id, scope: b.scope, national_id: b.nationalId, prefix: b.prefix, browser_id: b.browserId, reason: b.reason, place: b.place,
        created_at: b.createdAt, expires_at: b.expiresAt, lifted_at: b.liftedAt, lifted_by: b.liftedBy,
      })
      .execute();
  }

  async matchingBlocks(query: { nationalId: string | null; prefix: string; site: string | null; browserId: string | null }, now: number): Promise<Block[]> {
    return (await blocksMatching(this.#db, now, query.prefix, query.site, query.nationalId, query.browserId || null)).rows.map(toBlock);
  }

  async listBlocks(options: { now: number; includeInactive?: boolean; limit?: number }): Promise<Block[]> {
    let query = this.#db.kysely.selectFrom('defence_block').selectAll();
    if (!options.includeInactive) query = query.where('lifted_at', 'is', null).where('expires_at', '>', options.now);
    const rows = await query.orderBy('created_at', 'desc').limit(options.limit ?? 1000).execute();
    return rows.map(toBlock);
  }

  async liftBlock(id: string, now: number, by: string): Promise<Block | undefined> {
    const row = await this.#db.kysely
      .updateTable('defence_block')
      .set({ lifted_at: now, lifted_by: by })
      .where('id', '=', id)
      .where('lifted_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return row && toBlock(row);
  }

  async addSignal(s: FraudSignal): Promise<void> {
    await this.#db.kysely
      .insertInto('defence_signal')
      .values({ id: s.id, at: s.at, kind: s.kind, national_id: s.nationalId, ip: s.ip, prefix: s.prefix, site: s.site, browser_id: s.browserId, trusted: s.trusted ? 1 : 0 })
      .execute();
  }

  async countSignals(query: { prefix: string; browserId: string | null; since: Record<SignalKind, number> }): Promise<number> {
    const { not_me: notMe, wrong_code: wrongCode } = query.since;
    return Number((await signalsSince(this.#db, Math.min(notMe, wrongCode), notMe, wrongCode, query.prefix, query.browserId || null)).rows[0]?.n ?? 0);
  }

  async distinctReporters(source: { prefix: string } | { site: string }, since: number): Promise<number> {
    const row = await this.#db.kysely
      .selectFrom('defence_signal')
      .select((eb) => eb.fn.count<number>('national_id').distinct().as('n'))
      .where((eb) => ('site' in source ? eb('site', '=', source.site) : eb('prefix', '=', source.prefix)))
      .where('trusted', '=', 0)
      .where('kind', '=', 'not_me')
      .where('at', '>=', since)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async rememberPlace(nationalId: string, place: string, now: number): Promise<void> {
    await this.#db.kysely
      .insertInto('defence_place')
      .values({ national_id: nationalId, place, first_seen: now, last_seen: now })
      .onConflict((oc) => oc.columns(['national_id', 'place']).doUpdateSet({ last_seen: now }))
      .execute();
  }

  async knownPlaces(nationalId: string): Promise<string[]> {
    const rows = await this.#db.kysely.selectFrom('defence_place').select('place').where('national_id', '=', nationalId).execute();
    return rows.map((r) => r.place);
  }

  async getSettings(nationalId: string): Promise<NotificationSettings> {
    const row = (await settingsOf(this.#db, nationalId)).rows[0];
    if (!row) return { ...DEFAULT_SETTINGS };
    return { pushEnabled: row.push_enabled === 1, quietUntil: row.quiet_until === null ? null : Number(row.quiet_until), updatedAt: Number(row.updated_at) };
  }

  async putSettings(nationalId: string, s: Omit<NotificationSettings, 'updatedAt'>, now: number): Promise<void> {
    const values = { push_enabled: s.pushEnabled ? 1 : 0, quiet_until: s.quietUntil, updated_at: now };
    await this.#db.kysely
      .insertInto('notification_settings')
      .values({ national_id: nationalId, ...values })
      .onConflict((oc) => oc.column('national_id').doUpdateSet(values))
      .execute();
  }

  async addEvent(e: DefenceEvent): Promise<void> {
    await insertEvent(this.#db, e.id, e.at, e.nationalId, e.kind, JSON.stringify(e.reasons), e.trusted ? 1 : 0, e.ip, e.prefix, e.browserId, e.place, e.challengeId, e.count);
  }

  async events(nationalId: string, since: number, limit: number): Promise<DefenceEvent[]> {
    const rows = await this.#db.kysely
      .selectFrom('defence_event')
      .selectAll()
      .where('national_id', '=', nationalId)
      .where('at', '>=', since)
      .orderBy('at', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }

  async overview(since: number, top: number): Promise<JournalOverview> {
    const journal = this.#db.kysely.selectFrom('defence_event').where('at', '>=', since);
    const requests = journal.where('kind', 'in', REQUEST_KINDS);
    const [decisions, professionals, prefixes] = await Promise.all([
      journal.select((eb) => ['kind', 'reasons', eb.fn.sum('count').as('n')]).groupBy(['kind', 'reasons']).execute(),
      requests
        .where('national_id', 'is not', null)
        .select((eb) => ['national_id', eb.fn.sum('count').as('n'), eb.fn.sum(eb.case().when('kind', '=', 'push').then(eb.ref('count')).else(0).end()).as('pushed')])
        .groupBy('national_id')
        .orderBy('n', 'desc')
        .orderBy('national_id')
        .limit(top)
        .execute(),
      requests
        .where('trusted', '=', 0)
        .select((eb) => ['prefix', eb.fn.sum('count').as('n'), eb.fn.count('national_id').distinct().as('professionals')])
        .groupBy('prefix')
        .orderBy('n', 'desc')
        .orderBy('prefix')
        .limit(top)
        .execute(),
    ]);
    // PostgreSQL counts and sums in bigint, which its driver hands over as text.
    return {
      decisions: decisions.map((r) => ({ kind: r.kind as EventKind, reasons: JSON.parse(r.reasons) as string[], count: Number(r.n) })),
      professionals: professionals.map((r) => ({ nationalId: r.national_id!, requests: Number(r.n), pushed: Number(r.pushed) })),
      prefixes: prefixes.map((r) => ({ prefix: r.prefix, requests: Number(r.n), professionals: Number(r.professionals) })),
    };
  }

  async heldProfessionals(now: number, limit: number): Promise<ProfessionalState[]> {
    const rows = await this.#db.kysely
      .selectFrom('defence_state')
      .selectAll()
      .where((eb) => eb.or([eb('under_attack_until', '>', now), eb('backoff_until', '>', now)]))
      .orderBy('under_attack_until', 'desc')
      .orderBy('backoff_until', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toState);
  }

  async purge(now: number, keepMs: number): Promise<number> {
    const before = now - keepMs;
    const results = await Promise.all([
      this.#db.kysely.deleteFrom('defence_counter').where('expires_at', '<=', now).executeTakeFirst(),
      this.#db.kysely.deleteFrom('defence_distinct').where('expires_at', '<=', now).executeTakeFirst(),
      this.#db.kysely.deleteFrom('defence_flag').where('until', '<=', now).executeTakeFirst(),
      this.#db.kysely.deleteFrom('defence_event').where('at', '<', before).executeTakeFirst(),
      this.#db.kysely.deleteFrom('defence_signal').where('at', '<', before).executeTakeFirst(),
      this.#db.kysely.deleteFrom('defence_block').where('expires_at', '<', before).executeTakeFirst(),
    ]);
    return results.reduce((sum, r) => sum + Number(r.numDeletedRows), 0);
  }
}
