// The rituals' screens (API.md "Rituals"): Meetings — call a meeting and
// see its drawn facilitator, record the minutes (the facilitator only),
// send the temperature check, read its summary and each member's pattern
// — and Honours: those who handed power on, and stepping down from a
// role one holds. These are server views: they need the network.
import { ApiError, uuid } from "./api";
import { App } from "./app";
import type { Screen } from "./screens";
import { field, h, when } from "./ui";

interface Decision {
  text: string;
  tag: "local" | "external";
}

interface Meeting {
  id: string;
  title: string;
  at: string;
  seq: number;
  facilitator: string;
  draw: { id: string; seed: string; eligible: string[]; rest: string[]; cooldown: string[]; relaxed?: string; round?: string; seed_source?: string };
  minutes: { text: string; decisions: Decision[]; by: string; at: string } | null;
  summary: { status: "open" | "closed"; checked_in: number; you_checked_in: boolean; named: Record<string, number>; moments: string[]; rests: string[] };
}

interface Pattern {
  member: string;
  named: number;
  meetings_named: number;
  rested: number;
  facilitated: number;
  resting_now: boolean;
  cooldown_left: number;
}

interface Honour {
  member: string;
  role: string;
  role_name?: string;
  kind: "stepped_down" | "term_ended" | "rotated";
  terms: number;
  at: string;
}

interface Role {
  id: string;
  name: string;
  holder: string;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

let seq = 0;

// card is one meeting: what the draw said, the minutes or (for its
// facilitator) the form to record them, the temperature check, and the
// check's summary once closed.
function card(app: App, m: Meeting, reload: () => void): HTMLElement {
  const me = app.device!.memberId;
  const titleId = "meeting-" + ++seq;
  const names = (ids: string[]) => ids.map((id) => app.memberName(id)).join(", ");
  const out = h(
    "article",
    { class: "card", "aria-labelledby": titleId },
    h("h3", { id: titleId }, m.title),
    h("p", { class: "meta" }, `Meeting ${m.seq} · ${when(m.at)}`),
    h(
      "p",
      { "aria-label": "Facilitator" },
      `Facilitator: ${app.memberName(m.facilitator)} (drawn among ${m.draw.eligible.length}, ${m.draw.round ? `seed from the phones' draw ${m.draw.round}` : "seed from the server alone: no facilitation draw had closed yet"})`,
    ),
    m.draw.rest.length ? h("p", { class: "meta" }, `Resting after facilitating: ${names(m.draw.rest)}`) : null,
    m.draw.cooldown.length ? h("p", { class: "meta" }, `Resting after a temperature check: ${names(m.draw.cooldown)}`) : null,
  );

  // Minutes.
  if (m.minutes) {
    out.append(
      h(
        "div",
        null,
        h("h4", null, "Minutes"),
      h("p", { class: "charter-text" }, m.minutes.text),
      m.minutes.decisions.length
        ? h(
            "ul",
            { "aria-label": "Decisions" },
            m.minutes.decisions.map((d) => h("li", null, `${d.text} (${d.tag === "local" ? "made here" : "depends on an outside authority"})`)),
          )
        : null,
      ),
    );
  } else if (m.facilitator === me) {
    const text = h("textarea", { rows: 4, maxlength: 20000 });
    const local = h("textarea", { rows: 2 });
    const external = h("textarea", { rows: 2 });
    const alert = h("p", { class: "alert", role: "alert" });
    const form = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          const lines = (t: HTMLTextAreaElement, tag: Decision["tag"]) =>
            t.value
              .split("\n")
              .map((s) => s.trim())
              .filter(Boolean)
              .map((s) => ({ text: s, tag }));
          try {
            await app.session!.call("POST", `/v1/meetings/${encodeURIComponent(m.id)}/minutes`, {
              text: text.value,
              decisions: [...lines(local, "local"), ...lines(external, "external")],
            });
            reload();
          } catch (err) {
            alert.textContent = errText(err);
          }
        },
      },
      h("h4", null, "Record the minutes"),
      field("Minutes", text),
      field("Decisions made here", local, "One per line: decided by the circle alone."),
      field("Decisions depending on others", external, "One per line: they need an outside authority (a landlord, the council)."),
      h("button", { type: "submit" }, "Record minutes"),
      alert,
    );
    out.append(form);
  } else {
    out.append(h("p", { class: "muted" }, `Minutes: not recorded yet (${app.memberName(m.facilitator)} records them).`));
  }

  // Temperature check.
  const s = m.summary;
  if (s.status === "open" && s.you_checked_in) {
    out.append(
      h("h4", null, "Temperature check"),
      h("p", { "aria-label": "Check summary" }, `You checked in. Temperature check open: ${s.checked_in} checked in so far.`),
    );
  } else if (s.status === "open") {
    const least = h("textarea", { rows: 2, maxlength: 1000 });
    const boxes = (app.circle?.members ?? []).map((mem) => {
      const box = h("input", { type: "checkbox", value: mem.member_id, id: `dom-${seq}-${mem.member_id}` });
      return { box, el: h("div", { class: "check" }, box, h("label", { for: box.id }, mem.member_id === me ? `${mem.name} (you)` : mem.name)) };
    });
    const alert = h("p", { class: "alert", role: "alert" });
    const form: HTMLFormElement = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            await app.session!.call("POST", `/v1/meetings/${encodeURIComponent(m.id)}/checks`, {
              least_heard: least.value,
              dominant: boxes.filter((b) => b.box.checked).map((b) => b.box.value),
            });
            reload();
          } catch (err) {
            alert.textContent = err instanceof ApiError && err.status === 409 ? err.message : errText(err);
          }
        },
      },
      h("h4", null, "Temperature check"),
      h("p", { class: "hint" }, "Nobody sees whom you name: the circle sees only how often each member was named, once everyone has checked in."),
      field("The moment I felt least heard", least),
      h("fieldset", null, h("legend", null, "Who dominated?"), boxes.map((b) => b.el)),
      h("button", { type: "submit" }, "Send check"),
      alert,
    );
    out.append(form, h("p", { "aria-label": "Check summary" }, `Temperature check open: ${s.checked_in} checked in so far.`));
  } else {
    const named = Object.entries(s.named).sort((a, b) => b[1] - a[1]);
    out.append(
      h(
        "div",
        null,
        h("h4", null, "Temperature check"),
        h("p", { "aria-label": "Check summary" }, `${s.checked_in} checked in.`),
      named.length
        ? h(
            "ul",
            { "aria-label": "Named as dominating" },
            named.map(([id, n]) => h("li", null, `${app.memberName(id)}: named ${n} ${n === 1 ? "time" : "times"}`)),
          )
        : h("p", { class: "muted" }, "Nobody was named."),
      s.moments.length ? h("p", { class: "meta" }, "When members felt least heard:") : null,
      s.moments.length ? h("ul", { "aria-label": "Moments least heard" }, s.moments.map((x) => h("li", null, x))) : null,
      s.rests.length ? h("p", { "aria-label": "Resting from facilitation" }, `Resting from facilitation: ${names(s.rests)}`) : null,
      ),
    );
  }
  return out;
}

