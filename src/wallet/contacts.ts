import type { AuditLog } from '../audit/log.ts';
import type { DirectoryStore } from '../directory/store.ts';
import { normaliseEmail, normaliseMobile } from '../directory/contacts.ts';
import type { Contacts } from '../directory/model.ts';
import type { Clock } from '../lib/clock.ts';
import { constantTimeEqual, keyedHash, randomDigits, randomId, sha256Base64url } from '../lib/crypto.ts';
import { commonErrors } from '../lib/errors.ts';
import { formatLongDateTime, formatMobile, maskContact } from './format.ts';
import type { ContactMessage, ContactNotifier } from './notifier.ts';
import type { ContactChangeStore } from './store.ts';
import { walletErrors } from './errors.ts';

/**
 * A change of the email or mobile used to activate the e-CPS: they are an activation path, so a
 * change needs a fresh e-CPS approval, a code sent to the new contact, a notice with a cancel
 * link to the old one, and a cooling-off delay before the directory (which activation reads)
 * holds the new value.
 */
export type ContactKind = 'email' | 'mobile';

export const CONTACT_CHANGE_STATES = ['pending_code', 'cooling_off', 'applied', 'cancelled', 'expired', 'failed', 'superseded'] as const;
export type ContactChangeState = (typeof CONTACT_CHANGE_STATES)[number];

/** The legal transitions, in one place; the store applies each as a compare-and-set. */
export const CONTACT_TRANSITIONS: Readonly<Record<ContactChangeState, readonly ContactChangeState[]>> = {
  pending_code: ['cooling_off', 'cancelled', 'expired', 'failed', 'superseded'],
  cooling_off: ['applied', 'cancelled', 'superseded'],
  applied: [],
  cancelled: [],
  expired: [],
  failed: [],
  superseded: [],
};

/** The states from which `to` may be reached, optionally narrowed to `among`. */
export function legalFrom(to: ContactChangeState, among: readonly ContactChangeState[] = CONTACT_CHANGE_STATES): ContactChangeState[] {
  return among.filter((from) => CONTACT_TRANSITIONS[from].includes(to));
}

export interface ContactChange {
  id: string;
  nationalId: string;
  kind: ContactKind;
  oldValue: string | null;
  newValue: string;
  codeHash: string;
  attempts: number;
  cancelHash: string;
  state: ContactChangeState;
  createdAt: number;
  codeExpiresAt: number;
  confirmedAt: number | null;
  /** End of the cooling-off delay: from then on the new contact is in the directory. */
  usableAt: number | null;
  settledAt: number | null;
}

export interface ContactChangeOptions {
  codeKey: Buffer;
  coolingOffMs: number;
  codeTtlMs: number;
  /** How recent the e-CPS approval must be to request a change. */
  stepUpMs: number;
  /** The public URL of a cancel link. */
  cancelUrl: (token: string) => string;
  maxCodeAttempts?: number;
  /** Requests per professional per hour: each one sends two messages. */
  changesPerHour?: number;
}

export interface ContactChangeDeps {
  store: ContactChangeStore;
  directory: DirectoryStore;
  notifier: ContactNotifier;
  audit: AuditLog;
  clock: Clock;
  /** Ends every session of the professional (used when the old contact cancels a change). */
  endAllSessions: (nationalId: string, how: { actor: string; reason: string }) => Promise<{ sessionsEnded: number }>;
}

const CODE_DIGITS = 6;
const HOUR_MS = 3600_000;

export function normaliseContact(kind: ContactKind, input: string): string {
  const value = kind === 'email' ? normaliseEmail(input) : normaliseMobile(input);
  if (!value) throw kind === 'email' ? walletErrors.CONTACT_INVALID_EMAIL() : walletErrors.CONTACT_INVALID_MOBILE();
  return value;
}

export class ContactChangeService {
  readonly #deps: ContactChangeDeps;
  readonly #options: Required<ContactChangeOptions>;

  constructor(deps: ContactChangeDeps, options: ContactChangeOptions) {
    this.#deps = deps;
    this.#options = { maxCodeAttempts: 5, changesPerHour: 3, ...options };
  }

  get coolingOffMs(): number {
    return this.#options.coolingOffMs;
  }

  get codeTtlMs(): number {
    return this.#options.codeTtlMs;
  }

