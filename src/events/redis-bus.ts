import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { EventBus, EventMap, EventName } from './bus.ts';
import type { RedisHandle } from '../store/redis/client.ts';

interface Envelope {
  e: EventName;
  p: unknown;
}

/**
 * The event bus of several nodes: every event is published on one Redis channel and every node
 * hands it to its local listeners (the login page's stream of a challenge, the app's stream of a
 * professional), whichever node produced it.
 *
 * Redis pub/sub delivers at most once: while a node's subscription is reconnecting, events are
 * lost for it. So when both of its connections are back, the node emits `bus.resync` locally, and
 * whoever waits on an event re-reads the state it waits on.
 */
export class RedisBus implements EventBus {
  readonly #emitter = new EventEmitter();
  readonly #redis: RedisHandle;
  readonly #subscriber: Redis;
  readonly #channel: string;
  #closed = false;

  private constructor(redis: RedisHandle, subscriber: Redis) {
    this.#redis = redis;
    this.#subscriber = subscriber;
    this.#channel = redis.key('events');
    this.#emitter.setMaxListeners(0);
  }

  static async open(redis: RedisHandle): Promise<RedisBus> {
    const bus = new RedisBus(redis, redis.duplicate());
    const sub = bus.#subscriber;
    sub.on('message', (channel: string, message: string) => {
      if (channel !== bus.#channel) return;
      let envelope: Envelope;
      try {
        envelope = JSON.parse(message) as Envelope;
      } catch {
        return;
      }
      bus.#emitter.emit(envelope.e, envelope.p);
    });
    await sub.subscribe(bus.#channel);
    let lost = false;
    sub.on('close', () => {
      lost = true;
    });
    sub.on('ready', () => {
      if (!lost) return;
      lost = false;
      void bus.#resyncWhenConnected();
    });
    redis.client.on('ready', () => {
      // The command connection came back later than the subscription: re-read now.
      if (sub.status === 'ready') void bus.#resyncWhenConnected();
    });
    return bus;
  }

  async #resyncWhenConnected(): Promise<void> {
    for (let waited = 0; waited < 30_000 && !this.#closed; waited += 100) {
      if (this.#redis.client.status === 'ready' && this.#subscriber.status === 'ready') {
        this.#emitter.emit('bus.resync', {});
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async publish<E extends EventName>(event: E, payload: EventMap[E]): Promise<void> {
    if (event === 'bus.resync') {
      this.#emitter.emit(event, payload);
      return;
    }
    await this.#redis.client.publish(this.#channel, JSON.stringify({ e: event, p: payload } satisfies Envelope));
  }

  subscribe<E extends EventName>(event: E, listener: (payload: EventMap[E]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#emitter.removeAllListeners();
    this.#subscriber.disconnect();
  }
}
