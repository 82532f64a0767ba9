// Titles of referenced records (e.g. the account name behind account_id), fetched in batches per
// target entity with one filtered list request, and kept in a reactive cache.
import { reactive } from 'vue';
import { api } from '../api/client';
import type { EntityMeta, RecordData } from '../api/types';
import { entityByName, recordTitle, titleField } from '../metadata/store';

export const refTitles = reactive(new Map<string, string>());
const pending = new Set<string>();

const key = (entity: string, id: string) => `${entity}:${id}`;

export function refTitle(entity: string | null | undefined, id: unknown): string | undefined {
  if (!entity || id === null || id === undefined || id === '') return undefined;
  return refTitles.get(key(entity, String(id)));
}

export function rememberRecordTitle(entity: EntityMeta, record: RecordData): void {
  refTitles.set(key(entity.name, String(record.id)), recordTitle(entity, record));
}

/** Fetches the titles of the given ids that are not known yet. Errors are ignored (ids stay shown). */
export async function resolveRefs(entityName: string, ids: unknown[]): Promise<void> {
  const target = entityByName(entityName);
  if (!target) return;
  const missing = [
    ...new Set(ids.filter((x) => x !== null && x !== undefined && x !== '').map(String)),
  ].filter((id) => !refTitles.has(key(target.name, id)) && !pending.has(key(target.name, id)));
  if (!missing.length) return;
  missing.forEach((id) => pending.add(key(target.name, id)));
  try {
    for (let i = 0; i < missing.length; i += 100) {
      const chunk = missing.slice(i, i + 100);
      const res = await api.list(target.plural, {
        filter: { field: 'id', op: 'in', value: chunk },
        fields: [titleField(target)],
        limit: chunk.length,
      });
      for (const r of res.items) rememberRecordTitle(target, r);
    }
  } catch {
    /* titles are a nicety */
  } finally {
    missing.forEach((id) => pending.delete(key(target.name, id)));
  }
}

/** Resolves every reference field's titles for a set of records. */
export function resolveRecordRefs(entity: EntityMeta, records: RecordData[], fieldNames?: string[]): void {
  for (const f of entity.fields) {
    if (f.type !== 'reference' || !f.reference) continue;
    if (fieldNames && !fieldNames.includes(f.name)) continue;
    void resolveRefs(
      f.reference,
      records.map((r) => r[f.name]),
    );
  }
}
