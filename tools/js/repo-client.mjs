#!/usr/bin/env node
// repo-client.mjs is a phone's sync layer built on the official
// @automerge/automerge-repo packages: a Repo with the WebSocket client
// adapter, talking to a Circles server's GET /v1/repo. It is driven
// command by command, so a test can act between the steps.
//
// Protocol: one JSON command per line on stdin, one JSON answer per line
// on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). Commands:
//
//   {"cmd": "init", "url": "ws://host/v1/repo?token=...", "actor": "<hex>"}
//        make the Repo (in memory, no storage); changes are written with
//        the device's registered actor id
//   {"cmd": "connect", "timeout_ms"}   add a WebSocket adapter, wait for the server peer
//   {"cmd": "disconnect"}              remove the adapter (offline from here)
//   {"cmd": "find", "url": "automerge:<id>", "timeout_ms"}
//        find a document; answers its entry ids, or ok false when the
//        server says it is unavailable
//   {"cmd": "write", "url", "entry": {...}}
//        write a ledger entry (strings as ImmutableString); answers the
//        new heads
//   {"cmd": "wait-entry", "url", "id", "timeout_ms"}
//        wait until the document holds the entry (pushed by the server)
//   {"cmd": "wait-notice", "url", "timeout_ms"}
//        wait for an "ephemeral-message" on the document's handle and
//        answer its payload (the server's refusal notice)
//   {"cmd": "import", "url", "snapshot", "token", "timeout_ms"}
//        fetch the document's whole save from the HTTP URL snapshot (GET
//        /v1/docs/{doc}/snapshot..., with the token) and hand it to
//        repo.import with the document's id, so the repo's sync with the
//        server starts from it; answers its size, entry ids and heads
//   {"cmd": "vote", "url", "proposal", "choice"}
//        write a vote into a ballots document; answers the new heads
//   {"cmd": "heads", "url"}            the document's heads
//   {"cmd": "entries", "url"}          the document's entry ids
//   {"cmd": "quit"}
//
// Diagnostics go to stderr.

import * as A from "@automerge/automerge";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { randomBytes } from "node:crypto";
import readline from "node:readline";

const state = {
  repo: null,
  url: null,
  actor: null,
  adapter: null,
  handles: new Map(), // url → handle
  notices: new Map(), // url → [payload]
};

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function waitUntil(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

function entryIds(handle) {
  const doc = handle.doc();
  return Object.keys(doc?.entries ?? {}).sort();
}

function handleOf(url) {
  const h = state.handles.get(url);
  if (!h) throw new Error(`${url} was not found first`);
  return h;
}

// toDoc writes every string as a scalar string, as API.md asks.
function toDoc(entry) {
  const v = {};
  for (const [k, val] of Object.entries(entry)) {
    v[k] = typeof val === "string" ? new A.ImmutableString(val) : val;
  }
  return v;
}

// plain turns a decoded CBOR payload into JSON-friendly values.
function plain(v) {
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

// keep registers a found or imported handle: it writes as the device's
// registered actor (the server refuses changes by any other actor), and
// its ephemeral messages (the server's notices) are kept.
function keep(url, handle) {
  if (state.handles.has(url)) return;
  handle.update((doc) => A.clone(doc, { actor: state.actor }));
  handle.on("ephemeral-message", ({ message }) => {
    const list = state.notices.get(url) ?? [];
    list.push(plain(message));
    state.notices.set(url, list);
  });
  state.handles.set(url, handle);
}

const commands = {
  async init({ url, actor }) {
    state.url = url;
    state.actor = actor;
    state.repo = new Repo({ network: [], peerId: `phone-${randomBytes(6).toString("hex")}` });
    return { peer_id: state.repo.networkSubsystem.peerId };
  },

  async connect({ timeout_ms = 10000 }) {
    const adapter = new WebSocketClientAdapter(state.url, 500);
    const peer = new Promise((resolve) => adapter.once("peer-candidate", ({ peerId }) => resolve(peerId)));
    state.repo.networkSubsystem.addNetworkAdapter(adapter);
    state.adapter = adapter;
    const serverPeer = await withTimeout(peer, timeout_ms, "connect");
    return { server_peer: serverPeer };
  },

  async disconnect() {
    if (state.adapter) {
      state.repo.networkSubsystem.removeNetworkAdapter(state.adapter);
      state.adapter = null;
    }
    return {};
  },

  async find({ url, timeout_ms = 10000 }) {
    const handle = await withTimeout(state.repo.find(url), timeout_ms, `find ${url}`);
    keep(url, handle);
    return { entries: entryIds(handle) };
  },

  async import({ url, snapshot, token, timeout_ms = 10000 }) {
    const res = await fetch(snapshot, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeout_ms) });
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) throw new Error(`GET ${snapshot}: HTTP ${res.status}: ${Buffer.from(body).toString("utf8").slice(0, 200)}`);
    const handle = state.repo.import(body, { docId: url.replace(/^automerge:/, "") });
    keep(url, handle);
    return { bytes: body.length, entries: entryIds(handle), heads: A.getHeads(handle.doc()) };
  },

  async heads({ url }) {
    return { heads: A.getHeads(handleOf(url).doc()) };
  },

  async write({ url, entry }) {
    const handle = handleOf(url);
    handle.change((d) => {
      d.entries[entry.id] = toDoc(entry);
    });
    return { heads: A.getHeads(handle.doc()) };
  },

  async vote({ url, proposal, choice }) {
    const handle = handleOf(url);
    const at = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    handle.change((d) => {
      d.votes[proposal] = { choice: new A.ImmutableString(choice), at: new A.ImmutableString(at) };
    });
    return { heads: A.getHeads(handle.doc()) };
  },

  async "wait-entry"({ url, id, timeout_ms = 10000 }) {
    const handle = handleOf(url);
    await waitUntil(() => entryIds(handle).includes(id), timeout_ms, `entry ${id} in ${url}`);
    return { entries: entryIds(handle) };
  },

  async "wait-notice"({ url, timeout_ms = 10000 }) {
    await waitUntil(() => (state.notices.get(url) ?? []).length > 0, timeout_ms, `a notice on ${url}`);
    return { notice: state.notices.get(url).shift() };
  },

  async entries({ url }) {
    return { entries: entryIds(handleOf(url)) };
  },

  async quit() {
    return {};
  },
};

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: `not JSON: ${e.message}` }) + "\n");
    continue;
  }
  const fn = commands[cmd.cmd];
  let answer;
  if (!fn) {
    answer = { ok: false, error: `unknown command ${JSON.stringify(cmd.cmd)}` };
  } else {
    try {
      answer = { ok: true, ...(await fn(cmd)) };
    } catch (e) {
      answer = { ok: false, error: String(e?.message ?? e) };
    }
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
  if (cmd.cmd === "quit") break;
}
if (state.adapter) state.repo.networkSubsystem.removeNetworkAdapter(state.adapter);
process.exit(0);
