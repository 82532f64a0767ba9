// Assembles one benchmark run (bench/run.sh) into bench/results/latest.json and prints the table.
// Inputs in --work: <scenario>.json (BENCH_RESULT lines of the wrk scripts), server.mem
// (VmHWM/VmRSS), server.errors, micro.json (Google Benchmark JSON), <scenario>.server.json (the
// server's own latency per route during the scenario, GET /api/v1/admin/latency), <scenario>.proc
// (the server process's CPU ticks and disk read bytes before and after the scenario).
import { execSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    work: { type: "string" },
    manifest: { type: "string" },
    scale: { type: "string" },
    workers: { type: "string" },
    connections: { type: "string" },
    seconds: { type: "string" },
    load: { type: "string", default: "" },
    // NAME=DIR: the same scenarios measured on another backend (bench/run.sh BENCH_BACKENDS).
    backend: { type: "string", multiple: true, default: [] },
    out: { type: "string" },
  },
});

export const SCENARIOS = [
  ["read", "read one record by id"],
  ["list", "list 50, filter city = X, sort -created_at"],
  ["search", "search as you type (1-, 2-, 3+-char prefixes)"],
  ["search-words", "search as you type, several words (zhang 138)"],
  ["phone", "phone lookup (GET /api/v1/lookup/phone)"],
  ["360", "customer 360 page data (GET /accounts/{id}/360)"],
  ["create", "durable create (POST /accounts, synchronous=FULL)"],
  ["update", "durable update (PATCH /accounts/{id}, one field)"],
  ["mixed", "mixed 90% read / 10% create"],
];

const readJson = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, "utf8")) : null);
const sh = (cmd) => {
  try {
    return execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "";
  }
};

// The server-side figures of a scenario: its busiest route's histogram summary (server = from
// the request's first byte to the handler's end, worker-pool wait included; handler = alone).
const serverSide = (dir, key) => {
  // (The reset of the figures before the scenario is a request too: not the scenario's route.)
  const routes = (readJson(`${dir}/${key}.server.json`)?.routes || []).filter((r) => r.route !== "/api/v1/admin/latency");
  const top = [...routes].sort((a, b) => b.count - a.count)[0];
  if (!top) return {};
  return {
    server: { route: `${top.method} ${top.route}`, count: top.count, ...top.server },
    handler: top.handler,
  };
};

// The server process's CPU time and disk reads during a scenario (<key>.proc: utime+stime ticks and
// /proc/PID/io read_bytes before and after wrk, then ticks a second), per request: what a request
// costs whatever the load, and how often it waited for a page the kernel had not cached.
const procOf = (dir, key, r) => {
  if (!existsSync(`${dir}/${key}.proc`) || !r.requests) return {};
  const [c0, d0, c1, d1, hz] = readFileSync(`${dir}/${key}.proc`, "utf8").trim().split(/\s+/).map(Number);
  if (![c0, d0, c1, d1, hz].every(Number.isFinite) || !hz) return {};
  return {
    server_cpu_ms_per_request: +(((c1 - c0) / hz) * 1000 / r.requests).toFixed(4),
    disk_read_kib_per_request: +((d1 - d0) / 1024 / r.requests).toFixed(3),
  };
};

const w = args.work;
const ceiling = readJson(`${w}/ceiling.json`);
const scenarios = [];
for (const [key, label] of SCENARIOS) {
  const r = readJson(`${w}/${key}.json`);
  if (!r) continue;
  scenarios.push({ key, label, ...r, ratio: ceiling ? r.rps / ceiling.rps : null, ...serverSide(w, key), ...procOf(w, key, r) });
}
const memOf = (dir) => (existsSync(`${dir}/server.mem`) ? readFileSync(`${dir}/server.mem`, "utf8") : "");
const kbOf = (mem, name) => Number((mem.match(new RegExp(`${name}:\\s*(\\d+)`)) || [])[1] || 0);
const mem = memOf(w);
const kb = (name) => kbOf(mem, name);

// Other backends: their ceiling, scenarios and server figures, from the same kind of work dir.
const backends = {};
for (const spec of args.backend) {
  const [name, dir] = [spec.slice(0, spec.indexOf("=")), spec.slice(spec.indexOf("=") + 1)];
  if (!name || !dir) throw new Error(`--backend wants NAME=DIR, got ${spec}`);
  const c = readJson(`${dir}/ceiling.json`);
  const list = [];
  for (const [key, label] of SCENARIOS) {
    const r = readJson(`${dir}/${key}.json`);
    if (r) list.push({ key, label, ...r, ratio: c ? r.rps / c.rps : null, ...serverSide(dir, key) });
  }
  const m = memOf(dir);
  backends[name] = {
    ceiling: c,
    scenarios: list,
    server: {
      peak_rss_mb: +(kbOf(m, "VmHWM") / 1024).toFixed(1),
      error_log_lines: existsSync(`${dir}/server.errors`) ? Number(readFileSync(`${dir}/server.errors`, "utf8").trim() || 0) : null,
      startup_s: existsSync(`${dir}/server.start`) ? +Number(readFileSync(`${dir}/server.start`, "utf8")).toFixed(2) : null,
    },
  };
}
const micro = (readJson(`${w}/micro.json`)?.benchmarks || []).map((b) => ({
  name: b.name,
  real_ns: b.time_unit === "ns" ? b.real_time : b.real_time * { us: 1e3, ms: 1e6 }[b.time_unit],
  cpu_ns: b.time_unit === "ns" ? b.cpu_time : b.cpu_time * { us: 1e3, ms: 1e6 }[b.time_unit],
  iterations: b.iterations,
}));

