// The duplicate scan as the review queue shows it: the last scheduled run (GET
// /duplicates/scan, administrators) and the run "Scan now" starts (POST /duplicates/scan/run).

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
/** POST /api/v1/duplicates/scan/run. */
export interface ScanStarted {
  started: boolean;
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

/**
 * The run "Scan now" (POST /duplicates/scan/run) waits for: the recorded last run once it is not
 * the one recorded before the button was pressed (`before`: its started_at, null when none) and
 * no run is under way any more; null while it is still to come.
 */
export function runAfter(s: ScanStatus | null | undefined, before: string | null): ScanRun | null {
  const run = s?.last_run;
  if (!run || s?.running || run.started_at === before) return null;
  return run;
}
