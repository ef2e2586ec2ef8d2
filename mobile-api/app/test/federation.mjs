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
import { args, openPhone } from "./harness.mjs";

const { link: linkArg, federation: fedName, shots } = args();
const link = linkArg ? new URL(linkArg) : undefined;
if (!link || link.pathname !== "/join" || !fedName) {
  console.error("usage: node federation.mjs --link http://HOST:PORT/join#CODE --federation NAME [--shots DIR]");
  process.exit(2);
}

const phone = await openPhone("federation", { shots });
const { page, summary, step, axe, shot, visit } = phone;
summary.lines = {};
await phone.run(async () => {
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
});
