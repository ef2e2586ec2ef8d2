// The rituals this phone takes part in: commit–reveal draws (it commits
// and reveals by itself whenever it syncs), the quarterly pair-link
// audits (screen "Pair audits") and the yearly mentorship pairs (screen
// "Mentorships"). The server's side is authority/rounds.go and
// authority/pairaudits.go; the protocol is in crdt/drawround.go.
import { ApiError, OfflineError, hex } from "./api";
import type { App, Stale } from "./app";
import { Device, Session, signJWT } from "./device";
import * as kv from "./kv";
import type { Screen } from "./screens";
import { field, h, when } from "./ui";

interface Draw {
  id: string;
  purpose: string;
  phase: "commit" | "reveal" | "closing" | "closed";
  picks: number;
  commit_by: string;
  reveal_by: string;
  commitments: { member: string; commitment: string }[];
  reveals: { member: string }[];
  result?: { picked: string[]; server_only: boolean; withheld: string[]; revealed: string[] };
}

async function sha256hex(s: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s))));
}

// commitmentOf is crdt.DrawValueCommitment: bound to the circle, the
// draw and the member.
function commitmentOf(d: Device, draw: string, valueHex: string): Promise<string> {
  return sha256hex(`circles-draw-commit-v1\n${d.circleId}\n${draw}\n${d.memberId}\n${valueHex}\n`);
}

