// The generic record pipeline: every entity's create/read/update/delete/list/search/history/
// export goes through here — validate → access check → before-hooks → write → audit →
// after-hooks → commit → record event — in one transaction per request. Thread-safe; holds no
// per-request state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "access/access.h"
#include "base/clock.h"
#include "core/json.h"
#include "record/answer_cache.h"
#include "record/dedupe.h"
#include "record/events.h"
#include "record/query.h"
#include "record/row_json.h"
#include "record/small_document.h"
#include "record/table.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;
// Data rows of one Excel sheet (Excel's limit is 1,048,576 rows, the header row included): an
// xlsx export of more is refused (kTooLarge). CSV and vCard exports stream and have no limit.
constexpr int kMaxXlsxRows = 1048575;

// What a hook sees. `input` is the request body (hooks may remove members they consume in
// `prepare`, stashing them); `values` holds the validated field values about to be written.
struct HookContext {
  const access::Principal& principal;
  const schema::Entity& entity;
  storage::Tx& tx;
  std::string action;  // create | update | delete | restore
  std::int64_t id = 0;
  json::Document& input;
  json::Value& values;
  json::Allocator& alloc;
  std::map<std::string, std::string> stash;
};

struct Hooks {
  std::function<Status(HookContext&)> prepare;       // before validation
  std::function<Status(HookContext&)> before_write;  // after validation, before the write
  std::function<Status(HookContext&)> after_write;   // after the write, same transaction
  std::function<void(const Event&)> after_commit;    // after commit (cache invalidation)
};

// Per-entity hooks registered by modules at start-up; read-only afterwards.
class HookRegistry {
 public:
  void add(std::string entity, Hooks hooks) {
    hooks_[std::move(entity)].push_back(std::move(hooks));
  }
  const std::vector<Hooks>& for_entity(const std::string& entity) const;
  // Duplicate detection and merge for an entity (duplicates.h): which fields match how.
  void set_dedupe(std::string entity, dedupe::Profile profile) {
    dedupe_[std::move(entity)] = std::move(profile);
  }
  const dedupe::Profile* dedupe_for(std::string_view entity) const {
    auto it = dedupe_.find(entity);
    return it == dedupe_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, std::vector<Hooks>> hooks_;
  std::map<std::string, dedupe::Profile, std::less<>> dedupe_;
};

// Newest first: creation time, then id. Every non-unique indexed field's index ends with
// created_at (table.cc), so this order comes from an index under an equality filter too.
inline constexpr std::string_view kDefaultSort = "-created_at";
// A list by a caller of own or team scope with fewer records in it than this is read from the
// scope's records (RecordService::list_statement): a page costs at most this many rows.
constexpr int kScopeFirstMax = 1024;
// An equality the list filter requires with this many rows or more does not drive a page sorted
// by another indexed field: the sort's index does (RecordService::common_equalities).
constexpr int kEqualityFirstMax = 4096;

// A filter condition already compiled (RecordService::compile_equality): its SQL and parameters.
struct CompiledCondition {
  std::string sql;
  std::vector<storage::SqlValue> params;
};

struct ListParams {
  std::string filter;  // JSON text
  // The filter already parsed, when the caller holds it (the customer 360 parses its account-id
  // equality once for its three lists): must be `filter`'s document; used instead of parsing
  // `filter` again. Not owned; outlives the call.
  const json::Value* parsed_filter = nullptr;
  // The same filter already compiled for this caller and entity (RecordService::
  // compile_equality): used instead of compiling it when the plan writes none of its fields
  // unindexed (RecordService::common_equalities), else the filter is compiled. Not owned.
  const CompiledCondition* compiled_filter = nullptr;
  std::string sort;
  std::string cursor;
  std::string fields;  // comma list
  std::string q;       // full-text narrowing
  int limit = kDefaultPageSize;
  bool deleted = false;  // recycle bin
  // Through the record text cache (RecordService::list_cache); exports, which read a whole list
  // once, pass it by so as not to push out the records users' pages show.
  bool cached = true;
};

// The SELECT a list runs (the caller may run EXPLAIN on it): SQL, its parameters (the page
// size + 1 last) and the sort keys (id last).
struct ListStatement {
  std::string sql;   // "SELECT " + select_list + from
  std::string from;  // " FROM …" to the end (another column list before it reads the same rows)
  std::vector<storage::SqlValue> params;
  std::vector<SortKey> keys;
  // The plan's decision on the filter's equalities (the fields written unindexed), when it
  // counted them: carried in the next page's cursor (encode_cursor).
  std::optional<std::vector<std::string>> plan;
  // The cursor after a row with these sort-key values.
  std::string cursor(const std::vector<storage::SqlValue>& values) const {
    return encode_cursor(values, plan ? &*plan : nullptr);
  }
};

// A bulk-loaded row's times (RecordService::create_batch), milliseconds since the epoch.
struct RowTimes {
  Millis created_at = 0;
  Millis updated_at = 0;
};

// Settings of the record layer (from the command line / composition root).
struct RecordOptions {
  // Region for phone numbers written without a country code (ISO 3166 alpha-2).
  std::string phone_region = "CN";
  // The entity whose id is the distribution key (docs/SCALING.md) stored with audit and phone
  // index rows: its records, and records referring to it, carry its id in account_id.
  std::string distribution_entity = "account";
  // Records per transaction when derived indexes (search bodies, phone and match index) are
  // rebuilt at start-up.
  int rebuild_batch = 10000;
  // Bulk loading into a new data set (the benchmark data generator): create_batch stages new
  // records' full-text terms (Tx::fts_load: appended, unsorted) instead of inserting them into
  // the term index, and finish_deferred_search_index() sorts them into it once at the end. Until
  // then the staged records are not found by search.
  bool defer_search_index = false;
  // A CSV import of at least this many rows into a table holding fewer than a tenth of them
  // (the deferred-index case, SQLite) writes its records' term lists only and builds their term
  // rows after its last batch (storage/term_build.h); 0: never. bench/README.md "Import
  // throughput", session 16.
  std::size_t import_terms_after_rows = 300'000;
  // Term rows per write transaction of that build (TermBuildOptions::part_rows).
  std::size_t term_build_part_rows = 250'000;
  // Term rows a killed server left to build (an interrupted large import: term_build rows) are
  // built at start-up before sync_schema returns (false: command-line tools, which then read a
  // whole index), or (true: serve) after it, in the background from start_term_builds(), so
  // that the server answers at once; search and lists with `q` say index_pending meanwhile.
  bool term_builds_in_background = false;
  // Bytes of list pages' record text kept by id and version (RowJsonCache); 0: none.
  std::size_t list_cache_bytes = std::size_t{32} << 20;
  // Bytes of search answers kept until the next committed write (search_cache_); 0: none.
  std::size_t search_cache_bytes = std::size_t{32} << 20;
  // Bytes of whole list pages kept until the next committed write (page_cache_); 0: none.
  std::size_t page_cache_bytes = std::size_t{32} << 20;
};

// One record carrying a looked-up phone number, as the caller may see it.
struct PhoneMatch {
  std::shared_ptr<const schema::Entity> entity;
  std::int64_t id = 0;
  std::string title;   // empty when the title field is hidden from the caller
  std::string record;  // the record as JSON (the fields asked for), hidden fields left out
  // Only from lookup_phone_values: instead of `record`, the JSON text of each field it was asked
  // for, in that order, exactly as `record` would carry it; nullopt when the entity has no such
  // field or it is hidden from the caller. Views into `whole`, the record's cached text.
  std::vector<std::optional<std::string_view>> values;
  std::shared_ptr<const CachedRecord> whole;
};

struct PhoneLookup {
  std::string e164;
  std::vector<PhoneMatch> matches;  // accounts, contacts, … the caller may read; by entity, id
};

constexpr int kMaxPhoneMatches = 50;

// A likely duplicate of a record (dedupe::match), as the caller may see it.
struct DuplicateCandidate {
  std::int64_t id = 0;
  std::string title;
  double score = 0;
  std::string reason;
  std::string field;
};

// What create does when the new record has a likely duplicate (score ≥ 0.90): report it
// (RecordResult::duplicates) or refuse with kDuplicate naming the matching field.
enum class DedupeMode { kWarn, kBlock };

struct RecordResult {
  std::int64_t id = 0;
  std::int64_t version = 0;
  std::string body;  // the record as JSON
  int status = 200;  // 201 on create (also on an idempotent replay)
  // Create of an entity with duplicate detection: likely duplicates the caller may read.
  bool dedupe_checked = false;
  std::vector<DuplicateCandidate> duplicates{};
};

class RecordService {
 public:
  RecordService(storage::Store& store, schema::Registry& registry, const HookRegistry& hooks,
                EventBus& events, const Clock& clock, IdGenerator& ids, RecordOptions options = {})
      : store_(store),
        registry_(registry),
        hooks_(hooks),
        events_(events),
        clock_(clock),
        ids_(ids),
        options_(std::move(options)),
        list_cache_(options_.list_cache_bytes),
        page_cache_(options_.page_cache_bytes, kPageCacheEntries),
        search_cache_(options_.search_cache_bytes, kSearchCacheEntries) {}

