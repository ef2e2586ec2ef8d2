#!/usr/bin/env node
// loadgen.mjs drives one sync workload, with the official
// @automerge/automerge-repo packages and their WebSocket client adapter,
// against either circled's GET /v1/repo or the reference automerge-repo
// sync server, so the two can be compared shape for shape. run.mjs (make
// bench-sync) starts the servers and calls it; it can also be run alone:
//
//   node loadgen.mjs --target circled --base http://127.0.0.1:PORT --invite CODE --mode backlog ...
//   node loadgen.mjs --target ref --ws ws://127.0.0.1:PORT --mode backlog ...
//
// Modes (every loop is bounded by --timeout-s):
//   backlog  --clients N --changes K: N devices, each with its own ledger
//            document already on the server (circled: the member's
//            docs.ledger; ref: a document created and synced in setup),
//            write K entries offline, then all connect at once. Done when
//            every device has seen the server's sync message report heads
//            equal to its own (circled sends it only after JetStream
//            acknowledged the write); circled is then also checked through
//            GET /v1/ledger/entries until it lists all N×K entries.
//            --workers W (default: 2, or 1 on a single core) spreads the
//            devices over W worker threads, each with its own event loop
//            and automerge: one thread making 50 devices' sync messages
//            and reading their answers was the slowest part of a run
//            against a fast server.
//   latency  --clients N --samples M [--interval-ms T]: N connected devices
//            each write one entry into their own ledger, wait for the
//            server's acknowledgement, think T/2..3T/2 ms, repeat. Two
//            figures per change: change→ack (what an app sees, including
//            automerge-repo's own 100 ms batching of outgoing sync
//            messages) and sent→ack (from the client handing the sync
//            message with the change to the socket until the server's
//            sync message reports heads that include it).
//   draft    --clients N --samples M: N members edit one shared automerge
//            text (circled: the charter-draft document; ref: a document of
//            the same shape created in setup), back to back, each inserting
//            a unique marker; a sample is the time from the edit until
//            every other member's copy holds the marker.
//
// Entries have the ledger shape of API.md ("The shape of member
// documents"); with SCALAR=1 strings are ImmutableString, otherwise JS
// automerge's default text. Devices write with their registered actor id
// (circled refuses changes by any other actor).
//
// Output: progress on stderr, one line "RESULT {json}" on stdout.

import * as A from "@automerge/automerge";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

// ---------- options ----------
const opts = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) usage(`unexpected argument ${a}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) opts[a.slice(2)] = true;
    else {
      opts[a.slice(2)] = next;
      i++;
    }
  }
}
function usage(msg) {
  console.error(`loadgen: ${msg}`);
  process.exit(64);
}
function intOpt(name, def, min, max) {
  const v = opts[name] === undefined ? def : Number(opts[name]);
  if (!Number.isInteger(v) || v < min || v > max) usage(`--${name} must be an integer in [${min}, ${max}]`);
  return v;
}
const target = opts.target;
if (target !== "circled" && target !== "ref") usage("--target must be circled or ref");
const mode = opts.mode || "backlog";
if (!["backlog", "latency", "draft"].includes(mode)) usage("--mode must be backlog, latency or draft");
const clients = intOpt("clients", 20, 1, 500);
const changes = intOpt("changes", 100, 1, 10000);
const samples = intOpt("samples", 400, 1, 100000);
const warmup = intOpt("warmup", 20, 0, 10000);
const intervalMs = intOpt("interval-ms", 0, 0, 60000);
const timeoutS = intOpt("timeout-s", 240, 1, 3600);
const serverPid = opts["server-pid"] ? intOpt("server-pid", 0, 1, 1 << 30) : null;
const workers = intOpt("workers", Math.min(2, os.availableParallelism()), 1, 16);
const label = typeof opts.label === "string" ? opts.label : `${target}-${mode}`;
const scalar = process.env.SCALAR === "1";
if (target === "circled" && (typeof opts.base !== "string" || typeof opts.invite !== "string")) {
  usage("--target circled needs --base http://HOST:PORT and --invite CODE (the founder invite)");
}
if (target === "ref" && typeof opts.ws !== "string") usage("--target ref needs --ws ws://HOST:PORT");

const T0 = performance.now();
const deadline = T0 + timeoutS * 1000;
const log = (...a) => console.error(`[loadgen ${label} ${((performance.now() - T0) / 1000).toFixed(2)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tag = randomBytes(3).toString("hex");

let asyncErrors = 0;
process.on("uncaughtException", (e) => {
  asyncErrors++;
  log("uncaught:", e?.message ?? e);
});
process.on("unhandledRejection", (e) => {
  asyncErrors++;
  log("unhandled rejection:", e?.message ?? e);
});
if (isMainThread) {
  setTimeout(() => {
    log(`timed out after ${timeoutS} s`);
    emit({ ok: false, error: "timeout" });
    process.exit(2);
  }, timeoutS * 1000 + 5000).unref();
}

function withDeadline(p, what) {
  let timer;
  const left = Math.max(0, deadline - performance.now());
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`deadline hit while ${what}`)), left);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------- the server process, from /proc ----------
function procStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
    return { hwm: kb("VmHWM"), rss: kb("VmRSS") };
  } catch {
    return null;
  }
}
function procCPU(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return null;
  }
}

