#!/usr/bin/env node
// client.mjs acts like a phone against a Circles server (API.md, v1).
//
// Mode "ledger" (the default): enroll with an invite, read GET /v1/circle,
// sync the member's ledger document over POST /v1/sync, write entries into
// it while offline, sync them up, then trade a fresh device assertion at
// POST /v1/token and use the new token. Prints a JSON summary on stdout.
//
// Mode "forbidden": enroll, then try a write the server must refuse and
// report the HTTP status it answered with. Exits 0 when the write was
// refused, 2 when the server accepted it.
//
// Any other failure prints a message on stderr and exits 1.

import * as A from "@automerge/automerge";
import {
  createHash,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
} from "node:crypto";
import { parseArgs } from "node:util";

const USAGE = `usage: node client.mjs --server URL --invite CODE [options]

Acts like a phone: enrolls a fresh Ed25519 device with an invite, syncs the
member's ledger with @automerge/automerge over POST /v1/sync, writes ledger
entries offline and syncs them, then exchanges a signed device assertion for
a new token at POST /v1/token. Prints a JSON summary on stdout.

options:
  --server URL        server base URL            (env CIRCLES_SERVER)
  --invite CODE       invite code to enroll with (env CIRCLES_INVITE)
  --mode MODE         "ledger" (default), "forbidden", "firstsync" or "ballots"
                        firstsync: a new device of an existing member
                        fetches every ledger segment of the circle, each
                        from its snapshot (GET /v1/docs/{doc}/snapshot...)
                        loaded with Automerge.load, then syncs
                      "ballots": votes until the server opens a new ballots
                        document, votes offline into the old one, then
                        follows the switch (GET /v1/circle docs.ballots)
  --proposals IDS     ballots mode: comma-separated proposal ids to vote on
  --entries N         ledger entries to write, at least 1 (default 3)
  --target T          forbidden mode: what to write into
                        roster        the circle's roster (server-written)
                        other-ledger  another member's ledger
                        bad-entry     an entry with quantity -1 in its own ledger
                      (default roster)
  --member-name S     member name sent at enrollment (default "JS Phone")
  --device-name S     device name sent at enrollment (default "node <version>")
  --max-rounds N      bound on sync round trips per sync (default 20)
  --timeout-ms N      timeout of each HTTP request (default 10000)
  -h, --help          show this help

Summary (ledger mode):
  {"mode", "member_id", "device_id", "circle_id", "ledger", "entries_written",
   "entries": [...], "rounds", "token_exchanged", "replay_status"}
Summary (forbidden mode):
  {"mode", "target", "doc", "status", "code", "message", "refused"}
Summary (firstsync mode):
  {"mode", "member_id", "device_id", "docs": [{"doc", "heads", "from_snapshot"}],
   "snapshot_bytes", "sync_bytes", "rounds"}
`;

class HTTPError extends Error {
  constructor(method, path, status, code, message) {
    super(`${method} ${path}: HTTP ${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.apiMessage = message;
  }
}

function fail(msg) {
  process.stderr.write(`client.mjs: ${msg}\n`);
  process.exit(1);
}

function parseOptions(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        server: { type: "string" },
        invite: { type: "string" },
        mode: { type: "string", default: "ledger" },
        entries: { type: "string", default: "3" },
        target: { type: "string", default: "roster" },
        proposals: { type: "string", default: "" },
        "member-name": { type: "string", default: "JS Phone" },
        "device-name": { type: "string", default: `node ${process.version}` },
        "max-rounds": { type: "string", default: "20" },
        "timeout-ms": { type: "string", default: "10000" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    fail(`${err.message}\n\n${USAGE}`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const opts = {
    server: (v.server ?? process.env.CIRCLES_SERVER ?? "").replace(/\/+$/, ""),
    invite: v.invite ?? process.env.CIRCLES_INVITE ?? "",
    mode: v.mode,
    target: v.target,
    proposals: v.proposals ? v.proposals.split(",") : [],
    entries: positiveInt("--entries", v.entries),
    memberName: v["member-name"],
    deviceName: v["device-name"],
    maxRounds: positiveInt("--max-rounds", v["max-rounds"]),
    timeoutMs: positiveInt("--timeout-ms", v["timeout-ms"]),
  };
  if (!opts.server) fail("--server (or CIRCLES_SERVER) is required; see --help");
  if (!/^https?:\/\//.test(opts.server)) fail(`--server ${opts.server}: want an http:// or https:// URL`);
  if (!opts.invite) fail("--invite (or CIRCLES_INVITE) is required; see --help");
  if (!["ledger", "forbidden", "firstsync", "ballots"].includes(opts.mode)) fail(`--mode ${opts.mode}: want "ledger", "forbidden", "firstsync" or "ballots"`);
  if (opts.mode === "ballots" && opts.proposals.length < 2) fail("--mode ballots needs --proposals with at least two ids");
  if (!["roster", "other-ledger", "bad-entry"].includes(opts.target)) {
    fail(`--target ${opts.target}: want "roster", "other-ledger" or "bad-entry"`);
  }
  return opts;
}

function positiveInt(name, s) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) fail(`${name} ${s}: want a whole number of at least 1`);
  return n;
}

