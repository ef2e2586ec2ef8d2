// The app's screens. Accessible names used by outside tests (API.md "The
// phone app") are kept exactly: "Invite code", "Your name", "Join", "Log
// contribution", "Quantity", "What did you do?", "Save", "My
// contributions", "Sync status", and the navigation links.
import canonicalize from "canonicalize";
import { ApiError, uuid } from "./api";
import { App, BallotsDoc, DraftDoc, Stale } from "./app";
import { enroll, signJWT } from "./device";
import { devices } from "./devices";
import { A, NotLoadedError, S, str } from "./docs";
import { field, h, num, when } from "./ui";
import { mentorshipsScreen, pairAuditsScreen } from "./draws";

export interface Screen {
  title: string;
  render(app: App): HTMLElement | HTMLElement[];
  update?(app: App, main: HTMLElement): void;
}

function message(err: unknown): string {
  if (err instanceof ApiError || err instanceof NotLoadedError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

function alertBox(): HTMLElement {
  return h("p", { class: "alert", role: "alert" });
}

// loading fills el with what load returns, or with the error. Views the
// server could not be asked for come from the last answer, said so.
function loading(el: HTMLElement, load: (stale: Stale) => Promise<HTMLElement | HTMLElement[]>): HTMLElement {
  el.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  const stale: Stale = {};
  load(stale).then(
    (c) => {
      const note = stale.since ? h("p", { class: "hint" }, `Offline: as the server last said, ${when(stale.since)}.`) : null;
      el.replaceChildren(...[note, ...(Array.isArray(c) ? c : [c])].filter((x): x is HTMLElement => !!x));
    },
    (err) => el.replaceChildren(h("p", { class: "alert", role: "alert" }, "Could not load this: " + message(err))),
  );
  return el;
}

// ---- Join ----

// inviteFromFragment is the invite code of a /join#CODE link.
function inviteFromFragment(): string {
  if (location.pathname !== "/join") return "";
  const raw = location.hash.replace(/^#/, "");
  try {
    return decodeURIComponent(raw).trim();
  } catch {
    return raw.trim(); // not percent-encoded after all
  }
}

export const joinScreen: Screen = {
  title: "Join",
  render(app) {
    const code = inviteFromFragment();
    if (app.device && location.pathname === "/join") {
      return h(
        "section",
        null,
        h("h1", null, "You are already a member"),
        h("p", null, `This phone already belongs to ${app.device.memberName} in ${app.circle?.name ?? "a circle"}.`),
        h("p", null, h("a", { class: "button", href: "/app/#/home" }, "Open the app")),
      );
    }
    const invite = h("input", { name: "invite", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", value: code });
    // Not required: a device invite (made by a member for a new device of
    // their own) joins this phone as that member, under their name.
    const name = h("input", { name: "name", autocomplete: "name", maxlength: 100 });
    const err = alertBox();
    const button = h("button", { type: "submit" }, "Join");
    const form = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          err.textContent = "";
          button.disabled = true;
          try {
            await enroll(invite.value.trim(), name.value.trim());
            // Ask the browser not to evict the circle's data under storage
            // pressure (best effort: browsers may say no).
            await navigator.storage?.persist?.().catch(() => false);
            location.href = "/app/#/home";
          } catch (e2) {
            err.textContent =
              e2 instanceof ApiError && e2.status === 403
                ? "This invite code was already used, has expired, or is not one of this circle's. Ask a member for a new invite."
                : e2 instanceof ApiError && e2.status === 400 && e2.message.includes("member_name")
                  ? "Enter your name: this invite is for a new member of the circle."
                  : "Could not join: " + message(e2);
            button.disabled = false;
          }
        },
      },
      field("Invite code", invite),
      field("Your name", name, "How the other members will see you. Adding a new device of your own with a device invite? Leave it empty."),
      err,
      button,
    );
    return h(
      "section",
      null,
      h("h1", null, "Join your circle"),
      h("p", null, "Someone in your circle gave you an invite. Enter your name to join from this phone."),
      form,
      h("p", { class: "muted small" }, "On a computer? You can also join with the command line: circlectl join followed by this page's whole address."),
    );
  },
};

// ---- Home ----

function contributions(app: App): HTMLElement {
  const entries = app.myEntries(app.ledgerDoc);
  const list = h(
    "ul",
    { class: "entries", "aria-label": "My contributions" },
    entries.map((e) => {
      const st = app.entryState(e.id);
      return h(
        "li",
        { "data-id": e.id },
        h("span", { class: "note" }, e.note),
        h("span", { class: "meta" }, `${num(e.quantity)} ${e.unit || "h"} · ${when(e.at)}`),
        h("span", { class: "state state-" + st.state }, st.state === "refused" ? `refused: ${st.reason}` : st.state),
      );
    }),
  );
  if (!entries.length) return h("div", null, h("h2", null, "My contributions"), h("p", { class: "muted" }, "Nothing logged yet."), list);
  return h("div", null, h("h2", null, "My contributions"), list);
}

// refusedOthers lists the member's proposals, votes, credits and reset
// signatures the server refused, with its reasons (entries show in "My
// contributions"); nothing when there are none.
function refusedOthers(app: App): HTMLElement | null {
  const items = app.refusedOthers();
  if (!items.length) return null;
  return h(
    "div",
    null,
    h("h2", null, "Not accepted by the circle"),
    h(
      "ul",
      { class: "entries", "aria-label": "Refused by the server" },
      items.map((r) => h("li", { "data-id": r.id }, h("span", { class: "note" }, r.what), h("span", { class: "state state-refused" }, `refused: ${r.reason}`))),
    ),
  );
}

function isIOS(): boolean {
  return /iPhone|iPad|iPod/.test(navigator.userAgent) && !(navigator as unknown as { standalone?: boolean }).standalone;
}

const home: Screen = {
  title: "Home",
  render(app) {
    const quantity = h("input", { type: "number", name: "quantity", inputmode: "decimal", min: "0.25", max: "1000", step: "0.25", required: true, value: "1" });
    const note = h("textarea", { name: "note", required: true, maxlength: 2000, rows: 3 });
    const err = alertBox();
    const form = h(
      "form",
      {
        class: "card",
        hidden: true,
        onsubmit: async (e: Event) => {
          e.preventDefault();
          err.textContent = "";
          const q = Number(quantity.value);
          if (!(q > 0) || q > 1000) {
            err.textContent = "Quantity must be a number of hours above 0 and at most 1000.";
            return;
          }
          try {
            await app.logContribution(q, note.value.trim());
            note.value = "";
            form.hidden = true;
            open.setAttribute("aria-expanded", "false");
            open.focus();
          } catch (e2) {
            err.textContent = "Not saved: " + message(e2);
          }
        },
      },
      h("h2", null, "Log contribution"),
      field("Quantity", quantity, "Hours."),
      field("What did you do?", note),
      err,
      h("button", { type: "submit" }, "Save"),
    );
    const open = h(
      "button",
      {
        type: "button",
        "aria-expanded": "false",
        onclick: () => {
          form.hidden = !form.hidden;
          open.setAttribute("aria-expanded", String(!form.hidden));
          if (!form.hidden) quantity.focus();
        },
      },
      "Log contribution",
    );
    const hint = isIOS()
      ? h("p", { class: "hint" }, "Keep Circles on this iPhone: tap the Share button, then “Add to Home Screen”. It then opens like an app, also offline.")
      : null;
    return [
      h("h1", null, app.device ? `Hello, ${app.device.memberName}` : "Circles"),
      h("div", { id: "home-error", role: "alert", class: "alert" }, app.lastError),
      hint as HTMLElement,
      open,
      form,
      h("div", { id: "contributions" }, contributions(app)),
      h("div", { id: "refused-others" }, refusedOthers(app)),
    ].filter(Boolean);
  },
  update(app, main) {
    const box = main.querySelector("#contributions");
    if (box) box.replaceChildren(contributions(app));
    const others = main.querySelector("#refused-others");
    if (others) others.replaceChildren(...[refusedOthers(app)].filter((x): x is HTMLElement => !!x));
    const e = main.querySelector("#home-error");
    if (e && e.textContent !== app.lastError) e.textContent = app.lastError;
  },
};

// ---- Ledger ----

interface Balances {
  members: { member_id: string; name?: string; given: number; received: number; balance: number; last_active?: string }[];
  signals: { top_share: number; gini: number; silent_members: string[] };
}

const ledger: Screen = {
  title: "Ledger",
  render(app) {
    const body = h("div");
    loading(body, async (stale) => {
      const [b, list] = await Promise.all([
        app.get<Balances>("/v1/balances", stale),
        app.get<{ entries: { id: string; member?: string; quantity: number; unit?: string; note: string; at: string }[] }>("/v1/ledger/entries?limit=50", stale),
      ]);
      const s = b.signals;
      return [
        h("h2", null, "Balances"),
        h(
          "table",
          null,
          h("caption", { class: "sr-only" }, "Hours given and received per member"),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Member"), h("th", { scope: "col" }, "Given"), h("th", { scope: "col" }, "Received"), h("th", { scope: "col" }, "Balance"))),
          h(
            "tbody",
            null,
            b.members.map((m) =>
              h("tr", null, h("th", { scope: "row" }, m.name || app.memberName(m.member_id)), h("td", null, num(m.given)), h("td", null, num(m.received)), h("td", null, num(m.balance))),
            ),
          ),
        ),
        h("h2", null, "Signals"),
        h(
          "dl",
          { class: "signals" },
          h("dt", null, "Largest share of all hours"),
          h("dd", null, `${Math.round((s.top_share || 0) * 100)}%`),
          h("dt", null, "Inequality (Gini, 0 = even)"),
          h("dd", null, num(s.gini)),
          h("dt", null, "Quiet members"),
          h("dd", null, s.silent_members?.length ? s.silent_members.map((id) => app.memberName(id)).join(", ") : "none"),
        ),
        h("h2", null, "Latest entries"),
        list.entries.length
          ? h(
              "ul",
              { class: "entries", "aria-label": "Circle entries" },
              [...list.entries]
                .sort((a, b2) => (a.at < b2.at ? 1 : -1))
                .map((e) => h("li", null, h("span", { class: "note" }, e.note), h("span", { class: "meta" }, `${app.memberName(e.member ?? "")} · ${num(e.quantity)} ${e.unit || "h"} · ${when(e.at)}`))),
            )
          : h("p", { class: "muted" }, "No entries yet."),
      ];
    });
    return [h("h1", null, "Ledger"), body];
  },
};

// ---- Proposals ----

interface Proposal {
  id: string;
  kind: string;
  title: string;
  body: string;
  status: string;
  closes_at: string;
  votes?: Record<string, { choice: string }>;
}

const CHOICES = ["yes", "no", "object", "abstain"] as const;

// proposalLists maps a Proposals screen's list to its reload, for update.
const proposalLists = new WeakMap<HTMLElement, () => void>();

// watchVote asks the server a few times whether it has counted the
// member's vote on proposal id (it counts a synced vote as it stores the
// ballots document) and says so in note once it has.
async function watchVote(app: App, id: string, note: HTMLElement): Promise<void> {
  for (let i = 0; i < 10 && navigator.onLine && app.reachable; i++) {
    const now = await app.session!.call<Proposal>("GET", `/v1/proposals/${encodeURIComponent(id)}`).catch(() => undefined);
    const v = now?.votes?.[app.device!.memberId];
    if (v) {
      note.textContent = `Your vote: ${str(v.choice)} (counted)`;
      delete note.dataset.votePending;
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const proposals: Screen = {
  title: "Proposals",
  render(app) {
    const list = h("div", { "data-proposals": "" });
    const reload = () =>
      loading(list, async (stale) => {
        const [res, bh] = await Promise.all([app.get<{ proposals: Proposal[] }>("/v1/proposals", stale), app.ballotsHandle()]);
        const ballots = bh.doc() as BallotsDoc;
        // Proposals made on this phone that the server has not opened yet
        // (not synced, or synced a moment ago).
        const known = new Set(res.proposals.map((p) => p.id));
        const waiting = Object.values(ballots.proposals ?? {})
          .map((p) => p as Record<string, unknown>)
          .filter((p) => !known.has(str(p.id)))
          .map((p) =>
            h(
              "li",
              { class: "card" },
              h("h3", null, str(p.title)),
              h("p", { class: "meta" }, `${str(p.kind)} · on this phone, opens once the server has it`),
              str(p.body) ? h("p", null, str(p.body)) : null,
            ),
          );
        if (!res.proposals.length && !waiting.length) return h("p", { class: "muted" }, "No proposals yet.");
        return h(
          "ul",
          { class: "cards", "aria-label": "Proposals" },
          waiting,
          [...res.proposals].reverse().map((p) => {
            const mine = ballots.votes?.[p.id];
            const counted = p.votes?.[app.device!.memberId];
            const voteNote = h(
              "p",
              { class: "meta", "aria-live": "polite" },
              counted ? `Your vote: ${str(counted.choice)} (counted)` : mine ? `Your vote: ${str(mine.choice)} (pending)` : "",
            );
            if (mine && !counted) {
              // Voted on this phone, not counted yet: update shows it
              // counted once the phone is back in sync.
              voteNote.dataset.votePending = "";
              if (!stale.since) void watchVote(app, p.id, voteNote);
            }
            // A vote is final (the server counts the first one only), so
            // the buttons go once the member has voted.
            const voteGroup =
              p.status === "open" && !mine && !counted
                ? h(
                    "div",
                    { role: "group", "aria-label": `Vote on ${p.title}`, class: "choices" },
                    CHOICES.map((c) =>
                      h(
                        "button",
                        {
                          type: "button",
                          class: "secondary",
                          onclick: async () => {
                            // The vote is written into the member's ballots
                            // document: it counts once synced, online or not.
                            app.docs!.change(bh, "vote", (d) => {
                              d.votes ??= {};
                              d.votes[p.id] = { choice: S(c), at: S(new Date().toISOString()) };
                            });
                            await app.docs!.repo.flush([bh.documentId]);
                            voteNote.textContent = `Your vote: ${c} (pending)`;
                            voteNote.dataset.votePending = "";
                            voteGroup?.remove();
                            await app.sync();
                            await watchVote(app, p.id, voteNote);
                          },
                        },
                        c[0].toUpperCase() + c.slice(1),
                      ),
                    ),
                  )
                : null;
            return h(
              "li",
              { class: "card" },
              h("h3", null, p.title),
              h("p", { class: "meta" }, `${p.kind} · ${p.status}${p.status === "open" ? " · closes " + when(p.closes_at) : ""}`),
              p.body ? h("p", null, p.body) : null,
              voteNote,
              voteGroup,
            );
          }),
        );
      });
    const form = newProposalForm(app, () => {
      form.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      reload();
    });
    form.hidden = true;
    const toggle = h(
      "button",
      {
        type: "button",
        "aria-expanded": "false",
        onclick: () => {
          form.hidden = !form.hidden;
          toggle.setAttribute("aria-expanded", String(!form.hidden));
        },
      },
      "Make a proposal",
    );
    proposalLists.set(list, reload);
    return [h("h1", null, "Proposals"), toggle, form, h("h2", null, "All proposals"), reload()];
  },
  // A vote made offline says "pending"; when the phone is back in sync,
  // ask the server again, so the screen shows it counted without being
  // reopened.
  update(app, main) {
    const list = main.querySelector<HTMLElement>("[data-proposals]");
    if (!list) return;
    const was = list.dataset.status;
    const now = app.status();
    list.dataset.status = now;
    if (now === "up to date" && was !== now && list.querySelector("[data-vote-pending]")) proposalLists.get(list)?.();
  },
};

function newProposalForm(app: App, done: () => void): HTMLElement {
  const kind = h(
    "select",
    { name: "kind" },
    h("option", { value: "charter.ratify" }, "Ratify the charter draft"),
    h("option", { value: "policy.set" }, "Change a policy"),
    h("option", { value: "role.create" }, "Create a role"),
  );
  const title = h("input", { name: "title", required: true, maxlength: 200 });
  const body = h("textarea", { name: "body", rows: 3, maxlength: 5000 });
  const a = h("input", { name: "a" });
  const b = h("input", { name: "b" });
  const aField = field("Policy name", a);
  const bField = field("New value", b);
  const err = alertBox();
  const labels: Record<string, [string, string] | null> = {
    "charter.ratify": null,
    "policy.set": ["Policy name", "New value"],
    "role.create": ["Role name", "Purpose"],
  };
  const sync = () => {
    const l = labels[kind.value];
    aField.hidden = bField.hidden = !l;
    a.required = b.required = !!l;
    if (l) {
      aField.querySelector("label")!.textContent = l[0];
      bField.querySelector("label")!.textContent = l[1];
    }
  };
  kind.addEventListener("change", sync);
  sync();
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        err.textContent = "";
        const payload: Record<string, unknown> =
          kind.value === "policy.set"
            ? { name: a.value.trim(), value: b.value.trim() }
            : kind.value === "role.create"
              ? { name: a.value.trim(), purpose: b.value.trim(), term: "2160h", term_limit: 2 }
              : {};
        try {
          // The proposal goes into the member's ballots document, so it can
          // be made offline; the server opens it once synced.
          const id = uuid();
          const bh = await app.ballotsHandle();
          const scalar = Object.fromEntries(Object.entries(payload).map(([k, v]) => [k, typeof v === "string" ? S(v) : v]));
          app.docs!.change(bh, "propose", (d) => {
            d.proposals ??= {};
            d.proposals[id] = {
              id: S(id),
              title: S(title.value.trim()),
              body: S(body.value.trim()),
              kind: S(kind.value),
              at: S(new Date().toISOString()),
              payload: scalar,
            };
          });
          await app.docs!.repo.flush([bh.documentId]);
          title.value = body.value = a.value = b.value = "";
          done();
          await app.sync();
          // The server opens proposals from ballots as it stores them;
          // look a few times.
          for (let i = 0; i < 10 && navigator.onLine && app.reachable; i++) {
            const open = await app.session!.call<Proposal>("GET", `/v1/proposals/${encodeURIComponent(id)}`).catch(() => undefined);
            if (open) break;
            await new Promise((r) => setTimeout(r, 500));
          }
          done();
        } catch (e2) {
          err.textContent = "Not proposed: " + message(e2);
        }
      },
    },
    field("Kind", kind),
    field("Title", title),
    field("Details", body),
    aField,
    bField,
    err,
    h("button", { type: "submit" }, "Propose"),
  );
  return form;
}

// ---- Roles ----

const roles: Screen = {
  title: "Roles",
  render(app) {
    const body = h("div");
    loading(body, async (stale) => {
      const [r, m] = await Promise.all([
        app.get<{ roles: { id: string; name: string; purpose: string; holder: string; term_end?: string; terms_served: number; status?: string; pending_draw?: { draw: string } }[] }>("/v1/roles", stale),
        app.get<{ mandates: { id: string; member: string; issue: string; scope: string; deadline: string; status: string }[] }>("/v1/mandates", stale),
      ]);
      return [
        h("h2", null, "Roles"),
        r.roles.length
          ? h(
              "ul",
              { class: "cards", "aria-label": "Roles" },
              r.roles.map((x) =>
                h(
                  "li",
                  { class: "card" },
                  h("h3", null, x.name),
                  h("p", null, x.purpose),
                  h("p", { class: "meta" }, x.holder ? `Held by ${app.memberName(x.holder)} until ${when(x.term_end)} · terms served: ${x.terms_served}` : "Vacant"),
                  x.pending_draw ? h("p", { class: "meta", "data-pending-draw": x.pending_draw.draw }, "Being drawn: the holder is known when the draw closes (see Pair audits › Draws); this phone takes part when it syncs.") : null,
                ),
              ),
            )
          : h("p", { class: "muted" }, "No roles yet. Propose one under Proposals."),
        h("h2", null, "Mandates"),
        m.mandates.length
          ? h(
              "ul",
              { class: "cards", "aria-label": "Mandates" },
              m.mandates.map((x) =>
                h("li", { class: "card" }, h("h3", null, x.issue), h("p", { class: "meta" }, `${app.memberName(x.member)} · ${x.scope} · until ${when(x.deadline)} · ${x.status}`)),
              ),
            )
          : h("p", { class: "muted" }, "No mandates."),
      ];
    });
    return [h("h1", null, "Roles"), body];
  },
};

// ---- Charter ----

interface Charter {
  name: string;
  purpose: string;
  principles: string[];
  text: string;
  policies: Record<string, string>;
  version: number;
  status: string;
  ratified_at?: string;
}

const charter: Screen = {
  title: "Charter",
  render(app) {
    const ratified = h("div");
    loading(ratified, async (stale) => {
      const c = await app.get<Charter>("/v1/charter", stale);
      return [
        h("p", { class: "meta" }, `${c.status} · version ${c.version}${c.ratified_at ? " · ratified " + when(c.ratified_at) : ""}`),
        c.purpose ? h("p", null, c.purpose) : null,
        c.text ? h("div", { class: "charter-text" }, c.text) : h("p", { class: "muted" }, "No ratified text yet."),
        c.principles?.length ? h("ul", { "aria-label": "Principles" }, c.principles.map((p) => h("li", null, p))) : null,
        h(
          "details",
          null,
          h("summary", null, "Policies"),
          h(
            "dl",
            { class: "signals" },
            Object.entries(c.policies ?? {})
              .sort()
              .flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
          ),
        ),
      ].filter(Boolean) as HTMLElement[];
    });
    const draft = h("div");
    loading(draft, async () => {
      const id = app.circle?.docs["charter-draft"];
      if (!id) throw new NotLoadedError("connect once to load the draft");
      const handle = await app.docs!.handle<DraftDoc>(id);
      const area = h("textarea", { rows: 12, maxlength: 100000, value: str(handle.doc().text) });
      const saved = h("p", { class: "meta", role: "status", "aria-label": "Draft status" }, "");
      let timer: number | undefined;
      area.addEventListener("input", () => {
        // Every edit goes into the document at once, so the text area and
        // the document never differ when another member's edit arrives:
        // updateText then only ever writes this member's own keystrokes
        // (the draft's text is automerge text, so edits merge character by
        // character). Saving to IndexedDB and syncing wait for a pause.
        app.docs!.change(handle, "edit charter draft", (d) => {
          if (typeof d.text === "string") A.updateText(d, ["text"], area.value);
          else d.text = area.value;
        });
        saved.textContent = "editing…";
        clearTimeout(timer);
        timer = window.setTimeout(async () => {
          await app.docs!.repo.flush([handle.documentId]);
          saved.textContent = "saved on this phone";
          void app.sync();
        }, 400);
      });
      // Another member's edit shows at once, also while this member types.
      // The caret keeps its place in the text: the document's patches say
      // where the text changed (a diff of the two strings could not tell
      // an insertion just before the caret from one just after it).
      handle.on("change", ({ doc, patches }) => {
        const text = str(doc.text);
        if (text === area.value) return;
        let [start, end] = [area.selectionStart, area.selectionEnd];
        for (const p of patches) {
          const at = p.path.length === 2 && p.path[0] === "text" ? p.path[1] : undefined;
          if (typeof at !== "number") continue;
          const move = (i: number) =>
            at >= i ? i : p.action === "splice" ? i + p.value.length : p.action === "del" ? i - Math.min(p.length ?? 1, i - at) : i;
          [start, end] = [move(start), move(end)];
        }
        const focused = document.activeElement === area;
        area.value = text;
        if (focused) area.setSelectionRange(start, end);
      });
      return [field("Charter draft", area, "Everyone edits this draft together; a charter.ratify proposal makes it the charter."), saved];
    });
    return [h("h1", null, "Charter"), h("h2", null, "The charter"), ratified, h("h2", null, "The draft"), draft];
  },
};

// ---- Reset ----

interface Resets {
  epoch: number;
  needed: number;
  window: string;
  signatures: number;
  pending: { member: string; counts: boolean; problem?: string }[];
  past: { epoch: number; at: string }[];
}

function jwtClaims(jwt: string): Record<string, unknown> {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return {};
  }
}

const reset: Screen = {
  title: "Reset",
  render(app) {
    const count = h("div", { id: "reset-count" });
    const showCount = () =>
      loading(count, async (stale) => {
        const r = await app.get<Resets>("/v1/resets", stale);
        const mine = r.pending?.find((p) => p.member === app.device!.memberId);
        return [
          h("p", { class: "big", role: "status", "aria-label": "Reset signatures" }, `${r.signatures} of ${r.needed} signatures`),
          mine
            ? h(
                "p",
                { "aria-label": "Your reset signature" },
                mine.counts ? "received: your signature counts" : `received, not counting yet: ${mine.problem ?? "see the circle's reset policies"}`,
              )
            : null,
          h("p", { class: "meta" }, `Epoch ${r.epoch} · signatures count for ${r.window || "the reset window"}${r.past?.length ? ` · last reset ${when(r.past[r.past.length - 1].at)}` : ""}`),
        ].filter(Boolean) as HTMLElement[];
      });
    const reason = h("textarea", { rows: 3, maxlength: 2000, required: true });
    const sure = h("input", { type: "checkbox", required: true });
    const err = alertBox();
    const done = h("p", { role: "status", class: "meta" });
    const form = h(
      "form",
      {
        class: "card danger",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          err.textContent = "";
          if (!sure.checked) {
            err.textContent = "Tick the box to confirm first.";
            return;
          }
          try {
            const d = app.device!;
            const epoch = app.circle?.epoch ?? 0;
            const bh = await app.ballotsHandle();
            const mine = Object.values(bh.doc().resets ?? {}).some((s) => {
              const c = jwtClaims(str(s));
              return c.epoch === epoch && c.iss === d.deviceId;
            });
            if (mine) {
              err.textContent = "You already signed a reset for this epoch.";
              return;
            }
            const jti = uuid();
            const now = Math.floor(Date.now() / 1000);
            const statement = await signJWT(d, { typ: "reset", iss: d.deviceId, aud: d.circleId, epoch, reason: reason.value.trim(), iat: now, jti });
            app.docs!.change(bh, "sign reset", (doc) => {
              doc.resets ??= {};
              doc.resets[jti] = S(statement);
            });
            await app.docs!.repo.flush([bh.documentId]);
            reason.value = "";
            sure.checked = false;
            done.textContent = "Your signature is saved on this phone. It counts once the server has it.";
            await app.sync();
            // The server checks the statement as it stores the ballots
            // document; look a few times.
            for (let i = 0; i < 10 && navigator.onLine && app.reachable; i++) {
              const r = await app.get<Resets>("/v1/resets").catch(() => undefined);
              if (!r || r.pending?.some((p) => p.member === d.memberId)) break;
              await new Promise((res) => setTimeout(res, 500));
            }
            showCount();
          } catch (e2) {
            err.textContent = "Not signed: " + message(e2);
          }
        },
      },
      h("h2", null, "Sign for a hard reset"),
      h("p", null, "A hard reset happens when enough members sign within the window. It cancels every open proposal, ends every mandate and asks the circle to ratify its charter again."),
      field("Why should the circle reset?", reason),
      h("div", { class: "check" }, sure, h("label", { for: (sure.id = "reset-sure") }, "I understand what a hard reset does and I want one.")),
      err,
      h("button", { type: "submit", class: "danger" }, "Sign reset"),
      done,
    );
    return [h("h1", null, "Hard reset"), showCount(), form];
  },
};

