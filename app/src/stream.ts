import { ApiError, learnServerTime, signedHeaders, type ChallengeView } from './api.ts';
import type { StoredDevice } from './keystore.ts';

export interface StreamHandlers {
  onPending(challenges: ChallengeView[]): void;
  onChallenge(challenge: ChallengeView): void;
  onSettled(event: { id: string; state: string; reason?: string | null }): void;
  /** The device is no longer usable (revoked, locked, unknown): the stream stops for good. */
  onDeviceGone(code: string): void;
  onConnection(connected: boolean): void;
}

const PATH = '/device/v1/stream';
const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];

/**
 * The live channel while the app is open: Server-Sent Events read with fetch (EventSource cannot
 * send the signature headers), signed like every device call, reconnected with back-off; the
 * server ends each stream after a while and the next one is signed afresh.
 */
export function openStream(device: StoredDevice, handlers: StreamHandlers): { close(): void } {
  let stopped = false;
  let controller: AbortController | undefined;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const dispatch = (event: string, data: string) => {
    const payload = JSON.parse(data) as unknown;
    if (event === 'ready') failures = 0;
    else if (event === 'pending') handlers.onPending((payload as { challenges: ChallengeView[] }).challenges);
    else if (event === 'challenge') handlers.onChallenge(payload as ChallengeView);
    else if (event === 'settled') handlers.onSettled(payload as { id: string; state: string; reason?: string | null });
    else if (event === 'revoked') {
      stopped = true;
      handlers.onDeviceGone((payload as { state: string }).state === 'locked' ? 'DEVICE_LOCKED' : 'DEVICE_REVOKED');
    }
  };

  const connect = async () => {
    if (stopped) return;
    controller = new AbortController();
    try {
      const headers = await signedHeaders(device.privateKey, device.deviceId, 'GET', PATH, '');
      const response = await fetch(PATH, { headers: { ...headers, accept: 'text/event-stream' }, cache: 'no-store', credentials: 'omit', signal: controller.signal });
      learnServerTime(response);
      if (!response.ok || !response.body) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        throw new ApiError(body.error ?? `HTTP_${response.status}`, response.status, 'stream refused');
      }
      handlers.onConnection(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (!data.length) continue;
          try {
            dispatch(event, data.join('\n'));
          } catch (error) {
            // A screen failing to draw must not tear the live channel down.
            console.error('e-CPS: could not handle a stream event', error);
          }
        }
      }
    } catch (error) {
      if (error instanceof ApiError && ['DEVICE_REVOKED', 'DEVICE_LOCKED', 'DEVICE_UNKNOWN'].includes(error.code)) {
        stopped = true;
        handlers.onConnection(false);
        handlers.onDeviceGone(error.code);
        return;
      }
      failures += 1;
    }
    if (stopped) return;
    handlers.onConnection(false);
    timer = setTimeout(connect, BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]);
  };

  void connect();
  return {
    close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      controller?.abort();
    },
  };
}
