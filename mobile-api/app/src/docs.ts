// The member's automerge documents, kept in IndexedDB by automerge-repo.
//
// Sync: automerge-repo's WebSocket client adapter on GET /v1/repo (API.md
// "Sync over WebSocket") whenever the server offers it. A server that
// answers that path with 501 (not built in this version) gets the same
// documents over POST /v1/sync instead (API.md "Sync over HTTP"): standard
// automerge sync messages, applied to the same repo handles. A document
// the phone has never seen is first fetched whole — its snapshot (GET
// /v1/docs/{doc}/snapshot, a content-addressed save the browser may
// cache), else over POST /v1/sync — and imported into the repo, so it can
// be written offline from then on; the sync after it carries only what
// the snapshot lacks.
import { Automerge as A, DocHandle, DocumentId, Repo, initializeWasm } from "@automerge/automerge-repo/slim";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { ApiError, fromBase64, OfflineError, toBase64 } from "./api";
import type { Session } from "./device";
import * as kv from "./kv";

export type Transport = "websocket" | "http" | "unknown";

// A refusal the server sent as an ephemeral message on a document
// (automerge-repo "ephemeral-message"), or a 422 from POST /v1/sync.
export interface Refusal {
  type: "refused";
  changes?: string[];
  rule?: string;
  message?: string;
}

// MAX_ROUNDS bounds one HTTP sync of one document.
const MAX_ROUNDS = 30;

export class NotLoadedError extends Error {}

export class Docs extends EventTarget {
  readonly repo: Repo;
  transport: Transport = "unknown";
  #handles = new Map<string, DocHandle<any>>();
  #ws?: WebSocketClientAdapter;
  #storage = new IndexedDBStorageAdapter("circles-repo");

  private constructor(readonly session: Session) {
    super();
    this.repo = new Repo({
      storage: this.#storage,
      network: [],
      peerId: ("phone-" + session.device.deviceId) as never,
    });
  }

  static async open(session: Session): Promise<Docs> {
    await initializeWasm("/app/automerge.wasm");
    return new Docs(session);
  }

