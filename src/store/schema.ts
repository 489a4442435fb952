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
}

export interface SigningKeyTable {
  kid: string;
  alg: string;
  sealed_jwk: string;
  state: string;
  created_at: number;
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

export type { Generated };
