// The Federation screen (issue 9, API.md "Federation"): the federations
// this circle is in, and for each, as this circle's own replica holds it,
// the member circles with their delegates and blueprints, the delegates'
// proposals with each circle's vote, and the inter-circle credit
// balances. The server answers from its replica, so this works while the
// hub is down; it needs the circle's server, not the hub.
import { App } from "./app";
import type { Screen } from "./screens";
import { h, when } from "./ui";

interface Federation {
  id: string;
  name: string;
  status: "joining" | "joined" | "left" | "expelled";
  connected: boolean;
}

interface Delegate {
  member: string;
  name: string;
  issue: string;
  deadline: string;
}

interface CircleView {
  circle_id: string;
  name: string;
  delegates: Delegate[];
  blueprints: { id: string; title: string; origin?: { circle_id: string } }[];
  departed: boolean;
}

interface FederationView extends Federation {
  circles: CircleView[];
}

interface FedProposal {
  id: string;
  kind: string;
  title: string;
  author_circle: string;
  status: "open" | "passed" | "rejected";
  votes: Record<string, string>;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// one is the card of one federation: its circles, proposals and balances.
async function one(app: App, f: Federation): Promise<HTMLElement> {
  const base = `/v1/federations/${encodeURIComponent(f.id)}`;
  const [view, props, bal] = await Promise.all([
    app.get<FederationView>(base),
    app.get<{ proposals: FedProposal[] }>(base + "/proposals"),
    app.get<{ balances: { circle_id: string; balance: number }[] }>(base + "/balances"),
  ]);
  const name = (id: string) => view.circles.find((c) => c.circle_id === id)?.name ?? id;
  const link = f.status === "joined" || f.status === "joining" ? (f.connected ? "linked" : "not linked now") : f.status;
  return h(
    "section",
    { class: "card", "aria-label": `Federation ${f.name}` },
    h("h2", null, f.name),
    h("p", { class: "meta" }, `${f.status} · ${link}`),
    h("h3", null, "Member circles"),
    h(
      "ul",
      { "aria-label": "Member circles" },
      view.circles.map((c) =>
        h(
          "li",
          null,
          h("strong", null, c.name + (c.departed ? " (departed)" : "")),
          c.delegates.length
            ? h(
                "ul",
                { "aria-label": `Delegates of ${c.name}` },
                c.delegates.map((d) => h("li", null, `${d.name}: ${d.issue}, until ${when(d.deadline)}`)),
              )
            : h("p", { class: "muted" }, "No delegate now."),
          c.blueprints.length ? h("p", { class: "meta" }, "Blueprints: " + c.blueprints.map((b) => b.title).join(", ")) : null,
        ),
      ),
    ),
    h("h3", null, "Proposals"),
    props.proposals.length
      ? h(
          "ul",
          { class: "cards", "aria-label": `Proposals of ${f.name}` },
          props.proposals.map((p) =>
            h(
              "li",
              { class: "card" },
              h("h4", null, p.title),
              h("p", { class: "meta" }, `${p.kind} · ${p.status} · from ${name(p.author_circle)}`),
              h("p", null, Object.entries(p.votes).map(([c, v]) => `${name(c)}: ${v}`).join(" · ") || "No vote yet."),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No proposal yet."),
    h("h3", null, "Credit between circles"),
    h(
      "ul",
      { "aria-label": `Balances in ${f.name}` },
      bal.balances.map((b) => h("li", null, `${name(b.circle_id)}: ${b.balance > 0 ? "+" : ""}${b.balance} h`)),
    ),
  );
}

export const federation: Screen = {
  title: "Federation",
  render(app) {
    const body = h("div");
    body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    app
      .get<{ federations: Federation[] }>("/v1/federations")
      .then(async (list) => {
        if (!list.federations.length) {
          body.replaceChildren(
            h("p", { class: "muted" }, "This circle is in no federation. Joining one is a proposal of the circle (federation.join), made on the Proposals screen."),
          );
          return;
        }
        const cards = await Promise.all(
          list.federations.map((f) => one(app, f).catch((err) => h("p", { class: "alert", role: "alert" }, `${f.name}: ${errText(err)}`))),
        );
        body.replaceChildren(...cards);
      })
      .catch((err) => body.replaceChildren(h("p", { class: "alert", role: "alert" }, "Could not load this: " + errText(err))));
    return [h("h1", null, "Federation"), body];
  },
};
