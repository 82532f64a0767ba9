import { describe, expect, it } from 'vitest';
import { formatDuration, runAfter, scanDurationMs, scanState, type ScanRun } from './scanStatus';

const run = (over: Partial<ScanRun> = {}): ScanRun => ({
  started_at: '2026-11-22T03:00:00.000Z',
  finished_at: '2026-11-22T03:00:01.250Z',
  scanned: 3000,
  pairs: 12,
  added: 4,
  changed_since: null,
  error: null,
  ...over,
});

describe('scan status', () => {
  it('tells none, ok and failed apart', () => {
    expect(scanState(null)).toBe('none');
    expect(scanState({ last_run: null })).toBe('none');
    expect(scanState({ last_run: run() })).toBe('ok');
    expect(scanState({ last_run: run({ error: 'interrupted (the server stopped)' }) })).toBe('failed');
    const running = { started_at: '2026-11-22T04:00:00Z', updated_at: '2026-11-22T04:00:09Z', scanned: 2000, pairs: 3, added: 1, changed_since: null };
    expect(scanState({ last_run: run({ error: 'boom' }), running })).toBe('running');
    expect(scanState({ last_run: null, running })).toBe('running');
    expect(scanState({ last_run: run(), running: null })).toBe('ok');
  });

  it('measures the duration from start to finish', () => {
    expect(scanDurationMs(run())).toBe(1250);
    expect(scanDurationMs(run({ finished_at: '2026-11-22T02:59:59Z' }))).toBe(0);
    expect(scanDurationMs(run({ finished_at: 'nonsense' }))).toBe(0);
  });

  it('formats durations in the locale', () => {
    expect(formatDuration(850, 'en')).toBe('850 ms');
    expect(formatDuration(1250, 'en')).toBe('1.3 sec');
    expect(formatDuration(185_000, 'en')).toBe('3 min 5 sec');
    expect(formatDuration(2 * 3600_000 + 4 * 60_000, 'en')).toBe('2 hr 4 min');
    expect(formatDuration(1250, 'zh-CN')).toBe('1.3秒');
    expect(formatDuration(185_000, 'zh-CN')).toBe('3分钟 5秒');
  });

  it('waits for a run newer than the one recorded before "Scan now", and for its end', () => {
    const old = run({ started_at: '2026-11-22T10:00:00.000Z' });
    const fresh = run({ started_at: '2026-11-22T11:00:00.000Z' });
    const progress = { started_at: fresh.started_at, updated_at: fresh.started_at, scanned: 5, pairs: 0, added: 0, changed_since: null };
    expect(runAfter({ last_run: old, running: null }, old.started_at)).toBeNull();
    expect(runAfter({ last_run: old, running: progress }, old.started_at)).toBeNull();
    expect(runAfter({ last_run: fresh, running: progress }, old.started_at)).toBeNull();
    expect(runAfter({ last_run: fresh, running: null }, old.started_at)).toBe(fresh);
    expect(runAfter({ last_run: null, running: null }, null)).toBeNull();
    expect(runAfter({ last_run: fresh, running: null }, null)).toBe(fresh);
    expect(runAfter(null, null)).toBeNull();
  });
});
