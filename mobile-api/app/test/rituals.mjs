// rituals.mjs drives the phone app's Meetings and Honours screens in
// Debian's chromium (playwright-core, never a downloaded browser) by their
// accessible names, and prints a JSON summary as its last line;
// test/browser/rituals_test.go runs it against a real circle.
//
//   node rituals.mjs --link <server>/join#CODE --token TOKEN [--shots DIR]
//
// --token is the other member's (the founder's) access token, used from
// node, not from the phone, to send that member's temperature check.
//
// The phone joins as Pia, calls a meeting on the Meetings screen (a second
// one if the draw picked the founder: the rest rule then leaves only Pia),
// records its minutes with one decision made here and one depending on
// others, sends her temperature check naming the founder, sees the check
// open with one check-in; once the founder has checked in too the check
// closes, and the screen shows the founder named twice and resting. The
// Honours screen shows the founder's stepping down.
import { chromium } from "playwright-core";
import { readFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const link = args.link ? new URL(args.link) : undefined;
const token = args.token;
const shots = args.shots;
if (!link || link.pathname !== "/join" || !token) {
  console.error("usage: node rituals.mjs --link http://HOST:PORT/join#CODE --token TOKEN [--shots DIR]");
  process.exit(2);
}
const base = link.origin;

const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

const T = 20_000; // bounds every wait
const summary = { axe: {}, screens: [] };
const t0 = Date.now();
const step = (s) => console.error(`[rituals +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
let page;
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, serviceWorkers: "allow" });
  page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on("pageerror", (err) => step(`page error: ${err.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") step(`console ${m.type()}: ${m.text()}`);
  });
  await run();
} catch (err) {
  failed = true;
  summary.error = String(err && err.stack ? err.stack : err);
  summary.screen = page ? await page.locator("body").innerText({ timeout: 2000 }).catch(() => "") : "";
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
process.exit(failed ? 1 : 0);

function fail(msg) {
  throw new Error(msg);
}

async function axe(name) {
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const res = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"] }));
  const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  summary.axe[name] = res.violations.map((v) => `${v.impact} ${v.id}`);
  if (bad.length) fail(`axe on ${name}: ${bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`).join("; ")}`);
}

async function shot(name) {
  if (!shots) return;
  await mkdir(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
}

async function loaded() {
  await page.getByRole("heading", { level: 1 }).first().waitFor();
  await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"), null, { timeout: T });
  const broken = await page.locator("main .alert").allTextContents();
  if (broken.some((t) => t.startsWith("Could not load"))) fail(`screen: ${broken.join(" ")}`);
}

async function visit(link) {
  step(`screen ${link}`);
  await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
  await loaded();
  summary.screens.push(link);
}

async function callMeeting(title) {
  await page.getByLabel("Meeting title").fill(title);
  await page.getByRole("button", { name: "Call meeting" }).click();
  const card = page.getByRole("article", { name: title });
  await card.waitFor();
  return { card, facilitator: (await card.getByLabel("Facilitator").textContent()).trim() };
}

async function run() {
  step("join");
  await page.goto(link.href);
  await page.getByLabel("Your name").fill("Pia");
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  await page.getByLabel("Sync status").filter({ hasText: /^up to date$/ }).waitFor({ timeout: T });

  await visit("Meetings");
  await axe("meetings-empty");
  let title = "Tuesday evening";
  let m = await callMeeting(title);
  if (!m.facilitator.startsWith("Facilitator: you")) {
    step(`the founder was drawn (${m.facilitator}); call the next meeting`);
    title = "Tuesday after";
    m = await callMeeting(title);
  }
  summary.meeting_title = title;
  summary.facilitator = m.facilitator;
  if (!m.facilitator.startsWith("Facilitator: you")) fail(`the second meeting's facilitator: ${m.facilitator}, want Pia (the founder rests)`);

  step("minutes");
  const card = m.card;
  await card.getByLabel("Minutes", { exact: true }).fill("We planned the spring repair café.");
  await card.getByLabel("Decisions made here").fill("Hold the repair café in April");
  await card.getByLabel("Decisions depending on others").fill("Ask the council for the hall");
  await card.getByRole("button", { name: "Record minutes" }).click();
  const fresh = () => page.getByRole("article", { name: title });
  await fresh().getByRole("list", { name: "Decisions" }).waitFor();
  summary.decisions = await fresh().getByRole("list", { name: "Decisions" }).getByRole("listitem").allTextContents();

  step("temperature check");
  await fresh().getByLabel("The moment I felt least heard").fill("when the budget came up");
  await fresh().getByRole("group", { name: "Who dominated?" }).getByLabel("Founder").check();
  await fresh().getByRole("button", { name: "Send check" }).click();
  await fresh().getByLabel("Check summary").filter({ hasText: "You checked in. Temperature check open: 1 checked in so far" }).waitFor();
  if (await fresh().getByRole("button", { name: "Send check" }).count()) fail("the check form is still offered after checking in");
  await axe("meetings-check-open");
  await shot("meetings");

  step("the founder checks in from node");
  const list = await (await fetch(base + "/v1/meetings", { headers: { Authorization: "Bearer " + token } })).json();
  const meeting = list.meetings.find((x) => x.title === title) ?? fail(`no meeting ${title} on the server`);
  summary.meeting_id = meeting.id;
  const res = await fetch(base + `/v1/meetings/${meeting.id}/checks`, {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ least_heard: "", dominant: [meeting.draw.eligible.concat(meeting.draw.excluded).find((id) => id !== meeting.facilitator)] }),
  });
  if (res.status !== 201) fail(`the founder's check: ${res.status} ${await res.text()}`);

  await visit("Home");
  await visit("Meetings");
  const closed = page.getByRole("article", { name: title });
  await closed.getByLabel("Check summary").filter({ hasText: "2 checked in." }).waitFor();
  summary.named = await closed.getByRole("list", { name: "Named as dominating" }).getByRole("listitem").allTextContents();
  summary.rests = (await closed.getByLabel("Resting from facilitation").textContent()).trim();
  summary.pattern = await page.getByRole("list", { name: "Pattern over time" }).getByRole("listitem").allTextContents();
  await axe("meetings-check-closed");
  await shot("meetings-closed");

  await visit("Honours");
  await page.getByRole("list", { name: "Honours" }).waitFor();
  summary.honours = await page.getByRole("list", { name: "Honours" }).getByRole("listitem").allTextContents();
  await axe("honours");
  await shot("honours");
}
