import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../store/db.ts';
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
  /** Walks the chain; returns the first entry whose hash or link does not match, if any. */
  verify(): Promise<{ ok: true; entries: number } | { ok: false; entries: number; brokenAt: number; reason: string }>;
}

// Serialises appenders on PostgreSQL; SQLite transactions are already exclusive.
const CHAIN_LOCK = 0x76696769;

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
    return this.#db.kysely.transaction().execute(async (tx) => {
      if (this.#db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(tx);
      const last = await tx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const base = {
        seq: (last?.seq ?? 0) + 1,
        at: this.#clock.now(),
        actor: input.actor,
        event: input.event,
        subject: input.subject ?? null,
        details: input.details ?? {},
      };
      const prevHash = last?.hash ?? GENESIS_HASH;
      const entry: AuditEntry = { ...base, prevHash, hash: entryHash(prevHash, base) };
      await tx
        .insertInto('audit_log')
        .values({ seq: entry.seq, at: entry.at, actor: entry.actor, event: entry.event, subject: entry.subject, details: JSON.stringify(entry.details), prev_hash: prevHash, hash: entry.hash })
        .execute();
      return entry;
    });
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

  async verify() {
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    let entries = 0;
    for (;;) {
      const page = await this.list({ afterSeq: expectedSeq - 1, limit: 1000 });
      for (const e of page) {
        if (e.seq !== expectedSeq) return { ok: false as const, entries, brokenAt: expectedSeq, reason: 'missing entry' };
        if (e.prevHash !== prevHash) return { ok: false as const, entries, brokenAt: e.seq, reason: 'link to the previous entry does not match' };
        if (entryHash(prevHash, e) !== e.hash) return { ok: false as const, entries, brokenAt: e.seq, reason: 'content does not match its hash' };
        prevHash = e.hash;
        expectedSeq += 1;
        entries += 1;
      }
      if (page.length < 1000) return { ok: true as const, entries };
    }
  }
}
