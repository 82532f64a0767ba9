// The API client: problem+json parsing into ApiError, CSRF header on writes, If-Match, 401 redirect.
import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, buildQuery, ifMatch, parseProblem, problemToError } from './client';

function problemResponse(status: number, body: unknown, contentType = 'application/problem+json'): Response {
  return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': contentType },
  });
}

function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

describe('problem+json parsing', () => {
  it('reads code, field, detail and title', async () => {
    const err = await parseProblem(
      problemResponse(400, {
        type: 'https://rapport.dev/problems/validation_failed',
        title: 'Validation failed',
        status: 400,
        detail: 'emails[0] is not a valid e-mail address',
        code: 'validation_failed',
        field: 'emails',
      }),
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.code).toBe('validation_failed');
    expect(err.field).toBe('emails');
    expect(err.detail).toBe('emails[0] is not a valid e-mail address');
    expect(err.title).toBe('Validation failed');
    expect(err.message).toBe('emails[0] is not a valid e-mail address');
  });

  it('falls back to the type URI when code is missing', () => {
    const err = problemToError(409, { type: 'https://rapport.dev/problems/conflict', title: 'Conflict' });
    expect(err.code).toBe('conflict');
    expect(err.field).toBeNull();
    expect(err.title).toBe('Conflict');
  });

  it('falls back to the HTTP status for non-JSON bodies', async () => {
    const err = await parseProblem(new Response('<html>Bad gateway</html>', { status: 502 }));
    expect(err.status).toBe(502);
    expect(err.code).toBe('internal');
    expect(err.detail).toContain('Bad gateway');
    expect(problemToError(429, '').code).toBe('rate_limited');
    expect(problemToError(404, null).code).toBe('not_found');
    expect(problemToError(413, []).code).toBe('too_large');
  });

  it('ignores an empty field and a non-string code', () => {
    const err = problemToError(400, { code: 42, field: '', detail: 'x' });
    expect(err.code).toBe('bad_request');
    expect(err.field).toBeNull();
  });
});

describe('ApiClient requests', () => {
  it('sends credentials, JSON and the CSRF token on non-GET requests only', async () => {
    const fetch = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) =>
      jsonResponse({ user: { id: '1', username: 'admin' }, csrf_token: 'tok-123' }),
    );
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, onUnauthenticated: () => {} });
    await client.login('admin', 'secret');
    expect(client.csrfToken).toBe('tok-123');
    const loginInit = fetch.mock.calls[0][1]!;
    expect(loginInit.credentials).toBe('same-origin');
    expect(JSON.parse(String(loginInit.body))).toEqual({ username: 'admin', password: 'secret' });

    fetch.mockImplementation(async () => jsonResponse({ items: [], next_cursor: null }));
    await client.list('accounts', { q: '北京', sort: '-created_at', fields: ['name', 'phones'], limit: 20 });
    const [getUrl, getInit] = fetch.mock.calls[1];
    expect(String(getUrl)).toBe(
      '/api/v1/accounts?sort=-created_at&limit=20&fields=name%2Cphones&q=%E5%8C%97%E4%BA%AC',
    );
    expect((getInit!.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined();

    fetch.mockImplementation(async () => jsonResponse({ id: '9', version: 3 }, 200, { ETag: '"3"' }));
    const r = await client.update('accounts', '9', { name: 'x' }, ifMatch(2));
    const headers = fetch.mock.calls[2][1]!.headers as Record<string, string>;
    expect(headers['X-CSRF-Token']).toBe('tok-123');
    expect(headers['If-Match']).toBe('"2"');
    expect(headers['Content-Type']).toBe('application/json');
    expect(fetch.mock.calls[2][1]!.method).toBe('PATCH');
    expect(r.etag).toBe('"3"');
  });

  it('reads whether a search answer is the fuzzy ("did you mean") fallback', async () => {
    const hit = { entity: 'account', plural: 'accounts', id: '7', title: 'Zenith Textiles' };
    const fetch = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) => jsonResponse({ items: [hit], fuzzy: true }));
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, onUnauthenticated: () => {} });
    expect(await client.searchResult('Zenitth Textils', { limit: 12 })).toEqual({ items: [hit], fuzzy: true });
    expect(String(fetch.mock.calls[0][0])).toBe('/api/v1/search?q=Zenitth+Textils&limit=12');
    fetch.mockImplementation(async () => jsonResponse({ items: [] }));
    expect(await client.searchResult('zz')).toEqual({ items: [], fuzzy: false });
    fetch.mockImplementation(async () => jsonResponse({ items: [hit], fuzzy: false }));
    expect(await client.search('Zenith')).toEqual([hit]);
    // a large import's records not yet in the search index
    fetch.mockImplementation(async () => jsonResponse({ items: [], fuzzy: false, index_pending: true }));
    expect(await client.searchResult('zz')).toEqual({ items: [], fuzzy: false, indexPending: true });
  });

  it('throws ApiError with the problem on failure', async () => {
    const fetch = vi.fn(async () =>
      problemResponse(409, { code: 'conflict', status: 409, title: 'Conflict', detail: 'version is 4, not 3' }),
    );
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, onUnauthenticated: () => {} });
    await expect(client.update('accounts', '1', { name: 'y' }, '"3"')).rejects.toMatchObject({
      status: 409,
      code: 'conflict',
      detail: 'version is 4, not 3',
    });
  });

  it('redirects to the login page on 401 with the current URL, but not for the login call itself', async () => {
    const onUnauthenticated = vi.fn();
    const fetch = vi.fn(async () => problemResponse(401, { code: 'unauthenticated', status: 401 }));
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, onUnauthenticated });
    client.csrfToken = 'old';
    window.history.replaceState(null, '', '/accounts?q=abc');
    await expect(client.list('accounts')).rejects.toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(onUnauthenticated).toHaveBeenCalledWith('/accounts?q=abc');
    expect(client.csrfToken).toBeNull();

    onUnauthenticated.mockClear();
    fetch.mockImplementation(async () => problemResponse(401, { code: 'invalid_credentials', status: 401 }));
    await expect(client.login('a', 'b')).rejects.toMatchObject({ code: 'invalid_credentials' });
    expect(onUnauthenticated).not.toHaveBeenCalled();
  });

  it('maps network failures to code "network"', async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch });
    await expect(client.metadata()).rejects.toMatchObject({ status: 0, code: 'network' });
  });

  it('handles 204 answers and keeps 64-bit ids as strings', async () => {
    const fetch = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) => new Response(null, { status: 204 }));
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch });
    await expect(client.remove('accounts', '7301234567890123456')).resolves.toBeUndefined();
    expect(String(fetch.mock.calls[0][0])).toBe('/api/v1/accounts/7301234567890123456');
  });
});