// Client speaks the JSON API of one server as one device.
class Client {
  constructor(server, timeoutMs) {
    this.server = server;
    this.timeoutMs = timeoutMs;
    this.token = "";
  }

  // call sends one JSON request and returns the decoded body of a 2xx
  // answer; anything else throws an HTTPError carrying API.md's error code.
  async call(method, path, body, { auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) headers.Authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await fetch(this.server + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new Error(`${method} ${path}: ${err.cause?.message ?? err.message}`);
    }
    const text = await res.text();
    let data = null;
    if (text !== "") {
      try {
        data = JSON.parse(text);
      } catch {
        throw new HTTPError(method, path, res.status, "bad_json", `answer is not JSON: ${text.slice(0, 200)}`);
      }
    }
    if (!res.ok) {
      throw new HTTPError(method, path, res.status, data?.error?.code ?? "?", data?.error?.message ?? text.slice(0, 200));
    }
    return data;
  }

  // snapshot fetches a document's whole save: by its hash when GET
  // /v1/circle names one (content-addressed, cacheable), else the latest
  // (GET /v1/docs/{doc}/snapshot redirects to it). It returns the bytes,
  // or null when the document has none (404); the bytes are checked
  // against the hash in their URL.
  async snapshot(doc, hash) {
    const path = `/v1/docs/${encodeURIComponent(doc)}/snapshot` + (hash ? `/${hash}` : "");
    let res;
    try {
      res = await fetch(this.server + path, {
        headers: { Authorization: `Bearer ${this.token}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new Error(`GET ${path}: ${err.cause?.message ?? err.message}`);
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) return null;
    if (!res.ok) throw new HTTPError("GET", path, res.status, "?", body.toString("utf8").slice(0, 200));
    const named = new URL(res.url).pathname.split("/").pop();
    if (createHash("sha256").update(body).digest("hex") !== named) {
      throw new Error(`GET ${path}: the bytes do not have the hash their URL names`);
    }
    return body;
  }
}

// Device is a fresh Ed25519 key pair and an automerge actor id.
class Device {
  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    this.privateKey = privateKey;
    // The JWK "x" member is the raw 32-byte public key, base64url.
    this.publicKeyRaw = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
    if (this.publicKeyRaw.length !== 32) throw new Error("Ed25519 public key is not 32 bytes");
    this.actorId = randomBytes(16).toString("hex");
  }

  // assertion makes the device JWT that POST /v1/token trades for a token.
  assertion(deviceId, circleId) {
    const iat = Math.floor(Date.now() / 1000);
    const header = { alg: "EdDSA", typ: "JWT", kid: deviceId };
    const claims = { iss: deviceId, aud: circleId, iat, exp: iat + 120, jti: randomUUID() };
    const input = `${b64url(header)}.${b64url(claims)}`;
    const sig = sign(null, Buffer.from(input), this.privateKey);
    return `${input}.${sig.toString("base64url")}`;
  }
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}

// Replica is one automerge document kept in sync with the server over
// POST /v1/sync. The sync state lives as long as the replica, matching the
// server's per-device, per-document state.
class Replica {
  // saved, if given, is the document's whole save to start from.
  constructor(client, docId, actorId, maxRounds, saved) {
    this.client = client;
    this.docId = docId;
    this.maxRounds = maxRounds;
    this.doc = saved ? A.load(saved, { actor: actorId }) : A.init({ actor: actorId });
    this.state = A.initSyncState();
    this.rounds = 0;
    this.bytesIn = 0;
  }

  // sync trades sync messages until this side has nothing left to send,
  // which, as the server answers every message it gets, means neither side
  // has. It returns the number of round trips it took.
  async sync() {
    for (let round = 0; round < this.maxRounds; round++) {
      const [state, msg] = A.generateSyncMessage(this.doc, this.state);
      this.state = state;
      if (msg === null) return round;
      const answer = await this.client.call("POST", "/v1/sync", {
        messages: [{ doc: this.docId, data: Buffer.from(msg).toString("base64") }],
      });
      this.rounds++;
      for (const m of answer?.messages ?? []) {
        if (m.doc !== this.docId) throw new Error(`POST /v1/sync answered for document ${m.doc}, want ${this.docId}`);
        const data = Buffer.from(m.data, "base64");
        this.bytesIn += data.length;
        const [doc, st] = A.receiveSyncMessage(this.doc, this.state, data);
        this.doc = doc;
        this.state = st;
      }
    }
    throw new Error(`sync of ${this.docId} did not settle within ${this.maxRounds} round trips`);
  }

  change(message, fn) {
    this.doc = A.change(this.doc, { message }, fn);
  }
}

// rfc3339 drops the milliseconds so times compare exactly after a round trip.
function rfc3339(d) {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

const KINDS = ["hours", "lend", "meal", "skill", "other"];

// plannedEntries makes n entries as the REST API shows them. The first is
// written with plain JS strings (automerge text objects), the others with
// ImmutableString (scalar strings); the server must accept both.
function plannedEntries(n, otherMember) {
  const base = Date.now() - n * 60_000;
  const out = [];
  for (let i = 0; i < n; i++) {
    const e = {
      id: randomUUID(),
      kind: KINDS[i % KINDS.length],
      quantity: i % 2 === 0 ? i + 1 : i + 0.5,
      note: `js client entry ${i + 1} of ${n}: ${i === 0 ? "text strings" : "scalar strings"}`,
      at: rfc3339(new Date(base + i * 60_000)),
    };
    if (e.kind === "hours") e.unit = "h";
    if (otherMember && i === n - 1 && n > 1) e.counterparty = otherMember;
    out.push({ entry: e, text: i === 0 });
  }
  return out;
}

// toDoc turns an entry into the value written into the ledger document.
function toDoc(entry, asText) {
  const s = (v) => (asText ? v : new A.ImmutableString(v));
  const v = {};
  for (const [k, val] of Object.entries(entry)) {
    v[k] = typeof val === "string" ? s(val) : val;
  }
  return v;
}

async function enroll(client, device, opts) {
  const enrolled = await client.call(
    "POST",
    "/v1/enroll",
    {
      invite: opts.invite,
      member_name: opts.memberName,
      device_name: opts.deviceName,
      public_key: device.publicKeyRaw.toString("base64"),
      actor_id: device.actorId,
    },
    { auth: false },
  );
  for (const f of ["circle_id", "member_id", "device_id", "access_token"]) {
    if (typeof enrolled?.[f] !== "string" || enrolled[f] === "") {
      throw new Error(`POST /v1/enroll: answer lacks ${f}`);
    }
  }
  client.token = enrolled.access_token;
  const circle = await client.call("GET", "/v1/circle");
  if (circle?.circle_id !== enrolled.circle_id) {
    throw new Error(`GET /v1/circle: circle_id ${circle?.circle_id}, want ${enrolled.circle_id}`);
  }
  if (typeof circle.docs?.ledger !== "string") throw new Error("GET /v1/circle: docs.ledger missing");
  return { enrolled, circle };
}

async function ledgerMode(opts) {
  const client = new Client(opts.server, opts.timeoutMs);
  const device = new Device();
  const { enrolled, circle } = await enroll(client, device, opts);
  const ledger = new Replica(client, circle.docs.ledger, device.actorId, opts.maxRounds);

  await ledger.sync();

  // Offline from here until the next sync: no HTTP.
  const other = (circle.members ?? []).find((m) => m.member_id !== enrolled.member_id)?.member_id;
  const planned = plannedEntries(opts.entries, other);
  if (!ledger.doc.entries) ledger.change("start the ledger", (d) => { d.entries = {}; });
  for (const { entry, text } of planned) {
    ledger.change(`ledger entry ${entry.id}`, (d) => { d.entries[entry.id] = toDoc(entry, text); });
  }

  await ledger.sync();

  const assertion = device.assertion(enrolled.device_id, enrolled.circle_id);
  const tok = await client.call("POST", "/v1/token", { assertion }, { auth: false });
  if (typeof tok?.access_token !== "string" || tok.access_token === "") {
    throw new Error("POST /v1/token: answer lacks access_token");
  }
  client.token = tok.access_token;
  await client.call("GET", "/v1/circle");

  // The same assertion again must be refused (its jti is spent).
  let replayStatus = 200;
  try {
    await client.call("POST", "/v1/token", { assertion }, { auth: false });
  } catch (err) {
    if (!(err instanceof HTTPError)) throw err;
    replayStatus = err.status;
  }

  return {
    mode: "ledger",
    circle_id: enrolled.circle_id,
    member_id: enrolled.member_id,
    device_id: enrolled.device_id,
    ledger: circle.docs.ledger,
    entries_written: planned.length,
    entries: planned.map((p) => p.entry),
    rounds: ledger.rounds,
    token_exchanged: true,
    replay_status: replayStatus,
  };
}

async function forbiddenMode(opts) {
  const client = new Client(opts.server, opts.timeoutMs);
  const device = new Device();
  const { enrolled, circle } = await enroll(client, device, opts);

  let docId;
  let write;
  switch (opts.target) {
    case "roster":
      docId = circle.docs.roster;
      write = (d) => { d.intruder = new A.ImmutableString(enrolled.member_id); };
      break;
    case "other-ledger": {
      const other = (circle.members ?? []).find((m) => m.member_id !== enrolled.member_id && m.ledgers?.length);
      if (!other) throw new Error("--target other-ledger: the circle has no other member with a ledger");
      docId = other.ledgers[other.ledgers.length - 1];
      write = (d) => {
        if (!d.entries) d.entries = {};
        const id = randomUUID();
        d.entries[id] = toDoc({ id, kind: "hours", quantity: 100, note: "not mine to write", at: rfc3339(new Date()) }, false);
      };
      break;
    }
    case "bad-entry":
      docId = circle.docs.ledger;
      write = (d) => {
        if (!d.entries) d.entries = {};
        const id = randomUUID();
        d.entries[id] = toDoc({ id, kind: "hours", quantity: -1, note: "negative", at: rfc3339(new Date()) }, false);
      };
      break;
  }
  if (typeof docId !== "string" || docId === "") throw new Error(`GET /v1/circle: no document for --target ${opts.target}`);

  const report = { mode: "forbidden", target: opts.target, doc: docId, status: 0, code: "", message: "", refused: false };
  const replica = new Replica(client, docId, device.actorId, opts.maxRounds);
  try {
    await replica.sync(); // read it first, as a phone would
    replica.change("forbidden write", write);
    await replica.sync();
    report.status = 200;
  } catch (err) {
    if (!(err instanceof HTTPError)) throw err;
    report.status = err.status;
    report.code = err.code;
    report.message = err.apiMessage;
    report.refused = err.status >= 400 && err.status < 500;
  }
  return report;
}

// firstSyncMode is a new device's first sync of every ledger segment of
// the circle: each starts from its snapshot, and the sync after it
// carries only what the snapshot lacks.
async function firstSyncMode(opts) {
  const client = new Client(opts.server, opts.timeoutMs);
  const device = new Device();
  const { enrolled, circle } = await enroll(client, device, opts);
  const out = { mode: "firstsync", member_id: enrolled.member_id, device_id: enrolled.device_id, docs: [], snapshot_bytes: 0, sync_bytes: 0, rounds: 0 };
  for (const m of circle.members ?? []) {
    for (const doc of m.ledgers ?? []) {
      const saved = await client.snapshot(doc, circle.snapshots?.[doc]);
      if (saved) out.snapshot_bytes += saved.length;
      const r = new Replica(client, doc, device.actorId, opts.maxRounds, saved);
      await r.sync();
      out.sync_bytes += r.bytesIn;
      out.rounds += r.rounds;
      out.docs.push({ doc, heads: A.getHeads(r.doc), from_snapshot: saved !== null });
    }
  }
  return out;
}

// ballotsMode follows a switch of the member's ballots document (the
// server opens a new one once one holds its bound of items; GET
// /v1/circle names it as docs.ballots and lists the old one in the
// member's ballots_closed). It votes "yes" on every proposal but the last
// two into its ballots document and syncs (that fills it); once the server
// has switched, it votes "no" on the next one into the old document, as a
// device that has not heard of the switch yet would, and syncs it; then it
// reads the circle, as a device does when back online, and votes "yes" on
// the last one into the new document.
async function ballotsMode(opts) {
  const client = new Client(opts.server, opts.timeoutMs);
  const device = new Device();
  const { enrolled, circle } = await enroll(client, device, opts);
  const first = circle.docs.ballots;
  if (typeof first !== "string" || first === "") throw new Error("GET /v1/circle: docs.ballots missing");
  const voted = [];
  const vote = (replica, proposal, choice) => {
    const at = rfc3339(new Date());
    replica.change(`vote ${choice} on ${proposal}`, (d) => {
      d.votes[proposal] = { choice: new A.ImmutableString(choice), at: new A.ImmutableString(at) };
    });
    voted.push({ proposal, choice, doc: replica.docId });
  };
  const old = new Replica(client, first, device.actorId, opts.maxRounds);
  await old.sync();
  const ps = opts.proposals;
  for (const p of ps.slice(0, -2)) vote(old, p, "yes");
  await old.sync();

  // Wait (10 s at most) until the server has switched; the device does not
  // use what it learns here.
  const mine = async () => (await client.call("GET", "/v1/circle")).members.find((m) => m.member_id === enrolled.member_id);
  for (let deadline = Date.now() + 10_000; (await mine()).ballots === first; ) {
    if (Date.now() > deadline) throw new Error(`the server did not open a new ballots document after ${ps.length - 2} votes`);
    await new Promise((r) => setTimeout(r, 50));
  }
  vote(old, ps[ps.length - 2], "no");
  await old.sync();

  // Back online: the circle names the new document.
  const now = await client.call("GET", "/v1/circle");
  const current = now.docs.ballots;
  const me = now.members.find((m) => m.member_id === enrolled.member_id);
  if (current === first) throw new Error("GET /v1/circle still names the first ballots document");
  const next = new Replica(client, current, device.actorId, opts.maxRounds);
  await next.sync();
  vote(next, ps[ps.length - 1], "yes");
  await next.sync();
  return { mode: "ballots", member_id: enrolled.member_id, first, current, closed: me?.ballots_closed ?? [], voted };
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const modes = { ledger: ledgerMode, forbidden: forbiddenMode, firstsync: firstSyncMode, ballots: ballotsMode };
  const summary = await modes[opts.mode](opts);
  process.stdout.write(JSON.stringify(summary) + "\n");
  if (summary.mode === "forbidden" && !summary.refused) {
    process.stderr.write(`client.mjs: the server accepted a forbidden write (--target ${opts.target})\n`);
    process.exit(2);
  }
}

main().catch((err) => fail(err.message));
