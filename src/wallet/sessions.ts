import type { AdapterPayload } from 'oidc-provider';
import type { AuditLog } from '../audit/log.ts';
import type { OidcModelStore } from '../oidc/adapter.ts';
import type { LogoutDeliveries } from './backchannel.ts';
import type { LogoutDelivery, SessionInfoStore, WalletSessionStore } from './store.ts';
import { walletErrors } from './errors.ts';

/** What the wallet knows of a registered service. */
export interface ServiceInfo {
  name: string;
  hasBackchannelLogout: boolean;
}

export type ServiceLookup = (clientId: string) => Promise<ServiceInfo | undefined>;

export interface SessionView {
  uid: string;
  /** When the person logged in (oidc-provider's `loginTs`). */
  startedAt: number;
  lastUsedAt: number;
  ip: string | null;
  lastIp: string | null;
  browser: string | null;
  place: string | null;
  services: Array<{ clientId: string; name: string }>;
}

export interface EndResult {
  sessionsEnded: number;
  grantsRevoked: number;
  deliveries: LogoutDelivery[];
}

export interface EndHow {
  /** Who asked (`wallet:<national id>`, `contact-link`...). */
  actor: string;
  /** `wallet`, `wallet_all`, `report`, `contact_change_cancelled`. */
  reason: string;
}

interface Target {
  uid: string;
  clients: Map<string, string>;
  grants: number;
}

/**
 * The professional's provider sessions, and the forced logout that really cuts off: the provider
 * session is deleted, every grant issued under it is revoked with its codes, access and refresh
 * tokens (introspection answers inactive at once), and a back-channel logout token with the
 * session's `sid` goes to every service that registered a `backchannel_logout_uri`.
 */
export class ProviderSessions {
  readonly #models: OidcModelStore;
  readonly #info: SessionInfoStore;
  readonly #walletSessions: WalletSessionStore;
  readonly #deliveries: LogoutDeliveries;
  readonly #services: ServiceLookup;
  readonly #audit: AuditLog;

  constructor(deps: { models: OidcModelStore; info: SessionInfoStore; walletSessions: WalletSessionStore; deliveries: LogoutDeliveries; services: ServiceLookup; audit: AuditLog }) {
    this.#models = deps.models;
    this.#info = deps.info;
    this.#walletSessions = deps.walletSessions;
    this.#deliveries = deps.deliveries;
    this.#services = deps.services;
    this.#audit = deps.audit;
  }

  /** The professional's open sessions, most recently used first. */
  async list(nationalId: string): Promise<SessionView[]> {
    const rows = (await this.#models.listByAccount('Session', nationalId)).map((r) => r.payload).filter((p) => p.accountId === nationalId && typeof p.uid === 'string');
    const info = await this.#info.getMany(rows.map((p) => p.uid as string));
    const views = await Promise.all(
      rows.map(async (p): Promise<SessionView> => {
        const uid = p.uid as string;
        const i = info.get(uid);
        const startedAt = typeof p.loginTs === 'number' ? p.loginTs * 1000 : (i?.createdAt ?? 0);
        const services = await Promise.all(Object.keys(p.authorizations ?? {}).map(async (clientId) => ({ clientId, name: (await this.#services(clientId))?.name ?? clientId })));
        return { uid, startedAt, lastUsedAt: i?.lastUsedAt ?? startedAt, ip: i?.ip ?? null, lastIp: i?.lastIp ?? null, browser: i?.browser ?? null, place: i?.place ?? null, services };
      }),
    );
    return views.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
  }

  /** Ends one session of this professional; anyone else's session is "not found". */
  async end(nationalId: string, uid: string, how: EndHow): Promise<EndResult> {
    const session = await this.#models.findBy('Session', 'uid', uid);
    if (!session || session.accountId !== nationalId) throw walletErrors.WALLET_SESSION_NOT_FOUND();
    const target = await this.#cut(nationalId, uid);
    const deliveries = await this.#notify(nationalId, [target], how.reason);
    // A request in flight when the row was deleted may have saved the session again: cut twice.
    await this.#cut(nationalId, uid, target);
    await this.#audit.append({ actor: how.actor, event: 'session.ended', subject: nationalId, details: { sessionUid: uid, reason: how.reason, clients: [...target.clients.keys()], grantsRevoked: target.grants, deliveries: deliveries.map((d) => ({ clientId: d.clientId, state: d.state })) } });
    return { sessionsEnded: 1, grantsRevoked: target.grants, deliveries };
  }

  /** Ends every session of the professional, then removes any grant or token left (offline access included). */
  async endAll(nationalId: string, how: EndHow): Promise<EndResult> {
    const uids = (await this.#models.listByAccount('Session', nationalId)).map((r) => r.payload.uid).filter((u): u is string => typeof u === 'string');
    const targets: Target[] = [];
    for (const uid of uids) targets.push(await this.#cut(nationalId, uid));
    const deliveries = await this.#notify(nationalId, targets, how.reason);
    for (const target of targets) await this.#cut(nationalId, target.uid, target);
    // Grants outliving their session (offline access) go too, with their codes and tokens wherever stored.
    for (const grant of await this.#models.listByAccount('Grant', nationalId)) await this.#models.revokeByGrantId(grant.id);
    const leftovers = await this.#models.destroyByAccount(nationalId);
    await this.#walletSessions.deleteByProfessional(nationalId);
    const grantsRevoked = targets.reduce((n, t) => n + t.grants, 0);
    await this.#audit.append({
      actor: how.actor,
      event: 'session.ended_all',
      subject: nationalId,
      details: { reason: how.reason, sessions: uids, grantsRevoked, leftoverRowsRemoved: leftovers, deliveries: deliveries.map((d) => ({ clientId: d.clientId, state: d.state })) },
    });
    return { sessionsEnded: uids.length, grantsRevoked, deliveries };
  }

  /** Deletes the session row and revokes its grants (with their codes and tokens); idempotent. */
  async #cut(nationalId: string, uid: string, into: Target = { uid, clients: new Map(), grants: 0 }): Promise<Target> {
    const session: AdapterPayload | undefined = await this.#models.findBy('Session', 'uid', uid);
    if (session && session.accountId === nationalId) {
      for (const [clientId, authorization] of Object.entries(session.authorizations ?? {})) {
        if (authorization.sid) into.clients.set(clientId, authorization.sid);
        if (authorization.grantId) {
          await this.#models.revokeByGrantId(authorization.grantId);
          await this.#models.destroy('Grant', authorization.grantId);
          into.grants += 1;
        }
      }
      if (session.jti) await this.#models.destroy('Session', session.jti);
    }
    await this.#walletSessions.deleteBySessionUid(uid);
    await this.#info.delete(uid);
    return into;
  }

  async #notify(nationalId: string, targets: Target[], reason: string): Promise<LogoutDelivery[]> {
    const items: Parameters<LogoutDeliveries['deliver']>[0] = [];
    for (const target of targets) {
      for (const [clientId, sid] of target.clients) {
        if ((await this.#services(clientId))?.hasBackchannelLogout) items.push({ nationalId, sessionUid: target.uid, clientId, sid, reason });
      }
    }
    return items.length ? this.#deliveries.deliver(items) : [];
  }

  /** For tests and the operator: whether a session still exists. */
  async exists(uid: string): Promise<boolean> {
    return (await this.#models.findBy('Session', 'uid', uid)) !== undefined;
  }
}
