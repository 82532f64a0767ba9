// The entity metadata (GET /api/v1/metadata) held for the whole app, and helpers that derive
// labels, titles, default columns and related lists from it. Nothing here names a specific entity
// except the navigation order, so custom entities and fields work without front-end changes.
import { reactive } from 'vue';
import { api } from '../api/client';
import type { EntityMeta, FieldMeta, FilterExpr, LocalizedLabel, RecordData } from '../api/types';
import { pickLabel } from '../i18n';

export const SYSTEM_FIELDS = [
  'id',
  'version',
  'created_at',
  'updated_at',
  'created_by',
  'updated_by',
  'owner_id',
  'team_id',
] as const;

/** Types of the system fields, so lists can show and sort them like declared fields. */
export const SYSTEM_FIELD_META: Record<string, FieldMeta> = {
  id: { name: 'id', type: 'text', readonly: true },
  version: { name: 'version', type: 'integer', readonly: true },
  created_at: { name: 'created_at', type: 'datetime', readonly: true, indexed: true },
  updated_at: { name: 'updated_at', type: 'datetime', readonly: true, indexed: true },
  created_by: { name: 'created_by', type: 'reference', reference: 'user', readonly: true },
  updated_by: { name: 'updated_by', type: 'reference', reference: 'user', readonly: true },
  owner_id: { name: 'owner_id', type: 'reference', reference: 'user', readonly: true },
  team_id: { name: 'team_id', type: 'reference', reference: 'team', readonly: true },
};

export const metadataState = reactive({
  entities: [] as EntityMeta[],
  loaded: false,
  error: null as unknown,
});

let loading: Promise<void> | null = null;

/** A system field (id, version, timestamps, owner, team): the server lists them in `fields` too. */
export function isSystemField(f: FieldMeta): boolean {
  return f.system === true || (SYSTEM_FIELDS as readonly string[]).includes(f.name);
}

export function setMetadata(entities: EntityMeta[]): void {
  metadataState.entities = entities.map((e) => ({ ...e, fields: e.fields ?? [] }));
  metadataState.loaded = true;
  metadataState.error = null;
}

export function loadMetadata(force = false): Promise<void> {
  if (metadataState.loaded && !force) return Promise.resolve();
  if (loading && !force) return loading;
  loading = api
    .metadata()
    .then((m) => setMetadata(m.entities ?? []))
    .catch((e) => {
      metadataState.error = e;
      throw e;
    })
    .finally(() => {
      loading = null;
    });
  return loading;
}

export function resetMetadata(): void {
  metadataState.entities = [];
  metadataState.loaded = false;
}

export function entityByPlural(plural: string): EntityMeta | undefined {
  return metadataState.entities.find((e) => e.plural === plural);
}

export function entityByName(name: string | null | undefined): EntityMeta | undefined {
  if (!name) return undefined;
  return metadataState.entities.find((e) => e.name === name) ?? metadataState.entities.find((e) => e.plural === name);
}

export function entityLabel(entity: EntityMeta | undefined, locale: string, plural = false): string {
  if (!entity) return '';
  if (plural && entity.label_plural) return pickLabel(entity.label_plural, locale, entity.plural);
  return pickLabel(entity.label, locale, plural ? entity.plural : entity.name);
}

export function humanize(name: string): string {
  const s = name.replace(/_id$/, '').replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function fieldLabel(field: FieldMeta | undefined, locale: string, systemLabel?: (name: string) => string): string {
  if (!field) return '';
  if (field.label) return pickLabel(field.label, locale, humanize(field.name));
  if (systemLabel && (SYSTEM_FIELDS as readonly string[]).includes(field.name)) return systemLabel(field.name);
  return humanize(field.name);
}

export function optionLabel(field: FieldMeta, value: unknown, locale: string): string {
  const opt = field.options?.find((o) => o.value === value);
  return opt ? pickLabel(opt.label as LocalizedLabel, locale, String(opt.value)) : String(value ?? '');
}

/** A field of the entity, or a system field. */
export function findField(entity: EntityMeta, name: string): FieldMeta | undefined {
  return entity.fields.find((f) => f.name === name) ?? SYSTEM_FIELD_META[name];
}

export function titleField(entity: EntityMeta): string {
  if (entity.title_field) return entity.title_field;
  const f = entity.fields.find((x) => x.name === 'name' || x.name === 'title' || x.name === 'subject');
  return f?.name ?? entity.fields.find((x) => x.type === 'text')?.name ?? 'id';
}

/**
 * How a picker narrows an entity's list to typed text: full-text `q` when the entity has searchable
 * fields, else (roles, for one: the server refuses `q` there) its title field `contains` the text.
 */
export function textSearchParams(entity: EntityMeta, text: string): { q?: string; filter?: FilterExpr } {
  const typed = text.trim();
  if (!typed) return {};
  if (entity.fields.some((f) => f.searchable)) return { q: typed };
  const field = titleField(entity);
  return field === 'id' ? {} : { filter: { field, op: 'contains', value: typed } };
}

export function recordTitle(entity: EntityMeta | undefined, record: Partial<RecordData> | null | undefined): string {
  if (!record) return '';
  if (!entity) return String(record.id ?? '');
  const v = record[titleField(entity)];
  if (v === null || v === undefined || v === '') return `#${record.id ?? ''}`;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const WIDE_TYPES = new Set(['long_text', 'json', 'address']);

/** Title field first, then up to five short declared fields. */
export function defaultColumns(entity: EntityMeta): string[] {
  const title = titleField(entity);
  const cols = [title];
  for (const f of entity.fields) {
    if (cols.length >= 6) break;
    if (f.name === title || WIDE_TYPES.has(f.type) || f.name === 'password' || isSystemField(f)) continue;
    cols.push(f.name);
  }
  return cols;
}

/** Fields that can be sorted on: indexed declared fields and the time-ordered system fields. */
export function isSortable(entity: EntityMeta, name: string): boolean {
  const f = findField(entity, name);
  return !!f?.indexed || name === 'id';
}

export interface RelatedList {
  entity: EntityMeta;
  field: FieldMeta;
}

/** Every (entity, reference field) that points at the given entity: its related lists. */
export function relatedLists(entityName: string): RelatedList[] {
  const out: RelatedList[] = [];
  for (const e of metadataState.entities) {
    for (const f of e.fields) {
      // Not the system references (id, created_by, owner_id, …): every record has those.
      if (f.type === 'reference' && f.reference === entityName && !isSystemField(f)) out.push({ entity: e, field: f });
    }
  }
  return out;
}

/** Fields shown and edited in forms: declared ones, without read-only system data. */
export function formFields(entity: EntityMeta): FieldMeta[] {
  // System fields are read-only, except where an entity declares one as its own editable field
  // (e.g. a user's team_id).
  return entity.fields.filter(
    (f) => !(SYSTEM_FIELDS as readonly string[]).includes(f.name) || ((f.name === 'owner_id' || f.name === 'team_id') && !f.readonly),
  );
}

export function isFieldReadonly(f: FieldMeta): boolean {
  return !!f.readonly || f.permission === 'read' || f.permission === 'hidden';
}

/** The section a field is shown in; custom fields without one gather in "custom". */
export function sectionKey(f: FieldMeta): string {
  const s = f.section;
  if (!s) return f.custom ? 'custom' : '';
  return typeof s === 'string' ? s : s.en || Object.values(s)[0] || '';
}
