// The app's state: the enrolled device, its session, its documents, what
// the server has confirmed, and the sync loop.
import { ApiError, OfflineError, uuid } from "./api";
import { CircleInfo, Device, loadDevice, saveDevice, Session } from "./device";
import { Docs, isRefusal, NotLoadedError, Refusal, S, str } from "./docs";
import * as kv from "./kv";

export type SyncStatus = "offline" | "syncing" | "up to date";

// Stale collects, over one screen's loads, the time of the oldest saved
// answer used instead of the server's (no network).
export interface Stale {
  since?: string;
}

export interface LedgerEntry {
  id: string;
  kind: string;
  quantity: number;
  unit?: string;
  note: string;
  at: string;
}

// ledger and ballots as automerge-repo hands them out (strings may be
// ImmutableString or text; read them with str).
export interface LedgerDoc {
  entries?: Record<string, Record<string, unknown>>;
}
export interface BallotsDoc {
  proposals?: Record<string, unknown>;
  votes?: Record<string, Record<string, unknown>>;
  resets?: Record<string, unknown>;
}
export interface DraftDoc {
  text?: string;
  principles?: unknown[];
}

// SYNC_EVERY is how often the app syncs while it is open.
const SYNC_EVERY = 10_000;

export class App extends EventTarget {
  device?: Device;
  session?: Session;
  docs?: Docs;
  // confirmed holds the ids of the member's entries the server lists;
  // refused, the entries it refused, with the reason.
  confirmed = new Set<string>();
  refused = new Map<string, string>();
  // changes maps the hash of the change that wrote an entry to its id, so
  // a refusal naming changes can name entries.
  changes = new Map<string, string>();
  reachable = true;
  running = false;
  lastError = "";

  async load(): Promise<void> {
    this.device = await loadDevice();
    if (!this.device) return;
    this.session = new Session(this.device);
    this.docs = await Docs.open(this.session);
    this.confirmed = new Set((await kv.get<string[]>("confirmed")) ?? []);
    this.refused = new Map((await kv.get<[string, string][]>("refused")) ?? []);
    this.changes = new Map((await kv.get<[string, string][]>("changes")) ?? []);
    this.docs.addEventListener("doc", () => this.changed());
    this.docs.addEventListener("refused", (e) => {
      const { doc, refusal } = (e as CustomEvent<{ doc: string; refusal: Refusal }>).detail;
      void this.noteRefusal(doc, refusal);
    });
    window.addEventListener("online", () => void this.sync());
    window.addEventListener("offline", () => this.changed());
    setInterval(() => void this.sync(), SYNC_EVERY);
  }

  changed(): void {
    this.dispatchEvent(new Event("change"));
  }

  get circle(): CircleInfo | undefined {
    return this.device?.circle;
  }

  memberName(id: string): string {
    if (id === this.device?.memberId) return "you";
    return this.circle?.members.find((m) => m.member_id === id)?.name ?? id.slice(0, 8);
  }

