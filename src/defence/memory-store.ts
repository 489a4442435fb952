import type { Db } from '../store/db.ts';
import {
  DEFAULT_SETTINGS, REQUEST_KINDS, SqlDefenceStore, emptyState, windowStartOf,
  type Block, type DefenceEvent, type DefenceStore, type EventKind, type FraudSignal, type JournalOverview, type NotificationSettings, type ProfessionalState, type RateWindow, type SignalKind,
} from './store.ts';

/**
 * The defence store of a single node, in memory: fast, lost on restart, not shared. Meant for
 * tests and for a lone node that accepts losing its counters and blocks on restart; several
 * nodes need the SQL store (or Redis, issue 6). JavaScript runs each method to its first await
 * without interruption, which makes every primitive here atomic.
 */
export class MemoryDefenceStore implements DefenceStore {
  readonly #counters = new Map<string, { count: number; expiresAt: number }>();
  readonly #distinct = new Map<string, { members: Set<string>; expiresAt: number }>();
  readonly #flags = new Map<string, number>();
  readonly #states = new Map<string, ProfessionalState>();
  readonly #blocks = new Map<string, Block>();
  readonly #signals: FraudSignal[] = [];
  readonly #places = new Map<string, Map<string, number>>();
  readonly #settings = new Map<string, NotificationSettings>();
  /** By id: a refusal line adds up (addEvent). */
  readonly #events = new Map<string, DefenceEvent>();

  async hit(key: string, windowMs: number, now: number): Promise<RateWindow> {
    const windowStart = windowStartOf(now, windowMs);
    const id = `${key}\0${windowStart}`;
    const entry = this.#counters.get(id) ?? { count: 0, expiresAt: windowStart + 2 * windowMs };
    entry.count += 1;
    this.#counters.set(id, entry);
    return { current: entry.count, previous: this.#counters.get(`${key}\0${windowStart - windowMs}`)?.count ?? 0, windowStart };
  }

  async peek(key: string, windowMs: number, now: number): Promise<RateWindow> {
    const windowStart = windowStartOf(now, windowMs);
    return {
      current: this.#counters.get(`${key}\0${windowStart}`)?.count ?? 0,
      previous: this.#counters.get(`${key}\0${windowStart - windowMs}`)?.count ?? 0,
      windowStart,
    };
  }

  async addDistinct(key: string, member: string, windowMs: number, now: number): Promise<number> {
    const windowStart = windowStartOf(now, windowMs);
    const id = `${key}\0${windowStart}`;
    const entry = this.#distinct.get(id) ?? { members: new Set<string>(), expiresAt: windowStart + 2 * windowMs };
    entry.members.add(member);
    this.#distinct.set(id, entry);
    const previous = this.#distinct.get(`${key}\0${windowStart - windowMs}`)?.members ?? new Set<string>();
    return new Set([...entry.members, ...previous]).size;
  }

  async setFlag(key: string, until: number): Promise<void> {
    this.#flags.set(key, until);
  }

  async flag(key: string, now: number): Promise<number | undefined> {
    const until = this.#flags.get(key);
    return until !== undefined && until > now ? until : undefined;
  }

  async getState(nationalId: string): Promise<ProfessionalState> {
    const state = this.#states.get(nationalId);
    return state ? { ...state, pushTimes: [...state.pushTimes] } : emptyState(nationalId);
  }

  async casState(next: ProfessionalState, _now: number): Promise<boolean> {
    const current = this.#states.get(next.nationalId)?.version ?? 0;
    if (current !== next.version) return false;
    this.#states.set(next.nationalId, { ...next, pushTimes: [...next.pushTimes], version: next.version + 1 });
    return true;
  }

  async addBlock(block: Block): Promise<void> {
    this.#blocks.set(block.id, { ...block });
  }

  async matchingBlocks(query: { nationalId: string | null; prefix: string; site: string | null; browserId: string | null }, now: number): Promise<Block[]> {
    return [...this.#blocks.values()].filter((b) => {
      if (b.liftedAt !== null || b.expiresAt <= now) return false;
      if (b.scope === 'global') return b.prefix === query.prefix || (query.site !== null && b.prefix === query.site);
      return query.nationalId !== null && b.nationalId === query.nationalId && (b.prefix === query.prefix || (query.browserId !== null && b.browserId === query.browserId));
    }).map((b) => ({ ...b }));
  }