describe('query building', () => {
  it('encodes filters as JSON and skips empty values', () => {
    const qs = buildQuery({ filter: { field: 'name', op: 'contains', value: 'A&B' }, q: '', cursor: undefined });
    expect(qs).toBe('?filter=' + encodeURIComponent(JSON.stringify({ field: 'name', op: 'contains', value: 'A&B' })).replace(/%20/g, '+'));
    expect(new URLSearchParams(qs.slice(1)).get('filter')).toBe('{"field":"name","op":"contains","value":"A&B"}');
  });

  it('builds the CSV export URL with filter, sort and fields', () => {
    const client = new ApiClient();
    const url = client.exportUrl('accounts', {
      filter: { field: 'tier', op: '=', value: 'gold' },
      sort: 'name',
      fields: ['name', 'tier'],
    });
    const u = new URL(url, 'http://x');
    expect(u.pathname).toBe('/api/v1/accounts/export.csv');
    expect(JSON.parse(u.searchParams.get('filter')!)).toEqual({ field: 'tier', op: '=', value: 'gold' });
    expect(u.searchParams.get('sort')).toBe('name');
    expect(u.searchParams.get('fields')).toBe('name,tier');
    expect(u.searchParams.has('q')).toBe(false);
  });

  it('builds the Excel and vCard export URLs with the quick search; a vCard takes no columns', () => {
    const client = new ApiClient();
    const params = { filter: { field: 'tier', op: '=', value: 'gold' } as const, q: ' 北京 ', sort: 'name', fields: ['name', 'tier'] };
    const x = new URL(client.exportUrl('accounts', params, 'xlsx'), 'http://x');
    expect(x.pathname).toBe('/api/v1/accounts/export.xlsx');
    expect(x.searchParams.get('q')).toBe('北京');
    expect(x.searchParams.get('fields')).toBe('name,tier');
    const v = new URL(client.exportUrl('contacts', params, 'vcf'), 'http://x');
    expect(v.pathname).toBe('/api/v1/contacts/export.vcf');
    expect(v.searchParams.get('q')).toBe('北京');
    expect(v.searchParams.get('sort')).toBe('name');
    expect(v.searchParams.has('fields')).toBe(false);
  });
});
