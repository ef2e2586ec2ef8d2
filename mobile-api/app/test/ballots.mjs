// ballots.mjs: the phone app follows a switch of its member's ballots
// document (authority/ballotsegments.go). test/browser/ballots_test.go
// runs it against a real circle whose ballots documents hold 3 items.
//
//   node ballots.mjs --link URL --base URL --token TOKEN --trigger URL --proposals ID,ID
//
// --link is a device invite of a member who also has a Go device; --token
// is another member's access token (node asks the server with it);
// --trigger is a loopback URL of the Go test: a GET makes the member's Go
// device fill the ballots document, and answers once the server opened
// the next one.
//
// The phone joins and loads the ballots document, goes offline and votes
// "no" on the first proposal (into the document it knows); meanwhile the
// other device fills that document and the server opens the next one. The
// phone reloads offline, comes back online: its vote counts (the app
// syncs the earlier ballots documents it holds). Its next vote, "yes" on
// the second proposal, goes into the new document and counts.
import { args, openPhone, T } from "./harness.mjs";

const a = args();
for (const k of ["link", "base", "token", "trigger", "proposals"]) {
  if (!a[k]) {
    console.error("usage: node ballots.mjs --link URL --base URL --token TOKEN --trigger URL --proposals ID,ID");
    process.exit(2);
  }
}
const [p1, p2] = a.proposals.split(",");
const phone = await openPhone("ballots");
const { page, step, fail, summary } = phone;

async function api(path) {
  const res = await fetch(a.base + path, { headers: { Authorization: "Bearer " + a.token }, signal: AbortSignal.timeout(T) });
  if (!res.ok) fail(`GET ${path} = ${res.status} ${await res.text()}`);
  return res.json();
}

async function waitStatus(want) {
  await page.getByLabel("Sync status").filter({ hasText: new RegExp(`^${want}$`) }).waitFor({ timeout: T });
}

// counted waits until the server counted the member's vote on id.
async function counted(id, member, choice) {
  for (const deadline = Date.now() + T; ; ) {
    const p = await api("/v1/proposals/" + id);
    const v = p.votes?.[member];
    if (v) {
      if (v.choice !== choice) fail(`proposal ${id}: vote ${v.choice}, want ${choice}`);
      return;
    }
    if (Date.now() > deadline) fail(`proposal ${id}: the phone's vote was not counted within ${T} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

await phone.run(async () => {
  await page.context().addInitScript(() => localStorage.setItem("circles-test", "1"));
  step("the phone joins with the device invite");
  await page.goto(a.link);
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  await waitStatus("up to date");
  summary.member_id = await page.evaluate(async () => {
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
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration("/app/");
    return !!(reg && reg.active && navigator.serviceWorker.controller);
  }, null, { timeout: T });
  const before = (await api("/v1/circle")).members.find((m) => m.member_id === summary.member_id);
  summary.first = before.ballots;

  step("offline: the phone votes into the ballots document it knows");
  await page.context().setOffline(true);
  await waitStatus("offline");
  await page.evaluate((id) => window.__circlesTest.vote({ proposal: id, choice: "no" }), p1);

  step("meanwhile the member's other device fills it; the server opens the next one");
  const res = await fetch(a.trigger, { signal: AbortSignal.timeout(2 * T) });
  if (!res.ok) fail(`trigger: ${res.status} ${await res.text()}`);
  const after = (await api("/v1/circle")).members.find((m) => m.member_id === summary.member_id);
  if (after.ballots === summary.first || !(after.ballots_closed ?? []).includes(summary.first)) {
    fail(`after the trigger the member's ballots are ${after.ballots} (closed ${after.ballots_closed}), want a new one`);
  }
  summary.current = after.ballots;

  step("the phone reloads offline, then comes back online");
  await page.reload();
  await page.getByRole("button", { name: "Log contribution" }).waitFor();
  await page.context().setOffline(false);
  await counted(p1, summary.member_id, "no");
  await waitStatus("up to date");

  step("the next vote goes into the new ballots document");
  await page.evaluate((id) => window.__circlesTest.vote({ proposal: id, choice: "yes" }), p2);
  await counted(p2, summary.member_id, "yes");
});
