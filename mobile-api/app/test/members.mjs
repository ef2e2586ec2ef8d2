// members.mjs drives two members' phones at once in Debian's chromium
// (playwright-core, never a downloaded browser): two browser contexts, so
// two phones with their own storage, keys and service workers. It prints
// a JSON summary as its last line; test/browser/members_test.go runs it
// against a real circle and checks the server's side.
//
//   node members.mjs --link-a URL --link-b URL --base URL --token TOKEN --draft TEXT
//
// --link-a and --link-b are member invites (<server>/join#<code>); --token
// is another member's access token, used from node (not from the phones)
// to ask the server what it holds while a phone is offline; --draft is the
// charter draft's text before the phones edit it.
//
// 1. Ada's phone goes offline, logs three contributions, reloads offline
//    (the service worker serves the app), sees them pending; back online
//    they turn synced, and Bo's phone shows them on its Ledger screen.
// 2. Bo proposes in the app; Ada votes on it offline; after she reconnects
//    the server counts her vote.
// 3. Ada (offline) and Bo (online) type different lines into the shared
//    charter draft at the same time; once both are online both phones show
//    both lines; then both type one more line at the same time, online.
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const links = { a: args["link-a"], b: args["link-b"] };
const base = args.base;
const token = args.token;
const seed = args.draft ?? "";
if (!links.a || !links.b || !base || !token) {
  console.error("usage: node members.mjs --link-a URL --link-b URL --base URL --token TOKEN [--draft TEXT]");
  process.exit(2);
}
for (const l of Object.values(links)) {
  const u = new URL(l);
  if (u.pathname !== "/join" || !u.hash || u.origin !== new URL(base).origin) {
    console.error(`invite link ${l} is not ${base}/join#CODE`);
    process.exit(2);
  }
}

const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

