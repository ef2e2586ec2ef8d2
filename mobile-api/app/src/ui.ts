// A minimal DOM builder: h("button", {onclick}, "Save").
export type Child = Node | string | number | null | undefined | false | Child[];

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v as EventListener);
    else if (k === "value" || k === "checked") (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let fieldSeq = 0;

// field is a labelled form control; the label names it for screen readers
// and for tests (getByLabel).
export function field(label: string, control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, hint?: string): HTMLElement {
  const id = control.id || "f" + ++fieldSeq;
  control.id = id;
  let hintEl: HTMLElement | null = null;
  if (hint) {
    hintEl = h("small", { id: id + "-hint" }, hint);
    control.setAttribute("aria-describedby", id + "-hint");
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

export function when(d: string | undefined | null): string {
  if (!d) return "—";
  const t = new Date(d);
  return isNaN(t.getTime()) ? d : t.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function num(n: number | undefined): string {
  return n === undefined ? "—" : String(Math.round(n * 100) / 100);
}