function emit(obj) {
  const st = serverPid ? procStatus(serverPid) : null;
  const out = {
    label,
    target,
    mode,
    clients,
    scalar,
    ...obj,
    server_vmhwm_mb: st ? +(st.hwm / 1024).toFixed(1) : null,
    server_vmrss_mb: st ? +(st.rss / 1024).toFixed(1) : null,
    async_errors: asyncErrors,
  };
  process.stdout.write("RESULT " + JSON.stringify(out) + "\n");
  return out;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
const ms2 = (x) => (x == null ? null : +x.toFixed(2));

// ---------- circled: enrolment over REST ----------
// Enrolment is rate limited per client address (5/s, burst 50): spread
// over a few loopback addresses, and wait when told to.
let enrollSeq = 0;
function httpJSON(method, path, body, token, localAddress) {
  const u = new URL(opts.base + path);
  const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method,
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        localAddress,
        headers: {
          ...(data ? { "content-type": "application/json", "content-length": data.length } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        timeout: 30000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            // not JSON: reported below with the status
          }
          resolve({ status: res.statusCode, json, text });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}
async function call(method, path, body, token, want, localAddress) {
  for (;;) {
    const r = await httpJSON(method, path, body, token, localAddress);
    if (r.status === want) return r.json;
    if (r.status === 429 && performance.now() < deadline) {
      await sleep(250);
      continue;
    }
    throw new Error(`${method} ${path} = ${r.status} ${r.text.slice(0, 300)}`);
  }
}
async function enroll(invite, name) {
  const { publicKey } = generateKeyPairSync("ed25519");
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url").toString("base64");
  const actor = randomBytes(16).toString("hex");
  const localAddress = `127.0.0.${1 + (enrollSeq++ % 8)}`;
  const res = await call(
    "POST",
    "/v1/enroll",
    { invite, member_name: name, device_name: "bench", public_key: pub, actor_id: actor },
    null,
    201,
    localAddress,
  );
  const circle = await call("GET", "/v1/circle", undefined, res.access_token, 200);
  return {
    name,
    token: res.access_token,
    member: res.member_id,
    actor,
    ledger: circle.docs.ledger,
    draft: circle.docs["charter-draft"],
  };
}
async function enrollMany(n) {
  const founder = await enroll(opts.invite, "Member 0");
  const out = [founder];
  const batch = 8;
  for (let i = 1; i < n; i += batch) {
    const idx = [];
    for (let j = i; j < Math.min(n, i + batch); j++) idx.push(j);
    const got = await Promise.all(
      idx.map(async (j) => {
        const inv = await call("POST", "/v1/invites", { for: "member" }, founder.token, 201);
        return enroll(inv.code, `Member ${j}`);
      }),
    );
    out.push(...got);
  }
  return out;
}
async function countEntries(members) {
  const mine = new Set(members.map((m) => m.member));
  let n = 0;
  let cursor = "";
  for (let page = 0; page < 10000; page++) {
    const q = `/v1/ledger/entries?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await call("GET", q, undefined, members[0].token, 200);
    for (const e of res.entries) if (mine.has(e.member_id ?? e.member)) n++;
    if (!res.next_cursor) break;
    cursor = res.next_cursor;
  }
  return n;
}

// ---------- repos ----------
function wsURL(dev) {
  if (target === "ref") return opts.ws;
  return opts.base.replace(/^http/, "ws") + "/v1/repo?token=" + encodeURIComponent(dev.token);
}
function newRepo(name) {
  return new Repo({ network: [], peerId: `bench-${name}-${tag}` });
}
// connect adds a WebSocket adapter and resolves when the server's peer
// message arrived. onSend, if given, sees every message the repo sends;
// onRecv every message it receives.
function connect(repo, url, onSend, onRecv) {
  const adapter = new WebSocketClientAdapter(url, 1000);
  if (onSend) {
    const send = adapter.send.bind(adapter);
    adapter.send = (msg) => {
      onSend(msg);
      return send(msg);
    };
  }
  if (onRecv) adapter.on("message", onRecv);
  const peer = new Promise((resolve) => adapter.once("peer-candidate", ({ peerId }) => resolve(peerId)));
  repo.networkSubsystem.addNetworkAdapter(adapter);
  return withDeadline(peer, `connecting to ${target}`).then(() => adapter);
}
// acked resolves when the server's sync message for the handle's document
// reports heads that include every head in want.
function acked(repo, docId, want) {
  return new Promise((resolve) => {
    const check = ({ documentId, syncState }) => {
      if (documentId !== docId || !syncState?.theirHeads) return;
      const theirs = new Set(syncState.theirHeads);
      if (want.every((h) => theirs.has(h))) {
        repo.synchronizer.off("sync-state", check);
        resolve(performance.now());
      }
    };
    repo.synchronizer.on("sync-state", check);
  });
}
// asDevice makes the handle's future changes carry the device's actor.
function asDevice(handle, actor) {
  handle.update((doc) => A.clone(doc, { actor }));
}
const S = (s) => (scalar ? new A.ImmutableString(s) : s);
function newEntry(n, member) {
  const id = randomUUID();
  return {
    key: id,
    id: S(id),
    kind: S("hours"),
    quantity: 1,
    note: S(`entry ${n} by ${member}`),
    at: S(new Date().toISOString().replace(/\.\d+Z$/, "Z")),
  };
}
// put writes the entry into a ledger document (entries keyed by id).
function put(doc, e) {
  const { key, ...fields } = e;
  doc.entries[key] = fields;
}

// setupDocs returns, per device, {docId, bytes}: the document each device
// will write (its ledger, or the one shared draft) as the server holds it.
// circled: the server created them at enrolment; one setup repo per
// device fetches its own. ref: one setup repo creates them and waits until
// the server acknowledged each.
async function setupDocs(devices, shared) {
  const out = [];
  if (target === "ref") {
    const repo = newRepo("setup");
    await connect(repo, opts.ws);
    const make = () => {
      const h = shared ? repo.create({ text: "", principles: [] }) : repo.create({ entries: {}, credits: {} });
      return acked(repo, h.documentId, A.getHeads(h.doc())).then(() => h);
    };
    if (shared) {
      const h = await withDeadline(make(), "the server acknowledging the shared document");
      for (let i = 0; i < devices.length; i++) out.push({ docId: h.documentId, bytes: A.save(h.doc()) });
    } else {
      const hs = await withDeadline(Promise.all(devices.map(make)), "the server acknowledging the documents");
      for (const h of hs) out.push({ docId: h.documentId, bytes: A.save(h.doc()) });
    }
    await repo.shutdown();
    return out;
  }
  const batch = 10;
  for (let i = 0; i < devices.length; i += batch) {
    const got = await Promise.all(
      devices.slice(i, i + batch).map(async (dev) => {
        const repo = newRepo(`setup-${dev.member.slice(0, 8)}`);
        await connect(repo, wsURL(dev));
        const docId = shared ? dev.draft : dev.ledger;
        const h = await withDeadline(repo.find(`automerge:${docId}`), `finding ${docId}`);
        const bytes = A.save(h.doc());
        await repo.shutdown();
        return { docId, bytes };
      }),
    );
    out.push(...got);
  }
  return out;
}

// device builds an offline repo holding the device's document as set up.
function device(dev, doc, i) {
  const repo = newRepo(`d${i}`);
  const handle = repo.import(doc.bytes, { docId: doc.docId });
  asDevice(handle, dev.actor);
  return { dev, repo, handle, i };
}

async function makeDevices() {
  let devs;
  if (target === "circled") {
    devs = await withDeadline(enrollMany(clients), "enrolling");
  } else {
    devs = [];
    for (let i = 0; i < clients; i++) devs.push({ name: `Member ${i}`, member: `m${i}-${tag}`, actor: randomBytes(16).toString("hex") });
  }
  log(`${devs.length} devices ready`);
  return devs;
}

// ---------- backlog ----------
// The main thread enrols the devices and fetches their documents, then
// hands them out to the worker threads (backlogWorker), which write the
// entries offline, connect when told to and report when each device saw
// its acknowledgement. Times cross threads as performance.timeOrigin +
// performance.now(): milliseconds on one clock for all of them.
const nowAbs = () => performance.timeOrigin + performance.now();

// nextMessage resolves with the next message of type from port.
function nextMessage(port, type) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m?.type === "error") {
        port.off("message", on);
        reject(new Error(`worker: ${m.error}`));
      } else if (m?.type === type) {
        port.off("message", on);
        resolve(m);
      }
    };
    port.on("message", on);
  });
}

async function backlog() {
  const devs = await makeDevices();
  const docs = await setupDocs(devs, false);
  const n = Math.min(workers, clients);
  const parts = Array.from({ length: n }, () => []);
  devs.forEach((dev, i) => parts[i % n].push({ dev, doc: docs[i], i }));
  const ws = parts.map((items) => new Worker(new URL(import.meta.url), { argv: process.argv.slice(2), workerData: { items } }));
  for (const w of ws) w.on("error", (e) => log("worker failed:", e?.stack ?? e));
  const ready = await withDeadline(Promise.all(ws.map((w) => nextMessage(w, "ready"))), "the workers writing offline");
  log(`wrote ${clients}×${changes} entries offline in ${(Math.max(...ready.map((r) => r.writeMs)) / 1000).toFixed(2)} s, ${n} worker thread(s)`);
  await sleep(300);

  const cpu0 = serverPid ? procCPU(serverPid) : null;
  const load1 = os.loadavg()[0]; // the machine is shared: how busy it was
  const ownCPU0 = process.cpuUsage(); // the whole process: every worker thread
  const t0 = nowAbs();
  const done = ws.map((w) => nextMessage(w, "done"));
  for (const w of ws) w.postMessage({ type: "go", t0 });
  const reports = await withDeadline(Promise.all(done), "waiting for the server's acknowledgements");
  const cpuAck = serverPid ? procCPU(serverPid) : null;
  const ownCPU = process.cpuUsage(ownCPU0);
  const failed = reports.filter((r) => r.error);
  if (failed.length) throw new Error(failed.map((r) => r.error).join("; "));
  const traffic = reports.flatMap((r) => r.traffic);
  const ackTimes = traffic.map((t) => t.ack);
  const tAck = Math.max(...ackTimes);
  const tConn = Math.max(...reports.map((r) => r.connected));
  const trace = reports.flatMap((r) => r.trace);
  asyncErrors += reports.reduce((a, r) => a + r.asyncErrors, 0);
  const total = clients * changes;
  log(`all ${total} changes acknowledged after ${(tAck / 1000).toFixed(3)} s`);
  const sum = (k) => traffic.reduce((a, t) => a + t[k], 0);
  // when the devices got the server's first answer, sent their changes
  // and saw them acknowledged (ms after the start): min / p50 / max
  const spread = (xs) => {
    const s = xs.filter((x) => x != null).sort((a, b) => a - b);
    return s.length ? `${s[0].toFixed(0)} / ${pct(s, 50).toFixed(0)} / ${s[s.length - 1].toFixed(0)} ms` : "—";
  };
  log(
    `first answer ${spread(traffic.map((t) => t.firstReply))}; changes sent ${spread(traffic.map((t) => t.changesSent))}; ` +
      `acknowledged ${spread(ackTimes)}`,
  );
  log(
    `per device: ${(sum("sent") / clients).toFixed(1)} messages sent (${Math.round(sum("sentBytes") / clients)} B), ` +
      `${(sum("recv") / clients).toFixed(1)} received (${Math.round(sum("recvBytes") / clients)} B); ` +
      `load generator CPU ${((ownCPU.user + ownCPU.system) / 1e6).toFixed(2)} s; device 0: ${trace.join(", ")}`,
  );
  let tVerified = null;
  let counted = null;
  if (target === "circled") {
    for (;;) {
      counted = await countEntries(devs);
      if (counted >= total || performance.now() > deadline) break;
      await sleep(50);
    }
    tVerified = nowAbs() - t0;
    log(`GET /v1/ledger/entries lists ${counted} of ${total} after ${(tVerified / 1000).toFixed(3)} s`);
  }
  const ok = counted === null || counted === total;
  const ackS = tAck / 1000;
  const r = emit({
    ok,
    changes_per_client: changes,
    total_changes: total,
    workers: n,
    connect_s: +(tConn / 1000).toFixed(3),
    ack_s: +ackS.toFixed(3),
    changes_per_s: Math.round(total / ackS),
    verified_s: tVerified ? +(tVerified / 1000).toFixed(3) : null,
    rest_count: counted,
    server_cpu_s: cpu0 != null && cpuAck != null ? +(cpuAck - cpu0).toFixed(2) : null,
    client_cpu_s: +((ownCPU.user + ownCPU.system) / 1e6).toFixed(2),
    load_avg_1m: +load1.toFixed(2),
    msgs_sent_per_device: +(sum("sent") / clients).toFixed(2),
    msgs_recv_per_device: +(sum("recv") / clients).toFixed(2),
  });
  const stopped = ws.map((w) => new Promise((resolve) => w.once("exit", resolve)));
  for (const w of ws) w.postMessage({ type: "stop" });
  await withDeadline(Promise.all(stopped), "the workers closing their repos");
  return r.ok;
}

// backlogWorker runs in a worker thread: its share of the devices.
async function backlogWorker() {
  const ds = workerData.items.map(({ dev, doc, i }) => device(dev, doc, i));
  const tg = performance.now();
  for (const d of ds) {
    for (let k = 0; k < changes; k++) {
      const e = newEntry(k, d.dev.member);
      d.handle.change((doc) => put(doc, e));
    }
  }
  parentPort.postMessage({ type: "ready", writeMs: performance.now() - tg });
  const { t0 } = await nextMessage(parentPort, "go");
  const since = () => nowAbs() - t0;

  // What each device sends and receives during the ingest (sync
  // messages: count and bytes; and, for device 0, a timed trace).
  const traffic = new Map(ds.map((d) => [d.i, { sent: 0, sentBytes: 0, recv: 0, recvBytes: 0, firstReply: null, changesSent: null, biggest: 0, ack: null }]));
  const trace = [];
  const onSend = (d) => (msg) => {
    const t = traffic.get(d.i);
    t.sent++;
    t.sentBytes += msg.data?.byteLength ?? 0;
    if ((msg.data?.byteLength ?? 0) > t.biggest) {
      t.biggest = msg.data.byteLength;
      t.changesSent = since();
    }
    if (d.i === 0) trace.push(`+${since().toFixed(1)}ms > ${msg.type} ${msg.data?.byteLength ?? 0}B`);
  };
  const onRecv = (d) => (msg) => {
    const t = traffic.get(d.i);
    t.recv++;
    t.recvBytes += msg.data?.byteLength ?? 0;
    if (t.firstReply == null && msg.type === "sync") t.firstReply = since();
    if (d.i === 0) trace.push(`+${since().toFixed(1)}ms < ${msg.type} ${msg.data?.byteLength ?? 0}B`);
  };
  let report;
  try {
    const acks = ds.map((d) =>
      acked(d.repo, d.handle.documentId, A.getHeads(d.handle.doc())).then((t) => {
        traffic.get(d.i).ack = performance.timeOrigin + t - t0;
      }),
    );
    await withDeadline(Promise.all(ds.map((d) => connect(d.repo, wsURL(d.dev), onSend(d), onRecv(d)))), "connecting");
    const connected = since();
    await withDeadline(Promise.all(acks), "waiting for the server's acknowledgements");
    report = { type: "done", traffic: [...traffic.values()], trace, connected, asyncErrors };
  } catch (e) {
    const n = [...traffic.values()].filter((t) => t.ack != null).length;
    report = { type: "done", error: `${e.message}: ${n} of ${ds.length} acknowledged in this worker` };
  }
  parentPort.postMessage(report);
  await nextMessage(parentPort, "stop");
  await Promise.all(ds.map((d) => d.repo.shutdown()));
  process.exit(0);
}

// ---------- latency ----------
async function latency() {
  const devs = await makeDevices();
  const docs = await setupDocs(devs, false);
  const ds = devs.map((d, i) => device(d, docs[i], i));
  // sent: per device, the pending change waiting for its first outgoing
  // sync message.
  await withDeadline(
    Promise.all(
      ds.map(async (d) => {
        await connect(d.repo, wsURL(d.dev), (msg) => {
          if (d.pending && d.pending.sent == null && msg.type === "sync" && msg.documentId === d.handle.documentId) {
            d.pending.sent = performance.now();
          }
        });
        // a first round trip, so both sides share a sync state
        const e = newEntry(-1, d.dev.member);
        d.handle.change((doc) => put(doc, e));
        await acked(d.repo, d.handle.documentId, A.getHeads(d.handle.doc()));
      }),
    ),
    "connecting and a first round trip",
  );
  log(`${clients} devices connected; measuring ${samples} samples (+${warmup} warm-up)`);
  await sleep(300);

  const total = samples + warmup;
  const changeAck = [];
  const sentAck = [];
  let issued = 0;
  let lost = 0;
  const cpu0 = serverPid ? procCPU(serverPid) : null;
  const t0 = performance.now();
  async function loop(d) {
    let n = 0;
    while (issued < total && performance.now() < deadline) {
      const idx = issued++;
      const e = newEntry(n++, d.dev.member);
      d.pending = { sent: null };
      const ts = performance.now();
      d.handle.change((doc) => put(doc, e));
      const heads = A.getHeads(d.handle.doc());
      const t = await Promise.race([acked(d.repo, d.handle.documentId, heads), sleep(10000).then(() => null)]);
      if (t === null) {
        lost++;
      } else if (idx >= warmup) {
        changeAck.push(t - ts);
        if (d.pending.sent != null) sentAck.push(t - d.pending.sent);
      }
      d.pending = null;
      if (intervalMs > 0) await sleep(intervalMs * (0.5 + Math.random()));
    }
  }
  await Promise.all(ds.map(loop));
  const t1 = performance.now();
  const cpu1 = serverPid ? procCPU(serverPid) : null;
  changeAck.sort((a, b) => a - b);
  sentAck.sort((a, b) => a - b);
  const r = emit({
    ok: changeAck.length >= samples && lost === 0,
    interval_ms: intervalMs,
    samples: changeAck.length,
    lost,
    p50_ms: ms2(pct(changeAck, 50)),
    p99_ms: ms2(pct(changeAck, 99)),
    max_ms: ms2(changeAck[changeAck.length - 1]),
    sent_p50_ms: ms2(pct(sentAck, 50)),
    sent_p99_ms: ms2(pct(sentAck, 99)),
    sent_max_ms: ms2(sentAck[sentAck.length - 1]),
    sent_samples: sentAck.length,
    seconds: +((t1 - t0) / 1000).toFixed(3),
    changes_per_s: Math.round(issued / ((t1 - t0) / 1000)),
    server_cpu_s: cpu0 != null && cpu1 != null ? +(cpu1 - cpu0).toFixed(2) : null,
  });
  await Promise.all(ds.map((d) => d.repo.shutdown()));
  return r.ok;
}

// ---------- draft: everyone edits one text ----------
async function draft() {
  const devs = await makeDevices();
  const docs = await setupDocs(devs, true);
  const ds = devs.map((d, i) => device(d, docs[i], i));
  const pending = new Map(); // marker → {ts, left: Set of device indexes still to see it, last}
  const textOf = (h) => String(h.doc()?.text ?? "");
  for (const d of ds) {
    d.handle.on("change", () => {
      if (!pending.size) return;
      const now = performance.now();
      const text = textOf(d.handle);
      for (const [marker, p] of pending) {
        if (p.left.has(d.i) && text.includes(marker)) {
          p.left.delete(d.i);
          p.last = now;
          if (p.left.size === 0) p.done(now);
        }
      }
    });
  }
  await withDeadline(Promise.all(ds.map((d) => connect(d.repo, wsURL(d.dev)))), "connecting");
  log(`${clients} members connected to one shared text; measuring ${samples} samples (+${warmup} warm-up)`);
  await sleep(500);

  const total = samples + warmup;
  const lat = [];
  let issued = 0;
  let lost = 0;
  let changeErrors = 0;
  const cpu0 = serverPid ? procCPU(serverPid) : null;
  const t0 = performance.now();
  async function loop(d) {
    let n = 0;
    while (issued < total && performance.now() < deadline) {
      const idx = issued++;
      const marker = `<${d.i}.${n++}>`;
      const left = new Set(ds.map((x) => x.i).filter((i) => i !== d.i));
      const seen = new Promise((resolve) => pending.set(marker, { left, done: resolve }));
      const ts = performance.now();
      try {
        d.handle.change((doc) => {
          const len = String(doc.text).length;
          A.splice(doc, ["text"], Math.floor(Math.random() * (len + 1)), 0, marker);
        });
      } catch (e) {
        // seen once under heavy load: automerge-repo's handle refused the
        // change ("outdated document"); counted, and the run goes on
        changeErrors++;
        if (changeErrors === 1) log("edit failed:", e?.stack ?? e);
        pending.delete(marker);
        continue;
      }
      const t = await Promise.race([seen, sleep(20000).then(() => null)]);
      pending.delete(marker);
      if (t === null) lost++;
      else if (idx >= warmup) lat.push(t - ts);
      if (intervalMs > 0) await sleep(intervalMs * (0.5 + Math.random()));
    }
  }
  await Promise.all(ds.map(loop));
  const t1 = performance.now();
  const cpu1 = serverPid ? procCPU(serverPid) : null;
  lat.sort((a, b) => a - b);
  const r = emit({
    ok: lat.length >= samples && lost === 0 && changeErrors === 0,
    interval_ms: intervalMs,
    samples: lat.length,
    lost,
    change_errors: changeErrors,
    p50_ms: ms2(pct(lat, 50)),
    p99_ms: ms2(pct(lat, 99)),
    max_ms: ms2(lat[lat.length - 1]),
    text_chars: textOf(ds[0].handle).length,
    seconds: +((t1 - t0) / 1000).toFixed(3),
    server_cpu_s: cpu0 != null && cpu1 != null ? +(cpu1 - cpu0).toFixed(2) : null,
  });
  await Promise.all(ds.map((d) => d.repo.shutdown()));
  return r.ok;
}

if (!isMainThread) {
  try {
    await backlogWorker();
  } catch (e) {
    parentPort.postMessage({ type: "error", error: String(e?.stack ?? e) });
    process.exit(1);
  }
} else {
  let ok = false;
  try {
    ok = await { backlog, latency, draft }[mode]();
  } catch (e) {
    log("FAILED:", e?.stack ?? e);
    emit({ ok: false, error: String(e?.message ?? e) });
  }
  process.exit(ok ? 0 : 1);
}