// T bounds every wait.
const T = 20_000;
const summary = { axe: {}, server_while_offline: {} };
const t0 = Date.now();
const step = (s) => console.error(`[members +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const phones = {};
let failed = false;
try {
  for (const [who, name] of [
    ["a", "Ada"],
    ["b", "Bo"],
  ]) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, serviceWorkers: "allow" });
    const page = await context.newPage();
    page.setDefaultTimeout(T);
    page.on("pageerror", (err) => step(`${name}: page error: ${err.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") step(`${name}: console ${m.type()}: ${m.text()}`);
    });
    phones[who] = { context, page, name };
  }
  await run();
} catch (err) {
  failed = true;
  summary.error = String(err && err.stack ? err.stack : err);
  summary.screens = {};
  for (const [who, p] of Object.entries(phones)) {
    summary.screens[who] = await p.page
      .locator("body")
      .innerText({ timeout: 2000 })
      .catch(() => "");
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
process.exit(failed ? 1 : 0);

// ---- helpers (small copies of phone.mjs's) ----

function fail(msg) {
  throw new Error(msg);
}

async function axe(page, name) {
  // Evaluated over the DevTools protocol, which the page's CSP does not
  // govern.
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const res = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"] }));
  summary.axe[name] = res.violations.map((v) => `${v.impact} ${v.id}`);
  const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    fail(`axe on ${name}: ${bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`).join("; ")}`);
  }
}

async function waitStatus(page, want) {
  await page.getByLabel("Sync status").filter({ hasText: new RegExp(`^${want}$`) }).waitFor({ timeout: T });
}

async function listState(page) {
  return page.getByRole("list", { name: "My contributions" }).evaluate((ul) =>
    [...ul.querySelectorAll("li")].map((li) => ({ note: li.querySelector(".note").textContent, state: li.querySelector(".state").textContent })),
  );
}

// until polls check (which returns a value, or undefined to go on) every
// 200 ms for at most T, then fails with what it saw last.
async function until(what, check) {
  const deadline = Date.now() + T;
  let last;
  while (Date.now() < deadline) {
    const r = await check();
    if (r.ok) return r.value;
    last = r.seen;
    await new Promise((res) => setTimeout(res, 200));
  }
  fail(`${what}: after ${T / 1000}s still ${JSON.stringify(last)}`);
}

async function waitList(page, want, what) {
  await until(what, async () => {
    const got = await listState(page);
    return { ok: JSON.stringify(got) === JSON.stringify(want), seen: got };
  });
}

// server asks the circle from node with the other member's token: what the
// server holds, whatever the phones' network.
async function server(path) {
  const res = await fetch(base + path, { headers: { Authorization: "Bearer " + token }, signal: AbortSignal.timeout(T) });
  if (!res.ok) fail(`GET ${path} = ${res.status} ${await res.text()}`);
  return res.json();
}

async function join(p) {
  const { page, name } = p;
  step(`${name} joins`);
  const link = links[p === phones.a ? "a" : "b"];
  await page.goto(link);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  await waitStatus(page, "up to date");
  p.memberId = await page.evaluate(async () => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open("circles-device");
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    return new Promise((res, rej) => {
      const g = db.transaction("kv").objectStore("kv").get("device");
      g.onsuccess = () => res(g.result.memberId);
      g.onerror = () => rej(g.error);
    });
  });
  // The shell is precached once the worker is active and controls the page.
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration("/app/");
    return !!(reg && reg.active && navigator.serviceWorker.controller);
  }, null, { timeout: T });
}

async function goOffline(p) {
  await p.context.setOffline(true);
  await waitStatus(p.page, "offline");
}

async function goOnline(p) {
  await p.context.setOffline(false);
}

async function nav(page, link) {
  await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
  await page.getByRole("heading", { level: 1 }).first().waitFor();
  await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"), null, { timeout: T });
}

async function logContribution(page, quantity, note) {
  await page.getByRole("button", { name: "Log contribution" }).click();
  await page.getByLabel("Quantity").fill(String(quantity));
  await page.getByLabel("What did you do?").fill(note);
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("list", { name: "My contributions" }).getByRole("listitem").filter({ hasText: note }).first().waitFor();
}

// ---- the scenarios ----

async function run() {
  const a = phones.a;
  const b = phones.b;
  await Promise.all([join(a), join(b)]);
  summary.member_a = a.memberId;
  summary.member_b = b.memberId;
  await offlineContributions(a, b);
  await offlineVote(a, b);
  await draftTogether(a, b);
}

async function offlineContributions(a, b) {
  step("Ada goes offline and logs three");
  await goOffline(a);
  const notes = ["Mended the lawn mower", "Sorted the seed library", "Drove the van to the repair café"];
  for (const [i, note] of notes.entries()) await logContribution(a.page, i + 1, note);
  const pending = [...notes].reverse().map((note) => ({ note, state: "pending" }));
  await waitList(a.page, pending, "Ada's list, offline");
  // The phone really is cut off: the server has none of them.
  const held = await server(`/v1/ledger/entries?member=${a.memberId}&limit=100`);
  summary.server_while_offline.entries = held.entries.length;
  if (held.entries.length) fail(`while Ada's phone is offline the server already holds her entries ${JSON.stringify(held.entries.map((e) => e.note))}`);

  step("Ada reloads offline");
  await a.page.reload();
  await a.page.getByRole("button", { name: "Log contribution" }).waitFor();
  await waitList(a.page, pending, "Ada's list after reloading offline");
  await waitStatus(a.page, "offline");
  summary.offline_reload = true;

  step("Ada back online");
  await goOnline(a);
  await waitList(a.page, pending.map((e) => ({ ...e, state: "synced" })), "Ada's list back online");
  await waitStatus(a.page, "up to date");
  summary.notes = notes;

  step("Bo's Ledger screen");
  await nav(b.page, "Ledger");
  const seen = await until("Bo's Latest entries", async () => {
    const items = await b.page
      .getByRole("list", { name: "Circle entries" })
      .evaluate((ul) => [...ul.querySelectorAll("li")].map((li) => ({ note: li.querySelector(".note").textContent, meta: li.querySelector(".meta").textContent })))
      .catch(() => []);
    const mine = items.filter((i) => notes.includes(i.note));
    if (mine.length === notes.length && mine.every((i) => i.meta.startsWith("Ada · "))) return { ok: true, value: mine.map((i) => i.note) };
    // The screen loads once: look again by leaving and coming back.
    await nav(b.page, "Home");
    await nav(b.page, "Ledger");
    return { ok: false, seen: items };
  });
  summary.bo_ledger = seen;
  await b.page.getByRole("table").getByRole("rowheader", { name: "Ada" }).waitFor();
  await axe(b.page, "ledger-other-member");
}

async function offlineVote(a, b) {
  const title = "Lend the big tools for a week at most";
  step("Bo proposes");
  await nav(b.page, "Proposals");
  await b.page.getByRole("button", { name: "Make a proposal" }).click();
  await b.page.getByLabel("Kind").selectOption("policy.set");
  await b.page.getByLabel("Title").fill(title);
  await b.page.getByLabel("Details").fill("So that everyone gets a turn with the drill and the van.");
  await b.page.getByLabel("Policy name").fill("proposal.period");
  await b.page.getByLabel("New value").fill("120h");
  await b.page.getByRole("button", { name: "Propose" }).click();
  // Opened by the server once it stored Bo's ballots document.
  await b.page.getByRole("list", { name: "Proposals" }).getByRole("group", { name: `Vote on ${title}` }).waitFor();
  const { proposals } = await server("/v1/proposals");
  const p = proposals.find((x) => x.title === title);
  if (!p || p.status !== "open") fail(`the server's proposals ${JSON.stringify(proposals)} have no open "${title}"`);
  summary.proposal_id = p.id;

  step("Ada votes offline");
  await nav(a.page, "Proposals");
  const card = a.page.getByRole("list", { name: "Proposals" }).getByRole("listitem").filter({ hasText: title });
  const group = card.getByRole("group", { name: `Vote on ${title}` });
  await group.waitFor();
  await goOffline(a);
  await group.getByRole("button", { name: "Yes" }).click();
  await card.getByText("Your vote: yes (pending)").waitFor();
  await axe(a.page, "proposals-vote-offline");
  const before = await server(`/v1/proposals/${p.id}`);
  summary.server_while_offline.vote = before.votes?.[a.memberId]?.choice ?? "";
  if (summary.server_while_offline.vote) fail(`while Ada's phone is offline the server already counts her vote: ${JSON.stringify(before.votes)}`);

  step("Ada reconnects");
  await goOnline(a);
  await until("Ada's vote on the server", async () => {
    const now = await server(`/v1/proposals/${p.id}`);
    return { ok: now.votes?.[a.memberId]?.choice === "yes", seen: now.votes ?? {} };
  });
  // And the phone says so, on the screen it is on, without reopening it.
  await card.getByText("Your vote: yes (counted)").waitFor();
}

// endOfDrafts puts both members' carets at the end of their drafts before
// either types: a caret put at the end while the other's line arrives
// would land inside that line, as a member's would.
async function endOfDrafts(...ps) {
  await Promise.all(
    ps.map(async (p) => {
      const area = p.page.getByLabel("Charter draft");
      await area.focus();
      await area.press("ControlOrMeta+End");
    }),
  );
}

async function draftTogether(a, b) {
  const lineA = "\nAda: tools come back clean.";
  const lineB = "\nBo: the van is booked a day ahead.";
  const lineA2 = "\nAda: and with a full tank.";
  const lineB2 = "\nBo: keys hang by the door.";
  const draft = (p) => p.page.getByLabel("Charter draft");
  step("both open the charter draft");
  await Promise.all([nav(a.page, "Charter"), nav(b.page, "Charter")]);
  for (const p of [a, b]) {
    const text = await draft(p).inputValue();
    if (text !== seed) fail(`${p.name}'s charter draft = ${JSON.stringify(text)}, want ${JSON.stringify(seed)}`);
  }

  step("Ada (offline) and Bo (online) type at the same time");
  await goOffline(a);
  await endOfDrafts(a, b);
  await Promise.all(
    [
      [a, lineA],
      [b, lineB],
    ].map(async ([p, line]) => {
      await draft(p).pressSequentially(line);
      step(`${p.name} typed`);
      await p.page.getByLabel("Draft status").filter({ hasText: "saved on this phone" }).waitFor();
      step(`${p.name} saved`);
    }),
  );
  const offlineA = await draft(a).inputValue();
  if (offlineA !== seed + lineA) fail(`Ada's draft while offline = ${JSON.stringify(offlineA)}, want ${JSON.stringify(seed + lineA)}`);
  await axe(a.page, "charter-draft-offline");

  step("Ada back online: both drafts merge");
  await goOnline(a);
  // Automerge orders the two lines, inserted at the same place, by their
  // operation ids: either order, each line whole.
  const both = (t) => t === seed + lineA + lineB || t === seed + lineB + lineA;
  const merged = await until("both phones' drafts", async () => {
    const [ta, tb] = [await draft(a).inputValue(), await draft(b).inputValue()];
    return { ok: ta === tb && both(ta), value: ta, seen: { ada: ta, bo: tb } };
  });
  summary.draft_merged = merged;

  // Both online now, each phone receiving the other's keystrokes while
  // its own member types: neither line is lost or broken up.
  step("both write one more line at the same time, online");
  await endOfDrafts(a, b);
  await Promise.all(
    [
      [a, lineA2],
      [b, lineB2],
    ].map(async ([p, line]) => {
      await draft(p).pressSequentially(line);
      await p.page.getByLabel("Draft status").filter({ hasText: "saved on this phone" }).waitFor();
    }),
  );
  const final = await until("both phones' drafts after the next lines", async () => {
    const [ta, tb] = [await draft(a).inputValue(), await draft(b).inputValue()];
    // Both phrases whole on both phones, after what was merged before.
    // Where each member's newline lands when the other's text arrives at
    // the caret mid-typing is not pinned down (a known limit of the
    // draft's caret handling, see docs/ARCHITECTURE.md).
    const whole = (t) => t.startsWith(merged) && [lineA2, lineB2].every((l) => t.includes(l.trim()));
    const ok = ta === tb && whole(ta) && ta.length === merged.length + lineA2.length + lineB2.length;
    return { ok, value: ta, seen: { ada: ta, bo: tb } };
  });
  await Promise.all([waitStatus(a.page, "up to date"), waitStatus(b.page, "up to date")]);
  summary.draft = final;
  summary.draft_lines = { a: lineA, b: lineB, a2: lineA2, b2: lineB2 };
}
