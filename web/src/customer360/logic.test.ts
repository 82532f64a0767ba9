import { describe, expect, it } from 'vitest';
import {
  channelParam,
  compareIds,
  differingFields,
  lookupAction,
  looksLikePhone,
  matchPath,
  mergeRequest,
  newestFirst,
  scorePercent,
  toggleChannel,
} from './logic';

const m = (id: string, plural = 'contacts') => ({ entity: plural.slice(0, -1), plural, id, title: `t${id}` });

describe('phone lookup', () => {
  it('no match → a new contact prefilled with the normalised number (or the typed one)', () => {
    expect(lookupAction('010-6253 1234', { number: '010-6253 1234', e164: '+861062531234', matches: [] })).toEqual({
      kind: 'new',
      path: '/contacts/new',
      query: { phones: '+861062531234' },
    });
    expect(lookupAction(' 12345 ', { number: '12345', matches: [] })).toMatchObject({ query: { phones: '12345' } });
  });
  it('one match opens it; an account opens on its 360 page', () => {
    expect(lookupAction('x', { number: 'x', matches: [m('9007199254740993')] })).toEqual({
      kind: 'open',
      path: '/contacts/9007199254740993',
    });
    expect(matchPath(m('5', 'accounts'))).toBe('/accounts/5/360');
  });
  it('several matches → a pick list', () => {
    const r = lookupAction('x', { number: 'x', matches: [m('1'), m('2', 'accounts')] });
    expect(r.kind).toBe('pick');
    expect(r.kind === 'pick' && r.matches.length).toBe(2);
  });
  it('recognises phone-like input', () => {
    expect(looksLikePhone('+86 10 6253-1234')).toBe(true);
    expect(looksLikePhone('(010) 62531234')).toBe(true);
    expect(looksLikePhone('1234')).toBe(false);
    expect(looksLikePhone('张三 138')).toBe(false);
  });
});

describe('timeline channel chips', () => {
  it('toggles and builds the channel parameter in the metadata order', () => {
    let s: string[] = [];
    s = toggleChannel(s, 'visit');
    s = toggleChannel(s, 'phone');
    expect(channelParam(s, ['visit', 'phone', 'email'])).toBe('visit,phone');
    s = toggleChannel(s, 'visit');
    expect(s).toEqual(['phone']);
    expect(channelParam([], ['visit'])).toBeUndefined();
    expect(channelParam(['bogus'], ['visit'])).toBeUndefined();
  });
});

describe('ordering', () => {
  it('sorts newest first, undated last, ties by id as big integers', () => {
    const items = [
      { id: '9007199254740993', d: '2024-01-01' },
      { id: '9007199254740995', d: '2024-01-01' },
      { id: '3', d: null },
      { id: '4', d: '2025-06-01T08:00:00Z' },
    ];
    expect(newestFirst(items, 'd').map((x) => x.id)).toEqual(['4', '9007199254740995', '9007199254740993', '3']);
    expect(compareIds('10', '9')).toBeGreaterThan(0);
  });
});

describe('duplicates', () => {
  const c = { id: '1', version: 1, entity: 'contact', record_a: '10', record_b: '20', score: 0.934 };
  it('merges the other record into the chosen survivor', () => {
    expect(mergeRequest(c, '20')).toEqual({ path: '/contacts/20/merge', body: { others: ['10'] } });
    expect(mergeRequest({ ...c, entity: 'account' }, '10')).toEqual({ path: '/accounts/10/merge', body: { others: ['20'] } });
    expect(() => mergeRequest(c, '30')).toThrow();
  });
  it('formats scores and finds differing fields', () => {
    expect(scorePercent(0.934)).toBe('93%');
    expect(scorePercent('0.9')).toBe('90%');
    expect(scorePercent(null)).toBe('—');
    const d = differingFields({ id: '1', version: 1, a: 'x', b: ['1'] }, { id: '2', version: 1, a: 'x', b: ['2'] }, ['a', 'b', 'c']);
    expect([...d]).toEqual(['b']);
  });
});

import { mayReviewDuplicates } from './logic';
describe('duplicate queue visibility', () => {
  it('admins and roles with a read scope see it; Sales (no entry) do not', () => {
    expect(mayReviewDuplicates({}, true)).toBe(true);
    expect(mayReviewDuplicates({ entities: { duplicate_candidate: { read: 'all' } } }, false)).toBe(true);
    expect(mayReviewDuplicates({ entities: { account: { read: 'all' } } }, false)).toBe(false);
    expect(mayReviewDuplicates({ entities: { duplicate_candidate: { read: 'none' } } }, false)).toBe(false);
    expect(mayReviewDuplicates(null, false)).toBe(true);
  });
});
