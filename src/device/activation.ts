import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';
import { constantTimeEqual, keyedHash, randomDigits, randomId, sha256Base64url } from '../lib/crypto.ts';
import type { AuditLog } from '../audit/log.ts';
import type { DirectoryStore } from '../directory/store.ts';
import type { Mailer } from '../notify/mailer.ts';
import type { SmsSender } from '../notify/sms.ts';
import { activationCodeEmail, activationCodeSms, deviceActivatedEmail, deviceActivatedSms } from '../notify/messages.ts';
import type { DeviceService } from './service.ts';
import type { Device } from './store.ts';
import type { CodeActivationStore, SqlRevokeTokenStore } from './activation-store.ts';
import { deviceErrors } from './errors.ts';

/**
 * Activation of the app by two 6-digit codes, one emailed and one texted to the contacts the
 * directory holds (MISSION: "codes sent to both"). The flow is a record with a state and an
 * expiry, like a login challenge:
 *
 *   pending ──both codes right──▶ verified ──PIN chosen, device key registered──▶ completed
 *      │ 5 wrong attempts → failed          │
 *      └──────── past expiresAt → expired ◀─┘
 *
 * Each code is single use (the flow leaves `pending` once), stored only as a keyed hash, and the
 * flow is bound to the device key that proved it knew the codes. An identifier that is unknown
 * or lacks a contact gets the same answer and the same kind of flow (codes nobody receives), so
 * the endpoint cannot tell who is registered.
 */
export const CODE_ACTIVATION_STATES = ['pending', 'verified', 'completed', 'failed', 'expired'] as const;
export type CodeActivationState = (typeof CODE_ACTIVATION_STATES)[number];

export const CODE_ACTIVATION_TRANSITIONS: Readonly<Record<CodeActivationState, readonly CodeActivationState[]>> = {
  pending: ['verified', 'failed', 'expired'],
  verified: ['completed', 'expired'],
  completed: [],
  failed: [],
  expired: [],
};

export interface CodeActivation {
  id: string;
  nationalId: string;
  state: CodeActivationState;
  emailCodeHash: string;
  smsCodeHash: string;
  attempts: number;
  keyThumbprint: string | null;
  sourceIp: string;
  createdAt: number;
  expiresAt: number;
  settledAt: number | null;
  deviceId: string | null;
}

export const CODE_DIGITS = 6;
export const MAX_ATTEMPTS = 5;
export const REVOKE_LINK_DAYS = 30;
const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

export interface ActivationOptions {
  codeKey: Buffer;
  ttlMinutes: number;
  sendsPerIdentifierPerHour: number;
  /** Bounds what anyone who knows the public identifier can send to a professional's phone and mailbox, however many addresses they use. */
  sendsPerIdentifierPerDay: number;
  sendsPerIpPerHour: number;
  /** Public base URL, for the revocation link of the notice email. */
  issuer: string;
}

