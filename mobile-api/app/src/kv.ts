// A tiny key-value store in IndexedDB for what is not an automerge
// document: the device (with its non-extractable key pair), the access
// token, which documents were loaded, what the server last confirmed.

const DB = "circles-device";
const STORE = "kv";

let opened: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opened;
}

function run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  return db().then(
    (d) =>
      new Promise<T>((resolve, reject) => {
        const tx = d.transaction(STORE, mode);
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req.result as T);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      }),
  );
}

export function get<T>(key: string): Promise<T | undefined> {
  return run<T | undefined>("readonly", (s) => s.get(key));
}

export function put(key: string, value: unknown): Promise<void> {
  return run<unknown>("readwrite", (s) => s.put(value, key)).then(() => undefined);
}

export function del(key: string): Promise<void> {
  return run<unknown>("readwrite", (s) => s.delete(key)).then(() => undefined);
}
