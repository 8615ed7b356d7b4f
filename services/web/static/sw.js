/* Service worker: the volunteer's page opens without a connection. Pages and static files are
   fetched from the network first (fresh when online) and kept; /api is never cached. */
const CACHE = "cuu-tro-v1";
const SHELL = ["/volunteer", "/login", "/", "/static/app.css", "/static/app.js", "/static/volunteer.js", "/static/login.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

function timeout(ms) { return new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms)); }

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await Promise.race([fetch(event.request), timeout(event.request.mode === "navigate" ? 6000 : 10000)]);
      if (response.ok) cache.put(url.pathname, response.clone());
      return response;
    } catch (e) {
      const kept = await cache.match(url.pathname, {ignoreSearch: true});
      if (kept) return kept;
      throw e;
    }
  })());
});