  ~RecordService() { stop_term_builds(); }
  RecordService(const RecordService&) = delete;
  RecordService& operator=(const RecordService&) = delete;

  // Tables this layer owns (audit, idempotency, custom fields, phone index).
  static std::vector<storage::Migration> migrations();
  // Loads stored custom fields into the registry, brings every entity's table up to date and
  // rebuilds derived indexes (full-text bodies, phone index) whose format changed.
  Status sync_schema();
  const RecordOptions& options() const { return options_; }
  storage::Store& store() { return store_; }

  Result<RecordResult> get(const access::Principal& p, const schema::Entity& e, std::int64_t id,
                           std::string_view fields = {});
  // One list page's JSON ({"items":[…],"next_cursor":…}); a caller who may read every record
  // of `e` may be served a page kept whole since the last committed write (page_cache_).
  Result<std::string> list(const access::Principal& p, const schema::Entity& e,
                           const ListParams& params);
  // {"field": field, "op": "=", "value": "<value>"} on a reference field of `e`, compiled as a
  // list filter for `p` (ListParams::compiled_filter): the condition's SQL is compiled once per
  // role and entity and kept (compile_kept), the value bound, so that a caller listing by one
  // record's id (the customer 360) does not compile its filter per request.
  Result<CompiledCondition> compile_equality(const access::Principal& p, const schema::Entity& e,
                                             std::string_view field, std::int64_t value);
  // The statement of one list page. With `tx` (a read transaction) it may first count the
  // caller's scope to choose its plan (see the .cc); without, the plain statement.
  Result<ListStatement> list_statement(const access::Principal& p, const schema::Entity& e,
                                       const ListParams& params, storage::Tx* tx = nullptr) const;
  Result<RecordResult> create(const access::Principal& p, const schema::Entity& e,
                              std::string_view body, std::string_view idempotency_key = {},
                              DedupeMode dedupe = DedupeMode::kWarn);
  // create() that does not wait for the COMMIT: `done` is called once with what create()
  // would have returned — before this returns (a failure found first, an entity with hooks,
  // PostgreSQL), or after the group COMMIT that made the record durable, on the thread that
  // ran it (Store::write_grouped_async). `e` must outlive the call of `done` (a caller keeps
  // the entity alive in `done`). `done` must not throw nor wait for a write.
  void create_async(access::Principal p, const schema::Entity& e, std::string_view body,
                    std::string_view idempotency_key, DedupeMode dedupe,
                    std::function<void(Result<RecordResult>)> done);
  // Creates many records in one transaction (bulk loads, data generators): all or nothing; the
  // error names the 1-based row. Hooks, audit and events run as for single creates; entities
  // without hooks go through insert_many (multi-row inserts).
  // `times`: each row's created_at and updated_at (the audit entry and event carry created_at),
  // one per body, for the system principal only (the data generator: realistic histories
  // instead of one clock reading per batch); empty: the clock's now for every row. Nothing over
  // HTTP reaches it — created_at and updated_at stay read-only there.
  Result<std::vector<std::int64_t>> create_batch(const access::Principal& p,
                                                 const schema::Entity& e,
                                                 const std::vector<std::string>& bodies,
                                                 std::span<const RowTimes> times = {});
  // With RecordOptions::defer_search_index: the staged full-text terms of every entity into the
  // term index (one sorted insert per entity, its own transaction).
  Status finish_deferred_search_index();
  Result<RecordResult> update(const access::Principal& p, const schema::Entity& e, std::int64_t id,
                              std::string_view body, std::optional<std::int64_t> if_match = {});
  // update, answered through `done` as create_async is: an entity without hooks has its update
  // (the same statements and refusals: 404, If-Match's 409, 422 naming the field) run as a
  // grouped write and is answered after the group COMMIT that made it durable, on the store's
  // completion thread, no thread waiting for it; with hooks, before returning. `e` must outlive
  // the call of `done`; `done` must not throw nor wait for a write.
  void update_async(access::Principal p, const schema::Entity& e, std::int64_t id,
                    std::string_view body, std::optional<std::int64_t> if_match,
                    std::function<void(Result<RecordResult>)> done);
  Status remove(const access::Principal& p, const schema::Entity& e, std::int64_t id);
  Result<RecordResult> restore(const access::Principal& p, const schema::Entity& e,
                               std::int64_t id);
  // With RecordOptions::term_builds_in_background: builds the term rows sync_schema found left
  // by a killed server on a thread of its own (one entity after the other; each marked pending
  // since sync_schema, so that writes meanwhile are noted and search says index_pending until
  // its rows are built). No-op when there are none. A failure is logged and leaves the entity
  // pending and its term_build row for the next start.
  void start_term_builds();
  // Stops that build after its current part (the term_build row stays: the next start goes
  // on) and waits for its thread. Called by the destructor; safe to call twice.
  void stop_term_builds();
  // Whether that background build is still running (tests, logs).
  bool term_builds_running() const { return term_builds_running_.load(); }
  // What a large import (import.cc) left to build after its last batch: the non-unique indexes
  // it dropped (their CREATE statements) and, with `terms`, its records' term rows
  // (finish_term_build: the entity is pending in store_.pending_terms() since the load; this
  // ends it). finish_import_build builds them now, on the caller's thread: the index of the
  // default sort (kDefaultSort, created_at: every list's first page, which without it scans the
  // table: about 2 s of CPU at 1M rows) first, then the term rows (search waits for them), then
  // the other indexes, each index in a write transaction of its own (taken from `indexes` as
  // made). build_import_in_background (serve: term_builds_in_background) does
  // it on the term builder's thread, the one start_term_builds uses, after whatever it builds
  // already, and returns at once: the import answers with index_pending. Stopped by
  // stop_term_builds after the current part or index; the term_build row stays and the next
  // start builds the rest (the indexes first, sync_table's defer_indexes). When an entity's
  // term rows are built (either way, and those a killed server left), its import runs with
  // index_status "building" are marked "complete" (mark_import_runs_indexed).
  Status finish_import_build(const schema::Entity& e, std::int64_t run_id,
                             std::vector<IndexDdl>& indexes, bool terms);
  // `bulk`: the import's Store::bulk_writes() handle, held until the build ends (its large
  // write transactions then checkpoint the WAL as the import's did; released on the builder
  // thread, or by stop_term_builds).
  void build_import_in_background(const schema::Entity& e, std::int64_t run_id,
                                  std::vector<IndexDdl> indexes, bool terms,
                                  std::unique_ptr<storage::Store::BulkWrites> bulk = nullptr);
  // The import runs of `entity` whose index_status is "building": "complete", index_done_at now
  // (none while the entity's term rows are pending).
  Status mark_import_runs_indexed(std::string_view entity);
  Result<std::string> history(const access::Principal& p, const schema::Entity& e, std::int64_t id);
  Result<std::string> search(const access::Principal& p, std::string_view q,
                             std::string_view entity, int limit);
  // Search answers served from the answer cache so far (see search_cache_ below).
  std::uint64_t search_cache_hits() const { return search_cache_.hits(); }
  // Rows the search's index windows returned so far: entries with every key whose record is
  // live and in the caller's scope, each one a read of that record's row (what a search reads
  // most of at 1M: a random page of the entity's table each).
  std::uint64_t search_window_rows() const {
    return search_window_rows_.load(std::memory_order_relaxed);
  }
  // Statements the search ran so far that count keys' entries to choose the driving key (each
  // an index read of up to a cap's entries per key: the most of a Chinese query's work at 1M).
  std::uint64_t search_count_statements() const {
    return search_count_statements_.load(std::memory_order_relaxed);
  }
  // What the answer caches hold now (keys, answers and bookkeeping, bytes), against their
  // bounds RecordOptions::search_cache_bytes and page_cache_bytes (GET /api/v1/admin/memory).
  std::size_t search_cache_used_bytes() const { return search_cache_.bytes(); }
  std::size_t search_cache_bound_bytes() const { return options_.search_cache_bytes; }
  std::size_t page_cache_used_bytes() const { return page_cache_.bytes(); }
  std::size_t page_cache_bound_bytes() const { return options_.page_cache_bytes; }
  // Records of any entity whose phone_list fields hold `number` (any written form, normalised
  // to E.164 in the configured region), limited to those the caller may read. A number that
  // does not normalise fails with kBadRequest on field "number". `fields` (comma-separated, as
  // for get) limits each match's record JSON to those fields (and id, version); empty: all.
  Result<PhoneLookup> lookup_phone(const access::Principal& p, std::string_view number,
                                   std::string_view fields = {});
  // The same lookup, but each match carries the JSON text of each of `fields` (comma-separated,
  // in that order: PhoneMatch::values) instead of a record text: the texts are views into the
  // record's cached text, so no record JSON is written for a match nor parsed again by the
  // caller (the screen pop).
  Result<PhoneLookup> lookup_phone_values(const access::Principal& p, std::string_view number,
                                          std::string_view fields);
  // Number of live records matching `filter` (JSON text, as for list) within the caller's scope.
  Result<std::int64_t> count(const access::Principal& p, const schema::Entity& e,
                             std::string_view filter);
  // In one statement: that count first, then for each of `narrower` (filters, JSON text) the
  // number of those records that also match it.
  Result<std::vector<std::int64_t>> counts(const access::Principal& p, const schema::Entity& e,
                                           std::string_view filter,
                                           std::span<const std::string> narrower);
  // Live records of `e` that `p` may read whose title (e.title_field, readable by `p`) equals
  // one of `names` as text::fold_spaced compares them ("ACME  Ltd" = "Acme Ltd" = "ａｃｍｅ ltd"):
  // per name (as given) the ids found, ascending; names without a match are left out. The
  // candidates are the records indexed under every term of the folded name (the search index:
  // Tx::fts_search_words, at most kTitleCandidates per name, newest first) and those whose
  // title is one of the names as given (the title column: also while the search index of a
  // large import is being built); they are read in a few statements per call (their ids and
  // titles in the caller's read scope, at most kMaxInValues per IN list) and compared in C++.
  // kForbidden when `p` may not read `e` or its title field.
  static constexpr int kTitleCandidates = 1000;
  Result<std::map<std::string, std::vector<std::int64_t>>> ids_by_title(
      const access::Principal& p, const schema::Entity& e, std::span<const std::string> names);
  // The record text list pages copy by id and version (see list()).
  const RowJsonCache& list_cache() const { return list_cache_; }
  // List pages served whole from the page answer cache so far (see page_cache_ below).
  std::uint64_t page_cache_hits() const { return page_cache_.hits(); }
  // As counts() with the filter "`field` = `id`" (`field` a reference: the per-record filter of the
  // phone pop's open items), compiled once per role, entity and field (not per id): the id is
  // bound in place of the kept filter's one parameter.
  Result<std::vector<std::int64_t>> counts_of(const access::Principal& p, const schema::Entity& e,
                                              std::string_view field, std::int64_t id,
                                              std::span<const std::string> narrower);
  // The statement counts_of() runs for `field` (its SQL and parameters, with id 1), as the
  // caller's scope builds it: what tests read the query plan of.
  Result<std::pair<std::string, std::vector<storage::SqlValue>>> counts_of_statement(
      const access::Principal& p, const schema::Entity& e, std::string_view field,
      std::span<const std::string> narrower);
  // How many filter texts counts() and counts_of() have compiled so far: each once per role and
  // entity (counts_of: per field).
  std::size_t filters_compiled() const;
  // Counts of live records in the caller's scope (and `filter`, `q` as for lists) grouped by one
  // or two readable fields, date/datetime values by `bucket` (day, month, year; UTC) —
  // aggregate.cc. JSON of GET /{plural}/aggregate.
  struct AggregateParams {
    std::string group_by, bucket, filter, q;
  };
  Result<std::string> aggregate(const access::Principal& p, const schema::Entity& e,
                                const AggregateParams& ap);
  // An export's body: writes the whole file through `write`, piece by piece (about 64 KiB
  // each); `write` answers false once the receiver is gone, and the export then stops with an
  // error. Call it at most once; the entity passed to the export must outlive it.
  using ExportWriter = std::function<bool(std::string_view piece)>;
  using ExportBody = std::function<Status(const ExportWriter& write)>;
  // CSV (RFC 4180, UTF-8 with BOM) of the list, every page, readable fields only. Columns,
  // filter, sort and scope are checked and the first page is read before this returns, so their
  // errors come before any byte is written; the other pages are read (each in its own read
  // transaction, by cursor) while the body is written, so memory does not grow with the list.
  Result<ExportBody> export_csv(const access::Principal& p, const schema::Entity& e,
                                ListParams params);
  // The same list, for entities with phone/email lists, as vCard 4 (RFC 6350) — export.cc.
  Result<ExportBody> export_vcard(const access::Principal& p, const schema::Entity& e,
                                  ListParams params);
  // …and as an Excel workbook (.xlsx, one sheet). The workbook is written to a temporary file
  // (libxlsxwriter's constant-memory mode) before this returns, and the body sends that file;
  // more than `max_rows` rows is kTooLarge (nothing written) — export.cc.
  Result<ExportBody> export_xlsx(const access::Principal& p, const schema::Entity& e,
                                 ListParams params, int max_rows = kMaxXlsxRows);
  // Columns an export writes: `fields` (comma list) or the default set, readable fields only.
  Result<std::vector<const schema::Field*>> export_columns(const access::Principal& p,
                                                           const schema::Entity& e,
                                                           std::string_view fields) const;
  // Calls `each` with every record of the list (as JSON, hidden fields left out), all pages.
  Status export_each(const access::Principal& p, const schema::Entity& e, ListParams params,
                     const std::function<Status(const json::Value&)>& each);
  // "Scan now" (POST /duplicates/scan/run): the process's scheduled duplicate scan
  // (ScanScheduler) sets the function that starts its next run at once; trigger_scan answers
  // false when this process runs no scheduler.
  void set_scan_trigger(std::function<void()> trigger) {
    std::lock_guard lock(scan_trigger_mu_);
    scan_trigger_ = std::move(trigger);
  }
  bool trigger_scan() {
    std::lock_guard lock(scan_trigger_mu_);
    if (!scan_trigger_) return false;
    scan_trigger_();
    return true;
  }
  // Metadata of every entity as the principal may see it.
  std::string metadata_json(const access::Principal& p) const;
  // Adds a custom field (administrators): a real column, immediately usable everywhere. Then
  // sends "entity.name" on kSchemaChannel so that other servers on the database reload.
  Result<std::string> add_custom_field(const access::Principal& p, std::string_view entity,
                                       std::string_view body);
  // Store notification channel of schema changes (custom fields) between servers.
  static constexpr const char* kSchemaChannel = "rapport_schema";
  // Adds custom fields stored by another process since start (or the last reload) to the
  // registry; returns how many. Changes no table: the adding process altered it already.
  Result<int> reload_custom_fields();

