// Sets up vue-i18n with the two UI languages and remembers the user's choice in localStorage.
import { createI18n } from 'vue-i18n';
import en from './en';
import zhCN from './zh-CN';
import type { LocalizedLabel } from '../api/types';

export const LOCALES = [
  { code: 'zh-CN', name: '简体中文' },
  { code: 'en', name: 'English' },
] as const;
export type Locale = (typeof LOCALES)[number]['code'];

export const LOCALE_STORAGE_KEY = 'rapport.locale';

function isLocale(v: unknown): v is Locale {
  return v === 'en' || v === 'zh-CN';
}

/** The stored choice, else zh-CN for a browser whose language starts with "zh", else English. */
export function detectLocale(
  stored: string | null = safeStorageGet(LOCALE_STORAGE_KEY),
  navLang: string | undefined = typeof navigator !== 'undefined' ? navigator.language : undefined,
): Locale {
  if (isLocale(stored)) return stored;
  return navLang && navLang.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

function safeStorageGet(key: string): string | null {
  try {
    return typeof localStorage !== 'undefined' ? localStorage.getItem(key) : null;
  } catch {
    return null;
  }
}

export const messages = { en, 'zh-CN': zhCN };

export function makeI18n(locale: Locale = detectLocale()) {
  return createI18n({
    legacy: false,
    locale,
    fallbackLocale: 'en',
    messages,
    missingWarn: false,
    fallbackWarn: false,
  });
}

export const i18n = makeI18n();

export function currentLocale(): Locale {
  return i18n.global.locale.value as Locale;
}

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale;
  try {
    localStorage.setItem(LOCALE_STORAGE_KEY, locale);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  if (typeof document !== 'undefined') document.documentElement.lang = locale;
}

/** Picks the text of a metadata label for a locale, falling back to English, then any language. */
export function pickLabel(label: LocalizedLabel | string | null | undefined, locale: string, fallback = ''): string {
  if (!label) return fallback;
  if (typeof label === 'string') return label;
  return label[locale] || label.en || label['zh-CN'] || Object.values(label).find((v) => !!v) || fallback;
}
