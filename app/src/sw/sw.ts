/// <reference lib="webworker" />
/**
 * The e-CPS service worker:
 * - offline shell: the built files are cached at install; pages fall back to the cached shell
 *   when the network is down (the device protocol itself is never cached);
 * - Web Push: the message names only a challenge id; the worker fetches the request over the
 *   signed device protocol to name the service in the notification, or hands it to an open window.
 */
import { signRequest } from '../../../src/device/signature.ts';
import { getDevice } from '../keystore.ts';

declare const self: ServiceWorkerGlobalScope;
declare const __PRECACHE__: string[];
declare const __VERSION__: string;

const CACHE = `ecps-${__VERSION__}`;
const SHELL = new URL('./', self.registration.scope).href;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(__PRECACHE__.map((path) => new URL(path, self.registration.scope).href)))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('ecps-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || !url.href.startsWith(self.registration.scope)) return;
  if (request.mode === 'navigate') {
    // Network first, so a new version shows at once; the cached shell when offline.
    event.respondWith(fetch(request).catch(async () => (await caches.match(SHELL)) ?? Response.error()));
    return;
  }
  event.respondWith(caches.match(request).then((hit) => hit ?? fetch(request)));
});

interface ChallengeSummary {
  service: { name: string };
  expiresAt: number;
}

/** GET …/outcome: a request that is no longer pending. */
interface EndedSummary {
  service: { name: string };
  reportable: boolean;
}

/** A signed GET of the device protocol; undefined when it fails (the clock is corrected once, as the app does). */
async function signedGet<T>(path: string): Promise<T | undefined> {
  const device = await getDevice();
  if (!device) return undefined;
  for (let attempt = 0, now = Date.now(); attempt < 2; attempt += 1) {
    const headers = await signRequest(device.privateKey, { method: 'GET', path, deviceId: device.deviceId, body: '', now });
    const response = await fetch(path, { headers: { ...headers, accept: 'application/json' }, cache: 'no-store', credentials: 'omit' });
    if (response.ok) return (await response.json()) as T;
    const error = ((await response.json().catch(() => ({}))) as { error?: string }).error;
    const serverTime = Number(response.headers.get('x-vigie-time'));
    if (error !== 'SIGNATURE_STALE' || !serverTime) return undefined;
    now = serverTime;
  }
  return undefined;
}

self.addEventListener('push', (event) => {
  let challengeId = '';
  try {
    challengeId = String((event.data?.json() as { challengeId?: unknown } | undefined)?.challengeId ?? '');
  } catch {
    challengeId = '';
  }
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      // Only the app's own window: a login page or the wallet on screen shows no request.
      const visible = windows.find((w) => w.visibilityState === 'visible' && w.url.startsWith(self.registration.scope));
      if (visible) {
        // The app is on screen: it shows the request itself.
        visible.postMessage({ type: 'challenge', challengeId });
        return;
      }
      const path = `/device/v1/challenges/${encodeURIComponent(challengeId)}`;
      const challenge = challengeId ? await signedGet<ChallengeSummary>(path).catch(() => undefined) : undefined;
      // Already ended (often an attacker's request, withdrawn at once): still worth a word, since
      // the person may report it.
      const ended = challengeId && !challenge ? await signedGet<EndedSummary>(`${path}/outcome`).catch(() => undefined) : undefined;
      await self.registration.showNotification('Demande de connexion e-CPS', {
        body: challenge
          ? `${challenge.service.name} : quelqu’un demande à se connecter en votre nom. Ne validez que si c’est vous.`
          : ended?.reportable
            ? `Une demande de connexion à ${ended.service.name} a été retirée ou a expiré avant votre réponse. Si vous n’en êtes pas à l’origine, ouvrez e-CPS pour la signaler.`
            : ended
              ? `Une demande de connexion à ${ended.service.name} a déjà été traitée.`
              : 'Une demande de connexion vous attend peut-être. Ouvrez e-CPS pour la consulter.',
        tag: challengeId || 'ecps',
        icon: new URL('icons/icon-192.png', self.registration.scope).href,
        data: { challengeId },
      });
    })(),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const challengeId = String((event.notification.data as { challengeId?: string } | null)?.challengeId ?? '');
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const open = windows.find((w) => w.url.startsWith(self.registration.scope));
      if (open) {
        open.postMessage({ type: 'challenge', challengeId });
        await open.focus();
        return;
      }
      await self.clients.openWindow(`${self.registration.scope}${challengeId ? `?demande=${encodeURIComponent(challengeId)}` : ''}`);
    })(),
  );
});
