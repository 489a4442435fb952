import { signRequest } from '../../src/device/signature.ts';

/** An error answered by the provider ({ error, message }) or a network failure (code NETWORK). */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly attemptsLeft: number | undefined;
  constructor(code: string, status: number, message: string, attemptsLeft?: number) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.attemptsLeft = attemptsLeft;
  }
}

// Server time minus this phone's time, learnt from `x-vigie-time`: signatures are dated by the
// server's clock even when the phone's is wrong.
let offsetMs = 0;
export const serverNow = (): number => Date.now() + offsetMs;

export function learnServerTime(response: Response): void {
  const time = Number(response.headers.get('x-vigie-time'));
  if (Number.isFinite(time) && time > 0) offsetMs = time - Date.now();
}

async function decode<T>(response: Response): Promise<T> {
  learnServerTime(response);
  const text = await response.text();
  let body: { error?: string; message?: string } | undefined;
  try {
    body = text ? (JSON.parse(text) as { error?: string; message?: string }) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const left = response.headers.get('x-vigie-attempts-left');
    throw new ApiError(body?.error ?? `HTTP_${response.status}`, response.status, body?.message ?? response.statusText, left === null ? undefined : Number(left));
  }
  return body as T;
}

async function send(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, { ...init, cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new ApiError('NETWORK', 0, 'Network unreachable');
  }
}

/** An unsigned call (start of an activation, the VAPID key). */
export async function publicCall<T>(method: string, path: string, body?: unknown): Promise<T> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return decode<T>(await send(path, { method, headers: { accept: 'application/json', ...(text ? { 'content-type': 'application/json' } : {}) }, ...(text ? { body: text } : {}) }));
}

export async function signedHeaders(key: CryptoKey, deviceId: string, method: string, path: string, text: string): Promise<Record<string, string>> {
  return signRequest(key, { method, path, deviceId, body: text, now: serverNow() });
}

/** A call signed by the device key (or, during activation, by the new key with device id `activation`). */
export async function signedCall<T>(key: CryptoKey, deviceId: string, method: string, path: string, body?: unknown, retry = true): Promise<T> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers = await signedHeaders(key, deviceId, method, path, text);
  try {
    return await decode<T>(await send(path, { method, headers: { ...headers, accept: 'application/json', ...(text ? { 'content-type': 'application/json' } : {}) }, ...(text ? { body: text } : {}) }));
  } catch (error) {
    // The answer carried the server's time: sign again once with it.
    if (retry && error instanceof ApiError && error.code === 'SIGNATURE_STALE') return signedCall<T>(key, deviceId, method, path, body, false);
    throw error;
  }
}

export interface ChallengeView {
  id: string;
  service: { clientId: string; name: string };
  context: { ip: string; place: string | null; browser: string; userAgent: string };
  mode: 'pick' | 'typed';
  candidates: string[];
  delivery: string;
  createdAt: number;
  expiresAt: number;
}

/** Ended unanswered, so it may be reported as "not me" (the server has the last word). A superseded request is not: the newer one from the same browser is answered or reported instead. */
export function isReportable(state: string, reason: string | null): boolean {
  return state === 'expired' || (state === 'cancelled' && reason !== 'superseded');
}

/** GET /device/v1/challenges/{id}/outcome: a request in any state. */
export interface ChallengeOutcome extends Pick<ChallengeView, 'id' | 'service' | 'context' | 'createdAt' | 'expiresAt'> {
  state: 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'failed';
  reason: string | null;
  settledAt: number | null;
  reportable: boolean;
}

export interface DeviceView {
  id: string;
  nationalId: string;
  name: string;
  state: 'active' | 'locked' | 'revoked';
  createdAt: number;
  lastUsedAt: number | null;
}
