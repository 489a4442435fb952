import { fromBase64url } from '../../src/device/signature.ts';
import { publicCall, signedCall } from './api.ts';
import type { StoredDevice } from './keystore.ts';

/** Service worker (offline shell, Web Push) and the push subscription of this device. */
export async function registerServiceWorker(): Promise<ServiceWorkerRegistration | undefined> {
  if (!('serviceWorker' in navigator)) return undefined;
  try {
    return await navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' });
  } catch {
    return undefined;
  }
}

export function pushSupported(): boolean {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

export function notificationPermission(): NotificationPermission | 'unsupported' {
  return pushSupported() ? Notification.permission : 'unsupported';
}

function sameKey(subscription: PushSubscription, key: Uint8Array): boolean {
  const current = subscription.options.applicationServerKey;
  if (!current) return false;
  const bytes = new Uint8Array(current);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}

/**
 * Subscribes this browser to Web Push with the provider's VAPID key and registers the
 * subscription for this device. Throws when the browser has no push service.
 */
export async function subscribe(device: StoredDevice, options: { ask: boolean }): Promise<'subscribed' | 'denied' | 'unsupported'> {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'default' && options.ask) await Notification.requestPermission();
  if (Notification.permission !== 'granted') return 'denied';
  const registration = await navigator.serviceWorker.ready;
  const { publicKey } = await publicCall<{ publicKey: string }>('GET', '/device/v1/push/key');
  const key = fromBase64url(publicKey);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await signedCall(device.privateKey, device.deviceId, 'PUT', '/device/v1/push/subscription', subscription.toJSON());
  return 'subscribed';
}

export async function unsubscribe(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  const registration = await navigator.serviceWorker.getRegistration('/app/');
  const subscription = await registration?.pushManager.getSubscription();
  await subscription?.unsubscribe();
}
