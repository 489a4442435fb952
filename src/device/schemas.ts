import { createECDH } from 'node:crypto';
import { z } from 'zod';
import { CHALLENGE_STATES } from '../challenge/challenge.ts';

/** Request and response bodies of the device protocol; the OpenAPI document is generated from these. */
export const publicJwk = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  y: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
}).strict();

/** Shown in the wallet and quoted in the notice email of a new device: printable text only. */
const deviceName = z.string().trim().min(1).max(60).regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u, 'printable characters only (no line breaks or control characters)').default('e-CPS');

export const activateBody = z.object({
  nationalId: z.string().regex(/^8\d{11}$/, 'a national identifier: 8 followed by the 11-digit RPPS'),
  activationCode: z.string().min(4).max(32),
  publicKey: publicJwk,
  pin: z.string().regex(/^\d{4}$/, '4 digits'),
  name: deviceName,
}).strict();

export const approveBody = z.object({
  code: z.string().regex(/^\d{2}$|^\d{6}$/, 'the 2-digit code picked or the 6-digit code typed'),
  pin: z.string().regex(/^\d{4}$/, '4 digits'),
}).strict();

export const denyBody = z.object({ reason: z.enum(['refused', 'not_me']) }).strict();

export const challengeIdParams = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{10,64}$/) });

export const deviceView = z.object({
  id: z.string(),
  nationalId: z.string(),
  name: z.string(),
  state: z.enum(['active', 'locked', 'revoked']),
  createdAt: z.number(),
  lastUsedAt: z.number().nullable(),
});

export const challengeView = z.object({
  id: z.string(),
  service: z.object({ clientId: z.string(), name: z.string() }),
  context: z.object({ ip: z.string(), place: z.string().nullable(), browser: z.string(), userAgent: z.string() }),
  mode: z.enum(['pick', 'typed']),
  candidates: z.array(z.string()).describe('three codes in random order (pick mode); empty in typed mode'),
  delivery: z.enum(['push', 'silent', 'none']),
  createdAt: z.number(),
  expiresAt: z.number(),
});

export const challengeOutcomeView = challengeView.omit({ mode: true, candidates: true, delivery: true }).extend({
  state: z.enum(CHALLENGE_STATES),
  reason: z.string().nullable().describe('why it ended: cancelled (withdrawn by its browser), superseded, refused, not_me, wrong_code, device_locked…'),
  settledAt: z.number().nullable(),
  reportable: z.boolean().describe('it ended unanswered less than 15 minutes ago: POST /challenges/{id}/report may report it as "not me"'),
});

export const errorView = z.object({ error: z.string(), message: z.string() });

// Activation by email + SMS codes (activation.ts) and live delivery (push/routes.ts).
const nationalId = z.string().regex(/^8\d{11}$/, 'a national identifier: 8 followed by the 11-digit RPPS');
const sixDigits = z.string().regex(/^\d{6}$/, '6 digits');

export const activationStartBody = z.object({ nationalId }).strict();

export const activationFlowParams = z.object({ flowId: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'an activation id') });

export const activationVerifyBody = z.object({ emailCode: sixDigits, smsCode: sixDigits, publicKey: publicJwk }).strict();

export const activationCompleteBody = z.object({
  publicKey: publicJwk,
  pin: z.string().regex(/^\d{4}$/, '4 digits'),
  name: deviceName,
}).strict();

export const activationView = z.object({
  flowId: z.string(),
  state: z.enum(['pending', 'verified']),
  expiresAt: z.number(),
});

/** `PushSubscription.toJSON()` as browsers give it (RFC 8030 endpoint, RFC 8291 keys). */
export const pushSubscriptionBody = z.object({
  endpoint: z.string().max(2048).pipe(z.url()),
  expirationTime: z.number().nullable().optional(),
  keys: z.object({
    p256dh: z.string().regex(/^[A-Za-z0-9_-]{87}=?$/, 'an uncompressed P-256 public key, base64url').refine(isP256Point, 'a point of the P-256 curve'),
    auth: z.string().regex(/^[A-Za-z0-9_-]{22}(==)?$/, '16 bytes, base64url'),
  }).strict(),
}).strict();

export const pushKeyView = z.object({ publicKey: z.string().describe('VAPID application server key (uncompressed P-256 point, base64url)') });

/** A key the push service could never encrypt to would fail every delivery: refused when given. */
function isP256Point(base64url: string): boolean {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  try {
    ecdh.computeSecret(Buffer.from(base64url, 'base64url'));
    return true;
  } catch {
    return false;
  }
}
