// The duplicate scan as the review queue shows it: the last scheduled run (GET
// /duplicates/scan, administrators) and the answer of a scan started by hand (POST).

/** `last_run` of GET /api/v1/duplicates/scan (docs/API.md, "Scheduled scan"). */
export interface ScanRun {
  started_at: string;
  finished_at: string;
  scanned: number;
  pairs: number;
  added: number;
  changed_since: string | null;
  error: string | null;
}
/** `running` of GET /api/v1/duplicates/scan: the scheduled run under way, as of `updated_at`. */
export interface ScanProgress {
  started_at: string;
  updated_at: string;
  scanned: number;
  pairs: number;
  added: number;
  changed_since: string | null;
}
export interface ScanStatus {
  last_run: ScanRun | null;
  running?: ScanProgress | null;
}
/** POST /api/v1/duplicates/scan. */
export interface ScanAnswer {
  results: { entity: string; scanned: number; pairs: number; added: number; next_after: string | null }[];
  elapsed_ms: number;
}

export type ScanState = 'none' | 'running' | 'ok' | 'failed';

export function scanState(s: ScanStatus | null | undefined): ScanState {
  if (s?.running) return 'running';
  if (!s?.last_run) return 'none';
  return s.last_run.error ? 'failed' : 'ok';
}

/** Milliseconds from start to finish (0 when either time is unreadable or they are reversed). */
export function scanDurationMs(run: Pick<ScanRun, 'started_at' | 'finished_at'>): number {
  const ms = Date.parse(run.finished_at) - Date.parse(run.started_at);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/** "850 ms", "1.2 s", "3 min 5 s", "2 h 4 min" — units with Intl, in the user's locale. */
export function formatDuration(ms: number, locale: string): string {
  const unit = (n: number, u: string, digits = 0) =>
    new Intl.NumberFormat(locale, { style: 'unit', unit: u, unitDisplay: 'short', maximumFractionDigits: digits }).format(n);
  if (ms < 1000) return unit(Math.round(ms), 'millisecond');
  if (ms < 60_000) return unit(ms / 1000, 'second', 1);
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${unit(Math.floor(s / 60), 'minute')} ${unit(s % 60, 'second')}`;
  const m = Math.round(s / 60);
  return `${unit(Math.floor(m / 60), 'hour')} ${unit(m % 60, 'minute')}`;
}

/** Totals of a scan started by hand: records read, pairs found, pairs new to the queue. */
export function scanTotals(a: ScanAnswer): { scanned: number; pairs: number; added: number } {
  return (a.results ?? []).reduce(
    (t, r) => ({ scanned: t.scanned + (r.scanned ?? 0), pairs: t.pairs + (r.pairs ?? 0), added: t.added + (r.added ?? 0) }),
    { scanned: 0, pairs: 0, added: 0 },
  );
}
