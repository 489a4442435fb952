import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../store/db.ts';
import { prepared } from '../store/prepared.ts';
import type { Clock } from '../lib/clock.ts';

export interface AuditEntry {
  seq: number;
  at: number;
  actor: string;
  event: string;
  subject: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditInput {
  /** Who acted: `system`, `operator`, `device:<id>`, `browser:<ip>`. */
  actor: string;
  event: string;
  /** The professional concerned (national identifier), when there is one. */
  subject?: string | null;
  details?: Record<string, unknown>;
}

export const GENESIS_HASH = '0'.repeat(64);

export function entryHash(prevHash: string, e: Omit<AuditEntry, 'hash' | 'prevHash'>): string {
  const canonical = JSON.stringify([e.seq, e.at, e.actor, e.event, e.subject, e.details]);
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

export interface AuditLog {
  append(input: AuditInput): Promise<AuditEntry>;
  list(options?: { subject?: string; afterSeq?: number; limit?: number }): Promise<AuditEntry[]>;
  /**
   * Walks the chain; returns the first entry whose hash or link does not match, if any. The chain
   * alone cannot show entries deleted from its end, nor a chain rewritten from some entry on by
   * someone who can write the table: `expect`, a head recorded earlier outside the database
   * (`head()`, `vigie audit head`), must still be there, unchanged.
   */
  verify(options?: { expect?: AuditHead }): Promise<{ ok: true; entries: number } | { ok: false; entries: number; brokenAt: number; reason: string }>;
  /** The last entry's sequence number and hash, to record outside the database. */
  head(): Promise<AuditHead | undefined>;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

// Serialises appenders on PostgreSQL (vigie_audit_append takes it).
const CHAIN_LOCK = 0x76696769;
/** Appends by other processes between two of ours are rare (operator commands): a few retries do. */
const MAX_APPEND_ATTEMPTS = 10;

/** The chain's last entry as this process knows it, and the queue of its appends, per SQLite database. */
interface ChainState {
  head: { seq: number; hash: string } | undefined;
  queue: Promise<unknown>;
}
const chains = new WeakMap<Db, ChainState>();
function chainOf(db: Db): ChainState {
  let chain = chains.get(db);
  if (!chain) chains.set(db, (chain = { head: undefined, queue: Promise.resolve() }));
  return chain;
}

const insertEntry = prepared((db, seq: number, at: number, actor: string, event: string, subject: string | null, details: string, prevHash: string, hash: string) =>
  db.insertInto('audit_log').values({ seq, at, actor, event, subject, details, prev_hash: prevHash, hash }),
);

/** node:sqlite's error for a UNIQUE / PRIMARY KEY violation on audit_log.seq. */
function isSeqTaken(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && (errcode & 0xff) === 19 && error instanceof Error && error.message.includes('audit_log.seq');
}

/**
 * Append-only, hash-chained log: each entry carries the hash of the previous one, so editing or
 * deleting any row breaks every later link and `verify` names the first broken entry.
 */
export class SqlAuditLog implements AuditLog {
  readonly #db: Db;
  readonly #clock: Clock;
  constructor(db: Db, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async append(input: AuditInput): Promise<AuditEntry> {
    if (this.#db.dialect === 'postgres') return this.#appendOnPostgres(input);
    // One append at a time per database in this process, so they never race each other.
    const chain = chainOf(this.#db);
    const appended = chain.queue.then(() => this.#appendOnSqlite(chain, input));
    chain.queue = appended.catch(() => undefined);
    return appended;
  }

  /**
   * One INSERT after the chain's head known to this process. Another process (an operator
   * command) may have appended meanwhile: the entry's seq is then taken, the insert fails, and the
   * head is read again. A head read from the table never skips a row this process wrote.
   */
  async #appendOnSqlite(chain: ChainState, input: AuditInput): Promise<AuditEntry> {
    for (let attempt = 1; ; attempt += 1) {
      chain.head ??= (await this.head()) ?? { seq: 0, hash: GENESIS_HASH };
      const base = {
        seq: chain.head.seq + 1,
        at: this.#clock.now(),
        actor: input.actor,
        event: input.event,
        subject: input.subject ?? null,
        details: input.details ?? {},
      };
      const prevHash = chain.head.hash;
      const entry: AuditEntry = { ...base, prevHash, hash: entryHash(prevHash, base) };
      try {
        await insertEntry(this.#db, entry.seq, entry.at, entry.actor, entry.event, entry.subject, JSON.stringify(entry.details), prevHash, entry.hash);
      } catch (error) {
        chain.head = undefined;
        if (isSeqTaken(error) && attempt < MAX_APPEND_ATTEMPTS) continue;
        throw error;
      }
      chain.head = { seq: entry.seq, hash: entry.hash };
      return entry;
    }
  }

  /** One round trip: vigie_audit_append (migration 005-cluster) locks, links, hashes and inserts. */
  async #appendOnPostgres(input: AuditInput): Promise<AuditEntry> {
    const at = this.#clock.now();
    const subject = input.subject ?? null;
    const details = input.details ?? {};
    // entryHash's JSON without the seq, which only the database knows: `[at,actor,event,subject,details]`.
    const tail = JSON.stringify([at, input.actor, input.event, subject, details]);
    const { rows } = await sql<{ out_seq: number; out_prev_hash: string; out_hash: string }>`
      select * from vigie_audit_append(${CHAIN_LOCK}, ${at}, ${input.actor}, ${input.event}, ${subject}, ${JSON.stringify(details)}, ${tail})`.execute(this.#db.kysely);
    const row = rows[0]!;
    return { seq: Number(row.out_seq), at, actor: input.actor, event: input.event, subject, details, prevHash: row.out_prev_hash, hash: row.out_hash };
  }

  async list(options: { subject?: string; afterSeq?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    let query = this.#db.kysely.selectFrom('audit_log').selectAll().where('seq', '>', options.afterSeq ?? 0);
    if (options.subject) query = query.where('subject', '=', options.subject);
    const rows = await query.orderBy('seq').limit(options.limit ?? 1000).execute();
    return rows.map((r) => ({ seq: r.seq, at: r.at, actor: r.actor, event: r.event, subject: r.subject, details: JSON.parse(r.details) as Record<string, unknown>, prevHash: r.prev_hash, hash: r.hash }));
  }

  async verify(options: { expect?: AuditHead } = {}) {
    const { expect } = options;
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    let entries = 0;
    for (;;) {
      const page = await this.list({ afterSeq: expectedSeq - 1, limit: 1000 });
      for (const e of page) {
        if (e.seq !== expectedSeq) return { ok: false as const, entries, brokenAt: expectedSeq, reason: 'missing entry' };
        if (e.prevHash !== prevHash) return { ok: false as const, entries, brokenAt: e.seq, reason: 'link to the previous entry does not match' };
        if (entryHash(prevHash, e) !== e.hash) return { ok: false as const, entries, brokenAt: e.seq, reason: 'content does not match its hash' };
        if (expect?.seq === e.seq && expect.hash !== e.hash) return { ok: false as const, entries, brokenAt: e.seq, reason: 'differs from the head recorded earlier: the chain was rewritten from here or before' };
        prevHash = e.hash;
        expectedSeq += 1;
        entries += 1;
      }
      if (page.length < 1000) break;
    }
    if (expect && expect.seq > entries) return { ok: false as const, entries, brokenAt: expect.seq, reason: 'the head recorded earlier is gone: entries were deleted from the end' };
    return { ok: true as const, entries };
  }

  async head(): Promise<AuditHead | undefined> {
    return this.#db.kysely.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  }
}
