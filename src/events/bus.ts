import { EventEmitter } from 'node:events';

export interface EventMap {
  'challenge.created': { challengeId: string; nationalId: string | null; delivery: string };
  'challenge.settled': { challengeId: string; state: string; nationalId: string | null; reason?: string | null };
  /** Local only: events may have been missed (the Redis bus reconnected); waiters re-read their state. */
  'bus.resync': Record<string, never>;
}
export type EventName = keyof EventMap;

/**
 * The seam between flows and delivery. The in-process bus serves one node; a Redis pub/sub bus
 * with the same interface serves several, without changing the flows.
 */
export interface EventBus {
  publish<E extends EventName>(event: E, payload: EventMap[E]): Promise<void>;
  subscribe<E extends EventName>(event: E, listener: (payload: EventMap[E]) => void): () => void;
  close(): Promise<void>;
}

export class InProcessBus implements EventBus {
  readonly #emitter = new EventEmitter();
  constructor() {
    this.#emitter.setMaxListeners(0);
  }
  async publish<E extends EventName>(event: E, payload: EventMap[E]): Promise<void> {
    this.#emitter.emit(event, payload);
  }
  subscribe<E extends EventName>(event: E, listener: (payload: EventMap[E]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }
  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
  }
}
