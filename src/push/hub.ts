import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';
import type { EventBus, EventMap } from '../events/bus.ts';
import type { ChallengeService } from '../challenge/service.ts';
import type { Challenge } from '../challenge/challenge.ts';
import { viewChallenge } from '../device/routes.ts';
import type { PushGateway } from './gateway.ts';
import type { PushStore } from './store.ts';
import type { DeviceStore } from '../device/store.ts';

/** One open device stream (SSE) on this node. */
export interface DeviceStream {
  deviceId: string;
  nationalId: string;
  send(event: string, data: unknown): void;
  close(): void;
}

const DELIVERY_RETENTION_MS = 24 * 3600_000;
/**
 * Streams one device may hold open on a node. The app keeps one; a reconnect loop (an app bug, a
 * network that drops connections without the server seeing them end) must not pile up sockets and
 * heartbeat reads on the node: past this, the oldest stream of the device is closed.
 */
export const MAX_STREAMS_PER_DEVICE = 3;

/**
 * Live delivery of push challenges, fed by the event bus:
 * - to the app while it is open: every stream of the professional on this node gets the
 *   request within milliseconds (`challenge`), and its end (`settled`);
 * - when it is closed: a Web Push (through the gateway) naming only the challenge id, to each
 *   active device with a subscription and no stream on this node, sent by the node that created
 *   the challenge (the other nodes only feed their own streams, and read the challenge only when
 *   they have one for that professional); a delivery claim in the database makes each
 *   (challenge, device) push happen once.
 * Only challenges created with delivery `push` are delivered; `silent` ones wait for the app to
 * pull them (GET /device/v1/challenges) when it is opened.
 */
export class DeliveryHub {
  readonly #streams = new Map<string, Set<DeviceStream>>();
  readonly #bus: EventBus;
  readonly #challenges: ChallengeService;
  readonly #push: PushStore;
  readonly #devices: Pick<DeviceStore, 'get'>;
  readonly #gateway: PushGateway | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #inFlight = new Set<Promise<void>>();
  #unsubscribe: Array<() => void> = [];

  constructor(deps: { bus: EventBus; challenges: ChallengeService; push: PushStore; devices: Pick<DeviceStore, 'get'>; gateway?: PushGateway; clock: Clock; logger: Logger }) {
    this.#bus = deps.bus;
    this.#challenges = deps.challenges;
    this.#push = deps.push;
    this.#devices = deps.devices;
    this.#gateway = deps.gateway;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
  }

  start(): void {
    this.#unsubscribe = [
      this.#bus.subscribe('challenge.created', (event) => this.#track(this.#onCreated(event))),
      this.#bus.subscribe('challenge.settled', (event) => this.#onSettled(event)),
      this.#challenges.onCreated((challenge) => this.#track(this.#webPush(challenge))),
    ];
  }

  stop(): void {
    this.#unsubscribe.forEach((off) => off());
    this.#unsubscribe = [];
  }

  /** Registers an open stream; the returned function detaches it. */
  attach(stream: DeviceStream): () => void {
    const set = this.#streams.get(stream.nationalId) ?? new Set<DeviceStream>();
    // Insertion order: the first ones found are the oldest.
    const same = [...set].filter((s) => s.deviceId === stream.deviceId);
    for (const oldest of same.slice(0, Math.max(0, same.length - MAX_STREAMS_PER_DEVICE + 1))) oldest.close();
    set.add(stream);
    this.#streams.set(stream.nationalId, set);
    return () => {
      set.delete(stream);
      if (set.size === 0 && this.#streams.get(stream.nationalId) === set) this.#streams.delete(stream.nationalId);
    };
  }

  /** Ends every open stream (shutdown): the apps reconnect to another node. */
  closeAll(): void {
    for (const set of [...this.#streams.values()]) for (const stream of [...set]) stream.close();
  }

  streamCount(): number {
    let n = 0;
    for (const set of this.#streams.values()) n += set.size;
    return n;
  }

  /** Waits for the deliveries in progress (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  async purge(): Promise<number> {
    return this.#push.purgeDeliveries(this.#clock.now() - DELIVERY_RETENTION_MS);
  }

  #track(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => this.#logger.error({ err }, 'challenge delivery failed')).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async #onCreated(event: EventMap['challenge.created']): Promise<void> {
    if (event.delivery !== 'push' || !event.nationalId) return;
    const local = this.#streams.get(event.nationalId);
    if (!local?.size) return;
    const challenge = await this.#challenges.get(event.challengeId);
    if (!challenge || challenge.state !== 'pending' || challenge.nationalId !== event.nationalId) return;
    const view = viewChallenge(challenge);
    // A stream outlives its device's revocation or lock (wallet, "not me" link, PINs), which may
    // happen on any node: the request (place, browser, codes) goes to active devices only.
    await Promise.all(
      [...local].map(async (stream) => {
        if ((await this.#devices.get(stream.deviceId))?.state === 'active') stream.send('challenge', view);
        else stream.close();
      }),
    );
  }

  async #webPush(challenge: Challenge): Promise<void> {
    if (challenge.delivery !== 'push' || !challenge.nationalId || !this.#gateway) return;
    // Even to a device whose stream looks open: after a network change (Wi-Fi to 4G) a stream can
    // stay half-open here for minutes while the phone hears nothing. The service worker shows no
    // notification while the app is on screen.
    const targets = await this.#push.forProfessional(challenge.nationalId);
    const now = this.#clock.now();
    await Promise.all(
      targets
        .map(async (target) => {
          if (!(await this.#push.claimDelivery(challenge.id, target.deviceId, now))) return;
          const result = await this.#gateway!.send(target, { challengeId: challenge.id, ttlSeconds: Math.max(1, Math.round((challenge.expiresAt - now) / 1000)) });
          if (result.status === 'gone') await this.#push.remove(target.deviceId);
          if (result.status === 'failed') this.#logger.warn({ deviceId: target.deviceId, reason: result.reason }, 'web push delivery failed');
        }),
    );
  }

  #onSettled(event: EventMap['challenge.settled']): void {
    if (!event.nationalId) return;
    for (const stream of this.#streams.get(event.nationalId) ?? []) stream.send('settled', { id: event.challengeId, state: event.state, reason: event.reason ?? null });
  }
}
