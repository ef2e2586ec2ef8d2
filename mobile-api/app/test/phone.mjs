// phone.mjs drives the phone app in Debian's chromium (playwright-core,
// never a downloaded browser) like a member with a phone would, and prints
// a JSON summary as its last line. test/browser/browser_test.go runs it
// against a real circle and checks the server's side.
//
//   node phone.mjs --link http://127.0.0.1:PORT/join#CODE [--shots DIR] [--scenario offline|repo|recover|device|draw]
//                  [--taken ENTRY_ID] [--transport websocket|http]
//
// Scenario "offline" (the default): join from the invite link, log a
// contribution and see it synced, go offline, log three, reload offline
// (the service worker serves the app), see them pending, come back online
// and see them synced; then every screen, each checked with axe-core.
// Scenario "repo" needs GET /v1/repo (automerge-repo over WebSocket).
// Scenario "recover" (--taken, --transport): offline, log three entries,
// the second with the id --taken, which another member's ledger already
// holds; back online the server refuses it, and the app must recover:
// the first and third synced, the second refused with the server's
// reason (also after a reload), and a fourth logged afterwards synced.
// --transport http makes GET /v1/repo answer 501 in this browser, so the
// app falls back to POST /v1/sync.
// Scenario "device": join, log an entry, make a device invite on the
// Devices screen, and join with it in a second browser (the member's new
// phone), which must show the same member and contributions.
import { chromium } from "playwright-core";
import { readFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
// --link is the invite's URL as POST /v1/invites made it (what its QR
// code holds): <server>/join#<code>.
const link = args.link ? new URL(args.link) : undefined;
const base = link?.origin;
const invite = link ? decodeURIComponent(link.hash.slice(1)) : undefined;
const shots = args.shots;
const scenario = args.scenario ?? "offline";
if (!base || !invite || link.pathname !== "/join") {
  console.error("usage: node phone.mjs --link http://HOST:PORT/join#CODE [--shots DIR] [--scenario offline|repo]");
  process.exit(2);
}

const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

// T bounds every wait.
const T = 20_000;
const summary = { scenario, screens: [], axe: {} };
const t0 = Date.now();
const step = (s) => console.error(`[phone +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    serviceWorkers: "allow",
    // An iPhone's Safari, as far as the app can tell: it then offers the
    // Add to Home Screen hint.
    userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on("pageerror", (err) => step(`page error: ${err.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") step(`console ${m.type()}: ${m.text()}`);
  });
  try {
    if (scenario === "repo") await repoScenario(context, page);
    else if (scenario === "recover") await recoverScenario(context, page);
    else if (scenario === "device") await deviceScenario(context, page);
    else if (scenario === "draw") await drawScenario(context, page);
    else await offlineScenario(context, page);
  } catch (err) {
    // What the member saw, for the failure message.
    summary.screen = await page
      .locator("body")
      .innerText({ timeout: 2000 })
      .catch(() => "");
    throw err;
  }
} catch (err) {
  failed = true;
  summary.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
process.exit(failed ? 1 : 0);

// ---- helpers ----

function fail(msg) {
  throw new Error(msg);
}

async function axe(page, name) {
  // Evaluated over the DevTools protocol, which the page's CSP does not
  // govern, so the app keeps its strict policy under test.
  await page.evaluate(axeSource);
  const res = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  summary.axe[name] = res.violations.map((v) => `${v.impact} ${v.id}`);
  if (bad.length) {
    fail(`axe on the ${name} screen: ${bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`).join("; ")}`);
  }
}

async function shot(page, name) {
  if (!shots) return;
  await mkdir(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + ".png") });
}

async function syncStatus(page) {
  return (await page.getByLabel("Sync status").textContent()).trim();
}

async function waitStatus(page, want) {
  await page.getByLabel("Sync status").filter({ hasText: new RegExp(`^${want}$`) }).waitFor({ timeout: T });
}

function contributions(page) {
  return page.getByRole("list", { name: "My contributions" }).getByRole("listitem");
}

async function listState(page) {
  return page.getByRole("list", { name: "My contributions" }).evaluate((ul) =>
    [...ul.querySelectorAll("li")].map((li) => ({ note: li.querySelector(".note").textContent, state: li.querySelector(".state").textContent })),
  );
}

async function waitList(page, want, what) {
  const deadline = Date.now() + T;
  let got;
  while (Date.now() < deadline) {
    got = await listState(page);
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    await page.waitForTimeout(200);
  }
  fail(`${what}: My contributions = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

async function join(page, name) {
  step("join from the invite link");
  await page.goto(link.href);
  const code = await page.getByLabel("Invite code").inputValue();
  if (code !== invite) fail(`the join screen's Invite code = ${JSON.stringify(code)}, want the link's code ${JSON.stringify(invite)}`);
  await axe(page, "join");
  await shot(page, "join");
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  if (new URL(page.url()).pathname !== "/app/") fail(`after joining the app is at ${page.url()}, want /app/`);
  await waitStatus(page, "up to date");
  summary.persisted = await page.evaluate(() => navigator.storage.persisted());
}

// memberId reads the enrolled member's id from the app's IndexedDB.
function memberId(page) {
  return page.evaluate(async () => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open("circles-device");
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    return new Promise((res) => {
      const g = db.transaction("kv").objectStore("kv").get("device");
      g.onsuccess = () => res(g.result.memberId);
    });
  });
}

async function logContribution(page, quantity, note) {
  await page.getByRole("button", { name: "Log contribution" }).click();
  await page.getByLabel("Quantity").fill(String(quantity));
  await page.getByLabel("What did you do?").fill(note);
  await page.getByRole("button", { name: "Save" }).click();
  await contributions(page).filter({ hasText: note }).first().waitFor();
}

async function waitServiceWorker(page) {
  // The shell is precached once the worker is active and controls the page.
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration("/app/");
    return !!(reg && reg.active && navigator.serviceWorker.controller);
  }, null, { timeout: T });
}

