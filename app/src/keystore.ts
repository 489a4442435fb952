/**
 * What this phone keeps, in IndexedDB (page and service worker alike): the device's ECDSA P-256
 * private key as a non-extractable CryptoKey (IndexedDB stores the key object itself, never its
 * bytes; `exportKey` on it is refused), its id, and an activation in progress.
 */
export interface StoredDevice {
  deviceId: string;
  nationalId: string;
  name: string;
  privateKey: CryptoKey;
  publicJwk: JsonWebKey;
  activatedAt: number;
}

export interface PendingActivation {
  flowId: string;
  nationalId: string;
  expiresAt: number;
  verified: boolean;
  privateKey: CryptoKey;
  publicJwk: JsonWebKey;
  /** The device this activation renews (deleted once the new one is registered). */
  renews: string | null;
}

const DB_NAME = 'vigie-ecps';
const STORE = 'keys';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB unavailable'));
  });
}

async function run<T>(mode: IDBTransactionMode, body: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = body(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

export const getDevice = () => run<StoredDevice | undefined>('readonly', (s) => s.get('device') as IDBRequest<StoredDevice | undefined>);
export const putDevice = (device: StoredDevice) => run('readwrite', (s) => s.put(device, 'device')).then(() => undefined);
export const clearDevice = () => run('readwrite', (s) => s.delete('device')).then(() => undefined);
export const getPendingActivation = () => run<PendingActivation | undefined>('readonly', (s) => s.get('activation') as IDBRequest<PendingActivation | undefined>);
export const putPendingActivation = (pending: PendingActivation) => run('readwrite', (s) => s.put(pending, 'activation')).then(() => undefined);
export const clearPendingActivation = () => run('readwrite', (s) => s.delete('activation')).then(() => undefined);
