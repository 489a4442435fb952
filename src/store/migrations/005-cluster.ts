import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * Several nodes (issue 6). On PostgreSQL, one function appends to the audit chain in a single
 * round trip — advisory lock, last entry, hash, insert — instead of five statements in a
 * transaction: the chain stays serialised across nodes and costs far less per login. The hash is
 * the one `entryHash` computes (audit/log.ts): sha256(prev_hash ‖ "\n" ‖ JSON [seq, at, actor,
 * event, subject, details]), the caller passing that JSON without its `seq`. SQLite: nothing to do.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`
    create or replace function vigie_audit_append(p_lock bigint, p_at bigint, p_actor text, p_event text, p_subject text, p_details text, p_tail text)
    returns table(out_seq bigint, out_prev_hash text, out_hash text)
    language plpgsql volatile as $$
    declare
      v_seq bigint;
      v_prev text;
      v_hash text;
    begin
      perform pg_advisory_xact_lock(p_lock);
      -- A statement after the lock: its snapshot sees every entry committed before.
      select a.seq, a.hash into v_seq, v_prev from audit_log a order by a.seq desc limit 1;
      v_seq := coalesce(v_seq, 0) + 1;
      v_prev := coalesce(v_prev, repeat('0', 64));
      v_hash := encode(sha256(convert_to(v_prev || E'\\n' || '[' || v_seq::text || ',' || substr(p_tail, 2), 'UTF8')), 'hex');
      insert into audit_log (seq, at, actor, event, subject, details, prev_hash, hash)
        values (v_seq, p_at, p_actor, p_event, p_subject, p_details, v_prev, v_hash);
      return query select v_seq, v_prev, v_hash;
    end
    $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`drop function if exists vigie_audit_append(bigint, bigint, text, text, text, text, text)`.execute(db);
}