  /** True while the e-CPS approval behind a wallet session is recent enough to change contacts. */
  isFresh(authenticatedAt: number): boolean {
    return this.#deps.clock.now() - authenticatedAt <= this.#options.stepUpMs;
  }

  async list(nationalId: string): Promise<ContactChange[]> {
    await this.applyDue();
    return this.#deps.store.listRecent(nationalId, 20);
  }

  /** The contacts activation may use now: the directory's, once due changes are applied. */
  async usableContacts(nationalId: string): Promise<Contacts | undefined> {
    await this.applyDue();
    return this.#deps.directory.getContacts(nationalId);
  }

  /** Step 1: needs an approval younger than the step-up window; sends the code and the notice. */
  async request(input: { nationalId: string; kind: ContactKind; value: string; authenticatedAt: number; actor: string }): Promise<ContactChange> {
    const { store, directory, audit, clock } = this.#deps;
    if (!this.isFresh(input.authenticatedAt)) throw walletErrors.CONTACT_STEP_UP_REQUIRED();
    const newValue = normaliseContact(input.kind, input.value);
    const current = await directory.getContacts(input.nationalId);
    const oldValue = (input.kind === 'email' ? current?.email : current?.mobile) ?? null;
    if (oldValue === newValue) throw walletErrors.CONTACT_UNCHANGED();
    const now = clock.now();

    const code = randomDigits(CODE_DIGITS);
    const cancelToken = randomId(32);
    const change: ContactChange = {
      id: randomId(),
      nationalId: input.nationalId,
      kind: input.kind,
      oldValue,
      newValue,
      codeHash: '',
      attempts: 0,
      cancelHash: sha256Base64url(cancelToken),
      state: 'pending_code',
      createdAt: now,
      codeExpiresAt: now + this.#options.codeTtlMs,
      confirmedAt: null,
      usableAt: null,
      settledAt: null,
    };
    change.codeHash = this.#hashCode(change.id, code);
    // Insert, then count (this one included): racing requests over the limit all lose, and
    // nothing has been sent or superseded for a refused one.
    await store.create(change);
    if ((await store.countRequestedSince(input.nationalId, now - HOUR_MS)) > this.#options.changesPerHour) {
      await store.transition(change.id, ['pending_code'], 'failed', { settledAt: now });
      await audit.append({ actor: input.actor, event: 'contact_change.throttled', subject: input.nationalId, details: { changeId: change.id, kind: input.kind } });
      throw walletErrors.CONTACT_RATE_LIMITED({ headers: { 'retry-after': String(HOUR_MS / 1000) } });
    }

    // One change of a kind at a time: a new request replaces the one in progress.
    for (const open of await store.listOpen(input.nationalId, input.kind)) {
      if (open.id === change.id) continue;
      if (await store.transition(open.id, legalFrom('superseded', [open.state]), 'superseded', { settledAt: now })) {
        await audit.append({ actor: input.actor, event: 'contact_change.superseded', subject: input.nationalId, details: { changeId: open.id, kind: open.kind, by: 'new_request' } });
      }
    }
    await audit.append({
      actor: input.actor,
      event: 'contact_change.requested',
      subject: input.nationalId,
      details: { changeId: change.id, kind: input.kind, newValue: maskContact(input.kind, newValue), approvalAgeSeconds: Math.round((now - input.authenticatedAt) / 1000) },
    });

    // The notice goes to the contact being replaced, or to the other one when there is none.
    const noticeTo: { channel: ContactMessage['channel']; to: string } | undefined =
      oldValue ? { channel: input.kind === 'email' ? 'email' : 'sms', to: oldValue }
      : input.kind === 'email' && current?.mobile ? { channel: 'sms', to: current.mobile }
      : input.kind === 'mobile' && current?.email ? { channel: 'email', to: current.email }
      : undefined;

    try {
      await this.#deps.notifier.send(codeMessage(change, code, this.#options.codeTtlMs));
      await audit.append({ actor: 'system', event: 'contact_change.code_sent', subject: input.nationalId, details: { changeId: change.id, channel: input.kind === 'email' ? 'email' : 'sms', to: maskContact(input.kind, newValue) } });
      if (noticeTo) {
        await this.#deps.notifier.send(noticeMessage(change, noticeTo, this.#options.cancelUrl(cancelToken), now + this.#options.coolingOffMs));
        await audit.append({ actor: 'system', event: 'contact_change.notice_sent', subject: input.nationalId, details: { changeId: change.id, channel: noticeTo.channel, to: maskContact(noticeTo.channel === 'email' ? 'email' : 'mobile', noticeTo.to) } });
      } else {
        await audit.append({ actor: 'system', event: 'contact_change.notice_skipped', subject: input.nationalId, details: { changeId: change.id, reason: 'no_previous_contact' } });
      }
    } catch (error) {
      // Fail closed: without the code and the notice, the change must not go on.
      await store.transition(change.id, ['pending_code'], 'failed', { settledAt: clock.now() });
      await audit.append({ actor: 'system', event: 'contact_change.failed', subject: input.nationalId, details: { changeId: change.id, reason: 'message_not_sent' } });
      throw commonErrors.UNAVAILABLE({ message: 'Le message n’a pas pu être envoyé. Réessayez dans un instant.', cause: error });
    }
    return change;
  }