  async listBlocks(options: { now: number; includeInactive?: boolean; limit?: number }): Promise<Block[]> {
    return [...this.#blocks.values()]
      .filter((b) => options.includeInactive || (b.liftedAt === null && b.expiresAt > options.now))
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, options.limit ?? 1000)
      .map((b) => ({ ...b }));
  }

  async liftBlock(id: string, now: number, by: string): Promise<Block | undefined> {
    const block = this.#blocks.get(id);
    if (!block || block.liftedAt !== null || block.expiresAt <= now) return undefined;
    block.liftedAt = now;
    block.liftedBy = by;
    return { ...block };
  }

  async addSignal(signal: FraudSignal): Promise<void> {
    this.#signals.push({ ...signal });
  }

  async countSignals(query: { prefix: string; browserId: string | null; since: Record<SignalKind, number> }): Promise<number> {
    return this.#signals.filter((s) => s.at >= query.since[s.kind] && ((s.prefix === query.prefix && !s.trusted) || (query.browserId !== null && s.browserId === query.browserId))).length;
  }

  async distinctReporters(source: { prefix: string } | { site: string }, since: number): Promise<number> {
    const from = (s: FraudSignal) => ('site' in source ? s.site === source.site : s.prefix === source.prefix);
    return new Set(this.#signals.filter((s) => from(s) && !s.trusted && s.kind === 'not_me' && s.at >= since).map((s) => s.nationalId)).size;
  }

  async rememberPlace(nationalId: string, place: string, now: number): Promise<void> {
    const places = this.#places.get(nationalId) ?? new Map<string, number>();
    places.set(place, now);
    this.#places.set(nationalId, places);
  }

  async knownPlaces(nationalId: string): Promise<string[]> {
    return [...(this.#places.get(nationalId)?.keys() ?? [])];
  }

  async getSettings(nationalId: string): Promise<NotificationSettings> {
    return { ...(this.#settings.get(nationalId) ?? DEFAULT_SETTINGS) };
  }

  async putSettings(nationalId: string, settings: Omit<NotificationSettings, 'updatedAt'>, now: number): Promise<void> {
    this.#settings.set(nationalId, { pushEnabled: settings.pushEnabled, quietUntil: settings.quietUntil, updatedAt: now });
  }

  async addEvent(event: DefenceEvent): Promise<void> {
    const line = this.#events.get(event.id);
    if (line) Object.assign(line, { count: line.count + event.count, at: event.at });
    else this.#events.set(event.id, { ...event, reasons: [...event.reasons] });
  }

  async events(nationalId: string, since: number, limit: number): Promise<DefenceEvent[]> {
    return [...this.#events.values()].filter((e) => e.nationalId === nationalId && e.at >= since).sort((a, b) => b.at - a.at).slice(0, limit).map((e) => ({ ...e, reasons: [...e.reasons] }));
  }

  async overview(since: number, top: number): Promise<JournalOverview> {
    const recent = [...this.#events.values()].filter((e) => e.at >= since);
    const decisions = new Map<string, { kind: EventKind; reasons: string[]; count: number }>();
    const professionals = new Map<string, { nationalId: string; requests: number; pushed: number }>();
    const prefixes = new Map<string, { prefix: string; requests: number; asked: Set<string> }>();
    for (const e of recent) {
      const key = `${e.kind} ${JSON.stringify(e.reasons)}`;
      const decision = decisions.get(key) ?? { kind: e.kind, reasons: [...e.reasons], count: 0 };
      decision.count += e.count;
      decisions.set(key, decision);
      if (!REQUEST_KINDS.includes(e.kind)) continue;
      if (e.nationalId !== null) {
        const pro = professionals.get(e.nationalId) ?? { nationalId: e.nationalId, requests: 0, pushed: 0 };
        pro.requests += e.count;
        if (e.kind === 'push') pro.pushed += e.count;
        professionals.set(e.nationalId, pro);
      }
      if (!e.trusted) {
        const source = prefixes.get(e.prefix) ?? { prefix: e.prefix, requests: 0, asked: new Set<string>() };
        source.requests += e.count;
        if (e.nationalId !== null) source.asked.add(e.nationalId);
        prefixes.set(e.prefix, source);
      }
    }
    return {
      decisions: [...decisions.values()],
      professionals: [...professionals.values()].sort((a, b) => b.requests - a.requests || a.nationalId.localeCompare(b.nationalId)).slice(0, top),
      prefixes: [...prefixes.values()]
        .sort((a, b) => b.requests - a.requests || a.prefix.localeCompare(b.prefix))
        .slice(0, top)
        .map(({ prefix, requests, asked }) => ({ prefix, requests, professionals: asked.size })),
    };
  }

  async heldProfessionals(now: number, limit: number): Promise<ProfessionalState[]> {
    return [...this.#states.values()]
      .filter((s) => s.underAttackUntil > now || s.backoffUntil > now)
      .sort((a, b) => b.underAttackUntil - a.underAttackUntil || b.backoffUntil - a.backoffUntil)
      .slice(0, limit)
      .map((s) => ({ ...s, pushTimes: [...s.pushTimes] }));
  }

  async purge(now: number, keepMs: number): Promise<number> {
    const before = now - keepMs;
    let removed = 0;
    const sweep = <V>(map: Map<string, V>, dead: (v: V) => boolean) => {
      for (const [k, v] of map) if (dead(v)) {
        map.delete(k);
        removed += 1;
      }
    };
    sweep(this.#counters, (v) => v.expiresAt <= now);
    sweep(this.#distinct, (v) => v.expiresAt <= now);
    sweep(this.#flags, (until) => until <= now);
    sweep(this.#blocks, (b) => b.expiresAt < before);
    const keep = <T extends { at: number }>(list: T[]) => {
      const kept = list.filter((x) => x.at >= before);
      removed += list.length - kept.length;
      list.splice(0, list.length, ...kept);
    };
    keep(this.#signals);
    sweep(this.#events, (e) => e.at < before);
    return removed;
  }
}

/**
 * One node's default (no REDIS_URL): the rate counters, distinct-target sets and flags in this
 * process's memory, as Redis holds them for several nodes — the hottest writes of a login, lost
 * on restart like Redis's. What must last (state, blocks, signals, places, settings, journal)
 * stays in SQL (inherited).
 */
export class LocalCountersDefenceStore extends SqlDefenceStore implements DefenceStore {
  readonly #counters = new MemoryDefenceStore();
  constructor(db: Db) {
    super(db);
  }
  override hit(key: string, windowMs: number, now: number): Promise<RateWindow> {
    return this.#counters.hit(key, windowMs, now);
  }
  override peek(key: string, windowMs: number, now: number): Promise<RateWindow> {
    return this.#counters.peek(key, windowMs, now);
  }
  override addDistinct(key: string, member: string, windowMs: number, now: number): Promise<number> {
    return this.#counters.addDistinct(key, member, windowMs, now);
  }
  override setFlag(key: string, until: number): Promise<void> {
    return this.#counters.setFlag(key, until);
  }
  override flag(key: string, now: number): Promise<number | undefined> {
    return this.#counters.flag(key, now);
  }
  override async purge(now: number, keepMs: number): Promise<number> {
    const [inSql, inMemory] = await Promise.all([super.purge(now, keepMs), this.#counters.purge(now, keepMs)]);
    return inSql + inMemory;
  }
}