// takePartInDraws commits in every open draw in its commit phase and
// reveals in every draw in its reveal phase, as this phone can. The
// value is random and kept in IndexedDB before the commitment is sent,
// so that a phone that crashed or went offline in between still reveals.
// It returns how many commitments and reveals it sent.
export async function takePartInDraws(session: Session, d: Device): Promise<number> {
  const list = await session.call<{ draws: Draw[] }>("GET", "/v1/draws?status=open");
  let sent = 0;
  for (const w of list.draws) {
    const key = `draw-value:${d.circleId}:${w.id}`;
    const mine = w.commitments.find((c) => c.member === d.memberId);
    try {
      if (w.phase === "commit" && !mine) {
        let value = await kv.get<string>(key);
        if (!value) {
          value = hex(crypto.getRandomValues(new Uint8Array(32)));
          await kv.put(key, value);
        }
        const statement = await signJWT(d, {
          typ: "draw.commit",
          iss: d.deviceId,
          aud: d.circleId,
          draw: w.id,
          commitment: await commitmentOf(d, w.id, value),
          iat: Math.floor(Date.now() / 1000),
        });
        await session.call("POST", `/v1/draws/${encodeURIComponent(w.id)}/commitments`, { statement });
        sent++;
      } else if (w.phase === "reveal" && mine && !w.reveals.some((r) => r.member === d.memberId)) {
        const value = await kv.get<string>(key);
        // Committed from another device of this member: that one reveals.
        if (!value || (await commitmentOf(d, w.id, value)) !== mine.commitment) continue;
        await session.call("POST", `/v1/draws/${encodeURIComponent(w.id)}/reveals`, { value });
        sent++;
      }
    } catch (err) {
      if (err instanceof OfflineError) throw err;
      // A refusal (the phase just ended, say) is this draw's only; go on.
      console.warn(`draw ${w.id}:`, err);
    }
  }
  return sent;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function section(el: HTMLElement, load: (stale: Stale) => Promise<HTMLElement[]>): HTMLElement {
  el.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  const stale: Stale = {};
  load(stale).then(
    (c) => el.replaceChildren(...(stale.since ? [h("p", { class: "hint" }, `Offline: as the server last said, ${when(stale.since)}.`)] : []), ...c),
    (err) => el.replaceChildren(h("p", { class: "alert", role: "alert" }, "Could not load this: " + message(err))),
  );
  return el;
}

interface PairAudit {
  id: string;
  quarter: string;
  draw: string;
  status: "drawing" | "interviewing" | "held";
  auditors: string[];
  remaining: Record<string, string[]>;
  interviews: { auditor: string; member: string; note?: string; at: string }[];
  session_at?: string;
  findings?: string;
  held_at?: string;
}

// post sends an auditor's action and re-renders the screen.
function actionForm(app: App, label: string, controls: HTMLElement[], send: () => Promise<unknown>, rerender: () => void): HTMLElement {
  const err = h("p", { class: "alert", role: "alert" });
  const button = h("button", { type: "submit" }, label);
  return h(
    "form",
    {
      onsubmit: async (e: Event) => {
        e.preventDefault();
        err.textContent = "";
        button.disabled = true;
        try {
          await send();
          rerender();
        } catch (e2) {
          err.textContent = e2 instanceof ApiError || e2 instanceof Error ? e2.message : String(e2);
          button.disabled = false;
        }
      },
    },
    ...controls,
    err,
    button,
  );
}

function auditCard(app: App, p: PairAudit, rerender: () => void): HTMLElement {
  const me = app.device?.memberId ?? "";
  const path = `/v1/pair-audits/${encodeURIComponent(p.id)}`;
  const parts: (HTMLElement | null)[] = [h("h2", null, `Quarter ${p.quarter}`)];
  if (p.status === "drawing") {
    parts.push(h("p", null, "The two auditors are being drawn. This phone takes part in the draw when it syncs."));
    return h("li", { class: "card" }, ...parts);
  }
  parts.push(h("p", null, `Auditors: ${p.auditors.map((a) => app.memberName(a)).join(" and ")}`));
  parts.push(
    h(
      "ul",
      { "aria-label": "Still to interview" },
      p.auditors.map((a) => {
        const left = p.remaining[a] ?? [];
        return h("li", null, left.length ? `${app.memberName(a)} still has to interview ${left.map((m) => app.memberName(m)).join(", ")}` : `${app.memberName(a)} has interviewed everyone`);
      }),
    ),
  );
  if (p.session_at) parts.push(h("p", null, `Listening session: ${when(p.session_at)}`));
  if (p.findings) {
    parts.push(h("h3", null, "Findings"), h("p", { class: "findings" }, p.findings));
    return h("li", { class: "card" }, ...parts);
  }
  if (p.auditors.includes(me)) {
    const who = h("select", { name: "member" }, (p.remaining[me] ?? []).map((m) => h("option", { value: m }, app.memberName(m))));
    const note = h("input", { name: "note", maxlength: 500 });
    if ((p.remaining[me] ?? []).length) {
      parts.push(
        actionForm(app, "Record interview", [field("Member interviewed", who), field("Note (public)", note)], () => app.session!.call("POST", path + "/interviews", { member: who.value, note: note.value }), rerender),
      );
    }
    const at = h("input", { name: "session", type: "datetime-local", required: true });
    parts.push(actionForm(app, "Set session", [field("Listening session", at)], () => app.session!.call("POST", path + "/session", { at: new Date(at.value).toISOString() }), rerender));
    if (p.session_at) {
      const text = h("textarea", { name: "findings", required: true, rows: 6, maxlength: 20000 });
      parts.push(actionForm(app, "Publish findings", [field("Findings: cliques and blockages", text)], () => app.session!.call("POST", path + "/findings", { text: text.value }), rerender));
    }
  }
  return h("li", { class: "card" }, ...parts);
}

// drawsList shows the circle's draws: who took part, and what each
// picked; this phone takes part in the open ones when it syncs.
function drawsList(app: App, draws: Draw[]): HTMLElement {
  const me = app.device?.memberId ?? "";
  return h(
    "section",
    null,
    h("h2", null, "Draws no one controls"),
    h("p", { class: "hint" }, "Every draw mixes a value from each phone that takes part with the server's, committed before anyone reveals. This phone takes part by itself when it syncs."),
    draws.length
      ? h(
          "ul",
          { class: "entries", "aria-label": "Draws" },
          draws.map((w) => {
            const took = w.reveals.some((r) => r.member === me) ? "this member revealed" : w.commitments.some((c) => c.member === me) ? "this member committed" : "this member has not taken part";
            const from = w.result?.server_only ? " (no phone took part: the server's value alone)" : ` from ${w.result?.revealed.length ?? 0} phones and the server`;
            // A role's or the facilitators' round picks nobody itself:
            // its seed picks among those eligible when it is used.
            const outcome = w.result
              ? w.picks === 0
                ? `seed fixed${from}`
                : `picked ${w.result.picked.map((m) => app.memberName(m)).join(", ")}${from}`
              : `${w.phase} phase: commit by ${when(w.commit_by)}, reveal by ${when(w.reveal_by)}`;
            return h("li", { "data-draw": w.id }, h("span", { class: "note" }, w.purpose || w.id), h("span", { class: "meta" }, outcome), h("span", { class: "meta" }, took));
          }),
        )
      : h("p", { class: "muted" }, "No draws yet."),
  );
}

export const pairAuditsScreen: Screen = {
  title: "Pair audits",
  render(app) {
    const body = h("div");
    const load = () =>
      section(body, async (stale) => {
        const [list, draws] = await Promise.all([
          app.get<{ pair_audits: PairAudit[] }>("/v1/pair-audits", stale),
          app.get<{ draws: Draw[] }>("/v1/draws", stale),
        ]);
        const audits = list.pair_audits.length
          ? h("ul", { class: "cards", "aria-label": "Pair audits" }, list.pair_audits.map((p) => auditCard(app, p, load)))
          : h("p", { class: "muted" }, "No pair audit yet: one opens each quarter, with two auditors drawn.");
        return [audits, drawsList(app, draws.draws)];
      });
    load();
    return [h("h1", null, "Pair audits"), body];
  },
};

interface Mentorships {
  rounds: { year: string; at: string; pairs: { mentor: string; apprentice: string }[]; unpaired: string[] }[];
}

export const mentorshipsScreen: Screen = {
  title: "Mentorships",
  render(app) {
    const body = h("div");
    section(body, async (stale) => {
      const m = await app.get<Mentorships>("/v1/mentorships", stale);
      if (!m.rounds.length) return [h("p", { class: "muted" }, "No pairs yet: on each anniversary of the circle, the most senior members become apprentices of the newest.")];
      return m.rounds.map((r) =>
        h(
          "section",
          null,
          h("h2", null, r.year),
          h(
            "ul",
            { class: "entries", "aria-label": `Mentorships ${r.year}` },
            r.pairs.map((p) => h("li", null, `${app.memberName(p.mentor)} mentors ${app.memberName(p.apprentice)}`)),
            r.unpaired.map((u) => h("li", { class: "muted" }, `${app.memberName(u)} is not paired this year`)),
          ),
        ),
      );
    });
    return [h("h1", null, "Mentorships"), body];
  },
};
