// make bench-compare [OLD=file] [NEW=file]: the change of every figure between two results files
// (default bench/results/previous.json → bench/results/latest.json). Higher is better for req/s
// and ratios, lower for latencies, memory and ns/op; the last column says which way it went.
import { existsSync, readFileSync } from "node:fs";

const [oldFile = "bench/results/previous.json", newFile = "bench/results/latest.json"] =
  process.argv.slice(2).filter(Boolean);
for (const f of [oldFile, newFile]) {
  if (!existsSync(f)) {
    console.error(`bench-compare: ${f} does not exist (run make bench, or pass OLD=file)`);
    process.exit(1);
  }
}
const a = JSON.parse(readFileSync(oldFile, "utf8"));
const b = JSON.parse(readFileSync(newFile, "utf8"));

const rows = [];
const add = (name, x, y, higherIsBetter, digits = 0) => {
  if (x == null && y == null) return;
  let change = "";
  let verdict = "";
  if (x != null && y != null && x !== 0) {
    const pct = ((y - x) / Math.abs(x)) * 100;
    change = `${pct >= 0 ? "+" : ""}${pct.toFixed(1)}%`;
    if (Math.abs(pct) >= 5) verdict = (pct > 0) === higherIsBetter ? "better" : "worse";
  }
  const f = (v) => (v == null ? "-" : Number(v).toFixed(digits));
  rows.push([name, f(x), f(y), change, verdict]);
};

add("ceiling req/s", a.ceiling?.rps, b.ceiling?.rps, true);
add("ceiling p99 ms", a.ceiling?.p99_ms, b.ceiling?.p99_ms, false, 2);
const keys = [...new Set([...(a.scenarios || []), ...(b.scenarios || [])].map((s) => s.key))];
for (const k of keys) {
  const x = (a.scenarios || []).find((s) => s.key === k) || {};
  const y = (b.scenarios || []).find((s) => s.key === k) || {};
  add(`${k} req/s`, x.rps, y.rps, true);
  add(`${k} ratio to ceiling %`, x.ratio != null ? x.ratio * 100 : null, y.ratio != null ? y.ratio * 100 : null, true, 1);
  add(`${k} p50 ms`, x.p50_ms, y.p50_ms, false, 2);
  add(`${k} p99 ms`, x.p99_ms, y.p99_ms, false, 2);
  add(`${k} server p50 ms`, x.server?.p50_ms, y.server?.p50_ms, false, 3);
  add(`${k} server p99 ms`, x.server?.p99_ms, y.server?.p99_ms, false, 3);
  add(`${k} errors + non-2xx`, x.rps != null ? x.errors + x.non2xx : null, y.rps != null ? y.errors + y.non2xx : null, false);
}
add("server peak RSS MB", a.server?.peak_rss_mb, b.server?.peak_rss_mb, false, 1);
add("server start-up s", a.server?.startup_s, b.server?.startup_s, false, 2);
add("generator records/s", a.dataset?.records_per_s, b.dataset?.records_per_s, true);
const micro = [...new Set([...(a.micro || []), ...(b.micro || [])].map((m) => m.name))];
for (const n of micro) {
  add(`${n} ns/op`, (a.micro || []).find((m) => m.name === n)?.cpu_ns, (b.micro || []).find((m) => m.name === n)?.cpu_ns, false);
}

console.log(`old: ${oldFile} (${a.date}, ${a.git?.commit}${a.git?.dirty ? "+dirty" : ""}, scale ${a.scale})`);
console.log(`new: ${newFile} (${b.date}, ${b.git?.commit}${b.git?.dirty ? "+dirty" : ""}, scale ${b.scale})`);
if (a.scale !== b.scale) console.log("note: the scales differ, absolute figures are not comparable");
console.log("Shared machine: changes under ~10% are within the noise.\n");
const width = [44, 12, 12, 10, 7];
const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(width[i]) : String(c).padStart(width[i]))).join("");
console.log(line(["figure", "old", "new", "change", ""]));
console.log("-".repeat(width.reduce((s, x) => s + x, 0)));
for (const r of rows) console.log(line(r));
