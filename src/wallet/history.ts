import type { Db } from '../store/db.ts';
import type { ServiceLookup } from './sessions.ts';
import { formatSortable } from './format.ts';

/**
 * The connection history: every login attempt against a professional, whatever became of it.
 * Two sources, merged newest first:
 * - the `challenge` table: one row per push challenge, with its state, reason, delivery and
 *   requesting context;
 * - the audit log: attempts stopped before any challenge existed, recorded as an event named
 *   `login.<outcome>` with the professional as subject (`login.throttled`, `login.blocked`...).
 * Outcomes are derived by `outcomeOf` and labelled by `OUTCOMES`; an outcome nobody labelled yet
 * still shows up (with its code), so new defences appear in the history without rework.
 */

export interface Attempt {
  /** `c:<challenge id>` or `a:<audit seq>`: stable, used by the report button. */
  key: string;
  at: number;
  clientId: string | null;
  service: string;
  outcome: string;
  /** How the devices were told: `push`, `silent`, `none`... (challenges only). */
  delivery: string | null;
  reason: string | null;
  /** Why the defences held the notification back, in French (silent challenges). */
  detail: string | null;
  ip: string | null;
  browser: string | null;
  place: string | null;
  suspicious: boolean;
}

export interface OutcomeLabel {
  label: string;
  /** A professional should look twice at it. */
  suspicious: boolean;
}

/** The French label of each outcome; unknown outcomes fall back to `unknownOutcome`. */
export const OUTCOMES: Readonly<Record<string, OutcomeLabel>> = {
  approved: { label: 'Approuvée', suspicious: false },
  pending: { label: 'En attente', suspicious: false },
  cancelled: { label: 'Annulée', suspicious: false },
  superseded: { label: 'Remplacée par une nouvelle demande', suspicious: false },
  refused: { label: 'Refusée', suspicious: true },
  not_me: { label: '« Ce n’était pas moi »', suspicious: true },
  expired: { label: 'Expirée sans réponse', suspicious: true },
  wrong_code: { label: 'Mauvais code choisi', suspicious: true },
  device_locked: { label: 'Appareil verrouillé (codes PIN erronés)', suspicious: true },
  silent: { label: 'Sans notification (trop de demandes)', suspicious: true },
  none: { label: 'Aucune e-CPS à notifier', suspicious: true },
  throttled: { label: 'Refusée : trop de demandes depuis ce réseau', suspicious: true },
  blocked: { label: 'Bloquée', suspicious: true },
  refused_by_server: { label: 'Refusée par Vigie', suspicious: true },
  denied: { label: 'Refusée', suspicious: true },
  failed: { label: 'Échouée', suspicious: true },
};

export function unknownOutcome(outcome: string): OutcomeLabel {
  return { label: `Autre issue (${outcome})`, suspicious: true };
}

export function labelOf(outcome: string): OutcomeLabel {
  return OUTCOMES[outcome] ?? unknownOutcome(outcome);
}

export const DELIVERIES: Readonly<Record<string, string>> = {
  push: 'Notification envoyée',
  silent: 'Sans notification (visible à l’ouverture de l’application)',
  none: 'Aucune e-CPS activée',
};

export function deliveryLabel(delivery: string | null): string {
  if (delivery === null) return '—';
  return DELIVERIES[delivery] ?? delivery;
}

/** Why the defences created a challenge silent (src/defence/service.ts `HoldReason`), in French. */
export const HOLDS: Readonly<Record<string, string>> = {
  notifications_off: 'vos notifications sont désactivées',
  quiet_period: 'période sans notification',
  blocked: 'source bloquée',
  reported_source: 'source signalée',
  many_identifiers: 'source visant de nombreux identifiants',
  circuit_breaker: 'protection générale contre une attaque',
  under_attack: 'mode attaque',
  backoff: 'trop de demandes récentes',
  new_country: 'pays inhabituel',
  budget: 'quota quotidien atteint',
  trusted_rate: 'trop de demandes depuis ce navigateur',
};
/** Holds that mean the source was blocked rather than merely quietened. */
export const BLOCKING_HOLDS: ReadonlySet<string> = new Set(['blocked', 'reported_source', 'many_identifiers', 'circuit_breaker']);

