// federation.mjs drives the phone app's Federation screen in Debian's
// chromium (playwright-core, never a downloaded browser) by its accessible
// names and prints a JSON summary as its last line;
// test/browser/federation_test.go runs it against two circles linked
// through a federation hub.
//
//   node federation.mjs --link <server>/join#CODE --federation NAME [--shots DIR]
//
// The phone joins the circle, opens the Federation screen and reads, from
// the federation's region, the member circles, each circle's delegates
// and the credit balances (summary.lines.circles, .delegates, .balances).
import { chromium } from "playwright-core";
import { readFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const link = args.link ? new URL(args.link) : undefined;
const fedName = args.federation;
const shots = args.shots;
if (!link || link.pathname !== "/join" || !fedName) {
  console.error("usage: node federation.mjs --link http://HOST:PORT/join#CODE --federation NAME [--shots DIR]");
  process.exit(2);
}
const base = link.origin;

const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

const T = 20_000; // bounds every wait
const summary = { axe: {}, screens: [], lines: {} };
const t0 = Date.now();
const step = (s) => console.error(`[federation +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

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
  page.on("response", (r) => {
    if (r.status() >= 400) step(`HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
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

async function run() {
  step("join");
  await page.goto(link.href);
  await page.getByLabel("Your name").fill("Fern");
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();

  await visit("Federation");
  const region = page.getByRole("region", { name: `Federation ${fedName}` });
  await region.waitFor();
  const items = region.getByRole("list", { name: "Member circles" }).locator(":scope > li");
  summary.lines.circles = (await items.locator(":scope > strong").allTextContents()).map((s) => s.trim());
  summary.lines.delegates = [];
  for (const name of summary.lines.circles) {
    const list = region.getByRole("list", { name: `Delegates of ${name}` });
    if (await list.count()) summary.lines.delegates.push(...(await list.getByRole("listitem").allTextContents()).map((s) => s.trim()));
  }
  summary.lines.balances = (await region.getByRole("list", { name: `Balances in ${fedName}` }).getByRole("listitem").allTextContents()).map((s) => s.trim());
  await axe("federation");
  await shot("federation");
}