 private:
  // The fields of equalities `filter` requires that are too common to drive a page sorted by
  // `keys` (see the .cc); none (nullopt) when no equality was counted: not applicable, or no
  // `tx`. `carried`: the decision an earlier page made (its cursor's), taken instead of counting.
  Result<std::optional<std::vector<const schema::Field*>>> common_equalities(
      const access::Principal& p, const schema::Entity& e, const json::Value& filter,
      const std::vector<SortKey>& keys, bool other_driver, storage::Tx* tx,
      const std::optional<std::vector<std::string>>& carried) const;
  friend class Importer;  // import.cc: batches through insert_one/update_one
  friend class Deduper;   // duplicates.cc, merge.cc: candidate search, merge and undo
  // Calls `each` with every record of `page` (a list answer for `params`) and of the pages after
  // it, reading each next page by its cursor.
  Status each_listed(const access::Principal& p, const schema::Entity& e, ListParams params,
                     std::string page, const std::function<Status(const json::Value&)>& each);
  // A streamed text export: `head`, then `row` appends each record's text (export_csv, _vcard).
  Result<ExportBody> export_text_body(const access::Principal& p, const schema::Entity& e,
                                      ListParams params, std::string head,
                                      std::function<void(std::string&, const json::Value&)> row);
  struct Inserted {
    std::int64_t id;
    std::vector<storage::SqlValue> row;
    Event event;
  };
  // Validation, hooks, insert, full-text, audit of one new record inside `tx`.
  Result<Inserted> insert_one(storage::Tx& tx, const access::Principal& p, const schema::Entity& e,
                              json::Document& input);
  // Bulk insert for imports, for entities without hooks: validates every input first (values,
  // references, unique fields against the table and among the inputs), then writes the valid
  // ones with multi-row INSERTs, their derived indexes and multi-row audit inserts, without
  // reading them back. Invalid inputs get their error and are not written; an Error answer
  // (the database refused a statement) leaves `tx` unusable for the batch, possibly holding part
  // of a statement's rows (Dialect::bulk_insert): the caller must roll it back. The per-row work
  // that needs no database (validation, rows, search text, phone and match keys, duplicate
  // facts) runs on parallel::for_ranges; the statements on `tx`'s thread.
  struct PreparedInsert;  // below
  struct BulkInsert {
    std::vector<std::int64_t> ids;                     // 0 where the input failed
    std::vector<std::optional<Error>> errors;          // per input
    std::vector<std::vector<storage::SqlValue>> rows;  // as stored (select_list), per input
    std::vector<Event> events;  // "created", one per created record in input order
    // duplicate-matching facts per input (Deduper::on_import), for entities with a profile
    std::vector<std::optional<dedupe::Facts>> facts;
    // What the call built and used (validated values, audit entries, index rows), kept for the
    // caller to free where it likes (an import: on a pool thread, not the writer).
    std::shared_ptr<void> spent;
  };
  // `times`: as create_batch's (one per input, or empty: now). `prepared` (empty, or one per
  // input, null where none): the per-input work prepare_inserts did ahead; each one taken is
  // emptied (ready = false), so a second call for the same inputs works them out again.
  Result<BulkInsert> insert_many(storage::Tx& tx, const access::Principal& p,
                                 const schema::Entity& e,
                                 const std::vector<const json::Value*>& inputs,
                                 std::span<const RowTimes> times = {}, bool term_lists_only = false,
                                 std::span<PreparedInsert* const> prepared = {});
  // insert_many's `term_lists_only`: the new records' term lists are written, their term rows
  // are not (Tx::fts_put_lists), and the term_build row of the entity (its lowest such id) is
  // written in the same transaction, so that a server killed before build_term_rows() has run
  // builds them at start-up (finish_term_builds).
  // Builds the term rows pending for `entity` (its term_build row) and removes the row.
  Status finish_term_build(const schema::Entity& e, std::int64_t run_id = 0);
  // At start-up: the entities with a term_build row, each marked pending (PendingTerms::begin)
  // before the server serves; finish_term_builds builds them one after the other (the store's
  // pending mark ended for each one built).
  Result<std::vector<std::string>> mark_term_builds();
  Status finish_term_builds(const std::vector<std::string>& entities);
  // A new record built in memory from its validated values (new_values), without a
  // transaction: the row as stored (select_list order, deleted_at and merged_into included),
  // its audit entry (audit_log columns in insert_many's order, the distribution key last) and
  // its "created" event. insert_many builds one per input; create builds its one before it
  // takes the write transaction, so the writer only runs statements.
  struct NewRow {
    std::int64_t id = 0;
    std::vector<storage::SqlValue> row;
    std::vector<storage::SqlValue> audit;
    Event event;
  };
  // insert_many's work for one input that needs no database, done ahead of the write
  // transaction by prepare_inserts (an import prepares its next batch on another core while the
  // writer writes the current one): the input validated (new_values), its record id and audit
  // id taken, its row, audit entry and event built (created at the time of the preparation),
  // its search text with its terms, phone keys, duplicate facts and match keys worked out.
  // What insert_many still does with the database (references, unique fields) is done then.
  struct PreparedInsert {
    bool ready = false;
    std::optional<Error> error;  // new_values refused the input
    SmallDocument values;
    NewRow nr;
    std::optional<storage::Tx::FtsRow> fts;
    std::vector<std::string> phone_keys, match_keys;
    std::optional<dedupe::Facts> facts;
  };
  // One per input, on parallel::for_ranges. Every input takes its ids here, in input order,
  // whether or not it is inserted later (one that is not leaves a gap in the id sequence).
  std::vector<PreparedInsert> prepare_inserts(const access::Principal& p, const schema::Entity& e,
                                              const std::vector<const json::Value*>& inputs);
  // `updated`: the row's updated_at when it differs from `now` (created_at, the audit entry's
  // and the event's time).
  NewRow build_new_row(const access::Principal& p, const schema::Entity& e,
                       const json::Value& values, std::int64_t id, const std::string& now,
                       std::int64_t audit_id, const std::string* updated = nullptr);
  // Derived index rows of new records (what derive() writes for one record, fresh): full-text
  // bodies, phone index and match index rows, written by write_derived with multi-row
  // statements. `facts`: the record's dedupe facts when the caller has them already; `e164`:
  // its phone numbers as phone_keys gives them, when the caller has parsed them already.
  struct Derived {
    std::vector<storage::Tx::FtsRow> fts;
    std::vector<std::vector<storage::SqlValue>> phones, matches;
  };
  void add_derived(const schema::Entity& e, const NewRow& nr, Derived& out,
                   const dedupe::Facts* facts = nullptr,
                   const std::vector<std::string>* e164 = nullptr);
  Status write_derived(storage::Tx& tx, const schema::Entity& e, const Derived& d);
  // The text of a multi-row INSERT of `rows` rows of `ncols` values into `table` (`cols`).
  std::string insert_sql(const std::string& table, const std::string& cols, size_t ncols,
                         size_t rows) const;
  // Runs each table row's INSERT as multi-row statements (`rows` of `cols` values each). Rows
  // given as non-const are moved into each statement's parameters and back after it (the same
  // rows after the call; no value copied).
  Status insert_rows(storage::Tx& tx, const std::string& table, const std::string& cols,
                     size_t ncols, const std::vector<std::vector<storage::SqlValue>>& rows);
  Status insert_rows(storage::Tx& tx, const std::string& table, const std::string& cols,
                     size_t ncols, std::vector<std::vector<storage::SqlValue>>& rows);
  struct Updated {
    RecordResult result;
    std::optional<Event> event;  // none when nothing changed
  };
  // Access check, validation, hooks, update, full-text, audit of one record inside `tx`.
  Result<Updated> update_one(storage::Tx& tx, const access::Principal& p, const schema::Entity& e,
                             std::int64_t id, json::Document& input,
                             std::optional<std::int64_t> if_match);
  // Bulk update for import upsert (record/import_upsert.cc), for entities without hooks: what
  // update_one does for each (id, input), with the stored rows read in id order, many per
  // statement, the values checked and the new rows, search texts and index keys built on
  // parallel::for_ranges, one UPDATE text per set of changed columns (prepared once, run per
  // row in id order), and the search, phone and match index entries rewritten only for records
  // whose indexed values changed; audit entries in multi-row inserts. An input that fails
  // before the writes gets its error and is not written. `aborted`: the input a statement
  // refused (its error is set): the transaction is unusable and holds part of the batch, the
  // caller must drop it. An Error answer: likewise, for a fault that is no input's.
  struct BulkUpdate {
    std::vector<std::optional<Error>> errors;  // per input
    std::vector<std::optional<Event>> events;  // per input; none when nothing changed
    std::optional<std::size_t> aborted;
  };
  Result<BulkUpdate> update_many(storage::Tx& tx, const access::Principal& p,
                                 const schema::Entity& e, const std::vector<std::int64_t>& ids,
                                 const std::vector<const json::Value*>& inputs);
  // The input's members validated into `values`, as update_one checks them.
  // Marks each input not yet refused whose reference field names a record that does not exist
  // (or is deleted) with a validation error naming the field: each distinct target id read once,
  // many per statement. Shared by insert_many and update_many.
  Status check_references(storage::Tx& tx, const schema::Entity& e,
                          const std::vector<SmallDocument>& values,
                          std::vector<std::optional<Error>>& errors) const;
  static Status collect_input_values(const access::Principal& p, const schema::Entity& e,
                                     const json::Value& input, json::Value& values,
                                     json::Allocator& a);
  Result<std::optional<std::vector<storage::SqlValue>>> load(storage::Tx& tx,
                                                             const schema::Entity& e,
                                                             std::int64_t id);
  // What reads one record by id, built once per entity snapshot (by_id()): the statements'
  // texts, the positions of the columns the checks need and a writer of the whole record for
  // list_cache_.
  struct ById {
    std::shared_ptr<const schema::Entity> entity;  // held, so that its address (the key) stays
    std::string select;                            // SELECT select_list (a list page's too)
    std::string row;                               // SELECT select_list FROM t WHERE "id" = ?
    std::string head;  // SELECT version, owner_id, team_id, deleted_at, title column(s) … ? too
    size_t version_col, owner_col, team_col, deleted_col, title_col;
    const schema::Field* title;  // the title field, or null
    std::uint32_t slot;          // list_cache_.slot of the entity
    RecordJson every;            // every field shown (RowJsonCache's text)
    ById(const schema::Entity& e, std::uint32_t cache_slot);
    // shown_fields of the entity for `p` and `fields` (a comma list, as get takes it), kept per
    // role and list: field access looks each field's rule up by "entity.field". The role is
    // held so that its address, part of the key, is not reused (as compile_kept's).
    std::vector<char> shown(const schema::Entity& e, const access::Principal& p,
                            std::string_view fields) const;
    // The same flags with the writer that copies those fields out of a cached record's text,
    // both kept (a read by id builds neither).
    struct ShownFields {
      std::vector<char> flags;
      CachedRecordJson json;
      // Each name of `fields` in its order: the field's index and the length of its key
      // (`"name":`) in a CachedRecord's text, or -1 when the entity has no such field or it is
      // not shown (value_of).
      std::vector<std::pair<std::int32_t, std::uint32_t>> asked;
      // The JSON text of the k-th asked field's value in `r` (a record of this entity).
      std::optional<std::string_view> value_of(const CachedRecord& r, std::size_t k) const;
    };
    std::shared_ptr<const ShownFields> shown_fields(const schema::Entity& e,
                                                    const access::Principal& p,
                                                    std::string_view fields) const;