  status(): SyncStatus {
    if (!navigator.onLine || !this.reachable) return "offline";
    if (this.running || this.#next || this.pending().length > 0) return "syncing";
    return "up to date";
  }

  // ledgerHandle is the member's own ledger (docs.ledger).
  async ledgerHandle() {
    const id = this.circle?.docs.ledger;
    if (!id || !this.docs) throw new NotLoadedError("connect once to load your ledger");
    return this.docs.handle<LedgerDoc>(id);
  }

  async ballotsHandle() {
    const id = this.circle?.docs.ballots;
    if (!id || !this.docs) throw new NotLoadedError("connect once to load your ballots");
    return this.docs.handle<BallotsDoc>(id);
  }

  // myEntries lists the ledger's entries, newest first.
  myEntries(doc: LedgerDoc | undefined): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (const e of Object.values(doc?.entries ?? {})) {
      out.push({
        id: str(e.id),
        kind: str(e.kind),
        quantity: Number(e.quantity),
        unit: e.unit === undefined ? undefined : str(e.unit),
        note: str(e.note),
        at: str(e.at),
      });
    }
    return out.sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1));
  }

  entryState(id: string): { state: "pending" | "synced" | "refused"; reason?: string } {
    if (this.confirmed.has(id)) return { state: "synced" };
    const reason = this.refused.get(id);
    if (reason !== undefined) return { state: "refused", reason };
    return { state: "pending" };
  }

  // ledgerSnapshot is the ledger as the phone holds it now, if loaded.
  ledgerDoc?: LedgerDoc;

  pending(): LedgerEntry[] {
    return this.myEntries(this.ledgerDoc).filter((e) => this.entryState(e.id).state === "pending");
  }

  // logContribution writes an "hours" entry into the member's ledger on
  // the phone at once; sync carries it to the server later.
  async logContribution(quantity: number, note: string): Promise<string> {
    const h = await this.ledgerHandle();
    const id = uuid();
    const hash = this.docs!.change(h, "log contribution", (d) => {
      d.entries ??= {};
      d.entries[id] = { id: S(id), kind: S("hours"), quantity, note: S(note), at: S(new Date().toISOString()) };
    });
    this.changes.set(hash, id);
    await kv.put("changes", [...this.changes]);
    await this.docs!.repo.flush([h.documentId]);
    this.ledgerDoc = h.doc();
    this.changed();
    void this.sync();
    return id;
  }

  async noteRefusal(doc: string, r: Refusal): Promise<void> {
    if (doc !== this.circle?.docs.ledger) {
      this.lastError = `the server refused a change: ${r.message ?? r.rule ?? "no reason given"}`;
      this.changed();
      return;
    }
    const reason = r.message ?? r.rule ?? "refused by the server";
    const ids = (r.changes ?? []).map((c) => this.changes.get(c)).filter((x): x is string => !!x);
    for (const id of ids.length ? ids : this.pending().map((e) => e.id)) this.refused.set(id, reason);
    await kv.put("refused", [...this.refused]);
    this.changed();
  }

  // sync brings the circle's description, the member's documents and the
  // server's view of the member's entries up to date. A call made while a
  // sync runs gets one more run after it, and resolves when that one ends,
  // so what was written before the call is in it.
  sync(): Promise<void> {
    if (this.#current) {
      this.#next ??= this.#current.then(() => {
        this.#next = undefined;
        return this.sync();
      });
      return this.#next;
    }
    this.#current = this.#syncOnce().finally(() => {
      this.#current = undefined;
    });
    return this.#current;
  }

  #current?: Promise<void>;
  #next?: Promise<void>;

  async #syncOnce(): Promise<void> {
    if (!this.session || !this.docs) return;
    this.running = true;
    this.changed();
    try {
      const circle = await this.session.call<CircleInfo>("GET", "/v1/circle");
      this.device!.circle = circle;
      await saveDevice(this.device!);
      const transport = await this.docs.detectTransport();
      this.docs.renewToken(await this.session.token());
      const ids = new Set([circle.docs.ledger, circle.docs.ballots, ...this.docs.loadedIds()]);
      for (const id of ids) {
        if (!id) continue;
        await this.docs.handle(id);
        if (transport !== "http") continue;
        try {
          await this.docs.syncHTTP(id);
        } catch (err) {
          if (!isRefusal(err)) throw err;
          await this.noteRefusal(id, { type: "refused", message: err.message });
        }
      }
      this.ledgerDoc = (await this.ledgerHandle()).doc();
      await this.refreshConfirmed();
      this.reachable = true;
      this.lastError = "";
    } catch (err) {
      if (err instanceof OfflineError || err instanceof NotLoadedError) this.reachable = false;
      else this.lastError = err instanceof ApiError ? err.message : String(err);
    } finally {
      this.running = false;
      this.changed();
    }
    // Over WebSocket the repo pushes by itself; look again soon while
    // entries wait for the server, rather than at the next round.
    if (this.docs.transport === "websocket" && this.reachable && this.pending().length && !this.#soon) {
      this.#soon = window.setTimeout(() => {
        this.#soon = undefined;
        void this.sync();
      }, 1000);
    }
  }

  #soon?: number;

  // get reads a server view (GET) and keeps the answer in IndexedDB, so
  // the screen shows the last answer, and when it was, with no network.
  async get<T>(path: string, seen?: Stale): Promise<T> {
    try {
      const data = await this.session!.call<T>("GET", path);
      await kv.put("get:" + path, { data, at: new Date().toISOString() });
      return data;
    } catch (err) {
      if (!(err instanceof OfflineError)) throw err;
      const saved = await kv.get<{ data: T; at: string }>("get:" + path);
      if (!saved) throw err;
      if (seen && (!seen.since || saved.at < seen.since)) seen.since = saved.at;
      return saved.data;
    }
  }

  // refreshConfirmed asks the server which of the member's entries it has
  // stored: its REST index is written only after the store acknowledged.
  async refreshConfirmed(): Promise<void> {
    const seen = new Set<string>();
    let cursor = "";
    for (let page = 0; page < 100; page++) {
      const q = new URLSearchParams({ member: this.device!.memberId, limit: "200" });
      if (cursor) q.set("cursor", cursor);
      const res = await this.session!.call<{ entries: { id: string }[]; next_cursor?: string }>("GET", "/v1/ledger/entries?" + q);
      for (const e of res.entries ?? []) seen.add(e.id);
      if (!res.next_cursor) break;
      cursor = res.next_cursor;
    }
    this.confirmed = seen;
    for (const id of seen) this.refused.delete(id);
    await kv.put("confirmed", [...seen]);
    await kv.put("refused", [...this.refused]);
  }
}
