import type { Generated } from 'kysely';

/** Table shapes shared by SQLite and PostgreSQL. Times are epoch milliseconds; JSON is stored as text. */
export interface Database {
  professional: ProfessionalTable;
  professional_contact: ContactTable;
  device: DeviceTable;
  device_nonce: DeviceNonceTable;
  challenge: ChallengeTable;
  activation: ActivationTable;
  oidc_model: OidcModelTable;
  signing_key: SigningKeyTable;
  audit_log: AuditLogTable;
  push_subscription: PushSubscriptionTable;
  push_delivery: PushDeliveryTable;
  outbox: OutboxTable;
  device_revoke_token: DeviceRevokeTokenTable;
  provider_session_info: ProviderSessionInfoTable;
  wallet_session: WalletSessionTable;
  logout_delivery: LogoutDeliveryTable;
  contact_change: ContactChangeTable;
  wallet_report: WalletReportTable;
  defence_counter: DefenceCounterTable;
  defence_distinct: DefenceDistinctTable;
  defence_flag: DefenceFlagTable;
  defence_state: DefenceStateTable;
  defence_block: DefenceBlockTable;
  defence_signal: DefenceSignalTable;
  defence_place: DefencePlaceTable;
  notification_settings: NotificationSettingsTable;
  defence_event: DefenceEventTable;
}

export interface ProfessionalTable {
  national_id: string;
  id_type: string;
  identifier: string;
  family_name: string;
  given_name: string;
  /** JSON: Exercise[] (see directory/model.ts). */
  exercises: string;
  updated_at: number;
}

export interface ContactTable {
  national_id: string;
  email: string | null;
  mobile: string | null;
  updated_at: number;
}

export interface DeviceTable {
  id: string;
  national_id: string;
  name: string;
  /** JSON: the device's P-256 public JWK. */
  public_key: string;
  pin_hash: string;
  pin_failures: number;
  state: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface DeviceNonceTable {
  device_id: string;
  nonce: string;
  expires_at: number;
}

export interface ChallengeTable {
  id: string;
  national_id: string | null;
  interaction_uid: string;
  client_id: string;
  client_name: string;
  mode: string;
  display_code: string;
  /** JSON: string[] offered to the device (empty in typed mode). */
  candidates: string;
  delivery: string;
  /** JSON: RequestContext. */
  context: string;
  state: string;
  reason: string | null;
  device_id: string | null;
  created_at: number;
  expires_at: number;
  settled_at: number | null;
  consumed_at: number | null;
}

export interface ActivationTable {
  id: string;
  national_id: string;
  method: string;
  code_hash: string;
  attempts: number;
  state: string;
  created_at: number;
  expires_at: number;
  settled_at: number | null;
  device_id: string | null;
  /** 002-app: the SMS code of an `email_sms` flow (`code_hash` holds its email code). */
  sms_code_hash?: string | null;
  key_thumbprint?: string | null;
  source_ip?: string | null;
}

export interface PushSubscriptionTable {
  device_id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  created_at: number;
}

export interface PushDeliveryTable {
  challenge_id: string;
  device_id: string;
  at: number;
}

export interface OutboxTable {
  id: string;
  channel: string;
  recipient: string;
  subject: string | null;
  body: string;
  created_at: number;
}

export interface DeviceRevokeTokenTable {
  token_hash: string;
  device_id: string;
  national_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface OidcModelTable {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  expires_at: number | null;
  consumed_at: number | null;
  /** 004-wallet: the payload's `accountId` (Session, Grant, tokens), indexed. */
  account_id?: string | null;
}

export interface SigningKeyTable {
  kid: string;
  alg: string;
  sealed_jwk: string;
  /** next (published, not signing yet), active (signs), retired (published, signs no more). */
  state: string;
  created_at: number;
  changed_at: number | null;
}

export interface AuditLogTable {
  seq: number;
  at: number;
  actor: string;
  event: string;
  subject: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

/** 004-wallet: where and from what a provider session was opened (keyed by oidc-provider's session uid). */
export interface ProviderSessionInfoTable {
  session_uid: string;
  national_id: string;
  ip: string | null;
  browser: string | null;
  place: string | null;
  challenge_id: string | null;
  created_at: number;
  last_used_at: number;
  last_ip: string | null;
}

/** 004-wallet: a professional logged in to the wallet (the cookie holds the id; only its hash is stored). */
export interface WalletSessionTable {
  id_hash: string;
  national_id: string;
  session_uid: string;
  sid: string;
  csrf: string;
  authenticated_at: number;
  created_at: number;
  expires_at: number;
}

/** 004-wallet: one back-channel logout token to deliver to one service, retried with back-off. */
export interface LogoutDeliveryTable {
  id: string;
  national_id: string;
  session_uid: string | null;
  client_id: string;
  sid: string;
  reason: string;
  state: string;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

/** 004-wallet: a change of email or mobile, from request to the end of its cooling-off delay. */
export interface ContactChangeTable {
  id: string;
  national_id: string;
  kind: string;
  old_value: string | null;
  new_value: string;
  code_hash: string;
  attempts: number;
  cancel_hash: string;
  state: string;
  created_at: number;
  code_expires_at: number;
  confirmed_at: number | null;
  usable_at: number | null;
  settled_at: number | null;
}

export interface WalletReportTable {
  id: string;
  national_id: string;
  attempt: string | null;
  comment: string | null;
  sessions_ended: number;
  created_at: number;
}

/** 003-defences: one fixed rate window of one key (see defence/store.ts). */
export interface DefenceCounterTable {
  key: string;
  window_start: number;
  count: number;
  expires_at: number;
}

export interface DefenceDistinctTable {
  key: string;
  window_start: number;
  member: string;
  expires_at: number;
}

export interface DefenceFlagTable {
  key: string;
  until: number;
}

export interface DefenceStateTable {
  national_id: string;
  strikes: number;
  backoff_until: number;
  under_attack_until: number;
  /** JSON: number[], times of the recent pushes to untrusted browsers. */
  push_times: string;
  version: number;
  updated_at: number;
  /** Trusted-browser cookies issued before then no longer count (0: never). */
  trust_reset_at: number;
}

export interface DefenceBlockTable {
  id: string;
  scope: string;
  national_id: string | null;
  prefix: string | null;
  browser_id: string | null;
  reason: string;
  place: string | null;
  created_at: number;
  expires_at: number;
  lifted_at: number | null;
  lifted_by: string | null;
}

export interface DefenceSignalTable {
  id: string;
  at: number;
  kind: string;
  national_id: string;
  ip: string;
  prefix: string;
  browser_id: string | null;
  /** 1: the reported request came from a browser trusted for that professional (only its browser id is suspect). */
  trusted: number;
  /** IPv6: its /48; null for IPv4. */
  site: string | null;
}

export interface DefencePlaceTable {
  national_id: string;
  place: string;
  first_seen: number;
  last_seen: number;
}

export interface NotificationSettingsTable {
  national_id: string;
  push_enabled: number;
  quiet_until: number | null;
  updated_at: number;
}

export interface DefenceEventTable {
  id: string;
  at: number;
  national_id: string | null;
  kind: string;
  /** JSON: string[]. */
  reasons: string;
  trusted: number;
  ip: string;
  prefix: string;
  browser_id: string | null;
  place: string | null;
  challenge_id: string | null;
  /** How many requests the line stands for (refusals share one per source, reason and minute). */
  count: number;
}

export type { Generated };
