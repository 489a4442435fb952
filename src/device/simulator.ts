import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { systemClock, type Clock } from '../lib/clock.ts';
import { ACTIVATION_DEVICE_ID, exportPublicJwk, generateDeviceKey, signRequest, type DeviceSigner } from './signature.ts';

export interface SimulatorState {
  issuer: string;
  deviceId: string | null;
  nationalId: string | null;
  privateJwk: JsonWebKey;
  publicJwk: JsonWebKey;
}

export interface DeviceResponse<T = unknown> {
  status: number;
  body: T;
}

/** The device's open event stream (`DeviceSimulator.watch`). */
export interface DeviceStream {
  close(): void;
  /** Settles when the stream has ended, whoever ended it. */
  closed: Promise<void>;
}

/** Synchronous node:crypto: a benchmark signs thousands of requests, WebCrypto's jobs cost several times more. */
function nodeSigner(privateJwk: JsonWebKey): DeviceSigner {
  const key = createPrivateKey({ key: { ...privateJwk }, format: 'jwk' });
  return {
    sign: (data) => sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }),
    sha256: (data) => createHash('sha256').update(data).digest(),
  };
}

/**
 * An authenticator that speaks the device protocol from a key file: what `vigie device …`,
 * the tests and the benchmarks use in place of a phone. Its key is extractable so it can be
 * saved; the real app keeps a non-extractable key in IndexedDB.
 */
export class DeviceSimulator {
  state: SimulatorState;
  #signer: DeviceSigner | undefined;
  readonly #file: string | undefined;
  readonly #clock: Clock;

  private constructor(state: SimulatorState, file: string | undefined, clock: Clock) {
    this.state = state;
    this.#file = file;
    this.#clock = clock;
  }

  /** `clock` lets tests that move the server's time sign requests at that same time. */
  static async create(issuer: string, options: { file?: string; clock?: Clock } = {}): Promise<DeviceSimulator> {
    const pair = await generateDeviceKey(true);
    const state: SimulatorState = {
      issuer,
      deviceId: null,
      nationalId: null,
      privateJwk: await crypto.subtle.exportKey('jwk', pair.privateKey),
      publicJwk: await exportPublicJwk(pair.publicKey),
    };
    return new DeviceSimulator(state, options.file, options.clock ?? systemClock);
  }

  static async load(file: string): Promise<DeviceSimulator> {
    const state = JSON.parse(await readFile(file, 'utf8')) as SimulatorState;
    return new DeviceSimulator(state, file, systemClock);
  }

