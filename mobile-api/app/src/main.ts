// The Circles phone app. One page: /app/ (and /join#CODE, which opens the
// join screen with the invite code filled in). Screens are chosen by the
// URL's fragment (#/ledger), so the service worker serves one index.html
// for every page.
import { App } from "./app";
import { S } from "./docs";
import { federation } from "./federation";
import { honours, meetings } from "./rituals";
import { Screen, screens as coreScreens, joinScreen } from "./screens";
import { h } from "./ui";

const app = new App();
let current: { name: string; screen: Screen; el: HTMLElement } | undefined;

const screens: Record<string, Screen> = { ...coreScreens, meetings, honours, federation };

const NAV: [string, string][] = [
  ["home", "Home"],
  ["ledger", "Ledger"],
  ["proposals", "Proposals"],
  ["roles", "Roles"],
  ["charter", "Charter"],
  ["reset", "Reset"],
  ["audit", "Audit"],
  ["meetings", "Meetings"],
  ["honours", "Honours"],
  ["devices", "Devices"],
  ["pair-audits", "Pair audits"],
  ["mentorships", "Mentorships"],
  ["federation", "Federation"],
];

function route(): string {
  if (location.pathname === "/join" || !app.device) return "join";
  const name = location.hash.replace(/^#\/?/, "") || "home";
  return screens[name] ? name : "home";
}

function statusEl(): HTMLElement {
  return h("p", { id: "sync-status", class: "sync", role: "status", "aria-label": "Sync status" }, app.status());
}

function render(): void {
  const name = route();
  const root = document.getElementById("root")!;
  const screen = name === "join" ? joinScreen : screens[name];
  const main = h("main", { id: "main" }, screen.render(app));
  const header = h(
    "header",
    null,
    h("a", { class: "skip", href: "#main", onclick: (e: Event) => (e.preventDefault(), main.focus()) }, "Skip to content"),
    h("div", { class: "bar" }, h("span", { class: "brand", id: "brand" }, app.circle?.name ?? "Circles"), name === "join" ? null : statusEl()),
    name === "join"
      ? null
      : h(
          "nav",
          { "aria-label": "Circle" },
          h(
            "ul",
            null,
            NAV.map(([id, label]) => h("li", null, h("a", { href: "/app/#/" + id, "aria-current": id === name ? "page" : undefined }, label))),
          ),
        ),
  );
  main.tabIndex = -1;
  root.replaceChildren(header, main);
  current = { name, screen, el: main };
  document.title = (screen.title ? screen.title + " · " : "") + "Circles";
}

function refresh(): void {
  // Which sync the app uses, for tests and for anyone debugging.
  document.body.dataset.transport = app.docs?.transport ?? "unknown";
  const s = document.getElementById("sync-status");
  if (s && s.textContent !== app.status()) s.textContent = app.status();
  const brand = document.getElementById("brand");
  if (brand && app.circle && brand.textContent !== app.circle.name) brand.textContent = app.circle.name;
  current?.screen.update?.(app, current.el);
}

async function registerServiceWorker(): Promise<void> {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
  } catch (err) {
    console.warn("service worker not registered:", err);
  }
}

// installTestHook: test-only. When the page's localStorage holds
// circles-test = "1" (test/browser sets it; the app never does), it
// exposes window.__circlesTest: log({id, quantity, note}) logs a
// contribution with an entry id of the test's choosing, so a test can
// make the server refuse it (an id another member's ledger holds);
// ledgerIds() lists the entry ids the phone's copy of the ledger holds;
// vote({proposal, choice}) writes a vote into the ballots document with
// any choice, also one the circle's rules refuse.
function installTestHook(): void {
  if (localStorage.getItem("circles-test") !== "1") return;
  (window as unknown as { __circlesTest: unknown }).__circlesTest = {
    log: (e: { id?: string; quantity?: number; note: string }) => app.logContribution(e.quantity ?? 1, e.note, e.id),
    ledgerIds: async () => Object.keys((await app.ledgerHandle()).doc().entries ?? {}),
    vote: async (v: { proposal: string; choice: string }) => {
      const bh = await app.ballotsHandle();
      app.docs!.change(bh, "vote", (d) => {
        d.votes ??= {};
        d.votes[v.proposal] = { choice: S(v.choice), at: S(new Date().toISOString()) };
      });
      await app.docs!.repo.flush([bh.documentId]);
      void app.sync();
    },
  };
}

async function main(): Promise<void> {
  void registerServiceWorker();
  installTestHook();
  try {
    await app.load();
  } catch (err) {
    document.getElementById("root")!.replaceChildren(h("main", null, h("h1", null, "Circles cannot start"), h("p", { role: "alert" }, String(err))));
    return;
  }
  app.addEventListener("change", refresh);
  window.addEventListener("hashchange", render);
  render();
  if (app.device) {
    // Load the ledger from IndexedDB before the first sync, so the list
    // shows at once, online or not.
    try {
      app.ledgerDoc = (await app.ledgerHandle()).doc();
    } catch {
      // not loaded yet: the first sync loads it
    }
    refresh();
    void app.sync();
  }
}

void main();