export const meetings: Screen = {
  title: "Meetings",
  render(app) {
    const body = h("div");
    const load = () => {
      body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      app.get<{ meetings: Meeting[]; pattern: Pattern[] }>("/v1/meetings").then(
        (r) => {
          const list = r.meetings.slice().reverse();
          body.replaceChildren(
            h("h2", null, "Meetings"),
            list.length ? h("div", { class: "cards" }, list.map((m) => card(app, m, load))) : h("p", { class: "muted" }, "No meetings yet."),
            h("h2", null, "Pattern over time"),
            h(
              "ul",
              { "aria-label": "Pattern over time" },
              r.pattern.map((p) =>
                h(
                  "li",
                  null,
                  `${app.memberName(p.member)}: named ${p.named} in ${p.meetings_named} meetings · facilitated ${p.facilitated}` +
                    (p.resting_now ? ` · resting, ${p.cooldown_left} more` : ""),
                ),
              ),
            ),
          );
        },
        (err) => body.replaceChildren(h("p", { class: "alert", role: "alert" }, "Could not load this: " + errText(err))),
      );
    };
    const title = h("input", { type: "text", maxlength: 200, required: true });
    const at = h("input", { type: "datetime-local", required: true });
    const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
    at.value = now.toISOString().slice(0, 16);
    const alert = h("p", { class: "alert", role: "alert" });
    const form = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            await app.session!.call("POST", "/v1/meetings", { id: uuid(), title: title.value, at: new Date(at.value).toISOString() });
            title.value = "";
            alert.textContent = "";
            load();
          } catch (err) {
            alert.textContent = errText(err);
          }
        },
      },
      field("Meeting title", title),
      field("When", at),
      h("button", { type: "submit" }, "Call meeting"),
      alert,
    );
    load();
    return [
      h("h1", null, "Meetings"),
      h("p", { class: "hint" }, "Each meeting's facilitator is drawn; recent facilitators and members resting after a check are left out."),
      form,
      body,
    ];
  },
};

const kinds: Record<Honour["kind"], string> = {
  stepped_down: "stepped down as",
  term_ended: "served to the term limit as",
  rotated: "rotated out as",
};

export const honours: Screen = {
  title: "Honours",
  render(app) {
    const body = h("div");
    const load = () => {
      body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      Promise.all([app.get<{ honours: Honour[] }>("/v1/honours"), app.get<{ roles: Role[] }>("/v1/roles")]).then(
        ([hs, roles]) => {
          const mine = roles.roles.filter((r) => r.holder === app.device!.memberId);
          const alert = h("p", { class: "alert", role: "alert" });
          body.replaceChildren(
            hs.honours.length
              ? h(
                  "ul",
                  { class: "cards", "aria-label": "Honours" },
                  hs.honours.map((x) =>
                    h(
                      "li",
                      { class: "card" },
                      h("p", null, `${app.memberName(x.member)} ${kinds[x.kind]} ${x.role_name ?? x.role} after ${x.terms} ${x.terms === 1 ? "term" : "terms"}`),
                      h("p", { class: "meta" }, when(x.at)),
                    ),
                  ),
                )
              : h("p", { class: "muted" }, "Nobody has handed power on yet."),
            h("h2", null, "Your roles"),
            mine.length
              ? h(
                  "ul",
                  { class: "cards", "aria-label": "Your roles" },
                  mine.map((r) =>
                    h(
                      "li",
                      { class: "card" },
                      h("h3", null, r.name),
                      h(
                        "button",
                        {
                          type: "button",
                          onclick: async () => {
                            try {
                              await app.session!.call("POST", `/v1/roles/${encodeURIComponent(r.id)}/step-down`);
                              load();
                            } catch (err) {
                              alert.textContent = errText(err);
                            }
                          },
                        },
                        `Step down from ${r.name}`,
                      ),
                    ),
                  ),
                )
              : h("p", { class: "muted" }, "You hold no role."),
            alert,
          );
        },
        (err) => body.replaceChildren(h("p", { class: "alert", role: "alert" }, "Could not load this: " + errText(err))),
      );
    };
    load();
    return [h("h1", null, "Honours"), h("p", { class: "hint" }, "The circle celebrates handing power on, not holding it."), body];
  },
};
