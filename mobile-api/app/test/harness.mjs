// harness.mjs is what the single-phone screen scripts share: Debian's
// chromium through playwright-core (never a downloaded browser) as a
// phone-sized page, axe-core checks, screenshots, waiting for a screen to
// load, and the JSON summary each script prints as its last line (read by
// test/browser, runScript).
//
//   const phone = await openPhone("rituals", { shots });
//   await phone.run(async () => { ... phone.page ... });
import { chromium } from "playwright-core";
import { readFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

// args reads --name value pairs from the command line.
export function args() {
  return Object.fromEntries(
    process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
  );
}

// T bounds every wait.
export const T = 20_000;

// openPhone starts chromium with one phone-sized page. label names the
// script in its log lines; shots, if set, is where shot() writes.
export async function openPhone(label, { shots } = {}) {
  const require = createRequire(import.meta.url);
  const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
  const summary = { axe: {}, screens: [] };
  const t0 = Date.now();
  const step = (s) => console.error(`[${label} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, serviceWorkers: "allow" });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on("pageerror", (err) => step(`page error: ${err.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") step(`console ${m.type()}: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) step(`HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });

  const fail = (msg) => {
    throw new Error(msg);
  };

  // axe checks the page; serious or critical violations fail the script.
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

  // loaded waits until the screen's heading shows and nothing says
  // "Loading…"; a screen that could not load fails the script.
  async function loaded() {
    await page.getByRole("heading", { level: 1 }).first().waitFor();
    await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"), null, { timeout: T });
    const broken = await page.locator("main .alert").allTextContents();
    if (broken.some((t) => t.startsWith("Could not load"))) fail(`screen: ${broken.join(" ")}`);
  }

  // visit follows the navigation link named link and waits for its screen.
  async function visit(link) {
    step(`screen ${link}`);
    await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
    await loaded();
    summary.screens.push(link);
  }

  // run runs fn, then prints the summary (with the error and what the
  // phone showed, if fn threw) and exits: 0 if fn succeeded.
  async function run(fn) {
    let failed = false;
    try {
      await fn();
    } catch (err) {
      failed = true;
      summary.error = String(err && err.stack ? err.stack : err);
      summary.screen = await page.locator("body").innerText({ timeout: 2000 }).catch(() => "");
    } finally {
      await browser.close();
    }
    console.log(JSON.stringify(summary));
    process.exit(failed ? 1 : 0);
  }

  return { page, summary, step, fail, axe, shot, loaded, visit, run };
}
