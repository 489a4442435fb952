import type { Db } from '../store/db.ts';
import { prepared } from '../store/prepared.ts';
import type { ContactChangeTable, LogoutDeliveryTable } from '../store/schema.ts';
import type { ContactChange, ContactChangeState, ContactKind } from './contacts.ts';

/**
 * The wallet's storage, one narrow interface per concern, one SQL implementation for SQLite and
 * PostgreSQL. Every state change is a compare-and-set on the current state.
 */

// ---------------------------------------------------------------------------------------------
// Wallet sessions: a professional logged in to /wallet.

export interface WalletSession {
  idHash: string;
  nationalId: string;
  /** oidc-provider's session uid (stable for the life of the provider session). */
  sessionUid: string;
  /** The wallet's `sid` in that session (the ID token's `sid`). */
  sid: string;
  csrf: string;
  /** When the e-CPS approval that opened this wallet session was given (injected clock). */
  authenticatedAt: number;
  createdAt: number;
  expiresAt: number;
}

export interface WalletSessionStore {
  create(session: WalletSession): Promise<void>;
  /** The unexpired session with this id hash. */
  get(idHash: string, now: number): Promise<WalletSession | undefined>;
  delete(idHash: string): Promise<void>;
  deleteBySessionUid(sessionUid: string): Promise<number>;
  deleteByProfessional(nationalId: string): Promise<number>;
  purge(now: number): Promise<number>;
}