  /** Step 2: the code received on the new contact starts the cooling-off delay. */
  async confirm(input: { nationalId: string; id: string; code: string; actor: string }): Promise<ContactChange> {
    const { store, audit, clock } = this.#deps;
    const change = await this.#own(input.nationalId, input.id);
    if (change.state !== 'pending_code') throw walletErrors.CONTACT_CHANGE_NOT_PENDING();
    const now = clock.now();
    if (change.codeExpiresAt <= now) {
      if (await store.transition(change.id, ['pending_code'], 'expired', { settledAt: now })) {
        await audit.append({ actor: 'system', event: 'contact_change.expired', subject: input.nationalId, details: { changeId: change.id } });
      }
      throw walletErrors.CONTACT_CODE_EXPIRED();
    }
    const code = input.code.replace(/\s/g, '');
    if (!/^\d{6}$/.test(code) || !constantTimeEqual(this.#hashCode(change.id, code), change.codeHash)) {
      const attempts = await store.recordAttempt(change.id);
      await audit.append({ actor: input.actor, event: 'contact_change.code_wrong', subject: input.nationalId, details: { changeId: change.id, attempts } });
      if (attempts >= this.#options.maxCodeAttempts) {
        if (await store.transition(change.id, ['pending_code'], 'failed', { settledAt: now })) {
          await audit.append({ actor: 'system', event: 'contact_change.failed', subject: input.nationalId, details: { changeId: change.id, reason: 'too_many_attempts' } });
        }
        throw walletErrors.CONTACT_TOO_MANY_ATTEMPTS();
      }
      throw walletErrors.CONTACT_CODE_WRONG();
    }
    const usableAt = now + this.#options.coolingOffMs;
    if (!(await store.transition(change.id, ['pending_code'], 'cooling_off', { confirmedAt: now, usableAt }))) throw walletErrors.CONTACT_CHANGE_NOT_PENDING();
    await audit.append({ actor: input.actor, event: 'contact_change.confirmed', subject: input.nationalId, details: { changeId: change.id, kind: change.kind, usableAt } });
    return { ...change, state: 'cooling_off', confirmedAt: now, usableAt };
  }

  /** The professional withdraws their own request from the wallet. */
  async cancelByOwner(input: { nationalId: string; id: string; actor: string }): Promise<void> {
    const change = await this.#own(input.nationalId, input.id);
    const now = this.#deps.clock.now();
    if (!(await this.#deps.store.transition(change.id, legalFrom('cancelled', [change.state]), 'cancelled', { settledAt: now }))) throw walletErrors.CONTACT_CHANGE_NOT_PENDING();
    await this.#deps.audit.append({ actor: input.actor, event: 'contact_change.cancelled', subject: input.nationalId, details: { changeId: change.id, by: 'owner' } });
  }

  /** The change behind a cancel link (for the confirmation page). */
  async byCancelToken(token: string): Promise<ContactChange> {
    const change = token.length >= 20 && token.length <= 100 ? await this.#deps.store.findByCancelHash(sha256Base64url(token)) : undefined;
    if (!change) throw walletErrors.CONTACT_CANCEL_LINK_INVALID();
    return change;
  }

  /**
   * The old contact's "this was not me": cancels the change and, since someone changed contacts in
   * the professional's name, ends every session (an attacker's included).
   */
  async cancelByLink(token: string, actor: string): Promise<{ outcome: 'cancelled'; sessionsEnded: number } | { outcome: 'too_late' | 'already_settled'; change: ContactChange }> {
    await this.applyDue();
    const change = await this.byCancelToken(token);
    const now = this.#deps.clock.now();
    if (!(await this.#deps.store.transition(change.id, legalFrom('cancelled', ['pending_code', 'cooling_off']), 'cancelled', { settledAt: now }))) {
      const current = (await this.#deps.store.get(change.id)) ?? change;
      return { outcome: current.state === 'applied' ? 'too_late' : 'already_settled', change: current };
    }
    await this.#deps.audit.append({ actor, event: 'contact_change.cancelled', subject: change.nationalId, details: { changeId: change.id, by: 'cancel_link', state: change.state } });
    const { sessionsEnded } = await this.#deps.endAllSessions(change.nationalId, { actor, reason: 'contact_change_cancelled' });
    return { outcome: 'cancelled', sessionsEnded };
  }

  /** Moves every change whose cooling-off is over into the directory. */
  async applyDue(): Promise<number> {
    const now = this.#deps.clock.now();
    let applied = 0;
    for (const change of await this.#deps.store.due(now, 100)) {
      if (!(await this.#deps.store.apply(change.id, now))) continue;
      applied += 1;
      await this.#deps.audit.append({ actor: 'system', event: 'contact_change.applied', subject: change.nationalId, details: { changeId: change.id, kind: change.kind, newValue: maskContact(change.kind, change.newValue) } });
    }
    return applied;
  }

  async #own(nationalId: string, id: string): Promise<ContactChange> {
    const change = await this.#deps.store.get(id);
    if (!change || change.nationalId !== nationalId) throw walletErrors.CONTACT_CHANGE_NOT_FOUND();
    return change;
  }

  #hashCode(changeId: string, code: string): string {
    return keyedHash(this.#options.codeKey, `contact-change:${changeId}`, code);
  }
}

const SIGNATURE = '\n--\nVigie — Connexion des professionnels de santé\nCe message est automatique, merci de ne pas y répondre.';

function codeMessage(change: ContactChange, code: string, ttlMs: number): ContactMessage {
  const minutes = Math.round(ttlMs / 60_000);
  if (change.kind === 'mobile') {
    return { channel: 'sms', to: change.newValue, subject: '', text: `Vigie : code de confirmation de votre nouveau mobile : ${code} (valable ${minutes} min). Ne le communiquez à personne.` };
  }
  return {
    channel: 'email',
    to: change.newValue,
    subject: 'Confirmez votre nouvelle adresse e-mail',
    text: [
      'Bonjour,',
      '',
      'Pour confirmer cette adresse comme nouvelle adresse e-mail de votre compte Vigie, saisissez ce code dans votre portefeuille :',
      '',
      `    ${code}`,
      '',
      `Ce code est valable ${minutes} minutes. Vous n’avez rien demandé ? Ignorez ce message.`,
      SIGNATURE,
    ].join('\n'),
  };
}

function noticeMessage(change: ContactChange, to: { channel: ContactMessage['channel']; to: string }, cancelUrl: string, usableAt: number): ContactMessage {
  const what = change.kind === 'email' ? 'adresse e-mail' : 'numéro de mobile';
  const shown = change.kind === 'email' ? maskContact('email', change.newValue) : maskContact('mobile', formatMobile(change.newValue));
  if (to.channel === 'sms') {
    return { channel: 'sms', to: to.to, subject: '', text: `Vigie : une demande de changement de votre ${what} a été faite. Si ce n'est pas vous, annulez-la : ${cancelUrl}` };
  }
  return {
    channel: 'email',
    to: to.to,
    subject: `Changement de votre ${what} Vigie`,
    text: [
      'Bonjour,',
      '',
      `Une demande de changement de votre ${what} vient d’être faite depuis votre portefeuille Vigie (nouvelle valeur : ${shown}).`,
      `Si elle est confirmée, elle pourra servir à activer une e-CPS à partir du ${formatLongDateTime(usableAt)}.`,
      '',
      'C’est vous ? Vous n’avez rien à faire.',
      '',
      'Ce n’était pas vous : annulez ce changement en ouvrant ce lien. Toutes vos sessions seront fermées par précaution :',
      cancelUrl,
      SIGNATURE,
    ].join('\n'),
  };
}
