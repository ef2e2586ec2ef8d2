#!/usr/bin/env node
// run.mjs is `make bench-sync`: the same automerge-repo JavaScript clients
// (loadgen.mjs) against the reference automerge-repo sync server and
// against circled, in one run. Every scenario runs REPS times; each run
// gets a fresh server with fresh data on 127.0.0.1, which is stopped by its
// own process id afterwards. It prints, per scenario, the median of each
// figure for both servers, their ratio and the median of each repetition's
// own ratio (paired), and writes every run's RESULT
// line to OUT (JSON lines).
//
// Environment:
//   CIRCLED     the circled binary (required)
//   ANCHOR      a directory holding the reference server.mjs with its
//               node_modules installed (required)
//   REPS        runs per scenario and server (default 1)
//   SCENARIOS   which ones (default: all, in this order)
//                 b50x100     backlog, 50 devices × 100 offline entries
//                 b200x20     backlog, 200 devices × 20 offline entries
//                 lat20-i250  latency, 20 devices, a change every ~250 ms each
//                 lat20       latency, 20 devices back to back
//                 draft20     20 members editing one text together
//   TARGETS     default "ref circled"
//   SCALAR=1    strings as ImmutableString instead of JS automerge's text
//   RUN_TIMEOUT_S  bound of one loadgen run, setup included (default 420)
//   OUT         where the JSON lines go (default .cache/bench-sync/results-<time>.jsonl)
//   PROFILE_DIR if set, circled runs with --cpuprofile into this directory
//               (one file per run, named after the run)
//   LOADGEN_PROFILE_DIR  if set, every loadgen runs under node --cpu-prof
//               into DIR/<run>/, one file per thread (the main thread and
//               each backlog worker; the load generator shares the cores)

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const circled = env.CIRCLED;
const anchor = env.ANCHOR;
if (!circled || !fs.existsSync(circled)) fail(`CIRCLED=${circled ?? ""}: no circled binary there`);
if (!anchor || !fs.existsSync(path.join(anchor, "server.mjs")) || !fs.existsSync(path.join(anchor, "node_modules"))) {
  fail(`ANCHOR=${anchor ?? ""}: no server.mjs with node_modules there`);
}
const reps = Number(env.REPS ?? 1);
if (!Number.isInteger(reps) || reps < 1 || reps > 20) fail("REPS must be 1..20");
const runTimeoutS = Number(env.RUN_TIMEOUT_S ?? 420);
const scenarios = {
  b50x100: { title: "backlog 50 devices × 100 offline entries", args: ["--mode", "backlog", "--clients", "50", "--changes", "100"] },
  b200x20: { title: "backlog 200 devices × 20 offline entries", args: ["--mode", "backlog", "--clients", "200", "--changes", "20"] },
  "lat20-i250": {
    title: "latency, 20 devices, one change every ~250 ms each",
    args: ["--mode", "latency", "--clients", "20", "--samples", "500", "--interval-ms", "250"],
  },
  lat20: { title: "latency, 20 devices back to back", args: ["--mode", "latency", "--clients", "20", "--samples", "500"] },
  draft20: { title: "20 members editing one text (charter draft)", args: ["--mode", "draft", "--clients", "20", "--samples", "200"] },
};
const chosen = (env.SCENARIOS ?? Object.keys(scenarios).join(" ")).split(/\s+/).filter(Boolean);
for (const s of chosen) if (!scenarios[s]) fail(`unknown scenario ${s} (know: ${Object.keys(scenarios).join(", ")})`);
const targets = (env.TARGETS ?? "ref circled").split(/\s+/).filter(Boolean);
for (const t of targets) if (t !== "ref" && t !== "circled") fail(`unknown target ${t}`);
const outFile = env.OUT ?? path.resolve(here, "../../../.cache/bench-sync", `results-${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl`);
fs.mkdirSync(path.dirname(outFile), { recursive: true });
if (env.PROFILE_DIR) fs.mkdirSync(env.PROFILE_DIR, { recursive: true });