   private:
    struct Shown {
      std::shared_ptr<const access::Role> role;
      std::shared_ptr<const ShownFields> fields;
    };
    mutable std::mutex shown_mu_;
    struct KeyLess {  // (role, fields) against (role, fields as a string_view) too
      using is_transparent = void;
      template <class A, class B>
      bool operator()(const A& a, const B& b) const {
        using View = std::pair<const access::Role*, std::string_view>;
        return View(a.first, a.second) < View(b.first, b.second);
      }
    };
    mutable std::map<std::pair<const access::Role*, std::string>, Shown, KeyLess>
        shown_;  // guarded by shown_mu_
  };
  std::shared_ptr<const ById> by_id(const schema::Entity& e) const;
  // by_id(e) and its shown_fields(e, p, fields), looked up in a memo of this thread's last few
  // (service, entity snapshot, role, fields) first: a read by id or a phone lookup's match then
  // takes neither mutex nor copies a shared_ptr (the two I/O threads both answer reads, and
  // those locks and counts sit on lines both write). An entry holds its ById (so its entity
  // snapshot) and its role, so that neither address is reused while it may match; a snapshot
  // the registry has replaced (custom field added) or a changed role (a new Role object) is
  // another key, so the next read builds or finds the new one. The pointers stay valid on this
  // thread until its next read_plan call.
  struct ReadPlan {
    const ById* by;
    const ById::ShownFields* shown;
  };
  ReadPlan read_plan(const schema::Entity& e, const access::Principal& p,
                     std::string_view fields) const;
  struct PlanMemo;
  // Tells this service's entries of a thread's read_plan memo from another's (addresses are
  // reused; this is not).
  const std::uint64_t instance_ = next_instance();
  static std::uint64_t next_instance();
  // One record by id as `p` (whose read scope is `scope`) sees it: missing, deleted, out of
  // scope, or found with its version, the JSON text of its `shown` fields (byte for byte what
  // write_record gives) and, with `want_title`, its title field's text.
  struct OneRecord {
    enum class State { kMissing, kDeleted, kOutOfScope, kFound } state = State::kMissing;
    std::int64_t version = 0;
    std::string text;
    std::string title;
    std::shared_ptr<const CachedRecord> whole;  // with want_whole, instead of `text`
  };
  Result<OneRecord> read_one(storage::Tx& tx, const access::Principal& p, const schema::Entity& e,
                             const ById& by, std::int64_t id, access::Scope scope,
                             const std::vector<char>& shown, bool want_title);
  Result<OneRecord> read_one(storage::Tx& tx, const access::Principal& p, const schema::Entity& e,
                             const ById& by, std::int64_t id, access::Scope scope,
                             const ById::ShownFields& shown, bool want_title,
                             bool want_whole = false);
  // lookup_phone (values: false) and lookup_phone_values (true).
  Result<PhoneLookup> find_phone(const access::Principal& p, std::string_view number,
                                 std::string_view fields, bool values);
  Status check_references(storage::Tx& tx, const schema::Entity& e, const json::Value& values);
  // `e164`: the record's phone numbers as phone_keys gives them (all phone-list fields), so
  // that they are not parsed again; they go where the first phone list's numbers go.
  std::string fts_text(const schema::Entity& e, const std::vector<storage::SqlValue>& row,
                       const std::vector<std::string>* e164 = nullptr) const;
  // Whether `p` may not see one of e's searchable fields. The term index holds every searchable
  // field, so what it finds for such a caller is checked again with visible_text_matches.
  bool hides_searchable(const access::Principal& p, const schema::Entity& e) const;
  // Whether the search text of the fields of `row` (select_list order) that `p` may see matches
  // the folded `query` as the term index would.
  bool visible_text_matches(const access::Principal& p, const schema::Entity& e,
                            std::vector<storage::SqlValue> row, std::string_view query) const;
  // Full-text body and phone index of one live record, after a write.
  Status derive(storage::Tx& tx, const schema::Entity& e, std::int64_t id,
                const std::vector<storage::SqlValue>& row, bool fresh);
  // derive() after a change of a live record from `before` to `row`: only the derived rows whose
  // source changed are rewritten (update_one).
  Status derive_changed(storage::Tx& tx, const schema::Entity& e, std::int64_t id,
                        const std::vector<storage::SqlValue>& before,
                        const std::vector<storage::SqlValue>& row);
  // Rebuilds full-text bodies and the phone index of every live record when their stored
  // format version differs from this build's, options_.rebuild_batch records per transaction;
  // the new version is recorded last, so an interrupted rebuild starts again at the next start.
  Status rebuild_derived();
  Status audit(storage::Tx& tx, const access::Principal& p, const schema::Entity& e,
               std::int64_t id, std::string_view action, const std::string& changes_json,
               const std::string& at);
  void publish(const schema::Entity& e, Event ev);
  // A list page's answer as list() gives it, computed (list() first looks in page_cache_).
  Result<std::string> list_page(const access::Principal& p, const schema::Entity& e,
                                const ListParams& lp, storage::Tx& tx);
  static std::string page_key(const access::Principal& p, const schema::Entity& e,
                              const ListParams& lp);
  // A list page's records through list_cache_ (see the .cc); the next page's cursor.
  Result<std::optional<std::string>> cached_page(const schema::Entity& e, const ListParams& lp,
                                                 const ListStatement& st,
                                                 const ById::ShownFields& shown, storage::Tx& tx,
                                                 std::string& out);
  // After a bulk write: the entity's after_commit hooks see every record's event, subscribers
  // (WebSocket clients) the one summary event.
  void publish_summary(const schema::Entity& e, std::vector<Event> records, const Event& summary);