const result = {
  schema: 1,
  date: new Date().toISOString(),
  git: {
    commit: sh("git rev-parse --short HEAD"),
    dirty: sh("git status --porcelain --untracked-files=no") !== "",
  },
  scale: args.scale,
  machine: {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model || "",
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    loadavg_before: args.load,
    note: "shared machine: other builds and tests run beside the benchmark, figures are noisy",
  },
  dataset: readJson(args.manifest),
  server: {
    io_threads: 2,
    workers: Number(args.workers),
    peak_rss_mb: +(kb("VmHWM") / 1024).toFixed(1),
    rss_at_end_mb: +(kb("VmRSS") / 1024).toFixed(1),
    error_log_lines: Number(readFileSync(`${w}/server.errors`, "utf8").trim() || 0),
    startup_s: existsSync(`${w}/server.start`)
      ? +Number(readFileSync(`${w}/server.start`, "utf8")).toFixed(2)
      : null,
  },
  wrk: { threads: 2, connections: Number(args.connections), seconds: Number(args.seconds) },
  ceiling,
  scenarios,
  micro,
  // Present when other backends ran (BENCH_BACKENDS): the main figures above are SQLite's.
  ...(Object.keys(backends).length ? { backends } : {}),
};
writeFileSync(args.out, JSON.stringify(result, null, 2) + "\n");

// --- the terminal table --------------------------------------------------------------------------
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const fmt = (x, d = 0) => (x == null ? "-" : Number(x).toFixed(d));
const ds = result.dataset || {};
console.log();
console.log(
  `Rapport benchmark — scale ${result.scale}: ${ds.accounts ?? "?"} accounts, ${ds.contacts ?? "?"} contacts, ` +
    `${ds.interactions ?? "?"} communication records${ds.stopped_early ? " (generator stopped by its time budget)" : ""}`,
);
console.log(
  `${result.machine.cpus} CPUs (${result.machine.cpu_model}), load before ${args.load}; ` +
    `server 2 I/O + ${args.workers} worker threads; wrk 2 threads × ${args.connections} connections, ${args.seconds} s each`,
);
console.log("Shared machine: figures are noisy; compare ratios to the ceiling, not absolute req/s.");
console.log();
console.log("p50/p99: wrk (client side); srv p50/p99: the server's own figures (first byte → handler done).");
const head = `${pad("scenario", 52)}${lpad("req/s", 8)}${lpad("p50 ms", 8)}${lpad("p99 ms", 8)}${lpad("srv p50", 9)}${lpad("srv p99", 9)}${lpad("errors", 7)}${lpad("non-2xx", 8)}${lpad("ratio", 8)}`;
console.log(head);
console.log("-".repeat(head.length));
const row = (label, r, ratio) =>
  console.log(
    `${pad(label, 52)}${lpad(fmt(r.rps), 8)}${lpad(fmt(r.p50_ms, 2), 8)}${lpad(fmt(r.p99_ms, 2), 8)}` +
      `${lpad(fmt(r.server?.p50_ms, 3), 9)}${lpad(fmt(r.server?.p99_ms, 3), 9)}` +
      `${lpad(r.errors, 7)}${lpad(r.non2xx, 8)}${lpad(ratio == null ? "-" : (ratio * 100).toFixed(1) + "%", 8)}`,
  );
if (ceiling) row("ceiling: GET /healthz", ceiling, 1);
for (const s of scenarios) row(s.label, s, s.ratio);
console.log();
console.log(
  `server peak RSS (VmHWM): ${result.server.peak_rss_mb} MB; start-up (migrations) ${result.server.startup_s ?? "?"} s; ` +
    `error lines in the server log: ${result.server.error_log_lines}`,
);
for (const [name, b] of Object.entries(backends)) {
  console.log();
  console.log(`SQLite and ${name} side by side (same data, same server settings; req/s, p99 ms):`);
  const h = `${pad("scenario", 50)}${lpad("sqlite", 9)}${lpad(name.slice(0, 10), 11)}${lpad("ratio", 8)}${lpad("p99 sq", 9)}${lpad("p99 " + name.slice(0, 2), 9)}`;
  console.log(h);
  console.log("-".repeat(h.length));
  const both = [["ceiling: GET /healthz", ceiling, b.ceiling], ...SCENARIOS.map(([key, label]) => [label, scenarios.find((s) => s.key === key), b.scenarios.find((s) => s.key === key)])];
  for (const [label, a, o] of both) {
    if (!a && !o) continue;
    const ratio = a && o && a.rps ? `${(o.rps / a.rps).toFixed(2)}×` : "-";
    console.log(`${pad(label, 50)}${lpad(fmt(a?.rps), 9)}${lpad(fmt(o?.rps), 11)}${lpad(ratio, 8)}${lpad(fmt(a?.p99_ms, 1), 9)}${lpad(fmt(o?.p99_ms, 1), 9)}`);
  }
  console.log(`${name} server: peak RSS ${b.server.peak_rss_mb} MB, start-up ${b.server.startup_s ?? "?"} s, error lines ${b.server.error_log_lines ?? "?"}`);
}
if (micro.length) {
  console.log();
  console.log(`${pad("micro-benchmark", 40)}${lpad("ns/op", 12)}`);
  for (const m of micro) console.log(`${pad(m.name, 40)}${lpad(fmt(m.cpu_ns, 0), 12)}`);
}
console.log();
console.log(`written: ${args.out}`);