// installable asks chromium whether the app could be installed (web app
// manifest, icons, service worker, secure origin).
async function installable(context, page) {
  const cdp = await context.newCDPSession(page);
  const manifest = await cdp.send("Page.getAppManifest");
  if (!manifest.url?.endsWith("/app/manifest.webmanifest") || manifest.errors?.length) {
    fail(`web app manifest ${manifest.url}: ${JSON.stringify(manifest.errors)}`);
  }
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  // Playwright's browser contexts are incognito ones, where chromium
  // installs nothing: that one is about the test's browser, not the app.
  const errors = installabilityErrors.filter((e) => e.errorId !== "in-incognito");
  summary.installability_errors = errors.map((e) => e.errorId);
  if (errors.length) fail(`chromium says the app is not installable: ${JSON.stringify(errors)}`);
  await cdp.detach();
}

function nav(page, link) {
  return page.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
}

async function visit(page, link, ready) {
  step(`screen ${link}`);
  await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
  await page.getByRole("heading", { level: 1 }).first().waitFor();
  await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"), null, { timeout: T });
  const broken = await page.locator("main .alert").allTextContents();
  if (broken.some((t) => t.startsWith("Could not load"))) fail(`the ${link} screen: ${broken.join(" ")}`);
  if (ready) await ready();
  await axe(page, link.toLowerCase());
  await shot(page, link.toLowerCase());
  summary.screens.push(link);
}

// ---- scenarios ----

