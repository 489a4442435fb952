/**
 * A push gateway wakes a closed app. The message names only a challenge id: the app fetches the
 * request itself over the signed device protocol, so no personal data transits a push service.
 * Web Push (VAPID, RFC 8030/8291/8292) is implemented in ./webpush.ts; FCM or APNs adapters for
 * native apps would implement the same interface.
 */
export interface PushTarget {
  deviceId: string;
  endpoint: string;
  /** RFC 8291 user agent public key (base64url) and authentication secret (base64url). */
  p256dh: string;
  auth: string;
}

export interface PushMessage {
  challengeId: string;
  /** Seconds the push service may keep the message (the challenge's remaining life). */
  ttlSeconds: number;
}

/** `gone`: the subscription no longer exists (404/410) and should be forgotten. */
export type PushResult = { status: 'sent' } | { status: 'gone' } | { status: 'failed'; reason: string };

export interface PushGateway {
  readonly name: string;
  send(target: PushTarget, message: PushMessage): Promise<PushResult>;
}
