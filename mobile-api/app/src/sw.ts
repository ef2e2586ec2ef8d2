/// <reference lib="webworker" />
// The service worker keeps the app shell (every file of the build) in a
// cache named for the build, so that after the first visit the app opens
// with no network at all. API calls (/v1/...) are never cached: the app
// keeps its own data in IndexedDB through automerge-repo.
declare const __VERSION__: string;
declare const __PRECACHE__: string[];

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = "circles-app-" + __VERSION__;

sw.addEventListener("install", (event: ExtendableEvent) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // cache: "reload" skips the HTTP cache, so a new version never
      // precaches an old file.
      await cache.addAll(__PRECACHE__.map((url) => new Request(url, { cache: "reload" })));
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener("activate", (event: ExtendableEvent) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("circles-app-") && name !== CACHE) await caches.delete(name);
      }
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("fetch", (event: FetchEvent) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== sw.location.origin || !url.pathname.startsWith("/app/")) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // Every page of the app is the one index.html (the app routes by
      // the URL's fragment).
      const key = req.mode === "navigate" ? "/app/" : url.pathname;
      const hit = await cache.match(key);
      if (hit) return hit;
      return fetch(req);
    })(),
  );
});