  async save(): Promise<void> {
    if (!this.#file) return;
    await mkdir(dirname(this.#file), { recursive: true });
    await writeFile(this.#file, JSON.stringify(this.state, null, 2), { mode: 0o600 });
  }

  #sign(method: string, path: string, body: string, options: { deviceId?: string; now?: number }): Promise<Record<string, string>> {
    const deviceId = options.deviceId ?? this.state.deviceId;
    if (!deviceId) throw new Error('This simulator is not activated: run `vigie device activate` first.');
    this.#signer ??= nodeSigner(this.state.privateJwk);
    return signRequest(this.#signer, { method, path, deviceId, body, now: options.now ?? this.#clock.now() });
  }

  /** One signed call; `tamper` lets tests alter what is sent after signing. */
  async call<T = unknown>(method: string, path: string, body?: unknown, options: { deviceId?: string; tamper?: (init: { headers: Record<string, string>; body: string }) => void; now?: number } = {}): Promise<DeviceResponse<T>> {
    const fullPath = `/device/v1${path}`;
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers = await this.#sign(method, fullPath, text, options);
    if (text) headers['content-type'] = 'application/json';
    const init = { headers, body: text };
    options.tamper?.(init);
    const response = await fetch(`${this.state.issuer}${fullPath}`, { method, headers: init.headers, ...(init.body ? { body: init.body } : {}) });
    const raw = await response.text();
    return { status: response.status, body: (raw ? JSON.parse(raw) : undefined) as T };
  }

  async activate(input: { nationalId: string; activationCode: string; pin: string; name?: string }): Promise<DeviceResponse<{ id: string; error?: string; message?: string }>> {
    const result = await this.call<{ id: string }>('POST', '/activate', { ...input, name: input.name ?? 'Simulateur e-CPS', publicKey: this.state.publicJwk }, { deviceId: ACTIVATION_DEVICE_ID });
    if (result.status === 201) {
      this.state.deviceId = result.body.id;
      this.state.nationalId = input.nationalId;
      await this.save();
    }
    return result;
  }

  /** Activation by email + SMS codes, step 1 (unsigned): the provider sends the two codes. */
  async startCodeActivation(nationalId: string): Promise<DeviceResponse<{ flowId: string; expiresAt: number; error?: string; message?: string }>> {
    const response = await fetch(`${this.state.issuer}/device/v1/activation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nationalId }) });
    const raw = await response.text();
    return { status: response.status, body: raw ? JSON.parse(raw) : undefined };
  }

  /** Step 2, signed by this simulator's key: both codes; binds the flow to the key. */
  verifyCodes(flowId: string, emailCode: string, smsCode: string) {
    return this.call<{ state?: string; error?: string; message?: string }>('POST', `/activation/${encodeURIComponent(flowId)}/verify`, { emailCode, smsCode, publicKey: this.state.publicJwk }, { deviceId: ACTIVATION_DEVICE_ID });
  }

  /** Step 3, signed by the same key: the PIN; registers the device. */
  async completeCodeActivation(flowId: string, nationalId: string, pin: string, name = 'Simulateur e-CPS'): Promise<DeviceResponse<{ id: string; error?: string; message?: string }>> {
    const result = await this.call<{ id: string }>('POST', `/activation/${encodeURIComponent(flowId)}/complete`, { publicKey: this.state.publicJwk, pin, name }, { deviceId: ACTIVATION_DEVICE_ID });
    if (result.status === 201) {
      this.state.deviceId = result.body.id;
      this.state.nationalId = nationalId;
      await this.save();
    }
    return result;
  }

  /**
   * Opens the device's event stream, as the app does while it is open: `onEvent` hears each event
   * (ready, pending, challenge, settled, revoked) until `close()` or the server ends the stream.
   * Resolves once the server has accepted it; a refusal throws with its status and error.
   */
  async watch(onEvent: (event: string, data: unknown) => void): Promise<DeviceStream> {
    const path = '/device/v1/stream';
    const controller = new AbortController();
    const response = await fetch(`${this.state.issuer}${path}`, { headers: await this.#sign('GET', path, '', {}), signal: controller.signal });
    if (response.status !== 200 || !response.body) throw new Error(`stream refused: ${response.status} ${await response.text()}`);
    const body = response.body;
    const closed = (async () => {
      let buffer = '';
      try {
        for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            // Comment lines (": keep-alive") carry no event.
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data !== undefined) onEvent(event, JSON.parse(data));
          }
        }
      } catch {
        // Aborted by close(), or the connection dropped: either way the stream has ended.
      }
    })();
    return { close: () => controller.abort(), closed };
  }

  listChallenges() {
    return this.call<{ challenges: Array<{ id: string; mode: 'pick' | 'typed'; candidates: string[]; delivery: string; service: { name: string }; expiresAt: number }> }>('GET', '/challenges');
  }

  show(id: string) {
    return this.call<{ id: string; candidates: string[]; service: { name: string }; mode: string }>('GET', `/challenges/${encodeURIComponent(id)}`);
  }

  approve(id: string, code: string, pin: string) {
    return this.call<{ state?: string; error?: string; message?: string }>('POST', `/challenges/${encodeURIComponent(id)}/approve`, { code, pin });
  }

  /** A request in any state, and whether it may still be reported. */
  outcome(id: string) {
    return this.call<{ id?: string; state?: string; reason?: string | null; reportable?: boolean; service?: { name: string }; error?: string; message?: string }>('GET', `/challenges/${encodeURIComponent(id)}/outcome`);
  }

  /** "Not me" for a request that ended unanswered (withdrawn, superseded, expired). */
  report(id: string) {
    return this.call<{ id?: string; state?: string; reported?: boolean; error?: string; message?: string }>('POST', `/challenges/${encodeURIComponent(id)}/report`);
  }

  deny(id: string, reason: 'refused' | 'not_me') {
    return this.call<{ state?: string; error?: string }>('POST', `/challenges/${encodeURIComponent(id)}/deny`, { reason });
  }
}
