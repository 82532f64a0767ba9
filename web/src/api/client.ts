// Typed fetch client for the Rapport REST API v1 (docs/API.md): session cookie + CSRF header,
// problem+json errors turned into ApiError, and a 401 hook that sends the user back to the login page.
import type {
  EntityMeta,
  FieldMeta,
  FilterExpr,
  HistoryEntry,
  ImportResult,
  ListParams,
  ListResponse,
  Metadata,
  Problem,
  RecordData,
  SearchHit,
  SessionInfo,
} from './types';

import { unloadState } from '../util/unload';

export const API_BASE = '/api/v1';

/** An error answer from the server (or the network), with the problem+json fields pulled out. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  readonly detail: string;
  readonly title: string;
  readonly problem: Problem | null;

  constructor(init: {
    status: number;
    code: string;
    field?: string | null;
    detail?: string;
    title?: string;
    problem?: Problem | null;
  }) {
    super(init.detail || init.title || init.code);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    this.field = init.field ?? null;
    this.detail = init.detail ?? '';
    this.title = init.title ?? '';
    this.problem = init.problem ?? null;
  }
}

/** The stable code a bare HTTP status stands for when the body carries none. */
export function codeForStatus(status: number): string {
  switch (status) {
    case 0:
      return 'network';
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthenticated';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 412:
    case 428:
      return 'precondition_required';
    case 413:
      return 'too_large';
    case 422:
      return 'rule_violation';
    case 429:
      return 'rate_limited';
    case 503:
      return 'busy';
    default:
      return status >= 500 ? 'internal' : 'bad_request';
  }
}

/** Turns a problem+json body (already parsed, or raw text) into an ApiError. Never throws. */
export function problemToError(status: number, body: unknown): ApiError {
  let problem: Problem | null = null;
  if (typeof body === 'string') {
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) problem = parsed as Problem;
    } catch {
      problem = null;
    }
  } else if (body && typeof body === 'object' && !Array.isArray(body)) {
    problem = body as Problem;
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  let code = str(problem?.code);
  if (!code) {
    // Fall back to the last path segment of the problem type URI, then to the HTTP status.
    const type = str(problem?.type);
    const m = type?.match(/\/problems\/([a-z_]+)$/);
    code = m ? m[1] : codeForStatus(status);
  }
  const problemStatus = typeof problem?.status === 'number' ? problem.status : undefined;
  return new ApiError({
    status: status || problemStatus || 0,
    code,
    field: str(problem?.field) ?? null,
    detail: str(problem?.detail) ?? (typeof body === 'string' && !problem ? body.slice(0, 300) : ''),
    title: str(problem?.title) ?? '',
    problem,
  });
}

/** Reads an error response: problem+json, any JSON, or text. */
export async function parseProblem(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    text = '';
  }
  const err = problemToError(res.status, text);
  return err;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
  /** A non-JSON body (e.g. CSV) sent as is with this content type. */
  raw?: { body: BodyInit; contentType: string };
  headers?: Record<string, string>;
  /** Do not run the 401 redirect (used by login and the session probe). */
  skipAuthRedirect?: boolean;
  signal?: AbortSignal;
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  etag: string | null;
  headers: Headers;
}

export interface ApiClientOptions {
  baseUrl?: string;
  fetch?: typeof fetch;
  /** Called on a 401 with the URL to come back to; default: go to /login?next=<url>. */
  onUnauthenticated?: (next: string) => void;
}

function currentUrl(): string {
  if (typeof window === 'undefined') return '/';
  const { pathname, search, hash } = window.location;
  return pathname + search + hash;
}

export function loginUrl(next: string): string {
  return '/login?next=' + encodeURIComponent(next);
}

/** Builds a query string; objects (filters) are sent as JSON, arrays (fields) comma-separated. */
export function buildQuery(params: Record<string, unknown>): string {
  const usp = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      if (value.length) usp.set(key, value.join(','));
    } else if (typeof value === 'object') {
      usp.set(key, JSON.stringify(value));
    } else {
      usp.set(key, String(value));
    }
  }
  const s = usp.toString();
  return s ? '?' + s : '';
}

export function listQuery(params: ListParams): Record<string, unknown> {
  return {
    filter: params.filter ?? undefined,
    sort: params.sort || undefined,
    limit: params.limit,
    cursor: params.cursor ?? undefined,
    fields: params.fields && params.fields.length ? params.fields : undefined,
    q: params.q?.trim() || undefined,
    deleted: params.deleted ? 'true' : undefined,
  };
}

/** An If-Match header value for a record version: the ETag the server sent, or "<version>". */
export function ifMatch(version: number | string, etag?: string | null): string {
  if (etag) return etag;
  return `"${version}"`;
}

export class ApiClient {
  csrfToken: string | null = null;
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  onUnauthenticated: (next: string) => void;

  constructor(opts: ApiClientOptions = {}) {
    this.baseUrl = opts.baseUrl ?? API_BASE;
    this.fetchImpl = opts.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
    this.onUnauthenticated =
      opts.onUnauthenticated ??
      ((next: string) => {
        if (typeof window !== 'undefined' && !window.location.pathname.startsWith('/login')) {
          // Nothing can be saved without a session: the unsaved-form guard must not hold the page.
          unloadState.forced = true;
          window.location.assign(loginUrl(next));
        }
      });
  }