// drawScenario: the phone joins while a draw is open and takes part by
// itself at its syncs (the Go test moves the server's clock as it
// commits and reveals); it waits, asking the server with --token (a Go
// member's), until the draw --draw closed, and checks the rituals'
// screens meanwhile.
async function drawScenario(context, page) {
  const draw = args.draw ?? fail("--draw ID is required for the draw scenario");
  const token = args.token ?? fail("--token is required for the draw scenario");
  await join(page, "Ada");
  summary.member_id = await memberId(page);
  await visit(page, "Pair audits", async () => {
    await page.getByText("No pair audit yet").waitFor();
  });
  await visit(page, "Mentorships", async () => {
    await page.getByText("No pairs yet").waitFor();
  });
  step(`wait for draw ${draw} to close`);
  const deadline = Date.now() + 150_000;
  let last;
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/v1/draws/${encodeURIComponent(draw)}`, { headers: { authorization: "Bearer " + token } });
    last = await res.json();
    if (last.result) break;
    await page.waitForTimeout(500);
  }
  if (!last?.result) fail(`draw ${draw} did not close: ${JSON.stringify(last)}`);
  summary.draw_revealed = last.result.revealed;
  // The circle sees the draw, its pick, and that this phone took part.
  await visit(page, "Pair audits", async () => {
    const item = page.getByRole("list", { name: "Draws" }).getByRole("listitem").filter({ hasText: "who opens the shed" });
    await item.getByText("from 2 phones and the server").waitFor();
    await item.getByText("this member revealed").waitFor();
  });
}

async function offlineScenario(context, page) {
  await join(page, "Ada");
  summary.member_id = await memberId(page);
  summary.transport = await page.evaluate(() => document.body.dataset.transport);

  step("the used invite, in another browser");
  const other = await browser.newContext({ viewport: { width: 390, height: 844 } });
  try {
    const p2 = await other.newPage();
    p2.setDefaultTimeout(T);
    await p2.goto(link.href);
    await p2.getByLabel("Your name").fill("Mallory");
    await p2.getByRole("button", { name: "Join" }).click();
    await p2.getByRole("alert").filter({ hasText: "already used" }).waitFor();
    if (new URL(p2.url()).pathname !== "/join") fail(`a refused join moved on to ${p2.url()}`);
    summary.used_invite_refused = true;
  } finally {
    await other.close();
  }

  await page.getByText("Add to Home Screen").waitFor();

  step("log a contribution online");
  await logContribution(page, 2, "Fixed the bike trailer");
  await waitList(page, [{ note: "Fixed the bike trailer", state: "synced" }], "online entry");
  await waitStatus(page, "up to date");
  await waitServiceWorker(page);
  await installable(context, page);
  await axe(page, "home");
  await shot(page, "home");

  // Seen once online, the ledger can be read offline later.
  await nav(page, "Ledger");
  await page.getByRole("table").getByText("Ada").waitFor();
  await nav(page, "Home");

  step("go offline and log three");
  await context.setOffline(true);
  await waitStatus(page, "offline");
  const offline = ["Offline one: watered the garden", "Offline two: lent the ladder", "Offline three: cooked for the meeting"];
  for (const [i, note] of offline.entries()) await logContribution(page, i + 1, note);
  const want = [...offline].reverse().map((note) => ({ note, state: "pending" }));
  want.push({ note: "Fixed the bike trailer", state: "synced" });
  await waitList(page, want, "after logging offline");

  step("reload while offline");
  await page.reload();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  await waitList(page, want, "after reloading offline");
  if ((await syncStatus(page)) !== "offline") fail(`Sync status after reloading offline = ${await syncStatus(page)}, want offline`);
  summary.offline_reload = true;
  await shot(page, "home-offline");

  step("the ledger, offline");
  await nav(page, "Ledger");
  await page.getByText(/^Offline: as the server last said/).waitFor();
  await page.getByRole("table").getByText("Ada").waitFor();
  await nav(page, "Home");
  await waitList(page, want, "back home, offline");

  step("back online");
  await context.setOffline(false);
  const synced = want.map((e) => ({ ...e, state: "synced" }));
  await waitList(page, synced, "after coming back online");
  await waitStatus(page, "up to date");
  summary.notes = synced.map((e) => e.note);

  await visit(page, "Ledger", async () => {
    await page.getByRole("table").getByText("Ada").waitFor();
  });

  await visit(page, "Proposals", async () => {
    await page.getByRole("button", { name: "Make a proposal" }).click();
    await page.getByLabel("Kind").selectOption("policy.set");
    await page.getByLabel("Title").fill("Meet every second week");
    await page.getByLabel("Details").fill("Fortnightly meetings leave more time for the work.");
    await page.getByLabel("Policy name").fill("proposal.period");
    await page.getByLabel("New value").fill("96h");
    await page.getByRole("button", { name: "Propose" }).click();
    const card = page.getByRole("listitem").filter({ hasText: "Meet every second week" });
    await card.waitFor();
    await card.getByRole("group", { name: "Vote on Meet every second week" }).getByRole("button", { name: "Yes" }).click();
    await card.getByText("Your vote: yes (counted)").waitFor();
    await waitStatus(page, "up to date");
  });

  await visit(page, "Roles", async () => {
    const role = page.getByRole("list", { name: "Roles" }).getByRole("listitem").filter({ hasText: "treasurer" });
    await role.getByText("Keeps the cash box and the accounts").waitFor();
    await role.getByText("Vacant").waitFor();
  });

  await visit(page, "Charter", async () => {
    // Bea (a Go device) wrote the draft's first line before the phone
    // joined; the phone adds its own.
    const draft = page.getByLabel("Charter draft");
    const before = await draft.inputValue();
    if (before !== "We share tools and time.") fail(`the charter draft on the phone = ${JSON.stringify(before)}, want Bea's text`);
    await draft.press("End");
    await draft.pressSequentially("\nWe meet every second week.");
    await page.getByLabel("Draft status").filter({ hasText: "saved on this phone" }).waitFor();
    await waitStatus(page, "up to date");
  });

  await visit(page, "Reset", async () => {
    await page.getByLabel("Reset signatures").filter({ hasText: /^0 of \d+ signatures$/ }).waitFor();
  });
  step("sign a reset");
  await page.getByLabel("Why should the circle reset?").fill("Testing that a phone can sign.");
  await page.getByLabel("I understand what a hard reset does and I want one.").check();
  await page.getByRole("button", { name: "Sign reset" }).click();
  // A member counts only after reset.min_membership (a week by default):
  // the signature is on the server, not counting yet.
  await page.getByLabel("Your reset signature").filter({ hasText: /^received, not counting yet: / }).waitFor();
  summary.reset_signed = true;

  await visit(page, "Audit", async () => {
    await page.getByLabel("Audit check").filter({ hasText: /^verified: \d+ entries/ }).waitFor();
  });
  summary.audit = (await page.getByLabel("Audit check").textContent()).trim();

  // Someone between the server and the phone rewrites an audit entry:
  // the phone's own check catches it.
  step("a tampered audit log");
  await page.route("**/v1/audit*", async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.entries[1].kind = "member.removed";
    await route.fulfill({ response: res, json: body });
  });
  await nav(page, "Home");
  await nav(page, "Audit");
  await page.getByLabel("Audit check").filter({ hasText: /^broken: entry 2 was changed after it was written$/ }).waitFor();
  summary.audit_tamper_caught = true;
  await page.unroute("**/v1/audit*");

  // Back home for the final picture of the list.
  await page.getByRole("navigation").getByRole("link", { name: "Home" }).click();
  await waitList(page, synced, "home at the end");

  // A phone whose clock says 1999 writes an entry the server refuses
  // (entry times must lie between 2000 and 2200): the member sees it
  // refused, with the server's reason. Last, because the refused change
  // stays in this member's ledger document.
  step("an entry from a phone with a wrong clock");
  await page.clock.setFixedTime(new Date("1999-12-31T12:00:00Z"));
  const wrong = "Logged with the clock in 1999";
  await logContribution(page, 1, wrong);
  const state = contributions(page).filter({ hasText: wrong }).locator(".state");
  await state.filter({ hasText: /^refused: .*2000/ }).waitFor();
  summary.refused = (await state.textContent()).trim();
  const others = (await listState(page)).filter((e) => e.note !== wrong);
  if (JSON.stringify(others) !== JSON.stringify(synced)) fail(`after the refusal the other entries = ${JSON.stringify(others)}, want them still synced`);
  await shot(page, "home-refused");
}

