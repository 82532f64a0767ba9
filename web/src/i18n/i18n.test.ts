// Every UI message key exists in both languages, is non-empty, and uses the same placeholders.
import { describe, expect, it } from 'vitest';
import en from './en';
import zhCN from './zh-CN';
import { detectLocale, pickLabel } from './index';

type Tree = { [k: string]: string | Tree };

function leaves(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out.set(path, v);
    else for (const [p, s] of leaves(v, path)) out.set(p, s);
  }
  return out;
}

function placeholders(s: string): string[] {
  return [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
}

describe('i18n completeness', () => {
  const enLeaves = leaves(en as unknown as Tree);
  const zhLeaves = leaves(zhCN as unknown as Tree);

  it('has a sizeable message set', () => {
    expect(enLeaves.size).toBeGreaterThan(100);
  });

  it('every English key exists in Chinese', () => {
    const missing = [...enLeaves.keys()].filter((k) => !zhLeaves.has(k));
    expect(missing).toEqual([]);
  });

  it('every Chinese key exists in English', () => {
    const missing = [...zhLeaves.keys()].filter((k) => !enLeaves.has(k));
    expect(missing).toEqual([]);
  });

  it('no message is empty', () => {
    const empty = [...enLeaves, ...zhLeaves].filter(([, v]) => v.trim() === '').map(([k]) => k);
    expect(empty).toEqual([]);
  });

  it('both languages use the same placeholders', () => {
    const diff = [...enLeaves.keys()].filter(
      (k) => placeholders(enLeaves.get(k)!).join() !== placeholders(zhLeaves.get(k) ?? '').join(),
    );
    expect(diff).toEqual([]);
  });

  it('messages avoid vue-i18n special characters that would break compilation', () => {
    const bad = [...enLeaves, ...zhLeaves].filter(([, v]) => /[@|$]/.test(v)).map(([k]) => k);
    expect(bad).toEqual([]);
  });
});

describe('locale detection', () => {
  it('prefers the stored choice', () => {
    expect(detectLocale('en', 'zh-CN')).toBe('en');
    expect(detectLocale('zh-CN', 'en-US')).toBe('zh-CN');
  });
  it('uses Chinese for zh browsers, English otherwise', () => {
    expect(detectLocale(null, 'zh-TW')).toBe('zh-CN');
    expect(detectLocale(null, 'zh')).toBe('zh-CN');
    expect(detectLocale(null, 'en-GB')).toBe('en');
    expect(detectLocale('fr', 'de-DE')).toBe('en');
    expect(detectLocale(null, undefined)).toBe('en');
  });
  it('picks metadata labels with fallback', () => {
    expect(pickLabel({ en: 'Account', 'zh-CN': '客户' }, 'zh-CN')).toBe('客户');
    expect(pickLabel({ en: 'Account' }, 'zh-CN')).toBe('Account');
    expect(pickLabel(undefined, 'en', 'name')).toBe('name');
    expect(pickLabel('Plain', 'en')).toBe('Plain');
  });
});

describe('keys used in the source exist', () => {
  // Static t('a.b') / te('a.b') calls in components and modules; dynamic keys are checked by the
  // completeness tests above through their fixed prefixes.
  const sources = import.meta.glob(['../**/*.vue', '../**/*.ts', '!../**/*.test.ts'], {
    query: '?raw',
    import: 'default',
    eager: true,
  }) as Record<string, string>;
  const enLeaves = leaves(en as unknown as Tree);

  it('finds source files', () => {
    expect(Object.keys(sources).length).toBeGreaterThan(20);
  });

  it('every literal key resolves to an English message', () => {
    const missing: string[] = [];
    let checked = 0;
    for (const [file, text] of Object.entries(sources)) {
      for (const m of text.matchAll(/\bt\(\s*'([a-zA-Z0-9_.-]+)'/g)) {
        checked++;
        if (!enLeaves.has(m[1])) missing.push(`${file}: ${m[1]}`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(missing).toEqual([]);
  });
});