export class SqlWalletSessionStore implements WalletSessionStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(s: WalletSession): Promise<void> {
    await this.#db.kysely
      .insertInto('wallet_session')
      .values({ id_hash: s.idHash, national_id: s.nationalId, session_uid: s.sessionUid, sid: s.sid, csrf: s.csrf, authenticated_at: s.authenticatedAt, created_at: s.createdAt, expires_at: s.expiresAt })
      .execute();
  }

  async get(idHash: string, now: number): Promise<WalletSession | undefined> {
    const r = await this.#db.kysely.selectFrom('wallet_session').selectAll().where('id_hash', '=', idHash).where('expires_at', '>', now).executeTakeFirst();
    return r && { idHash: r.id_hash, nationalId: r.national_id, sessionUid: r.session_uid, sid: r.sid, csrf: r.csrf, authenticatedAt: r.authenticated_at, createdAt: r.created_at, expiresAt: r.expires_at };
  }

  async delete(idHash: string): Promise<void> {
    await this.#db.kysely.deleteFrom('wallet_session').where('id_hash', '=', idHash).execute();
  }

  async deleteBySessionUid(sessionUid: string): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('wallet_session').where('session_uid', '=', sessionUid).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteByProfessional(nationalId: string): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('wallet_session').where('national_id', '=', nationalId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async purge(now: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('wallet_session').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

// ---------------------------------------------------------------------------------------------
// Provider session context: where and from what a provider session was opened, last use.

export interface SessionInfo {
  sessionUid: string;
  nationalId: string;
  ip: string | null;
  browser: string | null;
  place: string | null;
  challengeId: string | null;
  createdAt: number;
  lastUsedAt: number;
  lastIp: string | null;
}

export interface LoginContext {
  challengeId: string | null;
  ip: string | null;
  browser: string | null;
  place: string | null;
}

export interface SessionInfoStore {
  /** First use records the login context; later uses move `lastUsedAt` and `lastIp`. */
  record(input: { sessionUid: string; nationalId: string; at: number; ip: string | null; login: LoginContext }): Promise<void>;
  getMany(sessionUids: string[]): Promise<Map<string, SessionInfo>>;
  delete(sessionUid: string): Promise<void>;
  /** Forgets the context of sessions unused since `before`. */
  purge(before: number): Promise<number>;
}

// Run on every authorization, built once (store/prepared.ts).
const recordSessionUse = prepared((db, sessionUid: string, nationalId: string, ip: string | null, browser: string | null, place: string | null, challengeId: string | null, at: number, lastIp: string | null) =>
  db.insertInto('provider_session_info')
    .values({ session_uid: sessionUid, national_id: nationalId, ip, browser, place, challenge_id: challengeId, created_at: at, last_used_at: at, last_ip: lastIp })
    .onConflict((oc) => oc.column('session_uid').doUpdateSet({ last_used_at: at, last_ip: lastIp })),
);

export class SqlSessionInfoStore implements SessionInfoStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async record(input: { sessionUid: string; nationalId: string; at: number; ip: string | null; login: LoginContext }): Promise<void> {
    const { login } = input;
    await recordSessionUse(this.#db, input.sessionUid, input.nationalId, login.ip, login.browser, login.place, login.challengeId, input.at, input.ip);
  }

  async getMany(sessionUids: string[]): Promise<Map<string, SessionInfo>> {
    if (sessionUids.length === 0) return new Map();
    const rows = await this.#db.kysely.selectFrom('provider_session_info').selectAll().where('session_uid', 'in', sessionUids).execute();
    return new Map(
      rows.map((r) => [
        r.session_uid,
        { sessionUid: r.session_uid, nationalId: r.national_id, ip: r.ip, browser: r.browser, place: r.place, challengeId: r.challenge_id, createdAt: r.created_at, lastUsedAt: r.last_used_at, lastIp: r.last_ip },
      ]),
    );
  }

  async delete(sessionUid: string): Promise<void> {
    await this.#db.kysely.deleteFrom('provider_session_info').where('session_uid', '=', sessionUid).execute();
  }

  async purge(before: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('provider_session_info').where('last_used_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

// ---------------------------------------------------------------------------------------------
// Back-channel logout deliveries.

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface LogoutDelivery {
  id: string;
  nationalId: string;
  sessionUid: string | null;
  clientId: string;
  sid: string;
  /** Why the session ended: `wallet`, `wallet_all`, `report`, `contact_change_cancelled`, `rp_logout`... */
  reason: string;
  state: DeliveryState;
  attempts: number;
  /** When the next attempt is due (pending only). */
  nextAttemptAt: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface DeliveryStore {
  create(delivery: LogoutDelivery): Promise<void>;
  get(id: string): Promise<LogoutDelivery | undefined>;
  /** Takes a pending delivery for one attempt (compare-and-set on its due time); false if another node has it. */
  claim(id: string, expectedNextAttemptAt: number | null, leaseUntil: number): Promise<boolean>;
  settle(id: string, fields: { state: DeliveryState; attempts: number; nextAttemptAt: number | null; lastError: string | null; now: number }): Promise<void>;
  due(now: number, limit: number): Promise<LogoutDelivery[]>;
  listRecent(nationalId: string, since: number, limit: number): Promise<LogoutDelivery[]>;
  /** Deletes settled deliveries last changed before `before`. */
  purge(before: number): Promise<number>;
}

function toDelivery(r: LogoutDeliveryTable): LogoutDelivery {
  return {
    id: r.id,
    nationalId: r.national_id,
    sessionUid: r.session_uid,
    clientId: r.client_id,
    sid: r.sid,
    reason: r.reason,
    state: r.state as DeliveryState,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class SqlDeliveryStore implements DeliveryStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(d: LogoutDelivery): Promise<void> {
    await this.#db.kysely
      .insertInto('logout_delivery')
      .values({
        id: d.id,
        national_id: d.nationalId,
        session_uid: d.sessionUid,
        client_id: d.clientId,
        sid: d.sid,
        reason: d.reason,
        state: d.state,
        attempts: d.attempts,
        next_attempt_at: d.nextAttemptAt,
        last_error: d.lastError,
        created_at: d.createdAt,
        updated_at: d.updatedAt,
      })
      .execute();
  }

  async get(id: string): Promise<LogoutDelivery | undefined> {
    const row = await this.#db.kysely.selectFrom('logout_delivery').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toDelivery(row);
  }

  async claim(id: string, expectedNextAttemptAt: number | null, leaseUntil: number): Promise<boolean> {
    let query = this.#db.kysely.updateTable('logout_delivery').set({ next_attempt_at: leaseUntil }).where('id', '=', id).where('state', '=', 'pending');
    query = expectedNextAttemptAt === null ? query.where('next_attempt_at', 'is', null) : query.where('next_attempt_at', '=', expectedNextAttemptAt);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async settle(id: string, f: { state: DeliveryState; attempts: number; nextAttemptAt: number | null; lastError: string | null; now: number }): Promise<void> {
    await this.#db.kysely
      .updateTable('logout_delivery')
      .set({ state: f.state, attempts: f.attempts, next_attempt_at: f.nextAttemptAt, last_error: f.lastError, updated_at: f.now })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .execute();
  }

  async due(now: number, limit: number): Promise<LogoutDelivery[]> {
    const rows = await this.#db.kysely
      .selectFrom('logout_delivery')
      .selectAll()
      .where('state', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .limit(limit)
      .execute();
    return rows.map(toDelivery);
  }

  async listRecent(nationalId: string, since: number, limit: number): Promise<LogoutDelivery[]> {
    const rows = await this.#db.kysely
      .selectFrom('logout_delivery')
      .selectAll()
      .where('national_id', '=', nationalId)
      .where('created_at', '>=', since)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toDelivery);
  }

  async purge(before: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('logout_delivery').where('state', '!=', 'pending').where('updated_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

// ---------------------------------------------------------------------------------------------
// Contact-detail changes.

export interface ContactChangeStore {
  create(change: ContactChange): Promise<void>;
  get(id: string): Promise<ContactChange | undefined>;
  findByCancelHash(cancelHash: string): Promise<ContactChange | undefined>;
  /** Newest first. */
  listRecent(nationalId: string, limit: number): Promise<ContactChange[]>;
  /** Changes requested by a professional since `since` (whatever became of them). */
  countRequestedSince(nationalId: string, since: number): Promise<number>;
  /** Changes of one kind still in progress (waiting for the code or cooling off). */
  listOpen(nationalId: string, kind: ContactKind): Promise<ContactChange[]>;
  /** Compare-and-set from one of `from` to `to`; false when the change was elsewhere. */
  transition(id: string, from: readonly ContactChangeState[], to: ContactChangeState, fields: Partial<Pick<ContactChange, 'confirmedAt' | 'usableAt' | 'settledAt'>>): Promise<boolean>;
  /** Counts one wrong code; returns the new count. */
  recordAttempt(id: string): Promise<number>;
  /** Cooling-off over: the ids of changes due to be applied. */
  due(now: number, limit: number): Promise<ContactChange[]>;
  /** Applies a due change to the directory's contact details in one transaction, once. */
  apply(id: string, now: number): Promise<boolean>;
}

function toChange(r: ContactChangeTable): ContactChange {
  return {
    id: r.id,
    nationalId: r.national_id,
    kind: r.kind as ContactKind,
    oldValue: r.old_value,
    newValue: r.new_value,
    codeHash: r.code_hash,
    attempts: r.attempts,
    cancelHash: r.cancel_hash,
    state: r.state as ContactChangeState,
    createdAt: r.created_at,
    codeExpiresAt: r.code_expires_at,
    confirmedAt: r.confirmed_at,
    usableAt: r.usable_at,
    settledAt: r.settled_at,
  };
}

export class SqlContactChangeStore implements ContactChangeStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(c: ContactChange): Promise<void> {
    await this.#db.kysely
      .insertInto('contact_change')
      .values({
        id: c.id,
        national_id: c.nationalId,
        kind: c.kind,
        old_value: c.oldValue,
        new_value: c.newValue,
        code_hash: c.codeHash,
        attempts: c.attempts,
        cancel_hash: c.cancelHash,
        state: c.state,
        created_at: c.createdAt,
        code_expires_at: c.codeExpiresAt,
        confirmed_at: c.confirmedAt,
        usable_at: c.usableAt,
        settled_at: c.settledAt,
      })
      .execute();
  }

  async get(id: string): Promise<ContactChange | undefined> {
    const row = await this.#db.kysely.selectFrom('contact_change').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toChange(row);
  }

  async findByCancelHash(cancelHash: string): Promise<ContactChange | undefined> {
    const row = await this.#db.kysely.selectFrom('contact_change').selectAll().where('cancel_hash', '=', cancelHash).executeTakeFirst();
    return row && toChange(row);
  }

  async listRecent(nationalId: string, limit: number): Promise<ContactChange[]> {
    const rows = await this.#db.kysely.selectFrom('contact_change').selectAll().where('national_id', '=', nationalId).orderBy('created_at', 'desc').orderBy('id').limit(limit).execute();
    return rows.map(toChange);
  }

  async countRequestedSince(nationalId: string, since: number): Promise<number> {
    const row = await this.#db.kysely
      .selectFrom('contact_change')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('national_id', '=', nationalId)
      .where('created_at', '>=', since)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async listOpen(nationalId: string, kind: ContactKind): Promise<ContactChange[]> {
    const rows = await this.#db.kysely
      .selectFrom('contact_change')
      .selectAll()
      .where('national_id', '=', nationalId)
      .where('kind', '=', kind)
      .where('state', 'in', ['pending_code', 'cooling_off'])
      .execute();
    return rows.map(toChange);
  }

  async transition(id: string, from: readonly ContactChangeState[], to: ContactChangeState, fields: Partial<Pick<ContactChange, 'confirmedAt' | 'usableAt' | 'settledAt'>>): Promise<boolean> {
    const result = await this.#db.kysely
      .updateTable('contact_change')
      .set({
        state: to,
        ...(fields.confirmedAt !== undefined ? { confirmed_at: fields.confirmedAt } : {}),
        ...(fields.usableAt !== undefined ? { usable_at: fields.usableAt } : {}),
        ...(fields.settledAt !== undefined ? { settled_at: fields.settledAt } : {}),
      })
      .where('id', '=', id)
      .where('state', 'in', [...from])
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async recordAttempt(id: string): Promise<number> {
    const row = await this.#db.kysely
      .updateTable('contact_change')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .returning('attempts')
      .executeTakeFirst();
    return row?.attempts ?? Number.MAX_SAFE_INTEGER;
  }

  async due(now: number, limit: number): Promise<ContactChange[]> {
    const rows = await this.#db.kysely
      .selectFrom('contact_change')
      .selectAll()
      .where('state', '=', 'cooling_off')
      .where('usable_at', '<=', now)
      .orderBy('usable_at')
      .limit(limit)
      .execute();
    return rows.map(toChange);
  }

  async apply(id: string, now: number): Promise<boolean> {
    return this.#db.kysely.transaction().execute(async (tx) => {
      const change = await tx.selectFrom('contact_change').selectAll().where('id', '=', id).executeTakeFirst();
      if (!change) return false;
      const won = await tx
        .updateTable('contact_change')
        .set({ state: 'applied', settled_at: now })
        .where('id', '=', id)
        .where('state', '=', 'cooling_off')
        .where('usable_at', '<=', now)
        .executeTakeFirst();
      if (Number(won.numUpdatedRows) !== 1) return false;
      // The directory's contact row is what activation reads: it only ever holds usable contacts.
      const column = change.kind === 'email' ? 'email' : 'mobile';
      const existing = await tx.selectFrom('professional_contact').select('national_id').where('national_id', '=', change.national_id).executeTakeFirst();
      if (existing) {
        await tx.updateTable('professional_contact').set({ [column]: change.new_value, updated_at: now }).where('national_id', '=', change.national_id).execute();
      } else {
        await tx.insertInto('professional_contact').values({ national_id: change.national_id, email: null, mobile: null, [column]: change.new_value, updated_at: now }).execute();
      }
      return true;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Reports ("Signaler une activité suspecte").

export interface Report {
  id: string;
  nationalId: string;
  attempt: string | null;
  comment: string | null;
  sessionsEnded: number;
  createdAt: number;
}

export interface ReportStore {
  create(report: Report): Promise<void>;
  listRecent(options: { nationalId?: string; limit: number }): Promise<Report[]>;
}

export class SqlReportStore implements ReportStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async create(r: Report): Promise<void> {
    await this.#db.kysely
      .insertInto('wallet_report')
      .values({ id: r.id, national_id: r.nationalId, attempt: r.attempt, comment: r.comment, sessions_ended: r.sessionsEnded, created_at: r.createdAt })
      .execute();
  }

  async listRecent(options: { nationalId?: string; limit: number }): Promise<Report[]> {
    let query = this.#db.kysely.selectFrom('wallet_report').selectAll();
    if (options.nationalId) query = query.where('national_id', '=', options.nationalId);
    const rows = await query.orderBy('created_at', 'desc').limit(options.limit).execute();
    return rows.map((r) => ({ id: r.id, nationalId: r.national_id, attempt: r.attempt, comment: r.comment, sessionsEnded: r.sessions_ended, createdAt: r.created_at }));
  }
}