// ---- Audit ----

interface AuditEntry {
  seq: number;
  at: string;
  kind: string;
  data: unknown;
  prev_hash: string;
  hash: string;
}

async function sha256hex(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// verifyAudit checks the chain: each hash is the SHA-256 of prev_hash
// followed by the RFC 8785 canonical JSON of the entry without its hash,
// and each prev_hash is the hash before it (64 zeros for the first).
export async function verifyAudit(entries: AuditEntry[]): Promise<{ ok: boolean; problem?: string }> {
  let prev = "0".repeat(64);
  for (const e of entries) {
    if (e.prev_hash !== prev) return { ok: false, problem: `entry ${e.seq} does not follow the one before it` };
    const { hash, ...rest } = e;
    const want = await sha256hex(e.prev_hash + canonicalize(rest));
    if (want !== hash) return { ok: false, problem: `entry ${e.seq} was changed after it was written` };
    prev = hash;
  }
  return { ok: true };
}

const audit: Screen = {
  title: "Audit",
  render(app) {
    const body = h("div");
    loading(body, async (stale) => {
      const all: AuditEntry[] = [];
      let after = 0;
      for (let page = 0; page < 100; page++) {
        const res = await app.get<{ entries: AuditEntry[]; next_after?: number }>(`/v1/audit?after=${after}`, stale);
        all.push(...res.entries);
        if (!res.next_after) break;
        after = res.next_after;
      }
      const v = await verifyAudit(all);
      return [
        h(
          "p",
          { class: v.ok ? "ok big" : "alert big", role: "status", "aria-label": "Audit check" },
          v.ok ? `verified: ${all.length} entries, checked on this phone` : `broken: ${v.problem}`,
        ),
        h(
          "ol",
          { class: "entries", "aria-label": "Audit log" },
          [...all].reverse().map((e) => h("li", null, h("span", { class: "note" }, `#${e.seq} ${e.kind}`), h("span", { class: "meta" }, `${when(e.at)} · ${e.hash.slice(0, 12)}…`))),
        ),
      ];
    });
    return [h("h1", null, "Audit log"), body];
  },
};

export const screens: Record<string, Screen> = { home, ledger, proposals, roles, charter, reset, audit, devices, "pair-audits": pairAuditsScreen, mentorships: mentorshipsScreen };
