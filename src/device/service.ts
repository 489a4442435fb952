import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.ts';
import { constantTimeEqual, keyedHash, randomId } from '../lib/crypto.ts';
import type { AuditLog } from '../audit/log.ts';
import type { DirectoryStore } from '../directory/store.ts';
import { ACTIVATION_DEVICE_ID, HEADERS } from './signature.ts';
import { verifyDeviceSignature } from './verify.ts';
import type { ActivationStore, Device, DeviceStore } from './store.ts';
import { deviceErrors } from './errors.ts';
import type { VigieError } from '../lib/errors.ts';
import { isTrivialPin } from './pin.ts';

export interface DeviceServiceOptions {
  pinKey: Buffer;
  codeKey: Buffer;
  signatureWindowSeconds: number;
  pinMaxFailures: number;
  activationCodeTtlMinutes: number;
}

const LAST_USED_PRECISION_MS = 60_000;
// Crockford's base32 without look-alike letters: easy to read out over the phone.
const CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export interface SignedRequest {
  method: string;
  /** Path and query exactly as received. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Devices: activation, request authentication (signature, freshness, replay) and PIN checks. */
export class DeviceService {
  readonly #devices: DeviceStore;
  readonly #activations: ActivationStore;
  readonly #directory: DirectoryStore;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #options: DeviceServiceOptions;

  constructor(deps: { devices: DeviceStore; activations: ActivationStore; directory: DirectoryStore; audit: AuditLog; clock: Clock }, options: DeviceServiceOptions) {
    this.#devices = deps.devices;
    this.#activations = deps.activations;
    this.#directory = deps.directory;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
    this.#options = options;
  }

  /** Issues a one-time activation code for the operator to hand over (shown once, stored hashed). */
  async createActivationCode(nationalId: string, actor = 'operator'): Promise<{ code: string; expiresAt: number }> {
    if (!(await this.#directory.get(nationalId))) throw deviceErrors.ACTIVATION_INVALID({ message: `No professional ${nationalId} in the directory.` });
    const bytes = randomBytes(12);
    const raw = [...bytes].map((b) => CODE_ALPHABET[b % 32]).join('');
    const code = raw.match(/.{4}/g)!.join('-');
    const now = this.#clock.now();
    const expiresAt = now + this.#options.activationCodeTtlMinutes * 60_000;
    await this.#activations.create({ id: randomId(), nationalId, method: 'operator_code', codeHash: this.#hashCode(nationalId, code), attempts: 0, state: 'pending', createdAt: now, expiresAt, settledAt: null, deviceId: null });
    await this.#audit.append({ actor, event: 'activation.code_issued', subject: nationalId, details: { expiresAt } });
    return { code, expiresAt };
  }

  /** Registers a device: the code must match the professional's latest pending flow. */
  async activate(input: { nationalId: string; activationCode: string; publicKey: JsonWebKey; pin: string; name: string; ip: string }): Promise<Device> {
    if (isTrivialPin(input.pin)) throw deviceErrors.PIN_TOO_WEAK();
    const now = this.#clock.now();
    const flow = await this.#activations.latestPending(input.nationalId, now);
    const code = input.activationCode.toUpperCase().replace(/[^0-9A-Z]/g, '').replace(/(.{4})(?=.)/g, '$1-');
    // No count of wrong codes per flow: anyone who knows the public identifier could burn the code
    // the operator just read out. 60 random bits at the per-source rates (server.ts) are out of
    // reach of guessing within the code's lifetime; and both outcomes cost the same, so the time
    // does not tell whether a code is pending.
    if (!flow || !constantTimeEqual(this.#hashCode(input.nationalId, code), flow.codeHash)) {
      await this.#audit.append({ actor: `device-app:${input.ip}`, event: 'activation.failed', subject: input.nationalId, details: { reason: flow ? 'wrong_code' : 'no_pending_flow' } });
      throw deviceErrors.ACTIVATION_INVALID();
    }
    const id = randomId();
    const device: Device = {
      id,
      nationalId: input.nationalId,
      name: input.name,
      publicKey: input.publicKey,
      pinHash: this.#hashPin(id, input.pin),
      pinFailures: 0,
      state: 'active',
      createdAt: now,
      lastUsedAt: null,
      revokedAt: null,
    };
    if (!(await this.#activations.complete(flow.id, device, now))) throw deviceErrors.ACTIVATION_INVALID();
    await this.#audit.append({ actor: `device:${id}`, event: 'device.activated', subject: input.nationalId, details: { deviceId: id, name: input.name, method: flow.method } });
    return device;
  }

  /**
   * Authenticates one signed request. The signature is checked before the nonce is stored, so
   * unsigned traffic cannot fill the replay table. With `activationKey`, anyone can sign (with a
   * key of their own): the activation routes put their rate limit or flow check before this call.
   */
  async authenticate(request: SignedRequest, activationKey?: JsonWebKey): Promise<Device | undefined> {
    const header = (name: string) => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const deviceId = header(HEADERS.device);
    const timestamp = header(HEADERS.timestamp);
    const nonce = header(HEADERS.nonce);
    const signature = header(HEADERS.signature);
    if (!deviceId || !timestamp || !nonce || !signature) throw deviceErrors.SIGNATURE_MISSING();
    if (!/^\d{1,16}$/.test(timestamp) || !/^[A-Za-z0-9_-]{16,64}$/.test(nonce) || deviceId.length > 64) throw deviceErrors.SIGNATURE_INVALID();
    const now = this.#clock.now();
    const windowMs = this.#options.signatureWindowSeconds * 1000;
    if (Math.abs(now - Number(timestamp)) > windowMs) throw deviceErrors.SIGNATURE_STALE();

    let device: Device | undefined;
    let publicKey: JsonWebKey;
    if (activationKey) {
      if (deviceId !== ACTIVATION_DEVICE_ID) throw deviceErrors.SIGNATURE_INVALID();
      publicKey = activationKey;
    } else {
      device = await this.#devices.get(deviceId);
      if (!device) throw deviceErrors.DEVICE_UNKNOWN();
      publicKey = device.publicKey;
    }
    const valid = await verifyDeviceSignature(publicKey, { method: request.method, path: request.path, timestamp, nonce, deviceId, body: request.body }, signature);
    if (!valid) throw deviceErrors.SIGNATURE_INVALID();
    // Activation nonces are scoped by the presented key, so two new devices never collide.
    const nonceScope = activationKey ? `activation:${activationKey.x ?? ''}` : deviceId;
    if (!(await this.#devices.rememberNonce(nonceScope, nonce, now + 2 * windowMs))) throw deviceErrors.SIGNATURE_REPLAYED();
    if (device?.state === 'revoked') throw deviceErrors.DEVICE_REVOKED();
    if (device?.state === 'locked') throw deviceErrors.DEVICE_LOCKED();
    // "Last used" is shown to people at minute precision: no need to write it on every call.
    if (device && (device.lastUsedAt ?? 0) < now - LAST_USED_PRECISION_MS) await this.#devices.touch(device.id, now);
    return device;
  }

  /** Checks the PIN in constant time; the `pinMaxFailures`-th wrong PIN in a row locks the device. */
  async checkPin(device: Device, pin: string): Promise<void> {
    const now = this.#clock.now();
    if (constantTimeEqual(this.#hashPin(device.id, pin), device.pinHash)) {
      if (!(await this.#devices.recordPinSuccess(device.id, now))) throw await this.#noLongerActive(device.id);
      return;
    }
    const counted = await this.#devices.recordPinFailure(device.id, this.#options.pinMaxFailures, now);
    if (!counted) {
      // Locked or revoked since the request was authenticated (a parallel guess, the wallet, the
      // email link): this PIN neither counts nor locks anything, and the log must not say it did.
      const error = await this.#noLongerActive(device.id);
      await this.#audit.append({ actor: `device:${device.id}`, event: 'device.pin_failed', subject: device.nationalId, details: { deviceId: device.id, failures: null, refusedAs: error.code } });
      throw error;
    }
    const { failures, locked } = counted;
    await this.#audit.append({ actor: `device:${device.id}`, event: locked ? 'device.locked' : 'device.pin_failed', subject: device.nationalId, details: { deviceId: device.id, failures } });
    if (locked) throw deviceErrors.DEVICE_LOCKED();
    const left = this.#options.pinMaxFailures - failures;
    throw deviceErrors.PIN_WRONG({ message: `Wrong PIN: ${left} attempt(s) left before the device is locked.`, headers: { 'x-vigie-attempts-left': String(left) } });
  }

  /** A new active device record with its PIN hashed (activation flows insert it in their own transaction). */
  newDevice(input: { nationalId: string; name: string; publicKey: JsonWebKey; pin: string }, now: number): Device {
    if (isTrivialPin(input.pin)) throw deviceErrors.PIN_TOO_WEAK();
    const id = randomId();
    return { id, nationalId: input.nationalId, name: input.name, publicKey: input.publicKey, pinHash: this.#hashPin(id, input.pin), pinFailures: 0, state: 'active', createdAt: now, lastUsedAt: null, revokedAt: null };
  }

  async list(nationalId: string): Promise<Device[]> {
    return this.#devices.listByProfessional(nationalId);
  }

  async revoke(device: Device, actor: string): Promise<void> {
    await this.#devices.setState(device.id, 'revoked', this.#clock.now());
    await this.#audit.append({ actor, event: 'device.revoked', subject: device.nationalId, details: { deviceId: device.id } });
  }

  async purgeNonces(): Promise<number> {
    return this.#devices.purgeNonces(this.#clock.now());
  }

  /** Why a device that was active when its request was authenticated no longer is. */
  async #noLongerActive(deviceId: string): Promise<VigieError> {
    const state = (await this.#devices.get(deviceId))?.state;
    return state === 'revoked' ? deviceErrors.DEVICE_REVOKED() : state === 'locked' ? deviceErrors.DEVICE_LOCKED() : deviceErrors.DEVICE_UNKNOWN();
  }

  #hashPin(deviceId: string, pin: string): string {
    return keyedHash(this.#options.pinKey, `pin:${deviceId}`, pin);
  }

  #hashCode(nationalId: string, code: string): string {
    return keyedHash(this.#options.codeKey, `activation:${nationalId}`, code);
  }
}
