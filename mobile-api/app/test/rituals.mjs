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
// Honours screen shows the founder's stepping down, and the Roles screen
// a role whose draw is pending.
import { args, openPhone, T } from "./harness.mjs";

const { link: linkArg, token, shots } = args();
const link = linkArg ? new URL(linkArg) : undefined;
if (!link || link.pathname !== "/join" || !token) {
  console.error("usage: node rituals.mjs --link http://HOST:PORT/join#CODE --token TOKEN [--shots DIR]");
  process.exit(2);
}
const base = link.origin;

const phone = await openPhone("rituals", { shots });
const { page, summary, step, fail, axe, shot, visit } = phone;

async function callMeeting(title) {
  await page.getByLabel("Meeting title").fill(title);
  await page.getByRole("button", { name: "Call meeting" }).click();
  const card = page.getByRole("article", { name: title });
  await card.waitFor();
  return { card, facilitator: (await card.getByLabel("Facilitator").textContent()).trim() };
}

await phone.run(async () => {
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

  // A role whose draw waits for its commit–reveal round says so.
  await visit("Roles");
  const pending = page.locator("[data-pending-draw]").first();
  await pending.waitFor({ timeout: T });
  summary.pending_draw = (await pending.textContent()).trim();
  await axe("roles-pending-draw");
});
