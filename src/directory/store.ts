import { sql } from 'kysely';
import type { Db } from '../store/db.ts';
import type { ContactTable, ProfessionalTable } from '../store/schema.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import { ACTIVITY_FIELDS } from './extract.ts';
import type { Activity, Contacts, Exercise, Professional } from './model.ts';

/** Storage of the directory: public professional records and their private contact details. */
export interface DirectoryStore {
  /** Inserts or replaces the records, in one transaction: all of them or none. */
  upsertProfessionals(list: Professional[]): Promise<void>;
  get(nationalId: string): Promise<Professional | undefined>;
  /** Inserts or replaces the contact details, in one transaction: all of them or none. */
  upsertContacts(list: Contacts[]): Promise<void>;
  getContacts(nationalId: string): Promise<Contacts | undefined>;
  count(): Promise<{ professionals: number; contacts: number }>;
}

/**
 * Rows per INSERT statement. 500 rows × 7 columns = 3,500 bound parameters, far below both
 * PostgreSQL's 65,535 and SQLite's 32,766 limits, and large enough to amortise round trips.
 */
const ROWS_PER_STATEMENT = 500;

/**
 * A login reads its professional four times within a second (login page, session, ID token,
 * userinfo) and the directory changes by imports: each node keeps a record this long. An import
 * by this process is seen at once; one by another process (`vigie directory import`) within it.
 */
const PROFESSIONAL_CACHE_MS = 5000;
const PROFESSIONAL_CACHE_SIZE = 10_000;

/**
 * One SQL implementation for SQLite and PostgreSQL. An upsert only rewrites a row whose content
 * changed (`IS DISTINCT FROM`, supported by both), so `updated_at` means "last changed" and
 * re-importing an unchanged national file writes nothing.
 */
export class SqlDirectoryStore implements DirectoryStore {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #cache = new Map<string, { professional: Professional | undefined; until: number }>();

  constructor(db: Db, clock: Clock = systemClock) {
    this.#db = db;
    this.#clock = clock;
  }

  async upsertProfessionals(list: Professional[]): Promise<void> {
    if (list.length === 0) return;
    const now = this.#clock.now();
    // PostgreSQL refuses an upsert that touches the same row twice: the last record of an id wins.
    const rows = [...lastById(list, (p) => p.nationalId).values()].map((p): ProfessionalTable => ({
      national_id: p.nationalId,
      id_type: p.idType,
      identifier: p.identifier,
      family_name: p.familyName,
      given_name: p.givenName,
      exercises: packExercises(p.exercises),
      updated_at: now,
    }));
    await this.#db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        await trx
          .insertInto('professional')
          .values(rows.slice(i, i + ROWS_PER_STATEMENT))
          .onConflict((oc) =>
            oc
              .column('national_id')
              .doUpdateSet((eb) => ({
                id_type: eb.ref('excluded.id_type'),
                identifier: eb.ref('excluded.identifier'),
                family_name: eb.ref('excluded.family_name'),
                given_name: eb.ref('excluded.given_name'),
                exercises: eb.ref('excluded.exercises'),
                updated_at: eb.ref('excluded.updated_at'),
              }))
              .where(
                sql<boolean>`(professional.id_type, professional.identifier, professional.family_name, professional.given_name, professional.exercises)
                  is distinct from (excluded.id_type, excluded.identifier, excluded.family_name, excluded.given_name, excluded.exercises)`,
              ),
          )
          .execute();
      }
    });
    this.#cache.clear();
  }

  async get(nationalId: string): Promise<Professional | undefined> {
    const now = Date.now();
    const cached = this.#cache.get(nationalId);
    if (cached && cached.until > now) return cached.professional;
    // Frozen: callers share the cached record, and a change to it would throw instead of leaking.
    const professional = deepFreeze(await this.#read(nationalId));
    if (this.#cache.size >= PROFESSIONAL_CACHE_SIZE) this.#cache.clear();
    this.#cache.set(nationalId, { professional, until: now + PROFESSIONAL_CACHE_MS });
    return professional;
  }

  async #read(nationalId: string): Promise<Professional | undefined> {
    const row = await this.#db.kysely.selectFrom('professional').selectAll().where('national_id', '=', nationalId).executeTakeFirst();
    if (!row) return undefined;
    return {
      nationalId: row.national_id,
      idType: row.id_type,
      identifier: row.identifier,
      familyName: row.family_name,
      givenName: row.given_name,
      exercises: unpackExercises(row.exercises),
    };
  }

  async upsertContacts(list: Contacts[]): Promise<void> {
    if (list.length === 0) return;
    const now = this.#clock.now();
    const rows = [...lastById(list, (c) => c.nationalId).values()].map((c): ContactTable => ({
      national_id: c.nationalId,
      email: c.email,
      mobile: c.mobile,
      updated_at: now,
    }));
    await this.#db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        await trx
          .insertInto('professional_contact')
          .values(rows.slice(i, i + ROWS_PER_STATEMENT))
          .onConflict((oc) =>
            oc
              .column('national_id')
              .doUpdateSet((eb) => ({
                email: eb.ref('excluded.email'),
                mobile: eb.ref('excluded.mobile'),
                updated_at: eb.ref('excluded.updated_at'),
              }))
              .where(
                sql<boolean>`(professional_contact.email, professional_contact.mobile) is distinct from (excluded.email, excluded.mobile)`,
              ),
          )
          .execute();
      }
    });
  }

  async getContacts(nationalId: string): Promise<Contacts | undefined> {
    const row = await this.#db.kysely
      .selectFrom('professional_contact')
      .select(['national_id', 'email', 'mobile'])
      .where('national_id', '=', nationalId)
      .executeTakeFirst();
    return row ? { nationalId: row.national_id, email: row.email, mobile: row.mobile } : undefined;
  }

  async count(): Promise<{ professionals: number; contacts: number }> {
    const [professionals, contacts] = await Promise.all([
      this.#db.kysely.selectFrom('professional').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow(),
      this.#db.kysely.selectFrom('professional_contact').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow(),
    ]);
    // COUNT is a bigint on PostgreSQL (a string unless parsed) and an integer on SQLite.
    return { professionals: Number(professionals.n), contacts: Number(contacts.n) };
  }
}

/**
 * Exercises are stored as JSON with the empty activity fields left out: most of the 34 are empty,
 * and dropping them halves the text written for the ~2 million national rows. Reading restores
 * every field (empty when absent), including fields added to the model after a record was stored.
 */
function packExercises(exercises: readonly Exercise[]): string {
  return JSON.stringify(
    exercises.map((e) => ({
      ...e,
      activities: e.activities.map((a) => {
        const packed: Partial<Activity> = {};
        for (const field of ACTIVITY_FIELDS) if (a[field]) packed[field] = a[field];
        return packed;
      }),
    })),
  );
}

function unpackExercises(json: string): Exercise[] {
  const exercises = JSON.parse(json) as (Omit<Exercise, 'activities'> & { activities: Partial<Activity>[] })[];
  return exercises.map((e) => ({
    ...e,
    activities: e.activities.map((packed) => {
      const activity = {} as Activity;
      for (const field of ACTIVITY_FIELDS) activity[field] = packed[field] ?? '';
      return activity;
    }),
  }));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function lastById<T>(list: readonly T[], id: (item: T) => string): Map<string, T> {
  const map = new Map<string, T>();
  for (const item of list) {
    const key = id(item);
    // SQLite lets NULL into a TEXT primary key: refuse it here, for both backends alike.
    if (typeof key !== 'string' || key === '') throw new TypeError('directory: a record without a national identifier cannot be stored');
    map.set(key, item);
  }
  return map;
}
