import { randomInt } from 'node:crypto';
import { randomDigits } from '../lib/crypto.ts';

/**
 * The push challenge: one login attempt waiting for the professional's approval on a device.
 * Every state change goes through `TRANSITIONS`; the store applies them as compare-and-set on the
 * current state, so two nodes (or two taps) can never both settle one challenge.
 */
export const CHALLENGE_STATES = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'failed'] as const;
export type ChallengeState = (typeof CHALLENGE_STATES)[number];

export const TRANSITIONS: Readonly<Record<ChallengeState, readonly ChallengeState[]>> = {
  pending: ['approved', 'denied', 'expired', 'cancelled', 'failed'],
  approved: [],
  denied: [],
  expired: [],
  cancelled: [],
  failed: [],
};

/**
 * How long after its creation a request that ended unanswered (withdrawn by its browser, expired)
 * may still be reported as "not me" from the app. Redis keeps settled requests at least this long.
 */
export const REPORTABLE_FOR_MS = 15 * 60_000;

export function canTransition(from: ChallengeState, to: ChallengeState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * `pick`: the page shows a 2-digit code, the device offers three candidates (number matching).
 * `typed`: the page shows a 6-digit code the user types on the device (transfer of a secret).
 */
export type ChallengeMode = 'pick' | 'typed';
/** `push`: devices were notified; `silent`: visible only when the app is opened; `none`: nobody to notify. */
export type Delivery = 'push' | 'silent' | 'none';
export type DenyReason = 'refused' | 'not_me';
export type FailReason = 'wrong_code' | 'device_locked';

export interface RequestContext {
  ip: string;
  userAgent: string;
  browser: string;
  place: string | null;
  /** The requesting browser's random id (cookie `vigie_bid`), when the defences are on. */
  browserId?: string;
  /** The source network: /24 (IPv4) or /56 (IPv6). */
  prefix?: string;
  /** Offline GeoIP place of the address, when public and known. */
  geo?: { country: string; region: string; city: string } | null;
  /** The browser holds a trusted-browser cookie for this professional. */
  trusted?: boolean;
  /** Why the request was created silent, or which risk signals it raised (defence/service.ts). */
  holds?: string[];
  risk?: string[];
}

export interface Challenge {
  id: string;
  nationalId: string | null;
  interactionUid: string;
  clientId: string;
  clientName: string;
  mode: ChallengeMode;
  displayCode: string;
  candidates: string[];
  delivery: Delivery;
  context: RequestContext;
  state: ChallengeState;
  reason: string | null;
  deviceId: string | null;
  createdAt: number;
  expiresAt: number;
  settledAt: number | null;
  consumedAt: number | null;
}

export interface CodeMaterial {
  displayCode: string;
  candidates: string[];
}

const PICK_DIGITS = 2;
const TYPED_DIGITS = 6;

/** Draws the code shown on the page and, in pick mode, two distinct decoys, all from the CSPRNG. */
export function drawCodes(mode: ChallengeMode): CodeMaterial {
  if (mode === 'typed') return { displayCode: randomDigits(TYPED_DIGITS), candidates: [] };
  const codes = new Set<string>();
  while (codes.size < 3) codes.add(randomDigits(PICK_DIGITS));
  const [displayCode] = codes;
  return { displayCode: displayCode as string, candidates: shuffle([...codes]) };
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = randomInt(i + 1);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

export function isCodeShaped(mode: ChallengeMode, code: string): boolean {
  return new RegExp(`^\\d{${mode === 'typed' ? TYPED_DIGITS : PICK_DIGITS}}$`).test(code);
}
