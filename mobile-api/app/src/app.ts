// The app's state: the enrolled device, its session, its documents, what
// the server has confirmed, and the sync loop.
import { ApiError, OfflineError, uuid } from "./api";
import { CircleInfo, Device, loadDevice, saveDevice, Session } from "./device";
import { A, Docs, isRefusal, NotLoadedError, Refusal, S, str } from "./docs";
import * as kv from "./kv";
import { recoverDoc, RefusedItem } from "./recover";
import { takePartInDraws } from "./draws";

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
  // refused is set for an entry the server refused: it is no longer in
  // the ledger document, only kept on the phone (refusedItems).
  refused?: boolean;
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
  // confirmed holds the ids of the member's entries the server lists.
  confirmed = new Set<string>();
  // refusedItems are what the member made and the server refused (entries,
  // credits, proposals, votes, reset signatures), with the server's
  // reason, kept in IndexedDB; stranded, the member's own documents with
  // a refused change still in the phone's copy, to recover (recover.ts).
  refusedItems: RefusedItem[] = [];
  stranded = new Set<string>();
  reachable = true;
  running = false;
  lastError = "";

  async load(): Promise<void> {
    this.device = await loadDevice();
    if (!this.device) return;
    this.session = new Session(this.device);
    this.docs = await Docs.open(this.session);
    this.confirmed = new Set((await kv.get<string[]>("confirmed")) ?? []);
    this.refusedItems = (await kv.get<RefusedItem[]>("refused-items")) ?? [];
    this.stranded = new Set((await kv.get<string[]>("stranded")) ?? []);
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
    // Not "up to date" before a first sync has said so.
    if (!this.#synced || this.running || this.#recovering.size || this.#next || this.pending().length > 0) return "syncing";
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

  // myEntries lists the ledger's entries and the member's refused ones,
  // newest first.
  myEntries(doc: LedgerDoc | undefined): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    const read = (e: Record<string, unknown>, refused?: boolean) => ({
      id: str(e.id),
      kind: str(e.kind),
      quantity: Number(e.quantity),
      unit: e.unit === undefined ? undefined : str(e.unit),
      note: str(e.note),
      at: str(e.at),
      refused,
    });
    for (const e of Object.values(doc?.entries ?? {})) out.push(read(e));
    const have = new Set(out.map((e) => e.id));
    for (const r of this.refusedItems) {
      if (r.container !== "entries" || have.has(r.id)) continue;
      have.add(r.id);
      out.push(read((r.value ?? {}) as Record<string, unknown>, true));
    }
    return out.sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1));
  }

  entryState(id: string): { state: "pending" | "synced" | "refused"; reason?: string } {
    if (this.confirmed.has(id)) return { state: "synced" };
    const r = this.refusedItems.find((x) => x.container === "entries" && x.id === id);
    if (r) return { state: "refused", reason: r.reason };
    return { state: "pending" };
  }

  // refusedOthers are the refused items that are not ledger entries
  // (proposals, votes, reset signatures, credits), newest first.
  refusedOthers(): RefusedItem[] {
    return this.refusedItems.filter((r) => r.container !== "entries").reverse();
  }

  // ownDocs are the member's own documents: every ledger segment and the
  // ballots.
  ownDocs(): Set<string> {
    const c = this.circle;
    const me = c?.members.find((m) => m.member_id === this.device?.memberId);
    return new Set([c?.docs.ledger, c?.docs.ballots, ...(me?.ledgers ?? []), me?.ballots, ...(me?.ballots_closed ?? [])].filter((x): x is string => !!x));
  }

  // heldClosedBallots are the member's earlier ballots documents this
  // phone holds: the server opened a newer one (GET /v1/circle names it as
  // docs.ballots) while the phone may have written votes offline into the
  // one it knew; syncing them delivers those votes, even after a reload.
  async heldClosedBallots(circle: CircleInfo): Promise<string[]> {
    const me = circle.members.find((m) => m.member_id === this.device?.memberId);
    const out: string[] = [];
    for (const id of me?.ballots_closed ?? []) {
      if (await kv.get<boolean>("loaded:" + id)) out.push(id);
    }
    return out;
  }

  // ledgerSnapshot is the ledger as the phone holds it now, if loaded.
  ledgerDoc?: LedgerDoc;

  pending(): LedgerEntry[] {
    return this.myEntries(this.ledgerDoc).filter((e) => this.entryState(e.id).state === "pending");
  }

  // logContribution writes an "hours" entry into the member's ledger on
  // the phone at once; sync carries it to the server later.
  // id is the entry's id, a new random one unless given (only the
  // test-only hook in main.ts gives one).
  async logContribution(quantity: number, note: string, id: string = uuid()): Promise<string> {
    const h = await this.ledgerHandle();
    this.docs!.change(h, "log contribution", (d) => {
      d.entries ??= {};
      d.entries[id] = { id: S(id), kind: S("hours"), quantity, note: S(note), at: S(new Date().toISOString()) };
    });
    await this.docs!.repo.flush([h.documentId]);
    this.ledgerDoc = h.doc();
    this.changed();
    void this.sync();
    return id;
  }

  // noteRefusal handles a refusal of a change to document doc: for one of
  // the member's own documents it marks the document stranded and
  // recovers it; for another (the shared charter draft) it says so.
  async noteRefusal(doc: string, r: Refusal): Promise<void> {
    if (!this.ownDocs().has(doc)) {
      this.lastError = `the server refused a change: ${r.message ?? r.rule ?? "no reason given"}`;
      this.changed();
      return;
    }
    if (this.#recovering.has(doc)) return;
    // A notice can arrive late, about a copy a recovery already replaced:
    // only a refusal of changes the phone's copy holds strands it.
    if (r.changes?.length && this.docs) {
      try {
        const current = (await this.docs.handle<unknown>(doc)).doc();
        if (!r.changes.some((c) => A.hasHeads(current, [c]))) return;
      } catch {
        // not loaded: recover anyway
      }
    }
    this.stranded.add(doc);
    await kv.put("stranded", [...this.stranded]);
    await this.recover(doc).catch(() => undefined);
  }

  #recovering = new Map<string, Promise<void>>();

  // recover runs the recovery of one stranded document (recover.ts), one
  // at a time per document. Refused items are kept with their reasons; an
  // error (offline, server failure) leaves the document stranded, to try
  // again at the next sync.
  recover(doc: string): Promise<void> {
    let p = this.#recovering.get(doc);
    if (p) return p;
    p = (async () => {
      this.changed();
      try {
        const res = await recoverDoc(this.docs!, doc);
        this.refusedItems.push(...res.refused);
        await kv.put("refused-items", this.refusedItems);
        this.stranded.delete(doc);
        await kv.put("stranded", [...this.stranded]);
        if (doc === this.circle?.docs.ledger) this.ledgerDoc = (await this.ledgerHandle()).doc();
        await this.refreshConfirmed().catch(() => undefined);
      } catch (err) {
        if (err instanceof OfflineError) this.reachable = false;
        else this.lastError = `could not bring your records back in step with the server: ${err instanceof Error ? err.message : String(err)}`;
        throw err;
      } finally {
        this.#recovering.delete(doc);
        this.changed();
      }
    })();
    this.#recovering.set(doc, p);
    return p;
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

  // #synced: a sync has run to its end since the app started.
  #synced = false;
  #current?: Promise<void>;
  #next?: Promise<void>;

  async #syncOnce(): Promise<void> {
    if (!this.session || !this.docs) return;
    this.running = true;
    this.changed();
    try {
      const circle = await this.session.call<CircleInfo>("GET", "/v1/circle");
      this.device!.circle = circle;
      this.device!.memberName = circle.members.find((m) => m.member_id === this.device!.memberId)?.name || this.device!.memberName;
      await saveDevice(this.device!);
      const transport = await this.docs.detectTransport();
      this.docs.renewToken(await this.session.token());
      const ids = new Set([circle.docs.ledger, circle.docs.ballots, ...this.docs.loadedIds(), ...(await this.heldClosedBallots(circle))]);
      for (const id of ids) {
        if (!id) continue;
        await this.docs.handle(id);
        if (this.stranded.has(id)) {
          await this.recover(id);
          continue;
        }
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
      // Take part in the circle's open draws (commit, then reveal); a
      // refusal there is the draw's, not the sync's.
      await takePartInDraws(this.session, this.device!).catch((err) => {
        if (err instanceof OfflineError) throw err;
        console.warn("draws:", err);
      });
      this.reachable = true;
      this.lastError = "";
    } catch (err) {
      if (err instanceof OfflineError || err instanceof NotLoadedError) this.reachable = false;
      else this.lastError = err instanceof ApiError ? err.message : String(err);
    } finally {
      this.running = false;
      this.#synced = true;
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
    await kv.put("confirmed", [...seen]);
  }
}