  storage::Store& store_;
  schema::Registry& registry_;
  const HookRegistry& hooks_;
  EventBus& events_;
  const Clock& clock_;
  IdGenerator& ids_;
  RecordOptions options_;
  std::mutex scan_trigger_mu_;
  std::function<void()> scan_trigger_;  // guarded by scan_trigger_mu_

  // counts()' narrower conditions are constant filter texts (the phone pop's "outcome is
  // follow_up"): each is parsed and compiled once per role and entity and kept here, not on
  // every request. The role is held so that its address, part of the key, is not reused.
  struct CompiledFilter {
    std::shared_ptr<const access::Role> role;
    std::string sql;
    std::vector<storage::SqlValue> params;
  };
  Result<std::string> compile_text(const access::Principal& p, const schema::Entity& e,
                                   std::string_view text, std::vector<storage::SqlValue>& params);
  Result<std::string> compile_kept(const access::Principal& p, const schema::Entity& e,
                                   std::string_view text, std::vector<storage::SqlValue>& params);
  // counts() and counts_of(): the statement, in `scope`, counting live records of `e` and, for
  // each of `narrower`, those also matching it; `where` (with its parameters, after the
  // narrower ones' and the scope's) adds the caller's filter condition, or nothing when empty.
  struct CountsStatement {
    std::string sql;
    std::vector<storage::SqlValue> params;
    std::size_t scope_at = 0;  // where the scope's parameters (user, team) begin in params
  };
  Result<CountsStatement> counts_statement(
      const access::Principal& p, const schema::Entity& e, access::Scope scope,
      std::span<const std::string> narrower,
      const std::function<Result<std::string>(std::vector<storage::SqlValue>&)>& where);
  // Runs a counts statement in a read transaction: COUNT(*) and one count per narrower filter.
  Result<std::vector<std::int64_t>> run_counts(std::string_view sql,
                                               std::span<const storage::SqlValue> params,
                                               std::size_t narrower);
  // counts_of()'s statements, whole, by role, entity, field, scope and narrower filters: the
  // parameters as first built, the id at id_at and the scope's at scope_at replaced per call.
  // The role is held, as in CompiledFilter.
  struct KeptCounts {
    std::shared_ptr<const access::Role> role;
    std::string sql;
    std::vector<storage::SqlValue> params;
    std::size_t scope_at = 0;
    std::size_t id_at = 0;
  };
  static constexpr std::size_t kMaxKeptCounts = 1024;
  mutable std::mutex compiled_mu_;
  std::map<std::string, CompiledFilter, std::less<>> compiled_;  // guarded by compiled_mu_
  std::size_t filters_compiled_ = 0;                             // guarded by compiled_mu_
  std::map<std::string, std::shared_ptr<const KeptCounts>, std::less<>>
      counts_kept_;  // guarded by compiled_mu_
  RowJsonCache list_cache_;
  // List pages of callers who may read every record of the entity (the page then depends on the
  // role, the entity snapshot and the list's parameters only), whole, kept while the database is
  // unchanged (AnswerCache: tagged with the read transaction's change stamp, so that any
  // committed write retires every page). Nothing is kept where the store has no stamp
  // (PostgreSQL).
  static constexpr std::size_t kPageCacheEntries = 4096;
  AnswerCache page_cache_;
  // by_id()'s entries, by entity snapshot; each holds its snapshot (see ById::entity).
  mutable std::mutex by_id_mu_;
  mutable std::unordered_map<const schema::Entity*, std::shared_ptr<const ById>>
      by_id_;  // guarded by by_id_mu_