/**
 * A challenge's outcome: approval and waiting speak for themselves; otherwise the reason (refused,
 * not_me, wrong_code, superseded, or any reason recorded later); else, for a challenge that was
 * not pushed, how it was delivered (silent — or blocked when a blocking hold silenced it —, none,
 * or any delivery added later); else its final state.
 */
export function outcomeOf(c: { state: string; reason: string | null; delivery: string; holds?: readonly string[] | undefined }): string {
  if (c.state === 'approved' || c.state === 'pending') return c.state;
  if (c.reason && c.reason !== 'cancelled') return c.reason;
  if (c.delivery !== 'push' && c.state === 'expired') {
    if (c.delivery === 'silent' && c.holds?.some((h) => BLOCKING_HOLDS.has(h))) return 'blocked';
    return c.delivery;
  }
  return c.state;
}

/** The audit events that are login attempts without a challenge: `login.<outcome>`. */
export const ATTEMPT_EVENT_PREFIX = 'login.';

/** Events whose outcome depends on their details; any other `login.<x>` has outcome `<x>`. */
const AUDIT_OUTCOMES: Readonly<Record<string, (details: Record<string, unknown>) => string>> = {
  // src/defence/service.ts: the source was refused before any challenge existed.
  'login.refused': (d) => (d.reason === 'source_blocked' ? 'blocked' : d.reason === 'ip_rate' || d.reason === 'prefix_rate' ? 'throttled' : 'refused_by_server'),
};

export function auditOutcome(event: string, details: Record<string, unknown>): string {
  return AUDIT_OUTCOMES[event]?.(details) ?? event.slice(ATTEMPT_EVENT_PREFIX.length);
}

function holdsDetail(holds: unknown): string | null {
  if (!Array.isArray(holds) || holds.length === 0) return null;
  return holds.map((h) => HOLDS[String(h)] ?? String(h)).join(', ');
}

export interface Cursor {
  at: number;
  key: string;
}

export function encodeCursor(c: Cursor): string {
  return `${c.at}.${c.key}`;
}

export function decodeCursor(value: unknown): Cursor | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,16})\.([ca]:[A-Za-z0-9_-]{1,64})$/.exec(value);
  return match ? { at: Number(match[1]), key: match[2] as string } : undefined;
}

/** Newest first: by time, then by key (challenges before audit entries at the same millisecond). */
function after(a: { at: number; key: string }, cursor: Cursor | undefined): boolean {
  if (!cursor) return true;
  return a.at < cursor.at || (a.at === cursor.at && a.key < cursor.key);
}

function compare(a: Attempt, b: Attempt): number {
  return b.at - a.at || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0);
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

export class ConnectionHistory {
  readonly #db: Db;
  readonly #services: ServiceLookup;

  constructor(deps: { db: Db; services: ServiceLookup }) {
    this.#db = deps.db;
    this.#services = deps.services;
  }

