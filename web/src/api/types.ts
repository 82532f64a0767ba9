// Types of the Rapport REST API v1 as described in docs/API.md (the server's contract). Where the
// OpenAPI spec describes a shape, the type is taken from (or checked against) the generated openapi.ts.
import type { components } from './openapi';

export type Id = string;

/** A label in every UI language, as the metadata sends it: {"en": "...", "zh-CN": "..."}. */
export type LocalizedLabel = Partial<Record<'en' | 'zh-CN', string>> & Record<string, string | undefined>;

export type FieldType =
  | 'text'
  | 'long_text'
  | 'integer'
  | 'decimal'
  | 'money'
  | 'boolean'
  | 'date'
  | 'datetime'
  | 'enum'
  | 'multi_enum'
  | 'phone_list'
  | 'email_list'
  | 'address'
  | 'reference'
  | 'json';

export const FIELD_TYPES: FieldType[] = [
  'text',
  'long_text',
  'integer',
  'decimal',
  'money',
  'boolean',
  'date',
  'datetime',
  'enum',
  'multi_enum',
  'phone_list',
  'email_list',
  'address',
  'reference',
  'json',
];

export interface FieldOption {
  value: string;
  label?: LocalizedLabel;
}

export interface FieldMeta {
  name: string;
  type: FieldType;
  label?: LocalizedLabel;
  required?: boolean;
  unique?: boolean;
  max_length?: number | null;
  pattern?: string | null;
  options?: FieldOption[];
  searchable?: boolean;
  indexed?: boolean;
  /** Target entity name for reference fields (e.g. "account"). */
  reference?: string | null;
  readonly?: boolean;
  custom?: boolean;
  /** Section the field is shown in on the record page; a key or a localized label. */
  section?: string | LocalizedLabel | null;
  /** The caller's right on this field: "read" or "write" (hidden fields are left out). */
  permission?: string | null;
  /** A system field (id, version, created_at, …, owner_id, team_id). */
  system?: boolean;
  /** The value a new record gets when none is sent (e.g. account.kind = "company"). */
  default?: unknown;
  /**
   * A conditional requirement: the field must have a value while the record's field `field` holds
   * `equals` (account.account_manager_id: {"field": "key_account", "equals": true}).
   */
  required_when?: { field: string; equals: unknown } | null;
}

export interface EntityMeta {
  name: string;
  plural: string;
  label?: LocalizedLabel;
  /** Optional plural label; the server may send it. */
  label_plural?: LocalizedLabel;
  title_field?: string;
  fields: FieldMeta[];
}

export interface Metadata {
  entities: EntityMeta[];
}

export interface RecordData {
  id: Id;
  version: number;
  created_at?: string;
  updated_at?: string;
  created_by?: Id | null;
  updated_by?: Id | null;
  owner_id?: Id | null;
  team_id?: Id | null;
  [field: string]: unknown;
}

export interface ListResponse<T = RecordData> {
  items: T[];
  next_cursor: string | null;
  /** true when the list was narrowed by `q` while the entity's search index is being built
   *  (after a large import): recently imported records may be missing; absent otherwise. */
  index_pending?: boolean;
}

export interface HistoryChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface HistoryEntry {
  at: string;
  user_id?: Id | null;
  user_name?: string | null;
  channel?: string | null;
  action?: string | null;
  changes?: HistoryChange[];
}

/** A search hit: the spec's SearchResult item, every property present. */
/** The answer of GET /{plural}/aggregate (docs/API.md, "Aggregates"), as the spec describes it. */
export type AggregateAnswer = components['schemas']['Aggregate'];
/** A group value: typed as in records (ids and months as strings), null for records without one. */
export type AggValue = AggregateAnswer['groups'][number]['values'][number];

export type SearchHit = Required<NonNullable<components['schemas']['SearchResult']['items']>[number]>;

export interface User {
  id: Id;
  username?: string;
  name?: string;
  display_name?: string;
  role?: string | null;
  role_id?: Id | null;
  role_name?: string | null;
  is_admin?: boolean;
  team_id?: Id | null;
  [key: string]: unknown;
}

export interface SessionInfo {
  user: User;
  csrf_token: string;
  permissions?: unknown;
}

export interface Money {
  amount: number;
  currency: string;
}

export interface ListItemValue {
  value: string;
  label?: string;
}

export interface Address {
  street?: string;
  city?: string;
  region?: string;
  postal_code?: string;
  country?: string;
}

/** The JSON filter expression of docs/API.md. */
export type FilterOp =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'in'
  | 'not_in'
  | 'between'
  | 'contains'
  | 'starts_with'
  | 'is_null';

export interface FilterCondition {
  field: string;
  op: FilterOp;
  value: unknown;
}

export type FilterExpr = FilterCondition | { and: FilterExpr[] } | { or: FilterExpr[] } | { not: FilterExpr };

export interface ListParams {
  filter?: FilterExpr | null;
  sort?: string;
  limit?: number;
  cursor?: string | null;
  fields?: string[];
  q?: string;
  deleted?: boolean;
}

/** The body of an application/problem+json answer (RFC 9457) with Rapport's extensions. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  field?: string | null;
  [key: string]: unknown;
}

/** One row's problem in an import answer. */
export interface ImportRowError {
  row: number;
  field?: string;
  code: string;
  message: string;
}

/** The answer of POST /{plural}/import (dry run: would_create/would_update; commit: created/updated). */
export interface ImportResult {
  import_id: Id;
  entity: string;
  mode: 'dry_run' | 'commit';
  rows: number;
  valid: number;
  created?: number;
  updated?: number;
  would_create?: number;
  would_update?: number;
  skipped: number;
  skipped_rows: number[];
  errors: ImportRowError[];
  error_count: number;
  errors_truncated?: boolean;
  columns: { column: string; field: string }[];
  ignored_columns: { column: string; reason: string }[];
  /** true: saved and readable, the search index still built in the background (the run's index_status) */
  index_pending?: boolean;
  report: string;
}

// A problem the spec describes is a Problem here (compile-time check).
const problemFitsSpec: components['schemas']['Problem'] extends Problem ? true : never = true;
void problemFitsSpec;

/** Every entity's record as the spec describes it (e.g. SpecRecord<'account'>). */
export type SpecRecord<N extends keyof components['schemas']> = components['schemas'][N];
/** The system fields RecordData names, as the spec declares them on every record. */
export type SpecSystemFields = Pick<
  SpecRecord<'account'>,
  'id' | 'version' | 'created_at' | 'updated_at' | 'created_by' | 'updated_by' | 'owner_id' | 'team_id'
>;