  // Search answers of callers who may read every record of each searched entity (the answer
  // then depends on the role, the query, the entity filter and the limit only), kept while the
  // database is unchanged: each is tagged with the change stamp of the read transaction it was
  // computed in (storage::Tx::change_stamp) and served only to a search whose transaction has
  // that same stamp, so that any committed write (create, update, delete, restore, merge,
  // import, a command-line tool's) retires every answer. Bounded by entries and bytes (all
  // dropped when full). Nothing is cached where the store has no stamp (PostgreSQL).
  // The key holds the role's address: the role is kept with the answer.
  static constexpr std::size_t kSearchCacheEntries = 8192;
  AnswerCache search_cache_;
  std::atomic<std::uint64_t> search_window_rows_{0};       // see search_window_rows
  std::atomic<std::uint64_t> search_count_statements_{0};  // see search_count_statements
  // start_term_builds: the entities sync_schema marked, the thread building them, its stop flag.
  // build_import_in_background: the queue of that thread (one job at a time, in order).
  struct TermBuildJob {
    std::vector<std::string> entities;  // left by a killed server (finish_term_builds)
    std::string entity;                 // or an import's: its entity, run, indexes, term rows
    std::int64_t run_id = 0;
    std::vector<IndexDdl> indexes;
    bool terms = false;
    std::unique_ptr<storage::Store::BulkWrites> bulk;
  };
  void queue_term_build(TermBuildJob job);
  void run_term_builder();
  std::vector<std::string> term_builds_left_;
  std::mutex term_jobs_mu_;
  std::condition_variable term_jobs_cv_;
  std::deque<TermBuildJob> term_jobs_;
  std::thread term_builder_;
  std::atomic<bool> term_builds_stop_{false};
  std::atomic<bool> term_builds_running_{false};
};

// A field's value (as a record's JSON has it; null when absent) as export text.
std::string export_text(const schema::Field& f, const json::Value* v);

}  // namespace rapport::record