  /** One page, newest first, starting after `cursor`; `next` continues with older attempts. */
  async page(nationalId: string, options: { cursor?: Cursor | undefined; limit: number }): Promise<{ attempts: Attempt[]; next: Cursor | undefined }> {
    const { cursor, limit } = options;
    const [challenges, audited] = await Promise.all([this.#challenges(nationalId, cursor, limit + 1), this.#audited(nationalId, cursor, limit + 1)]);
    const merged = [...challenges, ...audited].sort(compare);
    const attempts = merged.slice(0, limit);
    const last = attempts.at(-1);
    return { attempts, next: merged.length > limit && last ? { at: last.at, key: last.key } : undefined };
  }

  /** Everything (up to `max`), for the CSV export. */
  async all(nationalId: string, max = 10_000): Promise<Attempt[]> {
    const out: Attempt[] = [];
    let cursor: Cursor | undefined;
    while (out.length < max) {
      const { attempts, next } = await this.page(nationalId, { cursor, limit: Math.min(500, max - out.length) });
      out.push(...attempts);
      if (!next) break;
      cursor = next;
    }
    return out;
  }

  async #challenges(nationalId: string, cursor: Cursor | undefined, limit: number): Promise<Attempt[]> {
    let query = this.#db.kysely.selectFrom('challenge').select(['id', 'client_id', 'client_name', 'delivery', 'context', 'state', 'reason', 'created_at']).where('national_id', '=', nationalId);
    if (cursor) {
      const id = cursor.key.startsWith('c:') ? cursor.key.slice(2) : undefined;
      // Challenge keys sort after audit keys ('c' > 'a'): at the cursor's millisecond, only older challenge ids remain after a challenge.
      query = id !== undefined
        ? query.where((eb) => eb.or([eb('created_at', '<', cursor.at), eb.and([eb('created_at', '=', cursor.at), eb('id', '<', id)])]))
        : query.where('created_at', '<', cursor.at);
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => {
      const context = JSON.parse(r.context) as Record<string, unknown>;
      const holds = Array.isArray(context.holds) ? context.holds.map(String) : undefined;
      const outcome = outcomeOf({ state: r.state, reason: r.reason, delivery: r.delivery, holds });
      return {
        key: `c:${r.id}`,
        at: r.created_at,
        clientId: r.client_id,
        service: r.client_name,
        outcome,
        delivery: r.delivery,
        reason: r.reason,
        detail: r.delivery === 'silent' ? holdsDetail(holds) : null,
        ip: str(context.ip),
        browser: str(context.browser),
        place: str(context.place),
        suspicious: labelOf(outcome).suspicious,
      };
    });
  }

  async #audited(nationalId: string, cursor: Cursor | undefined, limit: number): Promise<Attempt[]> {
    let query = this.#db.kysely.selectFrom('audit_log').select(['seq', 'at', 'actor', 'event', 'details']).where('subject', '=', nationalId).where('event', 'like', `${ATTEMPT_EVENT_PREFIX}%`);
    if (cursor) query = query.where('at', '<=', cursor.at);
    const rows = await query.orderBy('seq', 'desc').limit(limit * 4).execute();
    const attempts: Attempt[] = [];
    for (const r of rows) {
      const key = `a:${String(r.seq).padStart(12, '0')}`;
      if (!after({ at: r.at, key }, cursor)) continue;
      const details = JSON.parse(r.details) as Record<string, unknown>;
      const outcome = auditOutcome(r.event, details);
      const clientId = str(details.clientId);
      const context = (typeof details.context === 'object' && details.context !== null ? details.context : details) as Record<string, unknown>;
      attempts.push({
        key,
        at: r.at,
        clientId,
        service: str(details.clientName) ?? (clientId ? ((await this.#services(clientId))?.name ?? clientId) : 'Service inconnu'),
        outcome,
        delivery: null,
        reason: str(details.reason) ?? str(details.scope),
        detail: null,
        ip: str(context.ip) ?? (r.actor.startsWith('browser:') ? r.actor.slice('browser:'.length) : null),
        browser: str(context.browser),
        place: str(context.place),
        suspicious: labelOf(outcome).suspicious,
      });
      if (attempts.length >= limit) break;
    }
    return attempts;
  }
}

/** RFC 4180 CSV with `;` (what French spreadsheets expect) and a BOM; formulas are neutralised. */
export function toCsv(attempts: Attempt[]): string {
  const cell = (value: string | null) => {
    let v = value ?? '';
    if (/^[=+\-@\t\r]/.test(v)) v = `'${v}`;
    return /[;"\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
  };
  const header = ['Date (heure de Paris)', 'Service', 'Résultat', 'Code résultat', 'À vérifier', 'Notification', 'Précision', 'Lieu', 'Navigateur', 'Adresse IP', 'Référence'];
  const lines = attempts.map((a) =>
    [formatSortable(a.at), a.service, labelOf(a.outcome).label, a.outcome, a.suspicious ? 'oui' : 'non', deliveryLabel(a.delivery), a.detail, a.place, a.browser, a.ip, a.key].map(cell).join(';'),
  );
  return `\uFEFF${[header.map(cell).join(';'), ...lines].join('\r\n')}\r\n`;
}