  url(path: string, query?: Record<string, unknown>): string {
    return this.baseUrl + path + (query ? buildQuery(query) : '');
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { Accept: 'application/json', ...(opts.headers ?? {}) };
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    } else if (opts.raw) {
      headers['Content-Type'] = opts.raw.contentType;
      body = opts.raw.body;
    }
    if (method !== 'GET' && method !== 'HEAD' && this.csrfToken) {
      headers['X-CSRF-Token'] = this.csrfToken;
    }
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path, opts.query), {
        method,
        headers,
        body,
        credentials: 'same-origin',
        signal: opts.signal,
      });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new ApiError({ status: 0, code: 'network', detail: e instanceof Error ? e.message : String(e) });
    }
    if (!res.ok) {
      const err = await parseProblem(res);
      if (res.status === 401 && !opts.skipAuthRedirect) {
        this.csrfToken = null;
        this.onUnauthenticated(currentUrl());
      }
      throw err;
    }
    let data: unknown = null;
    if (res.status !== 204) {
      const text = await res.text();
      if (text) {
        const ct = res.headers.get('Content-Type') ?? '';
        data = ct.includes('json') || /^[[{]/.test(text.trim()) ? JSON.parse(text) : text;
      }
    }
    return { data: data as T, status: res.status, etag: res.headers.get('ETag'), headers: res.headers };
  }

  async get<T>(path: string, query?: RequestOptions['query'], signal?: AbortSignal): Promise<T> {
    return (await this.request<T>('GET', path, { query, signal })).data;
  }

  // --- session ---
  async login(username: string, password: string): Promise<SessionInfo> {
    const r = await this.request<SessionInfo>('POST', '/auth/login', {
      body: { username, password },
      skipAuthRedirect: true,
    });
    this.csrfToken = r.data.csrf_token ?? null;
    return r.data;
  }

  async me(): Promise<SessionInfo> {
    const r = await this.request<SessionInfo>('GET', '/auth/me', { skipAuthRedirect: true });
    this.csrfToken = r.data.csrf_token ?? null;
    return r.data;
  }

  async logout(): Promise<void> {
    try {
      await this.request('POST', '/auth/logout', { skipAuthRedirect: true });
    } finally {
      this.csrfToken = null;
    }
  }

  // --- metadata ---
  metadata(): Promise<Metadata> {
    return this.get<Metadata>('/metadata');
  }

  async addField(entity: string, field: Partial<FieldMeta> & { name: string; type: string }): Promise<FieldMeta> {
    return (await this.request<FieldMeta>('POST', `/metadata/${encodeURIComponent(entity)}/fields`, { body: field }))
      .data;
  }

  // --- records ---
  list<T = RecordData>(plural: string, params: ListParams = {}, signal?: AbortSignal): Promise<ListResponse<T>> {
    return this.get<ListResponse<T>>(`/${plural}`, listQuery(params) as RequestOptions['query'], signal);
  }

  async getRecord(plural: string, id: string): Promise<{ record: RecordData; etag: string | null }> {
    const r = await this.request<RecordData>('GET', `/${plural}/${encodeURIComponent(id)}`);
    return { record: r.data, etag: r.etag };
  }

  async create(plural: string, values: Record<string, unknown>, idempotencyKey?: string): Promise<RecordData> {
    const headers: Record<string, string> = {};
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    return (await this.request<RecordData>('POST', `/${plural}`, { body: values, headers })).data;
  }

  async update(
    plural: string,
    id: string,
    changes: Record<string, unknown>,
    match?: string | null,
  ): Promise<{ record: RecordData; etag: string | null }> {
    const headers: Record<string, string> = {};
    if (match) headers['If-Match'] = match;
    const r = await this.request<RecordData>('PATCH', `/${plural}/${encodeURIComponent(id)}`, {
      body: changes,
      headers,
    });
    return { record: r.data, etag: r.etag };
  }

  async remove(plural: string, id: string): Promise<void> {
    await this.request('DELETE', `/${plural}/${encodeURIComponent(id)}`);
  }

  async restore(plural: string, id: string): Promise<RecordData> {
    return (await this.request<RecordData>('POST', `/${plural}/${encodeURIComponent(id)}/restore`)).data;
  }

  async history(plural: string, id: string): Promise<HistoryEntry[]> {
    const r = await this.get<{ items: HistoryEntry[] }>(`/${plural}/${encodeURIComponent(id)}/history`);
    return r?.items ?? [];
  }

  async search(q: string, opts: { entity?: string; limit?: number } = {}, signal?: AbortSignal): Promise<SearchHit[]> {
    const r = await this.get<{ items: SearchHit[] }>('/search', { q, entity: opts.entity, limit: opts.limit }, signal);
    return r?.items ?? [];
  }

  /** Imports CSV text (docs/API.md "Import"): a dry run or a commit with an explicit column mapping. */
  async importCsv(
    plural: string,
    csv: string,
    params: { mode: 'dry_run' | 'commit'; mapping: Record<string, string>; upsert?: string; file_name?: string },
  ): Promise<ImportResult> {
    const query: Record<string, string | undefined> = {
      mode: params.mode,
      mapping: JSON.stringify(params.mapping),
      upsert: params.upsert || undefined,
      file_name: params.file_name || undefined,
    };
    return (
      await this.request<ImportResult>('POST', `/${plural}/import`, {
        query,
        raw: { body: csv, contentType: 'text/csv; charset=utf-8' },
      })
    ).data;
  }

  /** The URL of the CSV export of a list view (the browser downloads it with the session cookie). */
  exportUrl(plural: string, params: { filter?: FilterExpr | null; sort?: string; fields?: string[] }): string {
    return this.url(`/${plural}/export.csv`, {
      filter: params.filter ?? undefined,
      sort: params.sort || undefined,
      fields: params.fields,
    });
  }
}

/** The one client the app uses. */
export const api = new ApiClient();

export type { EntityMeta };
