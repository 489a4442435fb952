import type Provider from 'oidc-provider';
import type { AuditLog } from '../audit/log.ts';
import type { Clock } from '../lib/clock.ts';
import { randomId } from '../lib/crypto.ts';
import type { DeliveryStore, LogoutDelivery } from './store.ts';

/**
 * OpenID Connect Back-Channel Logout 1.0 deliveries, retried with back-off: each logout token to
 * each service is a record (pending → delivered | failed) so its outcome can be shown to the
 * professional and the operator, and an unreachable service is retried, not forgotten.
 */

/** Waits after the 1st, 2nd... failed attempt; after the last one the delivery is given up. */
export const RETRY_DELAYS_MS = [30_000, 2 * 60_000, 10 * 60_000, 60 * 60_000, 6 * 60 * 60_000] as const;
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;
/** How long one node holds a delivery it is attempting before another may take it over. */
const LEASE_MS = 60_000;

/** A failure that retrying cannot fix (the service is no longer registered for back-channel logout). */
export class PermanentDeliveryError extends Error {
  override readonly name = 'PermanentDeliveryError';
}

/** Sends one logout token; throws when the service did not answer 200/204. */
export interface LogoutTokenSender {
  send(input: { clientId: string; accountId: string; sid: string }): Promise<void>;
}

/** Logout tokens signed and posted by oidc-provider itself (`Client#backchannelLogout`, §2.4 of the spec). */
export function providerLogoutSender(provider: Provider): LogoutTokenSender {
  return {
    async send({ clientId, accountId, sid }) {
      const client = (await provider.Client.find(clientId)) as (Awaited<ReturnType<typeof provider.Client.find>> & { backchannelLogout(sub: string, sid: string): Promise<void> }) | undefined;
      if (!client) throw new PermanentDeliveryError('not_registered');
      if (!client.backchannelLogoutUri) throw new PermanentDeliveryError('no_backchannel_uri');
      await client.backchannelLogout(accountId, sid);
    },
  };
}

/** A short, stable description of a failure, for the record (the page translates it). */
export function describeFailure(error: unknown): string {
  if (error instanceof PermanentDeliveryError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  const status = /got: (\d{3})/.exec(message)?.[1];
  if (status) return `http_${status}`;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError' || /timeout|timed out/i.test(message))) return 'timeout';
  return 'unreachable';
}

export class LogoutDeliveries {
  readonly #store: DeliveryStore;
  readonly #sender: LogoutTokenSender;
  readonly #audit: AuditLog;
  readonly #clock: Clock;

  constructor(deps: { store: DeliveryStore; sender: LogoutTokenSender; audit: AuditLog; clock: Clock }) {
    this.#store = deps.store;
    this.#sender = deps.sender;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
  }

  /** Records the deliveries and makes a first attempt at each, in parallel; returns their outcomes. */
  async deliver(items: Array<{ nationalId: string; sessionUid: string | null; clientId: string; sid: string; reason: string }>): Promise<LogoutDelivery[]> {
    const now = this.#clock.now();
    const created: LogoutDelivery[] = [];
    for (const item of items) {
      const delivery: LogoutDelivery = { id: randomId(), ...item, state: 'pending', attempts: 0, nextAttemptAt: now, lastError: null, createdAt: now, updatedAt: now };
      await this.#store.create(delivery);
      created.push(delivery);
    }
    return Promise.all(created.map((d) => this.attempt(d)));
  }

  /**
   * A delivery oidc-provider attempted itself and failed (RP-initiated logout): queue it for the
   * same retries as ours.
   */
  async recordProviderFailure(input: { clientId: string; accountId: string; sid: string; error: unknown }): Promise<void> {
    const now = this.#clock.now();
    const lastError = describeFailure(input.error);
    await this.#store.create({
      id: randomId(),
      nationalId: input.accountId,
      sessionUid: null,
      clientId: input.clientId,
      sid: input.sid,
      reason: 'rp_logout',
      state: 'pending',
      attempts: 1,
      nextAttemptAt: now + RETRY_DELAYS_MS[0],
      lastError,
      createdAt: now,
      updatedAt: now,
    });
    await this.#audit.append({ actor: 'system', event: 'backchannel.retry_scheduled', subject: input.accountId, details: { clientId: input.clientId, sid: input.sid, attempts: 1, error: lastError } });
  }

  /** One attempt; the delivery is claimed first so two nodes never send the same retry together. */
  async attempt(delivery: LogoutDelivery): Promise<LogoutDelivery> {
    const now = this.#clock.now();
    if (!(await this.#store.claim(delivery.id, delivery.nextAttemptAt, now + LEASE_MS))) return (await this.#store.get(delivery.id)) ?? delivery;
    const attempts = delivery.attempts + 1;
    const subject = delivery.nationalId;
    try {
      await this.#sender.send({ clientId: delivery.clientId, accountId: delivery.nationalId, sid: delivery.sid });
      const settled = { state: 'delivered' as const, attempts, nextAttemptAt: null, lastError: null, now: this.#clock.now() };
      await this.#store.settle(delivery.id, settled);
      await this.#audit.append({ actor: 'system', event: 'backchannel.delivered', subject, details: { deliveryId: delivery.id, clientId: delivery.clientId, sid: delivery.sid, attempts } });
      return { ...delivery, ...settled, updatedAt: settled.now };
    } catch (error) {
      const lastError = describeFailure(error);
      const giveUp = error instanceof PermanentDeliveryError || attempts >= MAX_ATTEMPTS;
      const later = this.#clock.now();
      const settled = giveUp
        ? { state: 'failed' as const, attempts, nextAttemptAt: null, lastError, now: later }
        : { state: 'pending' as const, attempts, nextAttemptAt: later + (RETRY_DELAYS_MS[attempts - 1] ?? RETRY_DELAYS_MS.at(-1)!), lastError, now: later };
      await this.#store.settle(delivery.id, settled);
      await this.#audit.append({
        actor: 'system',
        event: giveUp ? 'backchannel.failed' : 'backchannel.retry_scheduled',
        subject,
        details: { deliveryId: delivery.id, clientId: delivery.clientId, sid: delivery.sid, attempts, error: lastError, ...(giveUp ? {} : { nextAttemptAt: settled.nextAttemptAt }) },
      });
      return { ...delivery, ...settled, updatedAt: later };
    }
  }

  /** Attempts every delivery whose retry is due; returns how many were attempted. */
  async retryDue(limit = 50): Promise<number> {
    const due = await this.#store.due(this.#clock.now(), limit);
    await Promise.all(due.map((d) => this.attempt(d)));
    return due.length;
  }

  /** Forgets settled deliveries after `keepMs` (the wallet shows the last 7 days). */
  async purge(keepMs = 30 * 24 * 3600_000): Promise<number> {
    return this.#store.purge(this.#clock.now() - keepMs);
  }

  async listRecent(nationalId: string, sinceMs = 7 * 24 * 3600_000): Promise<LogoutDelivery[]> {
    return this.#store.listRecent(nationalId, this.#clock.now() - sinceMs, 50);
  }
}