function fail(msg) {
  console.error(`bench-sync: ${msg}`);
  process.exit(2);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor polls cond every 50 ms for at most ms.
async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

// stop ends the server by its process id: SIGTERM, then SIGKILL after 10 s.
async function stop(srv) {
  if (srv.proc.exitCode === null && srv.proc.signalCode === null) {
    srv.proc.kill("SIGTERM");
    const ended = new Promise((r) => srv.proc.once("exit", r));
    const t = setTimeout(() => srv.proc.kill("SIGKILL"), 10000);
    await ended;
    clearTimeout(t);
  }
  fs.rmSync(srv.dir, { recursive: true, force: true });
}

async function startRef() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ref-"));
  let out = "";
  const proc = spawn(process.execPath, ["server.mjs"], {
    cwd: anchor,
    env: { ...env, DATA_DIR: path.join(dir, "data"), PORT: "0", HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout.on("data", (b) => (out += b));
  proc.stderr.on("data", (b) => (out += b));
  const srv = { proc, dir, log: () => out };
  try {
    const port = await waitFor(() => out.match(/Listening on port (\d+)/)?.[1], 15000, "the reference server starting");
    srv.args = ["--target", "ref", "--ws", `ws://127.0.0.1:${port}`];
  } catch (e) {
    await stop(srv);
    throw new Error(`${e.message}\n${out}`);
  }
  return srv;
}

async function startCircled(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-circled-"));
  const data = path.join(dir, "data");
  const init = spawnSync(circled, ["init", "--data", data, "--name", "Bench Circle", "--json"], { encoding: "utf8", timeout: 60000 });
  if (init.status !== 0) throw new Error(`circled init: ${init.stderr || init.error}`);
  const { invite } = JSON.parse(init.stdout);
  const addrFile = path.join(dir, "addr");
  const args = ["serve", "--data", data, "--listen", "127.0.0.1:0", "--addr-file", addrFile];
  if (env.PROFILE_DIR) args.push("--cpuprofile", path.join(env.PROFILE_DIR, `${name}.cpu.pprof`));
  let out = "";
  const proc = spawn(circled, args, { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (b) => (out += b));
  proc.stderr.on("data", (b) => (out = (out + b).slice(-20000)));
  const srv = { proc, dir, log: () => out };
  try {
    const addr = await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error("circled serve ended");
        try {
          return fs.readFileSync(addrFile, "utf8").trim() || null;
        } catch {
          return null;
        }
      },
      30000,
      "circled serve starting",
    );
    srv.args = ["--target", "circled", "--base", `http://${addr}`, "--invite", invite];
  } catch (e) {
    await stop(srv);
    throw new Error(`${e.message}\n${out}`);
  }
  return srv;
}

// loadgen runs one loadgen.mjs and returns its RESULT (or an error result).
function loadgen(args, label) {
  return new Promise((resolve) => {
    // Node names each thread's profile after its process and thread ids;
    // a fixed --cpu-prof-name would let the threads overwrite one file.
    const prof = env.LOADGEN_PROFILE_DIR ? ["--cpu-prof", "--cpu-prof-dir", path.join(env.LOADGEN_PROFILE_DIR, label)] : [];
    const proc = spawn(process.execPath, [...prof, path.join(here, "loadgen.mjs"), ...args, "--timeout-s", String(runTimeoutS), "--label", label], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...env, NODE_NO_WARNINGS: "1" },
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (b) => (out += b));
    proc.stderr.on("data", (b) => {
      err = (err + b).slice(-20000);
      process.stderr.write(b);
    });
    const kill = setTimeout(() => proc.kill("SIGKILL"), (runTimeoutS + 30) * 1000);
    proc.on("exit", (code) => {
      clearTimeout(kill);
      const line = out.split("\n").filter((l) => l.startsWith("RESULT ")).pop();
      let r = null;
      try {
        r = line ? JSON.parse(line.slice(7)) : null;
      } catch {
        r = null;
      }
      resolve(r ?? { ok: false, error: `loadgen exited ${code} without a result: ${err.slice(-500)}` });
    });
  });
}

// The reference server's JIT warms up on a small discarded run, as its own
// runner does; circled is compiled ahead of time and gets none.
async function runOne(target, sc, rep) {
  const label = `${sc}-${target}-r${rep}`;
  const srv = target === "ref" ? await startRef() : await startCircled(label);
  try {
    if (target === "ref") await loadgen([...srv.args, "--mode", "backlog", "--clients", "2", "--changes", "5"], `${label}-warmup`);
    const r = await loadgen([...srv.args, ...scenarios[sc].args, "--server-pid", String(srv.proc.pid)], label);
    r.rep = rep;
    r.scenario = sc;
    if (!r.ok) console.error(`bench-sync: ${label} failed: ${r.error ?? "not every sample/entry arrived"}\n--- server log (tail) ---\n${srv.log().slice(-3000)}`);
    return r;
  } finally {
    await stop(srv);
  }
}

function median(a) {
  const s = a.filter((x) => typeof x === "number").sort((x, y) => x - y);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const metrics = {
  backlog: [
    ["changes_per_s", "ingest (changes/s, until every device saw the server's ack)", true],
    ["ack_s", "seconds until all acknowledged", false],
    ["verified_s", "seconds until GET /v1/ledger/entries lists all (circled)", false],
    ["server_vmhwm_mb", "server peak RSS, VmHWM (MB)", false],
    ["server_cpu_s", "server CPU during ingest (s)", false],
    ["client_cpu_s", "load generator CPU during ingest (s)", false],
    ["msgs_sent_per_device", "sync messages sent per device", false],
    ["msgs_recv_per_device", "sync messages received per device", false],
    ["load_avg_1m", "machine load average (1 min) at the start", false],
  ],
  latency: [
    ["sent_p50_ms", "sent→ack p50 (ms)", false],
    ["sent_p99_ms", "sent→ack p99 (ms)", false],
    ["p50_ms", "change→ack p50 (ms, with the client's 100 ms batching)", false],
    ["p99_ms", "change→ack p99 (ms)", false],
    ["lost", "samples lost (no ack within 10 s)", false],
    ["server_cpu_s", "server CPU during the run (s)", false],
    ["server_vmhwm_mb", "server peak RSS (MB)", false],
  ],
  draft: [
    ["p50_ms", "edit→all 19 others hold it, p50 (ms)", false],
    ["p99_ms", "edit→all others, p99 (ms)", false],
    ["lost", "samples lost (not everywhere within 20 s)", false],
    ["server_cpu_s", "server CPU during the run (s)", false],
    ["server_vmhwm_mb", "server peak RSS (MB)", false],
  ],
};

const fmt = (x) => (x == null ? "—" : Math.abs(x) >= 100 ? String(Math.round(x)) : String(+x.toFixed(2)));

async function main() {
  const started = Date.now();
  console.log(`bench-sync: node ${process.version}; circled ${circled}; reference server ${anchor}; REPS=${reps}; SCALAR=${env.SCALAR === "1" ? 1 : 0}`);
  console.log(`bench-sync: results -> ${outFile}`);
  const all = [];
  for (const sc of chosen) {
    for (let rep = 1; rep <= reps; rep++) {
      // alternate which server goes first, so neither always meets a
      // warmer (or busier) machine
      const order = rep % 2 ? targets : [...targets].reverse();
      for (const t of order) {
        let r;
        try {
          r = await runOne(t, sc, rep);
        } catch (e) {
          r = { ok: false, target: t, scenario: sc, rep, error: String(e?.message ?? e) };
          console.error(`bench-sync: ${sc} ${t} r${rep}: ${r.error}`);
        }
        r.target = t;
        fs.appendFileSync(outFile, JSON.stringify(r) + "\n");
        all.push(r);
      }
    }
  }
  console.log(`\n==== bench-sync: medians over ${reps} run(s) each (ratio = circled / reference; paired = median of each repetition's ratio) ====`);
  for (const sc of chosen) {
    const rows = all.filter((r) => r.scenario === sc);
    // Runs that lost samples still report the samples they have; they
    // are counted in (and flagged), runs without figures are not.
    const ok = (t) => rows.filter((r) => r.target === t && !r.error);
    const clean = (t) => rows.filter((r) => r.target === t && r.ok).length;
    const mode = scenarios[sc].args[1];
    console.log(`\n== ${sc}: ${scenarios[sc].title} (runs with figures: ref ${ok("ref").length}/${reps}, circled ${ok("circled").length}/${reps}; complete: ref ${clean("ref")}, circled ${clean("circled")})`);
    console.log(`   ${"figure".padEnd(58)} ${"reference".padStart(10)} ${"circled".padStart(10)} ${"ratio".padStart(8)} ${"paired".padStart(8)}`);
    for (const [key, title] of metrics[mode]) {
      const a = median(ok("ref").map((r) => r[key]));
      const b = median(ok("circled").map((r) => r[key]));
      if (a == null && b == null) continue;
      const ratio = a && b != null ? `${(b / a).toFixed(2)}×` : "—";
      // paired: the median of each repetition's own ratio. The two runs of
      // a repetition follow each other, so they meet about the same load
      // from whatever else runs on the machine; on a shared machine this
      // is the steadier figure.
      const pairs = [];
      for (let rep = 1; rep <= reps; rep++) {
        const x = ok("ref").find((r) => r.rep === rep)?.[key];
        const y = ok("circled").find((r) => r.rep === rep)?.[key];
        if (typeof x === "number" && typeof y === "number" && x) pairs.push(y / x);
      }
      const paired = pairs.length ? `${median(pairs).toFixed(2)}×` : "—";
      console.log(`   ${title.padEnd(58)} ${fmt(a).padStart(10)} ${fmt(b).padStart(10)} ${ratio.padStart(8)} ${paired.padStart(8)}`);
    }
  }
  console.log(`\nbench-sync: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (all.some((r) => !r.ok)) {
    console.log("bench-sync: some runs failed (see above); their figures are left out");
    process.exitCode = 1;
  }
}

await main();
