// Recovery after the server refuses one of the phone's changes to one of
// the member's own documents (ledger segments, ballots).
//
// Automerge changes depend on the ones before them: once the server
// refuses a change, every later change of this phone to that document
// waits behind it, and the server refuses every message carrying them.
// So, for that document (the same design as circlectl's, see
// mobile-api/client/recover.go):
//
//  1. take a fresh copy from the server (POST /v1/sync from nothing);
//  2. list what the phone's copy holds and the fresh one does not —
//     ledger entries and credits, proposals, votes, reset statements —
//     and write each again into the fresh copy as a change of its own,
//     synced on its own over POST /v1/sync, so the server judges each
//     item alone: accepted ones stay, refused ones are kept aside (in
//     IndexedDB) with the server's reason;
//  3. replace the repo's copy of the document with the fresh one (what
//     the member wrote meanwhile is written into it as well, to sync the
//     usual way).
//
// Nothing the member made is dropped without being listed as refused.
// The per-item syncs use POST /v1/sync whatever the app's transport:
// its 200 or 422 says at once, for that item alone, what the server
// decided.
import { ApiError } from "./api";
import { A, Docs, S, str } from "./docs";

export type Container = "entries" | "credits" | "proposals" | "votes" | "resets";

const CONTAINERS: Container[] = ["entries", "credits", "proposals", "votes", "resets"];

// RefusedItem is something the member made that the server refused, kept
// on the phone with the reason.
export interface RefusedItem {
  doc: string;
  container: Container;
  id: string;
  // what is a line a person recognises the item by.
  what: string;
  reason: string;
  // at is when the server refused it.
  at: string;
  // value is the item itself as JSON (strings as strings), so a refused
  // entry stays readable in "My contributions".
  value: unknown;
}

// Item is one thing the phone made that the server's copy lacks.
interface Item {
  container: Container;
  id: string;
  value: unknown;
  at: string;
}

type AnyDoc = Record<string, Record<string, unknown> | undefined>;

// json turns a value read from an automerge document into plain JSON:
// scalar strings and text both become strings.
export function json(v: unknown): unknown {
  if (v === null || v === undefined || typeof v === "number" || typeof v === "boolean") return v;
  if (typeof v === "string") return v;
  if (v instanceof A.ImmutableString) return v.val;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(json);
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, json(x)]));
  return String(v);
}

// scalar turns plain JSON back into what the phone writes: strings as
// scalar strings (ImmutableString), as the server prefers.
function scalar(v: unknown): unknown {
  if (typeof v === "string") return S(v);
  if (Array.isArray(v)) return v.map(scalar);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, scalar(x)]));
  return v;
}

// pendingItems lists what local holds and fresh does not, oldest first
// (by the time the item says it was made, then by container and key).
export function pendingItems(local: AnyDoc, fresh: AnyDoc, skip: Set<string> = new Set()): Item[] {
  const out: Item[] = [];
  for (const c of CONTAINERS) {
    for (const [id, v] of Object.entries(local[c] ?? {})) {
      if (fresh[c] && id in (fresh[c] as object)) continue;
      if (skip.has(c + "/" + id)) continue;
      const value = json(v);
      const at = value && typeof value === "object" ? String((value as { at?: unknown }).at ?? "") : "";
      out.push({ container: c, id, value, at });
    }
  }
  return out.sort((a, b) => (a.at !== b.at ? (a.at < b.at ? -1 : 1) : a.container + a.id < b.container + b.id ? -1 : 1));
}

// describe is the line a person recognises an item by.
export function describe(container: Container, id: string, value: unknown): string {
  const v = (value ?? {}) as Record<string, unknown>;
  switch (container) {
    case "entries":
      return `${v.quantity} ${str(v.unit) || "h"}: ${str(v.note)}`;
    case "credits":
      return `credit of ${v.amount} h: ${str(v.note)}`;
    case "proposals":
      return `proposal: ${str(v.title)}`;
    case "votes":
      return `vote ${str(v.choice)} on proposal ${id}`;
    case "resets":
      return "reset signature";
  }
}

// refusal reports whether err is the server refusing this one item
// (rather than the network or the server failing, which stop the
// recovery so that it runs again later).
function refusal(err: unknown): ApiError | undefined {
  if (!(err instanceof ApiError)) return undefined;
  if (err.status < 400 || err.status >= 500 || err.status === 401 || err.status === 429) return undefined;
  return err;
}

export interface RecoverResult {
  doc: string;
  accepted: number;
  refused: RefusedItem[];
}

// recoverDoc un-strands document id (see the top of this file). It throws
// when the server cannot be reached or fails; the phone's copy is then
// left as it was, and the recovery runs again at the next sync.
export async function recoverDoc(docs: Docs, id: string): Promise<RecoverResult> {
  const actor = docs.session.device.actor;
  const res: RecoverResult = { doc: id, accepted: 0, refused: [] };
  const local = (await docs.handle<AnyDoc>(id)).doc();
  let fresh = A.load<AnyDoc>(await docs.pull(id), actor);
  const handled = new Set<string>();
  for (const it of pendingItems(local, fresh)) {
    handled.add(it.container + "/" + it.id);
    const next = writeItem(fresh, actor, it);
    try {
      fresh = await docs.push(id, next);
      res.accepted++;
    } catch (err) {
      const r = refusal(err);
      if (!r) throw err;
      res.refused.push({
        doc: id,
        container: it.container,
        id: it.id,
        what: describe(it.container, it.id, it.value),
        reason: r.message,
        at: new Date().toISOString(),
        value: it.value,
      });
    }
  }
  // Swap the fresh copy in. What the member wrote on this phone while the
  // items above were synced is written into it too, read at the moment
  // of the swap, so nothing typed meanwhile is lost: it syncs the usual
  // way afterwards.
  await docs.replace(id, (current) => {
    let doc = fresh;
    for (const it of pendingItems(current as AnyDoc, doc, handled)) doc = writeItem(doc, actor, it);
    return A.save(doc);
  });
  return res;
}

// writeItem returns doc with one more change, by the phone's actor, that
// writes the item.
function writeItem(doc: A.Doc<AnyDoc>, actor: string, it: Item): A.Doc<AnyDoc> {
  return A.change(A.clone(doc, actor), { message: `again: ${it.container} ${it.id}` }, (d) => {
    d[it.container] ??= {};
    (d[it.container] as Record<string, unknown>)[it.id] = scalar(it.value);
  });
}