// repoScenario checks that the app syncs through automerge-repo over
// WebSocket (GET /v1/repo) and not over POST /v1/sync.
async function repoScenario(context, page) {
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  await join(page, "Grace");
  summary.member_id = await memberId(page);
  const transport = await page.evaluate(() => document.body.dataset.transport);
  if (transport !== "websocket") {
    fail(`the app syncs over ${transport}, not over WebSocket: GET /v1/repo answers 501 in this server (merge the ws branch)`);
  }
  if (!sockets.some((u) => new URL(u).pathname === "/v1/repo")) fail(`no WebSocket to /v1/repo was opened (sockets: ${sockets.join(", ")})`);
  let httpSyncs = 0;
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === "/v1/sync") httpSyncs++;
  });
  await context.setOffline(true);
  await waitStatus(page, "offline");
  const notes = ["Over the socket one", "Over the socket two"];
  for (const note of notes) await logContribution(page, 1, note);
  await context.setOffline(false);
  await waitList(page, [...notes].reverse().map((note) => ({ note, state: "synced" })), "synced over WebSocket");
  if (httpSyncs) fail(`the app made ${httpSyncs} POST /v1/sync calls although the server speaks automerge-repo over WebSocket`);
  summary.notes = notes;
  summary.transport = transport;
}