/** RFC 7638 thumbprint of a P-256 public JWK. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  return sha256Base64url(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }));
}

export class ActivationService {
  readonly #store: CodeActivationStore;
  readonly #revokeTokens: SqlRevokeTokenStore;
  readonly #devices: DeviceService;
  readonly #directory: DirectoryStore;
  readonly #mailer: Mailer;
  readonly #sms: SmsSender;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #options: ActivationOptions;
  /** Deliveries run after the answer (same timing for every identifier); `drain` awaits them. */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    deps: { store: CodeActivationStore; revokeTokens: SqlRevokeTokenStore; devices: DeviceService; directory: DirectoryStore; mailer: Mailer; sms: SmsSender; audit: AuditLog; clock: Clock; logger: Logger },
    options: ActivationOptions,
  ) {
    this.#store = deps.store;
    this.#revokeTokens = deps.revokeTokens;
    this.#devices = deps.devices;
    this.#directory = deps.directory;
    this.#mailer = deps.mailer;
    this.#sms = deps.sms;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#options = options;
  }

  /** Starts a flow and sends the two codes (when the identifier has both contacts). Same answer for everyone. */
  async start(input: { nationalId: string; ip: string }): Promise<{ flowId: string; expiresAt: number }> {
    const now = this.#clock.now();
    const emailCode = randomDigits(CODE_DIGITS);
    const smsCode = randomDigits(CODE_DIGITS);
    const flow: CodeActivation = {
      id: randomId(),
      nationalId: input.nationalId,
      state: 'pending',
      emailCodeHash: '',
      smsCodeHash: '',
      attempts: 0,
      keyThumbprint: null,
      sourceIp: input.ip,
      createdAt: now,
      expiresAt: now + this.#options.ttlMinutes * 60_000,
      settledAt: null,
      deviceId: null,
    };
    flow.emailCodeHash = this.#hashCode(flow.id, 'email', emailCode);
    flow.smsCodeHash = this.#hashCode(flow.id, 'sms', smsCode);
    // Insert, then count (own row included): two racing requests over the limit both lose,
    // none slips through between a read and a write.
    await this.#store.create(flow);
    const [byIdentifier, byIdentifierToday, bySource] = await Promise.all([
      this.#store.countSince({ nationalId: input.nationalId }, now - HOUR_MS),
      this.#store.countSince({ nationalId: input.nationalId }, now - DAY_MS),
      this.#store.countSince({ sourceIp: input.ip }, now - HOUR_MS),
    ]);
    // The day's limit before the hour's: « réessayez dans une heure » would only lead to the other.
    const scope = bySource > this.#options.sendsPerIpPerHour ? 'source' : byIdentifierToday > this.#options.sendsPerIdentifierPerDay ? 'identifier_day' : byIdentifier > this.#options.sendsPerIdentifierPerHour ? 'identifier' : undefined;
    if (scope) {
      await this.#store.delete(flow.id);
      await this.#audit.append({ actor: `device-app:${input.ip}`, event: 'activation.throttled', subject: input.nationalId, details: { scope } });
      if (scope === 'identifier_day') throw deviceErrors.ACTIVATION_DAILY_LIMIT({ headers: { 'retry-after': String(DAY_MS / 1000) } });
      throw deviceErrors.ACTIVATION_RATE_LIMITED({ headers: { 'retry-after': String(HOUR_MS / 1000) } });
    }

    // Both reads for every identifier: skipping one for unknown identifiers would show in the answer time.
    const [professional, found] = await Promise.all([this.#directory.get(input.nationalId), this.#directory.getContacts(input.nationalId)]);
    const contacts = professional ? found : undefined;
    const deliverable = Boolean(contacts?.email && contacts.mobile);
    await this.#audit.append({ actor: `device-app:${input.ip}`, event: 'activation.started', subject: input.nationalId, details: { flowId: flow.id, method: 'email_sms', deliverable } });
    if (contacts?.email && contacts.mobile) {
      const ttlMinutes = this.#options.ttlMinutes;
      const email = contacts.email;
      const mobile = contacts.mobile;
      this.#background(flow.nationalId, { flowId: flow.id }, 'email', () => this.#mailer.send({ to: email, ...activationCodeEmail({ code: emailCode, ttlMinutes }) }));
      this.#background(flow.nationalId, { flowId: flow.id }, 'sms', () => this.#sms.send({ to: mobile, text: activationCodeSms({ code: smsCode, ttlMinutes }) }));
    }
    return { flowId: flow.id, expiresAt: flow.expiresAt };
  }

  /** Checks both codes (single use) and binds the flow to the device key that presented them. */
  async verify(input: { flowId: string; emailCode: string; smsCode: string; publicKey: JsonWebKey; ip: string }): Promise<{ flowId: string; expiresAt: number }> {
    const flow = await this.ready(input.flowId, 'verify');
    // Both comparisons always run: the time does not tell which code was wrong, nor does the answer.
    const emailOk = constantTimeEqual(this.#hashCode(flow.id, 'email', input.emailCode), flow.emailCodeHash);
    const smsOk = constantTimeEqual(this.#hashCode(flow.id, 'sms', input.smsCode), flow.smsCodeHash);
    const now = this.#clock.now();
    if (!(emailOk && smsOk)) {
      const attempts = await this.#store.recordAttempt(flow.id, MAX_ATTEMPTS, now);
      const left = Math.max(0, MAX_ATTEMPTS - attempts);
      await this.#audit.append({ actor: `device-app:${input.ip}`, event: 'activation.code_failed', subject: flow.nationalId, details: { flowId: flow.id, attempts } });
      if (left === 0) throw deviceErrors.ACTIVATION_ATTEMPTS_EXHAUSTED();
      throw deviceErrors.ACTIVATION_CODE_WRONG({ message: `One of the codes is wrong: ${left} attempt(s) left.`, headers: { 'x-vigie-attempts-left': String(left) } });
    }
    if (!(await this.#store.markVerified(flow.id, jwkThumbprint(input.publicKey), MAX_ATTEMPTS, now))) {
      const current = await this.#store.get(flow.id);
      throw current?.state === 'expired' || (current && current.expiresAt <= now) ? deviceErrors.ACTIVATION_EXPIRED() : deviceErrors.ACTIVATION_ALREADY_USED();
    }
    await this.#audit.append({ actor: `device-app:${input.ip}`, event: 'activation.verified', subject: flow.nationalId, details: { flowId: flow.id } });
    return { flowId: flow.id, expiresAt: flow.expiresAt };
  }

  /** Registers the device (PIN chosen) on a verified flow, once; then emails the notice with its revocation link. */
  async complete(input: { flowId: string; publicKey: JsonWebKey; pin: string; name: string; ip: string }): Promise<Device> {
    const now = this.#clock.now();
    const flow = await this.ready(input.flowId, 'complete');
    const thumbprint = jwkThumbprint(input.publicKey);
    if (!flow.keyThumbprint || !constantTimeEqual(thumbprint, flow.keyThumbprint)) throw deviceErrors.ACTIVATION_KEY_MISMATCH();
    const device = this.#devices.newDevice({ nationalId: flow.nationalId, name: input.name, publicKey: input.publicKey, pin: input.pin }, now);
    const token = randomId(32);
    const revokeExpiresAt = now + REVOKE_LINK_DAYS * 24 * HOUR_MS;
    if (!(await this.#store.complete(flow.id, thumbprint, device, { tokenHash: this.#hashRevokeToken(token), expiresAt: revokeExpiresAt }, now))) {
      const current = await this.#store.get(flow.id);
      throw current && current.expiresAt <= now ? deviceErrors.ACTIVATION_EXPIRED() : deviceErrors.ACTIVATION_ALREADY_USED();
    }
    await this.#audit.append({ actor: `device:${device.id}`, event: 'device.activated', subject: flow.nationalId, details: { deviceId: device.id, name: device.name, method: 'email_sms', flowId: flow.id } });
    await this.#sendNotice(device, token, now, { flowId: flow.id });
    return device;
  }

  /**
   * The notice of a device activated with an operator's code: the same email and revocation link
   * as an activation by codes, so that a device registered through a deceived operator (or a
   * code read over a shoulder) does not go unnoticed either.
   */
  async announce(device: Device): Promise<void> {
    const now = this.#clock.now();
    const token = randomId(32);
    await this.#revokeTokens.issue({ tokenHash: this.#hashRevokeToken(token), deviceId: device.id, nationalId: device.nationalId, expiresAt: now + REVOKE_LINK_DAYS * 24 * HOUR_MS }, now);
    await this.#sendNotice(device, token, now, { deviceId: device.id });
  }

  /** By email, or by SMS when the professional has no email on file: an activation never goes unannounced while there is a contact. */
  async #sendNotice(device: Device, token: string, now: number, about: Record<string, string>): Promise<void> {
    const contacts = await this.#directory.getContacts(device.nationalId);
    const revokeUrl = `${this.#options.issuer}/e-cps/revoquer?token=${encodeURIComponent(token)}`;
    const { email, mobile } = contacts ?? {};
    if (email) this.#background(device.nationalId, about, 'notice', () => this.#mailer.send({ to: email, ...deviceActivatedEmail({ at: now, revokeUrl, revokeDays: REVOKE_LINK_DAYS }) }));
    else if (mobile) this.#background(device.nationalId, about, 'notice', () => this.#sms.send({ to: mobile, text: deviceActivatedSms({ at: now, revokeUrl }) }));
  }

  /** The device a "ce n'était pas moi" link names, if the link is live. */
  async peekRevokeLink(token: string): Promise<{ deviceId: string; nationalId: string } | undefined> {
    return this.#revokeTokens.peek(this.#hashRevokeToken(token), this.#clock.now());
  }

  /** Revokes the device named by a notice email's link; single use. */
  async revokeByLink(token: string, ip: string): Promise<{ deviceId: string }> {
    const used = await this.#revokeTokens.use(this.#hashRevokeToken(token), this.#clock.now());
    if (!used) throw deviceErrors.REVOKE_LINK_INVALID();
    await this.#audit.append({ actor: `email-link:${ip}`, event: 'device.revoked', subject: used.nationalId, details: { deviceId: used.deviceId, via: 'activation_notice', alreadyRevoked: !used.revoked } });
    return { deviceId: used.deviceId };
  }

  async purge(): Promise<number> {
    return this.#revokeTokens.purge(this.#clock.now());
  }

  /** Waits for the emails and SMS still being sent (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * The flow, when it is at `step`; the error that step would answer otherwise. The routes ask
   * before checking the request's signature: a signature stores a replay nonce, and anyone can
   * sign with a key of their own, so only a live flow's steps may cost a write.
   */
  async ready(flowId: string, step: 'verify' | 'complete'): Promise<CodeActivation> {
    const flow = await this.#live(flowId);
    if (flow.state === (step === 'verify' ? 'pending' : 'verified')) return flow;
    if (flow.state === 'completed' || (step === 'verify' && flow.state === 'verified')) throw deviceErrors.ACTIVATION_ALREADY_USED();
    if (flow.state === 'pending') throw deviceErrors.ACTIVATION_NOT_VERIFIED();
    throw deviceErrors.ACTIVATION_ATTEMPTS_EXHAUSTED();
  }

  /** Loads a flow, settling it as expired first when its time is up. */
  async #live(flowId: string): Promise<CodeActivation> {
    const flow = await this.#store.get(flowId);
    if (!flow) throw deviceErrors.ACTIVATION_NOT_FOUND();
    const now = this.#clock.now();
    if ((flow.state === 'pending' || flow.state === 'verified') && flow.expiresAt <= now) {
      await this.#store.expire(flow.id, now);
      throw deviceErrors.ACTIVATION_EXPIRED();
    }
    if (flow.state === 'expired') throw deviceErrors.ACTIVATION_EXPIRED();
    return flow;
  }

  /** Sends in the background; `about` names the flow or device in the audit log and the logs. */
  #background(nationalId: string, about: Record<string, string>, what: 'email' | 'sms' | 'notice', send: () => Promise<void>): void {
    const task = send()
      .then(() => this.#audit.append({ actor: 'system', event: `activation.${what}_sent`, subject: nationalId, details: about }))
      .then(() => undefined, (err: unknown) => {
        // The message text holds a code: log the failure, never the message.
        this.#logger.error({ err: err instanceof Error ? { name: err.name, message: err.message } : String(err), ...about, what }, 'activation message delivery failed');
      })
      .finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
  }

  #hashCode(flowId: string, channel: 'email' | 'sms', code: string): string {
    return keyedHash(this.#options.codeKey, `activation:${flowId}:${channel}`, code);
  }

  #hashRevokeToken(token: string): string {
    return keyedHash(this.#options.codeKey, 'device-revoke-link', token);
  }
}
