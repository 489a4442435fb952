import type { Db } from '../store/db.ts';
import { prepared } from '../store/prepared.ts';
import type { PushTarget } from './gateway.ts';

/** Web Push subscriptions (one per device) and the claims that make each delivery happen once. */
export interface PushStore {
  put(target: PushTarget, now: number): Promise<void>;
  remove(deviceId: string): Promise<void>;
  get(deviceId: string): Promise<PushTarget | undefined>;
  /** Subscriptions of active devices of a professional. */
  forProfessional(nationalId: string): Promise<PushTarget[]>;
  /** True for exactly one caller per (challenge, device), across nodes. */
  claimDelivery(challengeId: string, deviceId: string, now: number): Promise<boolean>;
  purgeDeliveries(before: number): Promise<number>;
}

// Run for every pushed challenge, built once (store/prepared.ts).
const subscriptionsOf = prepared((db, nationalId: string) =>
  db.selectFrom('push_subscription')
    .innerJoin('device', 'device.id', 'push_subscription.device_id')
    .select(['push_subscription.device_id', 'push_subscription.endpoint', 'push_subscription.p256dh', 'push_subscription.auth'])
    .where('device.national_id', '=', nationalId)
    .where('device.state', '=', 'active'),
);

export class SqlPushStore implements PushStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async put(t: PushTarget, now: number): Promise<void> {
    await this.#db.kysely
      .insertInto('push_subscription')
      .values({ device_id: t.deviceId, endpoint: t.endpoint, p256dh: t.p256dh, auth: t.auth, created_at: now })
      .onConflict((oc) => oc.column('device_id').doUpdateSet({ endpoint: t.endpoint, p256dh: t.p256dh, auth: t.auth, created_at: now }))
      .execute();
  }

  async remove(deviceId: string): Promise<void> {
    await this.#db.kysely.deleteFrom('push_subscription').where('device_id', '=', deviceId).execute();
  }

  async get(deviceId: string): Promise<PushTarget | undefined> {
    const row = await this.#db.kysely.selectFrom('push_subscription').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    return row && { deviceId: row.device_id, endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth };
  }

  async forProfessional(nationalId: string): Promise<PushTarget[]> {
    const { rows } = await subscriptionsOf(this.#db, nationalId);
    return rows.map((r) => ({ deviceId: r.device_id, endpoint: r.endpoint, p256dh: r.p256dh, auth: r.auth }));
  }

  async claimDelivery(challengeId: string, deviceId: string, now: number): Promise<boolean> {
    const result = await this.#db.kysely
      .insertInto('push_delivery')
      .values({ challenge_id: challengeId, device_id: deviceId, at: now })
      .onConflict((oc) => oc.columns(['challenge_id', 'device_id']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async purgeDeliveries(before: number): Promise<number> {
    const result = await this.#db.kysely.deleteFrom('push_delivery').where('at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