  // detectTransport asks whether the server speaks automerge-repo over
  // WebSocket, and connects the repo's WebSocket adapter if it does. It
  // throws OfflineError when the server cannot be reached.
  async detectTransport(): Promise<Transport> {
    if (this.transport !== "unknown") return this.transport;
    const token = await this.session.token();
    let res: Response;
    try {
      // A plain GET, not an upgrade: a server that has the endpoint
      // answers it with a client error, one that does not with 501.
      res = await fetch("/v1/repo?token=" + encodeURIComponent(token), {
        cache: "no-store",
        headers: { Authorization: "Bearer " + token },
      });
    } catch (err) {
      throw new OfflineError((err as Error).message);
    }
    if (res.status === 501) {
      this.transport = "http";
    } else if (res.status === 401) {
      throw new ApiError(401, "unauthenticated", "the server refused this device's token");
    } else {
      this.transport = "websocket";
      this.#ws = new WebSocketClientAdapter(this.wsURL(token));
      this.repo.networkSubsystem.addNetworkAdapter(this.#ws);
    }
    this.dispatchEvent(new Event("change"));
    return this.transport;
  }

  wsURL(token: string): string {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/repo?token=${encodeURIComponent(token)}`;
  }

  // renewToken points the WebSocket adapter's reconnects at a fresh token.
  // The adapter reads its url field on every reconnect.
  renewToken(token: string): void {
    if (this.#ws) (this.#ws as unknown as { url: string }).url = this.wsURL(token);
  }

  // handle returns the repo handle of a document, loading it from
  // IndexedDB, or, the first time, from the server. A document never
  // loaded and no network: NotLoadedError.
  handle<T>(id: string): Promise<DocHandle<T>> {
    const known = this.#handles.get(id);
    if (known) return Promise.resolve(known as DocHandle<T>);
    // One load per document, however many screens ask at once.
    let p = this.#loading.get(id);
    if (!p) {
      p = this.#load<unknown>(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, p);
    }
    return p as Promise<DocHandle<T>>;
  }

  #loading = new Map<string, Promise<DocHandle<unknown>>>();

  async #load<T>(id: string): Promise<DocHandle<T>> {
    let h: DocHandle<T> | undefined;
    if (await kv.get<boolean>("loaded:" + id)) {
      try {
        h = await this.repo.find<T>(id as DocumentId, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        // The browser may have evicted the repo's storage: load it again.
        console.warn(`document ${id} is not in IndexedDB any more (${(err as Error).message}); loading it again`);
        await kv.del("loaded:" + id);
      }
    }
    if (!h) {
      let bytes: Uint8Array;
      try {
        bytes = (await this.snapshot(id)) ?? (await this.pull(id));
      } catch (err) {
        if (err instanceof OfflineError) throw new NotLoadedError("connect once to load this part of the circle");
        throw err;
      }
      h = this.repo.import<T>(bytes, { docId: id as DocumentId });
      await this.repo.flush([id as DocumentId]);
      await kv.put("loaded:" + id, true);
    }
    if (!this.#handles.has(id)) this.#register(id, h);
    return this.#handles.get(id) as DocHandle<T>;
  }

  #register(id: string, h: DocHandle<unknown>): void {
    this.#handles.set(id, h);
    h.on("change", () => this.dispatchEvent(new CustomEvent("doc", { detail: id })));
    h.on("ephemeral-message", (p) => {
      const m = p.message as Refusal;
      if (m && m.type === "refused") this.dispatchEvent(new CustomEvent<{ doc: string; refusal: Refusal }>("refused", { detail: { doc: id, refusal: m } }));
    });
  }

  // replace throws away the repo's copy of a loaded document — its
  // handle, its sync state with the server and its chunks in IndexedDB —
  // and puts in its place the saved document that build returns; build
  // gets the old copy as it is at that moment. The handle is swapped in
  // one go (nothing can write, and no message from the server can arrive,
  // in between); writes through a retired handle go to the new one
  // (change).
  async replace<T>(id: string, build: (current: A.Doc<unknown>) => Uint8Array): Promise<DocHandle<T>> {
    const docId = id as DocumentId;
    const old = await this.handle<unknown>(id);
    // Whatever the old handle had to save is saved now, so a late save of
    // it can only hold what the server sent it since (never the refused
    // change).
    await this.repo.flush([docId]);
    const bytes = build(old.doc());
    this.#handles.delete(id);
    this.repo.delete(docId);
    const h = this.repo.import<T>(bytes, { docId });
    this.#register(id, h as DocHandle<unknown>);
    // Storage: the repo removes the old chunks without waiting, and the
    // old handle may still have a throttled save queued (100 ms). Once
    // both are done, remove every chunk once more — IndexedDB runs
    // read-write transactions on one store in the order they were made —
    // and store the new copy whole; the repo's own saves of the new
    // handle then add to it.
    await new Promise((r) => setTimeout(r, 300));
    await this.repo.storageSubsystem?.removeDoc(docId);
    await this.#storage.save([id, "snapshot", "recovered-" + Date.now()], A.save(h.doc()));
    return h;
  }

  // change writes into a document as this device's enrolled actor (the
  // repo would otherwise pick a random one per session, which the server
  // refuses). It returns the hash of the new change.
  change<T>(h: DocHandle<T>, message: string, fn: A.ChangeFn<T>): string {
    const current = this.#handles.get(h.documentId);
    if (current !== h) {
      // A screen kept a handle that a recovery (replace) has retired.
      if (!current) throw new Error("this part of the circle is being brought back in step with the server; try again in a moment");
      h = current as DocHandle<T>;
    }
    const actor = this.session.device.actor;
    h.update((doc) => A.change(A.getActorId(doc) === actor ? doc : A.clone(doc, actor), { message }, fn));
    const heads = A.getHeads(h.doc());
    return heads[heads.length - 1];
  }

  // snapshot fetches a document's whole save: GET /v1/docs/{id}/snapshot
  // redirects to its content-addressed URL, immutable and so cacheable by
  // the browser. It returns null when the server has none to give (then
  // pull), and checks the bytes against the hash their URL names.
  async snapshot(id: string): Promise<Uint8Array | null> {
    const get = async (force: boolean): Promise<Response> => {
      const token = await this.session.token(force);
      try {
        return await fetch(`/v1/docs/${encodeURIComponent(id)}/snapshot`, { headers: { Authorization: "Bearer " + token } });
      } catch (err) {
        throw new OfflineError(`cannot reach the circle's server (${(err as Error).message})`);
      }
    };
    let res = await get(false);
    if (res.status === 401) res = await get(true);
    if (!res.ok) return null;
    const bytes = new Uint8Array(await res.arrayBuffer());
    const named = new URL(res.url).pathname.split("/").pop() ?? "";
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    return hex === named ? bytes : null;
  }

  // pull fetches a whole document over POST /v1/sync, from nothing, and
  // returns it saved.
  async pull(id: string): Promise<Uint8Array> {
    let doc = A.init<unknown>();
    let state = A.initSyncState();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const [next, msg] = A.generateSyncMessage(doc, state);
      state = next;
      if (!msg) return A.save(doc);
      for (const data of await this.exchange(id, msg)) {
        [doc, state] = A.receiveSyncMessage(doc, state, data);
      }
    }
    throw new Error(`loading document ${id} took more than ${MAX_ROUNDS} rounds`);
  }

  // syncHTTP syncs one loaded document over POST /v1/sync until neither
  // side has anything to send. A refused change throws the ApiError (422).
  async syncHTTP(id: string): Promise<void> {
    const h = await this.handle<unknown>(id);
    // A fresh sync state each time: a state that recorded messages sent in
    // a request that failed would not send them again.
    let state = A.initSyncState();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const [next, msg] = A.generateSyncMessage(h.doc(), state);
      state = next;
      if (!msg) return;
      for (const data of await this.exchange(id, msg)) {
        h.update((doc) => {
          const [d, s] = A.receiveSyncMessage(doc, state, data);
          state = s;
          return d;
        });
      }
    }
  }

  // push syncs a document that is not in the repo (a copy being built)
  // over POST /v1/sync, with a fresh sync state, until neither side has
  // anything to send, and returns it with what the server sent. A refused
  // change throws the ApiError (422).
  async push<T>(id: string, doc: A.Doc<T>): Promise<A.Doc<T>> {
    let state = A.initSyncState();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const [next, msg] = A.generateSyncMessage(doc, state);
      state = next;
      if (!msg) return doc;
      for (const data of await this.exchange(id, msg)) {
        [doc, state] = A.receiveSyncMessage(doc, state, data);
      }
    }
    throw new Error(`syncing document ${id} took more than ${MAX_ROUNDS} rounds`);
  }

  async exchange(id: string, msg: Uint8Array): Promise<Uint8Array[]> {
    const res = await this.session.call<{ messages: { doc: string; data: string }[] }>("POST", "/v1/sync", {
      messages: [{ doc: id, data: toBase64(msg) }],
    });
    return (res.messages ?? []).filter((m) => m.doc === id).map((m) => fromBase64(m.data));
  }

  loadedIds(): string[] {
    return [...this.#handles.keys()];
  }
}

export function isRefusal(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status === 422;
}

// str reads a string field written either as a scalar string
// (ImmutableString) or as automerge text.
export function str(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "object" && "val" in (v as object)) return String((v as { val: unknown }).val);
  return String(v);
}

export const S = (s: string) => new A.ImmutableString(s);
export { A };
