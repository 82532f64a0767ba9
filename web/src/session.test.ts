// Who counts as an administrator (shows Settings) for the shapes the server may send.
import { describe, expect, it } from 'vitest';
import { isAdminUser } from './session';

describe('admin detection', () => {
  it('accepts the usual shapes of user and permissions', () => {
    expect(isAdminUser(null, null)).toBe(false);
    expect(isAdminUser({ id: '1', is_admin: true }, null)).toBe(true);
    expect(isAdminUser({ id: '1', role: 'admin' }, null)).toBe(true);
    expect(isAdminUser({ id: '1', role: 'sales' }, { admin: true })).toBe(true);
    expect(isAdminUser({ id: '1', role: 'sales' }, { entities: { role: { update: 'all' } } })).toBe(true);
    expect(isAdminUser({ id: '1', role: 'sales' }, { entities: { account: { read: 'all' } } })).toBe(false);
  });
});