// recoverScenario: a refused change never strands the phone.
async function recoverScenario(context, page) {
  const taken = args.taken ?? fail("--taken ENTRY_ID is required for the recover scenario");
  const transport = args.transport ?? "websocket";
  // The test-only hook that logs an entry with a given id (main.ts).
  await context.addInitScript(() => localStorage.setItem("circles-test", "1"));
  if (transport === "http") {
    // A server without automerge-repo over WebSocket, as far as this
    // browser can tell.
    await context.route("**/v1/repo*", (route) =>
      route.fulfill({ status: 501, contentType: "application/json", body: JSON.stringify({ error: { code: "not_implemented", message: "no WebSocket sync here" } }) }),
    );
  }
  await join(page, "Ada");
  summary.member_id = await memberId(page);
  // The first sync finds out the transport.
  await page.waitForFunction(() => (document.body.dataset.transport ?? "unknown") !== "unknown", null, { timeout: T });
  summary.transport = await page.evaluate(() => document.body.dataset.transport);
  if (summary.transport !== transport) fail(`the app syncs over ${summary.transport}, want ${transport}`);

  step("offline, log three; the second reuses an entry id only the server knows");
  await context.setOffline(true);
  await waitStatus(page, "offline");
  const notes = ["Recover one: swept the shed", "Recover two: oiled the saw", "Recover three: lent the ladder"];
  const ids = [undefined, taken, undefined];
  for (const [i, note] of notes.entries()) {
    await page.evaluate(({ id, note, quantity }) => window.__circlesTest.log({ id, note, quantity }), { id: ids[i], note, quantity: i + 1 });
    // Distinct times, so the list's order is the order they were logged.
    await page.waitForTimeout(20);
  }
  await waitList(page, [...notes].reverse().map((note) => ({ note, state: "pending" })), "after logging offline");

  step("back online: the server refuses the second, the app recovers");
  await context.setOffline(false);
  const settled = async (what) => {
    const deadline = Date.now() + T;
    let got;
    while (Date.now() < deadline) {
      got = await listState(page);
      const by = Object.fromEntries(got.map((e) => [e.note, e.state]));
      if (got.length === 3 && by[notes[0]] === "synced" && by[notes[2]] === "synced" && /^refused: .*already used/.test(by[notes[1]] ?? "")) return by[notes[1]];
      await page.waitForTimeout(200);
    }
    fail(`${what}: My contributions = ${JSON.stringify(got)}, want the first and third synced, the second refused as already used`);
  };
  summary.refused = await settled("after coming back online");
  await waitStatus(page, "up to date");
  await axe(page, "home-recovered");
  await shot(page, "home-recovered");

  step("a fourth entry, logged afterwards, syncs");
  const fourth = "Recover four: cooked for the meeting";
  await logContribution(page, 4, fourth);
  const state = contributions(page).filter({ hasText: fourth }).locator(".state");
  await state.filter({ hasText: /^synced$/ }).waitFor();

  // Offline, so that what shows comes from the phone's IndexedDB only:
  // the recovered ledger document and the refused entry kept aside.
  step("reload offline: the recovered ledger and the refused entry are on the phone");
  await waitServiceWorker(page);
  await context.setOffline(true);
  await page.reload();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  const want = [
    { note: fourth, state: "synced" },
    { note: notes[2], state: "synced" },
    { note: notes[1], state: summary.refused },
    { note: notes[0], state: "synced" },
  ];
  await waitList(page, want, "after reloading offline");
  // The refused change is gone from the phone's stored copy: it is kept
  // aside, not in the document (which would strand it again).
  const held = await page.evaluate(() => window.__circlesTest.ledgerIds());
  if (held.includes(taken) || held.length !== 3) fail(`after the reload the phone's ledger holds entries ${JSON.stringify(held)}, want three, not ${taken}`);
  await context.setOffline(false);
  await waitStatus(page, "up to date");
  await waitList(page, want, "online again after the reload");
  summary.notes = [notes[0], notes[2], fourth];

  // The ballots document recovers the same way.
  if (args["founder-token"]) {
    // Two proposals opened now, after the phone joined: a member counts
    // only for proposals opened while they were in the circle.
    const ids = [];
    for (const title of ["Proposal 1", "Proposal 2"]) {
      const id = crypto.randomUUID();
      const res = await fetch(`${base}/v1/proposals`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${args["founder-token"]}` },
        body: JSON.stringify({ id, kind: "policy.set", title, payload: { name: "proposal.period", value: "96h" } }),
      });
      if (res.status !== 201) fail(`opening ${title}: ${res.status} ${await res.text()}`);
      ids.push(id);
    }
    summary.proposals = ids;
    const [p1, p2] = ids;
    step("offline, two votes; the first with a choice the circle's rules refuse");
    await context.setOffline(true);
    await waitStatus(page, "offline");
    await page.evaluate(async ({ p1, p2 }) => {
      await window.__circlesTest.vote({ proposal: p1, choice: "maybe" });
      await new Promise((r) => setTimeout(r, 20));
      await window.__circlesTest.vote({ proposal: p2, choice: "yes" });
    }, { p1, p2 });
    await context.setOffline(false);
    const state = page.getByRole("list", { name: "Refused by the server" }).getByRole("listitem").filter({ hasText: p1 }).locator(".state");
    await state.filter({ hasText: /^refused: .*choice/ }).waitFor();
    summary.refused_vote = (await state.textContent()).trim();
    await waitStatus(page, "up to date");
    await axe(page, "home-refused-vote");
  }
}

// deviceScenario: a member adds a new device with a device invite made on
// the Devices screen of the device they have.
async function deviceScenario(context, page) {
  await join(page, "Ada");
  summary.member_id = await memberId(page);
  const note = "Device one: fixed the gate";
  await logContribution(page, 2, note);
  await waitList(page, [{ note, state: "synced" }], "the first device's entry");

  await visit(page, "Devices", async () => {
    await page.getByRole("button", { name: "Make a device invite" }).click();
    await page.getByRole("img", { name: "QR code of the device invite link" }).waitFor();
  });
  const code = await page.getByLabel("Device invite code").inputValue();
  const href = await page.getByRole("link", { name: "Device invite link" }).getAttribute("href");
  const url = new URL(href);
  if (url.origin !== base || url.pathname !== "/join" || decodeURIComponent(url.hash.slice(1)) !== code || !code) {
    fail(`device invite: code ${JSON.stringify(code)}, link ${href}; want ${base}/join#<the code>`);
  }
  summary.device_invite = href;

  step("the new device joins with the device invite");
  const other = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const p2 = await other.newPage();
    p2.setDefaultTimeout(T);
    p2.on("pageerror", (err) => step(`new device: page error: ${err.message}`));
    await p2.goto(href);
    const filled = await p2.getByLabel("Invite code").inputValue();
    if (filled !== code) fail(`the new device's join screen shows the code ${JSON.stringify(filled)}, want ${JSON.stringify(code)}`);
    // No name: the invite adds this device to Ada.
    await p2.getByRole("button", { name: "Join" }).click();
    await p2.getByRole("heading", { name: "Hello, Ada" }).waitFor();
    await waitStatus(p2, "up to date");
    await waitList(p2, [{ note, state: "synced" }], "the new device's contributions");
    summary.second_member_id = await memberId(p2);
    if (summary.second_member_id !== summary.member_id) fail(`the new device joined as member ${summary.second_member_id}, want ${summary.member_id}`);

    step("the new device logs an entry; the first sees it");
    const note2 = "Device two: oiled the hinges";
    await logContribution(p2, 1, note2);
    await contributions(p2).filter({ hasText: note2 }).locator(".state").filter({ hasText: /^synced$/ }).waitFor();
    summary.notes = [note, note2];

    step("the used device invite, in a third browser");
    const third = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const p3 = await third.newPage();
      p3.setDefaultTimeout(T);
      await p3.goto(href);
      await p3.getByRole("button", { name: "Join" }).click();
      await p3.getByRole("alert").filter({ hasText: "already used" }).waitFor();
      summary.used_invite_refused = true;
    } finally {
      await third.close();
    }
  } finally {
    await other.close();
  }
  // The first device's own list (it reloads its ledger from the server).
  await nav(page, "Home");
  await page.reload();
  await waitList(page, summary.notes.map((n) => ({ note: n, state: "synced" })).reverse(), "the first device, after the second logged");
}
