// The generic record pipeline (see service.h for the order of steps).
#include "record/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include "base/blocking.h"
#include "core/parallel.h"
#include "core/phone.h"
#include "core/text.h"
#include "record/duplicates.h"
#include "record/phone_index.h"
#include "record/query.h"
#include "record/row_json.h"
#include "record/small_document.h"
#include "record/table.h"

namespace rapport::record {

using access::FieldAccess;
using access::Op;
using access::Principal;
using access::Scope;
using schema::Entity;
using schema::Field;
using schema::FieldType;
using storage::SqlValue;
using storage::SqlView;

namespace {

const std::vector<Hooks> kNoHooks;

// Bumped when fts_text changes what goes into a record's full-text body (1: folded text, pinyin
// and initials of Han text, names without legal suffixes, E.164 of phones) or the index changes
// how it stores it (2: term tables with word prefixes, CJK bigrams and account_id instead of
// trigrams; 3: keyed (term, id DESC), newest first within a term; 4: each entry with its
// record's term signature; 5: an all-digit word's reversed form instead of its suffixes of >= 4
// digits); the index is then rebuilt at start-up.
constexpr int kFtsVersion = 5;
// Search as you type reads, per entity, a window of at most kSearchWindow index entries of the
// driving key in index order, and stops as soon as it has `want` entries whose record has every
// key and is visible to the caller (want: the limit in the first round, each such entry being a
// read of its record's row; twice the limit, at least kSearchFirstWant, for a caller who may
// not see a searchable field, whose matches are checked again; that times four in the second
// round, sixteen in the third). An entry whose record's signature lacks a further key costs a
// comparison within the index read (no row, no record read), so a window of common words that
// rarely stand in one record ("li n") is cheap. A round that stops at `want` is followed by
// another window from its last entry only while duplicates or records matching only on hidden
// fields keep the items short, at most kSearchRounds in all: at most kSearchRounds windows per
// entity, whatever the data.
constexpr int kSearchFirstWant = 16, kSearchWindow = 8192, kSearchRounds = 3;
// A query whose two keys both have many entries reads a window of each, then the rarer one on
// when it has at most two windows' worth (see search): at most this many windows per entity.
constexpr int kSearchPairWindows = 4;
// Keys are counted up to this many entries each to pick the rarest as the driver (and to skip
// an entity where a key has none).
constexpr int kSearchKeyCountCap = 1024;
// When every key of a query is an exact term and has at least kSearchKeyCountCap entries, they
// are counted again up to this many, and a key with fewer drives alone (read whole in one
// window of kSearchWindow entries).
constexpr int kSearchExactCountCap = 4096;
static_assert(kSearchExactCountCap <= kSearchWindow);
// Before that second count, a window of this many entries of the last key is read for `limit`
// matches: when it has them they are the answer, and nothing more is counted (see search).
constexpr int kSearchGuessWindow = kSearchKeyCountCap;
// The shortest query (in bytes, after folding) for which an empty search falls back to "did you
// mean": shorter ones share a trigram with too many titles to be a misspelling of any.
constexpr std::size_t kFuzzyMinQuery = 3;
// Records of a narrow scope (own, team) read through their term lists, newest first, when the
// index window found too few of its matches (see search).
constexpr int kSearchScopeWalk = 4096;
// A caller whose scope (own, team) holds fewer live and deleted records of an entity than this
// is searched through those records' term lists rather than the index (counted up to it: a
// bounded read of the owner and team indexes).
constexpr int kSearchScopedMax = 1024;
// Rows per batch when rebuilding derived indexes.

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string fnv1a(std::string_view a, std::string_view b) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::string_view s : {a, std::string_view("\n"), b})
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return std::to_string(h);
}

// The columns of an audit_log row as NewRow::audit holds them.
constexpr const char* kAuditColumns =
    "id, entity, record_id, action, user_id, user_name, channel, at, changes, account_id";

struct RowIndex {
  size_t version, owner, team, deleted;
  explicit RowIndex(const Entity& e)
      : version(column_index(e, "version")),
        owner(column_index(e, "owner_id")),
        team(column_index(e, "team_id")),
        deleted(field_column_count(e)) {}
};

std::set<std::string> split_fields(std::string_view list) {
  std::set<std::string> out;
  while (!list.empty()) {
    size_t c = list.find(',');
    std::string_view part = list.substr(0, c);
    if (!part.empty()) out.emplace(part);
    list = c == std::string_view::npos ? std::string_view{} : list.substr(c + 1);
  }
  return out;
}

// Which fields of `e` a record's JSON shows `p`, one flag per field: those in `only` (all when
// null or empty; id and version always) that `p` may see. Worked out once per page, not per row
// (field access looks the role's field rules up by "entity.field").
std::vector<char> shown_fields(const Entity& e, const Principal& p,
                               const std::set<std::string>* only) {
  std::vector<char> shown;
  shown.reserve(e.fields.size());
  for (const auto& f : e.fields) {
    bool wanted =
        !only || only->empty() || only->count(f.name) || f.name == "id" || f.name == "version";
    shown.push_back(wanted && access::field_access(p, e, f) != FieldAccess::kHidden);
  }
  return shown;
}

void write_record(json::Writer& w, const Entity& e, const Principal& p,
                  const std::vector<SqlValue>& row, const std::set<std::string>* only) {
  record::write_record(w, e, shown_fields(e, p, only), row);
}

std::string record_json(const Entity& e, const Principal& p, const std::vector<SqlValue>& row) {
  json::Buffer buf;
  json::Writer w(buf);
  write_record(w, e, p, row, nullptr);
  return std::string(buf.GetString(), buf.GetSize());
}

std::int64_t int_of(const SqlView& v) {
  const auto* i = std::get_if<std::int64_t>(&v);
  return i ? *i : 0;
}

Error not_found(const Entity& e, std::int64_t id) {
  return make_error(Errc::kNotFound, "no " + e.name + " with id " + std::to_string(id));
}

// Validates the request body's members into `values`; refuses unknown, read-only and
// forbidden fields by name.
Status collect_values(const Principal& p, const Entity& e, const json::Value& input,
                      json::Value& values, json::Allocator& a) {
  for (auto it = input.MemberBegin(); it != input.MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    const Field* f = e.field(name);
    if (!f) return make_error(Errc::kUnknownField, e.name + " has no field " + name, name);
    if (f->readonly) {
      // Clients may echo read-only values back unchanged (a PATCH of a fetched record).
      if (name == "id" || name == "version" || name == "created_at" || name == "updated_at" ||
          name == "created_by" || name == "updated_by")
        continue;
      return make_error(Errc::kValidation, name + " is read-only", name);
    }
    FieldAccess fa = access::field_access(p, e, *f);
    if (fa == FieldAccess::kHidden)
      return make_error(Errc::kUnknownField, e.name + " has no field " + name, name);
    if (fa != FieldAccess::kWrite)
      return make_error(Errc::kForbidden, "you may not change " + name, name);
    json::Value out;
    RP_TRY(schema::validate_value(*f, it->value, out, a));
    values.AddMember(json::str(name, a), out, a);
  }
  return {};
}

void csv_cell(std::string& out, std::string_view s) {
  bool quote_it = s.find_first_of(",\"\r\n;") != std::string_view::npos;
  // Spreadsheet formula injection: a cell starting with = or @ is shown as text.
  bool formula = !s.empty() && (s[0] == '=' || s[0] == '@');
  if (!quote_it && !formula) {
    out += s;
    return;
  }
  out += '"';
  if (formula) out += '\'';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// A new record's values: the request body validated (collect_values), defaults filled in,
// required fields checked, owner and team defaulting to the creator's.
Status new_values(const Principal& p, const Entity& e, const json::Value& input,
                  json::Value& values, json::Allocator& a) {
  RP_TRY(collect_values(p, e, input, values, a));
  for (const auto& f : e.fields) {
    if (f.system) continue;
    const json::Value* v = json::member(values, f.name);
    if ((!v || v->IsNull()) && !f.default_value.empty()) {
      auto d = json::parse(f.default_value);
      json::Value out;
      if (d.ok() && schema::validate_value(f, *d, out, a).ok()) {
        if (v) values.RemoveMember(f.name.c_str());
        values.AddMember(json::str(f.name, a), out, a);
        v = json::member(values, f.name);
      }
    }
    if (f.required && (!v || v->IsNull()))
      return make_error(Errc::kValidation, f.name + " is required", f.name);
  }
  if ((!json::member(values, "owner_id") || (*json::member(values, "owner_id")).IsNull()) &&
      p.user_id) {
    values.RemoveMember("owner_id");
    values.AddMember("owner_id", json::str(std::to_string(p.user_id), a), a);
  }
  if ((!json::member(values, "team_id") || (*json::member(values, "team_id")).IsNull()) &&
      p.team_id) {
    values.RemoveMember("team_id");
    values.AddMember("team_id", json::str(std::to_string(p.team_id), a), a);
  }
  // conditional requirements (required_when), on the values as they will be stored
  return schema::check_required_when(e,
                                     [&](const Field& f) { return json::member(values, f.name); });
}

}  // namespace

const std::vector<Hooks>& HookRegistry::for_entity(const std::string& entity) const {
  auto it = hooks_.find(entity);
  return it == hooks_.end() ? kNoHooks : it->second;
}

std::vector<storage::Migration> RecordService::migrations() {
  return {
      {2,
       "record tables",
       {"CREATE TABLE audit_log (id INTEGER PRIMARY KEY, entity TEXT NOT NULL, record_id INTEGER "
        "NOT NULL, action TEXT NOT NULL, user_id INTEGER, user_name TEXT, channel TEXT, at TEXT "
        "NOT NULL, changes TEXT)",
        "CREATE INDEX audit_log_record ON audit_log (entity, record_id, id)",
        "CREATE TABLE idempotency (user_id INTEGER NOT NULL, idem_key TEXT NOT NULL, request_hash "
        "TEXT NOT NULL, record_id INTEGER, response TEXT NOT NULL, created_at INTEGER NOT NULL, "
        "PRIMARY KEY (user_id, idem_key))",
        "CREATE TABLE custom_field (entity TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT "
        "NULL, created_at TEXT NOT NULL, PRIMARY KEY (entity, name))"}},
      {3,
       "phone index",
       {"CREATE TABLE phone_index (e164 TEXT NOT NULL, entity TEXT NOT NULL, record_id INTEGER "
        "NOT NULL, PRIMARY KEY (e164, entity, record_id))",
        "CREATE INDEX phone_index_record ON phone_index (entity, record_id)",
        // Format versions of derived data (full-text bodies, phone index): a mismatch at
        // start-up rebuilds them, so old databases gain pinyin search and phone lookup.
        "CREATE TABLE derived_index (name TEXT PRIMARY KEY, version TEXT NOT NULL)"}},
      {4, "duplicates", Deduper::migration_statements()},
      // Versions 5+ of other layers: 5 is access's login failures.
      {6,
       "distribution key",
       {"ALTER TABLE audit_log ADD COLUMN account_id INTEGER",
        "ALTER TABLE phone_index ADD COLUMN account_id INTEGER"}},
      // The last run of each background job (the scheduled duplicate scan), for administrators.
      {7,
       "job runs",
       {"CREATE TABLE job_run (name TEXT PRIMARY KEY, started_ms INTEGER NOT NULL, finished_ms "
        "INTEGER NOT NULL, scanned INTEGER NOT NULL, pairs INTEGER NOT NULL, added INTEGER NOT "
        "NULL, since_ms INTEGER, error TEXT, ok_started_ms INTEGER NOT NULL)"}},
      // Term rows pending after a bulk load (insert_many's term_lists_only): the records of
      // `entity` with id >= from_id may have a term list without their term rows.
      {8,
       "term builds",
       {"CREATE TABLE term_build (entity TEXT PRIMARY KEY, from_id INTEGER NOT NULL)"}}};
}

namespace {
// Adds the stored custom fields the registry lacks; returns how many.
Result<int> load_custom_fields(storage::Tx& tx, schema::Registry& registry) {
  RP_ASSIGN(auto rows,
            tx.query("SELECT entity, definition FROM custom_field ORDER BY created_at, name"));
  int added = 0;
  for (const auto& r : rows.rows) {
    auto def = json::parse(as_text(r[1]));
    if (!def.ok()) return make_error(Errc::kStorage, "stored custom field is not valid JSON");
    RP_ASSIGN(Field f, schema::parse_field(*def, as_text(r[0])));
    auto e = registry.get(as_text(r[0]));
    if (!e || e->field(f.name)) continue;
    auto st = registry.add_custom_field(e->name, std::move(f));
    // Two reloads racing on one field: the other one added it.
    if (!st.ok() && st.error().code != Errc::kConflict) return std::move(st).error();
    if (st.ok()) ++added;
  }
  return added;
}
}  // namespace

Result<int> RecordService::reload_custom_fields() {
  RP_ASSIGN(auto tx, store_.read());
  return load_custom_fields(*tx, registry_);
}

Status RecordService::sync_schema() {
  using SteadyClock = std::chrono::steady_clock;
  const auto seconds = [](SteadyClock::time_point from) {
    return std::chrono::duration<double>(SteadyClock::now() - from).count();
  };
  auto at = SteadyClock::now();
  // Entities a killed large import left with term rows to build (term_build rows): that import
  // also dropped their non-unique indexes (import.cc), which serve then creates in the
  // background too, before their term rows (each one write transaction: at 1M rows a minute in
  // all) instead of before it serves; the term_build row stays until both are done.
  std::set<std::string> deferred;
  if (options_.term_builds_in_background) {
    RP_ASSIGN(auto rtx, store_.read());
    RP_ASSIGN(auto rows, rtx->query("SELECT entity FROM term_build"));
    for (const auto& r : rows.rows) deferred.insert(as_text(r[0]));
  }
  RP_ASSIGN(auto tx, store_.write());
  RP_TRY(load_custom_fields(*tx, registry_));
  for (const auto& e : registry_.all())
    RP_TRY(sync_table(*tx, store_.dialect(), *e, deferred.count(e->name) > 0));
  RP_TRY(tx->commit());
  const double tables_s = seconds(at);
  at = SteadyClock::now();
  RP_ASSIGN(term_builds_left_, mark_term_builds());
  const bool had_builds = !term_builds_left_.empty();
  if (!options_.term_builds_in_background) {
    RP_TRY(finish_term_builds(term_builds_left_));
    term_builds_left_.clear();
  }
  const double terms_s = seconds(at);
  at = SteadyClock::now();
  RP_TRY(rebuild_derived());
  const double derived_s = seconds(at);
  at = SteadyClock::now();
  RP_TRY(Deduper(*this).rebuild_index());
  // what a start after a killed large import took before it serves (bench/README.md); only
  // then: command-line tools print their answers on the same standard output
  if (had_builds)
    spdlog::info(
        "start-up: tables {:.1f} s, term builds {:.1f} s{}, derived indexes {:.1f} s, match "
        "index {:.1f} s",
        tables_s, terms_s, term_builds_left_.empty() ? "" : " (the rest in the background)",
        derived_s, seconds(at));
  return {};
}

Status RecordService::rebuild_derived() {
  const std::string fts_version = std::to_string(kFtsVersion);
  const std::string phone_version = std::to_string(kPhoneIndexVersion) + ":" +
                                    options_.phone_region + ":" + options_.distribution_entity;
  // audit_log.account_id of entries written before it existed (or under another key entity).
  const std::string audit_version = "1:" + options_.distribution_entity;
  std::string have_fts, have_phone, have_audit;
  {
    RP_ASSIGN(auto tx, store_.read());
    RP_ASSIGN(auto stored, tx->query("SELECT name, version FROM derived_index"));
    for (const auto& r : stored.rows) {
      if (as_text(r[0]) == "fts") have_fts = as_text(r[1]);
      if (as_text(r[0]) == "phone_index") have_phone = as_text(r[1]);
      if (as_text(r[0]) == "audit_key") have_audit = as_text(r[1]);
    }
  }
  const bool fts = have_fts != fts_version, phones = have_phone != phone_version,
             audit_keys = have_audit != audit_version;
  if (!fts && !phones && !audit_keys) return {};
  if (phones) {
    RP_ASSIGN(auto tx, store_.write());
    RP_TRY(tx->exec("DELETE FROM phone_index"));
    RP_TRY(tx->commit());
  }
  if (audit_keys) {
    for (const auto& e : registry_.all()) {  // one statement, one transaction per entity
      DistributionKey key = distribution_key(*e, options_.distribution_entity);
      std::string value = "NULL";
      if (key.self)
        value = "record_id";
      else if (key.field)
        value = "(SELECT t." + quote(field_columns(*key.field)[0]) + " FROM " + quote(e->name) +
                " t WHERE t.id = audit_log.record_id)";
      SqlValue entity[] = {e->name};
      RP_ASSIGN(auto tx, store_.write());
      RP_TRY(tx->exec("UPDATE audit_log SET account_id = " + value + " WHERE entity = ?", entity));
      RP_TRY(tx->commit());
    }
  }
  std::int64_t total = 0;
  for (const auto& e : registry_.all()) {
    const bool do_fts = fts && e->has_searchable(), do_phones = phones && has_phone_list(*e);
    if (!do_fts && !do_phones) continue;
    if (do_fts) {  // emptied first, then filled batch by batch with fresh ids
      RP_ASSIGN(auto tx, store_.write());
      RP_TRY(tx->fts_clear(e->name));
      RP_TRY(tx->commit());
    }
    std::vector<storage::Tx::FtsRow> fts_rows;
    RP_TRY(for_each_live_row_batched(
        store_, *e, options_.rebuild_batch,
        [&](storage::Tx& tx, std::int64_t id, const auto& row) -> Status {
          const SqlValue key = distribution_value(*e, options_.distribution_entity, id, row);
          if (do_fts) fts_rows.push_back({id, fts_text(*e, row), key});
          if (do_phones) RP_TRY(index_phones(tx, *e, id, row, options_.phone_region, true, key));
          ++total;
          return {};
        },
        [&](storage::Tx& tx) -> Status {
          if (fts_rows.empty()) return {};
          RP_TRY(tx.fts_load(e->name, fts_rows));  // held back, then sorted into the index once
          fts_rows.clear();
          return {};
        }));
    if (do_fts) {
      RP_ASSIGN(auto tx, store_.write());
      RP_TRY(tx->fts_load_finish(e->name));
      RP_TRY(tx->commit());
    }
  }
  RP_ASSIGN(auto tx, store_.write());
  for (const auto& [name, version] : {std::pair<std::string, std::string>{"fts", fts_version},
                                      {"phone_index", phone_version},
                                      {"audit_key", audit_version}}) {
    RP_TRY(record_derived_version(*tx, name, version));
  }
  RP_TRY(tx->commit());
  if (total > 0)
    spdlog::info("rebuilt {}{}{} for {} records", fts ? "search bodies" : "",
                 fts && phones ? " and " : "", phones ? "the phone index" : "", total);
  return {};
}

// insert_many does the same for many new records at once: keep the two in step.
Status RecordService::derive(storage::Tx& tx, const Entity& e, std::int64_t id,
                             const std::vector<SqlValue>& row, bool fresh) {
  const SqlValue key = distribution_value(e, options_.distribution_entity, id, row);
  if (e.has_searchable()) RP_TRY(tx.fts_put(e.name, id, fts_text(e, row), key));
  if (has_phone_list(e)) RP_TRY(index_phones(tx, e, id, row, options_.phone_region, fresh, key));
  if (hooks_.dedupe_for(e.name)) RP_TRY(Deduper(*this).index(tx, e, id, row, fresh));
  return {};
}

namespace {
// Whether the columns of the fields of `e` that `pick` selects hold the same values in two rows
// of the same entity (select_list order).
template <typename Pick>
bool same_columns(const Entity& e, const std::vector<SqlValue>& a, const std::vector<SqlValue>& b,
                  Pick pick) {
  size_t col = 0;
  for (const auto& f : e.fields) {
    const size_t n = column_count(f);
    if (pick(f))
      for (size_t k = col; k < col + n; ++k)
        if (k >= a.size() || k >= b.size() || a[k] != b[k]) return false;
    col += n;
  }
  return true;
}
}  // namespace

// derive() of a changed live record, each derived index rewritten only when what it is made of
// changed (as import_upsert.cc does for a batch): the term rows when a searchable field or the
// distribution key did (fts_text reads the searchable fields alone), the phone index rows when
// the numbers (E.164) or the key did, the match index rows when the record's match keys did.
// A PATCH of a plain field then writes no derived row: each of a record's ~28 term rows sits on
// its own page of the term index, which a rewrite read and dirtied.
Status RecordService::derive_changed(storage::Tx& tx, const Entity& e, std::int64_t id,
                                     const std::vector<SqlValue>& before,
                                     const std::vector<SqlValue>& row) {
  const SqlValue key = distribution_value(e, options_.distribution_entity, id, row);
  const bool key_changed = distribution_value(e, options_.distribution_entity, id, before) != key;
  if (e.has_searchable() &&
      (key_changed || !same_columns(e, before, row, [](const Field& f) { return f.searchable; })))
    RP_TRY(tx.fts_put(e.name, id, fts_text(e, row), key));
  // (the numbers parsed only when a phone list's text changed: a re-spelling keeps its rows)
  const auto is_phones = [](const Field& f) { return f.type == FieldType::kPhoneList; };
  if (has_phone_list(e) && (key_changed || (!same_columns(e, before, row, is_phones) &&
                                            phone_keys(e, before, options_.phone_region) !=
                                                phone_keys(e, row, options_.phone_region))))
    RP_TRY(index_phones(tx, e, id, row, options_.phone_region, /*fresh=*/false, key));
  if (hooks_.dedupe_for(e.name)) {
    Deduper dedupe(*this);
    auto keys = dedupe.index_keys_of(e, row), was = dedupe.index_keys_of(e, before);
    std::sort(keys.begin(), keys.end());
    std::sort(was.begin(), was.end());
    if (keys != was) RP_TRY(dedupe.index(tx, e, id, row, /*fresh=*/false));
  }
  return {};
}

bool RecordService::hides_searchable(const Principal& p, const Entity& e) const {
  return std::any_of(e.fields.begin(), e.fields.end(), [&](const Field& f) {
    return f.searchable && access::field_access(p, e, f) == FieldAccess::kHidden;
  });
}

bool RecordService::visible_text_matches(const Principal& p, const Entity& e,
                                         std::vector<SqlValue> row, std::string_view query) const {
  std::size_t col = 0;
  for (const auto& f : e.fields) {
    if (f.searchable && access::field_access(p, e, f) == FieldAccess::kHidden)
      for (std::size_t k = 0; k < column_count(f); ++k) row[col + k] = SqlValue{};
    col += column_count(f);
  }
  return storage::fts_text_matches(fts_text(e, row, nullptr), query);
}

Result<std::optional<std::vector<SqlValue>>> RecordService::load(storage::Tx& tx, const Entity& e,
                                                                 std::int64_t id) {
  SqlValue p[] = {id};
  RP_ASSIGN(auto rows, tx.query(by_id(e)->row, p));
  if (rows.rows.empty()) return std::optional<std::vector<SqlValue>>();
  return std::optional<std::vector<SqlValue>>(std::move(rows.rows[0]));
}

namespace {
std::vector<char> every_field(const Entity& e) { return std::vector<char>(e.fields.size(), 1); }
}  // namespace

RecordService::ById::ById(const Entity& e, std::uint32_t cache_slot)
    : version_col(column_index(e, "version")),
      owner_col(column_index(e, "owner_id")),
      team_col(column_index(e, "team_id")),
      deleted_col(field_column_count(e)),
      title_col(0),
      title(e.field(e.title_field)),
      slot(cache_slot),
      every(e, every_field(e)) {
  const std::string from = " FROM " + quote(e.name) + " WHERE \"id\" = ?";
  select = "SELECT " + select_list(e);
  row = select + from;
  head = "SELECT \"version\", \"owner_id\", \"team_id\", \"deleted_at\"";
  if (title) {
    title_col = column_index(e, title->name);
    for (const auto& c : field_columns(*title)) head += ", " + quote(c);
  }
  head += from;
}

std::vector<char> RecordService::ById::shown(const Entity& e, const Principal& p,
                                             std::string_view fields) const {
  return shown_fields(e, p, fields)->flags;
}

std::shared_ptr<const RecordService::ById::ShownFields> RecordService::ById::shown_fields(
    const Entity& e, const Principal& p, std::string_view fields) const {
  constexpr std::size_t kMaxKept = 64;
  std::lock_guard lock(shown_mu_);
  if (auto it = shown_.find(std::pair<const access::Role*, std::string_view>(p.role.get(), fields));
      it != shown_.end())
    return it->second.fields;
  const auto only = split_fields(fields);
  std::vector<char> flags = record::shown_fields(e, p, &only);
  CachedRecordJson json(flags);
  std::vector<std::pair<std::int32_t, std::uint32_t>> asked;
  for (std::string_view rest = fields; !rest.empty();) {
    const size_t c = rest.find(',');
    const std::string_view name = rest.substr(0, c);
    rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
    if (name.empty()) continue;
    const Field* f = e.field(name);
    const auto at = f ? static_cast<std::size_t>(f - e.fields.data()) : flags.size();
    if (at >= flags.size() || !flags[at]) {
      asked.emplace_back(-1, 0);
      continue;
    }
    std::string key;
    append_json_string(key, f->name);
    asked.emplace_back(static_cast<std::int32_t>(at), static_cast<std::uint32_t>(key.size() + 1));
  }
  auto made = std::make_shared<const ShownFields>(
      ShownFields{std::move(flags), std::move(json), std::move(asked)});
  if (shown_.size() >= kMaxKept) shown_.clear();
  shown_.try_emplace({p.role.get(), std::string(fields)}, Shown{p.role, made});
  return made;
}

std::optional<std::string_view> RecordService::ById::ShownFields::value_of(const CachedRecord& r,
                                                                           std::size_t k) const {
  if (k >= asked.size() || asked[k].first < 0) return std::nullopt;
  const auto i = static_cast<std::size_t>(asked[k].first);
  if (i + 1 >= r.start.size()) return std::nullopt;
  // Field i's text is `"name":value` up to the comma before field i + 1 (CachedRecord).
  const std::uint32_t from = r.start[i] + asked[k].second;
  return std::string_view(r.text).substr(from, r.start[i + 1] - 1 - from);
}

// Built once per entity snapshot rather than per read (the SELECT text of a 45-field entity is
// a kilobyte). A snapshot that is not the registry's current one (a request that began before a
// custom field was added) gets its own, not kept.
std::shared_ptr<const RecordService::ById> RecordService::by_id(const Entity& e) const {
  {
    std::lock_guard lock(by_id_mu_);
    if (auto it = by_id_.find(&e); it != by_id_.end()) return it->second;
  }
  auto current = registry_.get(e.name);
  auto made = std::make_shared<ById>(e, list_cache_.slot(e.name));
  if (current.get() != &e) return made;
  made->entity = std::move(current);
  std::lock_guard lock(by_id_mu_);
  // Snapshots replaced by custom fields stay held here; a bound keeps that small.
  if (by_id_.size() >= 256) by_id_.clear();
  return by_id_.try_emplace(&e, std::move(made)).first->second;
}

std::uint64_t RecordService::next_instance() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

struct RecordService::PlanMemo {
  std::uint64_t service = 0;       // 0: empty
  const Entity* entity = nullptr;  // null: never matches (a snapshot not kept by by_id)
  const access::Role* role = nullptr;
  std::string fields;
  std::shared_ptr<const ById> by;  // holds the snapshot at `entity`
  std::shared_ptr<const access::Role> role_held;
  std::shared_ptr<const ById::ShownFields> shown;
};

RecordService::ReadPlan RecordService::read_plan(const Entity& e, const Principal& p,
                                                 std::string_view fields) const {
  constexpr std::size_t kEntries = 8;
  thread_local std::array<PlanMemo, kEntries> memo;
  thread_local std::size_t next = 0;
  for (const auto& m : memo)
    if (m.entity == &e && m.service == instance_ && m.role == p.role.get() && m.fields == fields)
      return {m.by.get(), m.shown.get()};
  auto by = by_id(e);
  auto shown = by->shown_fields(e, p, fields);
  PlanMemo& m = memo[next];
  next = (next + 1) % kEntries;
  // A snapshot by_id does not keep (not the registry's current one) is not held by its ById:
  // its address could be reused, so the entry only holds it for the caller.
  m.service = instance_;
  m.entity = by->entity.get() == &e ? &e : nullptr;
  m.role = p.role.get();
  m.fields.assign(fields);
  m.role_held = p.role;
  m.by = std::move(by);
  m.shown = std::move(shown);
  return {m.by.get(), m.shown.get()};
}

// With list_cache_ on and mostly hit, the record's version, owner, team and deletion mark are
// read first (no other column decoded) and its text copied from the cache at that version; only
// a record not cached at it is read whole (and cached). While the entity's records are mostly
// missed (more than the cache holds, a cold start), reading a missed record twice would cost
// more than the cache saves: it is read whole at once, and still looked up and cached, so that
// the share of hits keeps being measured. Without the cache it is written from its columns
// (RecordJson). Either way the text is the same (row_json.h).
Result<RecordService::OneRecord> RecordService::read_one(storage::Tx& tx, const Principal& p,
                                                         const Entity& e, const ById& by,
                                                         std::int64_t id, Scope scope,
                                                         const std::vector<char>& shown,
                                                         bool want_title) {
  const ById::ShownFields fields{shown, CachedRecordJson(shown), {}};
  return read_one(tx, p, e, by, id, scope, fields, want_title);
}

Result<RecordService::OneRecord> RecordService::read_one(storage::Tx& tx, const Principal& p,
                                                         const Entity& e, const ById& by_ref,
                                                         std::int64_t id, Scope scope,
                                                         const ById::ShownFields& shown,
                                                         bool want_title, bool want_whole) {
  const ById* by = &by_ref;
  const SqlValue key[] = {id};
  OneRecord out;
  const auto title_of = [&](std::span<const SqlView> row, size_t col) {
    std::vector<SqlValue> cols;
    for (size_t k = 0; k < column_count(*by->title); ++k)
      cols.push_back(storage::value_of(row[col + k]));
    return to_text(*by->title, cols, 0);
  };
  // Whether the record may be shown at all; sets out.state.
  const auto check = [&](bool deleted, std::int64_t owner, std::int64_t team) {
    if (deleted)
      out.state = OneRecord::State::kDeleted;
    else if (!access::in_scope(p, scope, owner, team))
      out.state = OneRecord::State::kOutOfScope;
    else
      out.state = OneRecord::State::kFound;
    return out.state == OneRecord::State::kFound;
  };
  const bool cached = list_cache_.enabled();
  bool looked = false;  // list_cache_ asked already (and missed)
  constexpr auto kRead = RowJsonCache::Path::kRead;
  if (cached && !list_cache_.mostly_missed(by->slot, kRead)) {
    RP_TRY(tx.each_row(by->head, key, [&](std::span<const SqlView> row) {
      out.version = int_of(row[0]);
      if (check(row[3].index() != 0, int_of(row[1]), int_of(row[2])) && want_title && by->title)
        out.title = title_of(row, 4);
      return false;
    }));
    if (out.state != OneRecord::State::kFound) return out;
    auto rec = list_cache_.find(by->slot, id, out.version, e.fields.size(), kRead);
    list_cache_.count_page(by->slot, kRead, rec ? 1 : 0, rec ? 0 : 1);
    if (rec) {
      if (want_whole)
        out.whole = std::move(rec);
      else
        shown.json.append(out.text, *rec);
      return out;
    }
    looked = true;
  }
  out = OneRecord{};
  RP_TRY(tx.each_row(by->row, key, [&](std::span<const SqlView> row) {
    out.version = int_of(row[by->version_col]);
    if (!check(row[by->deleted_col].index() != 0, int_of(row[by->owner_col]),
               int_of(row[by->team_col])))
      return false;
    if (want_title && by->title) out.title = title_of(row, by->title_col);
    if (want_whole && !cached) {
      out.whole = std::make_shared<const CachedRecord>(by->every.whole(row, out.version));
      return false;
    }
    if (!want_whole) out.text.reserve(2048);
    if (!cached) {
      RecordJson(e, shown.flags).append(out.text, row);
      return false;
    }
    std::shared_ptr<const CachedRecord> rec;
    if (!looked) {
      rec = list_cache_.find(by->slot, id, out.version, e.fields.size(), kRead);
      list_cache_.count_page(by->slot, kRead, rec ? 1 : 0, rec ? 0 : 1);
    }
    if (!rec) {
      rec = std::make_shared<const CachedRecord>(by->every.whole(row, out.version));
      list_cache_.put(by->slot, id, rec, kRead);
    }
    if (want_whole)
      out.whole = std::move(rec);
    else
      shown.json.append(out.text, *rec);
    return false;
  }));
  return out;
}

Status RecordService::check_references(storage::Tx& tx, const Entity& e,
                                       const json::Value& values) {
  for (auto it = values.MemberBegin(); it != values.MemberEnd(); ++it) {
    const Field* f = e.field(it->name.GetString());
    if (!f || f->type != FieldType::kReference || it->value.IsNull()) continue;
    auto target = registry_.get(f->reference);
    if (!target) continue;
    SqlValue p[] = {std::stoll(it->value.GetString())};
    RP_ASSIGN(auto rows, tx.query("SELECT 1 FROM " + quote(target->name) +
                                      " WHERE \"id\" = ? AND deleted_at IS NULL",
                                  p));
    if (rows.rows.empty())
      return make_error(Errc::kValidation,
                        f->name + " refers to a " + target->name + " that does not exist", f->name);
  }
  return {};
}

std::string RecordService::fts_text(const Entity& e, const std::vector<SqlValue>& row,
                                    const std::vector<std::string>* e164) const {
  std::string text;
  size_t col = 0;
  bool first_phones = true;
  for (const auto& f : e.fields) {
    if (f.searchable) {
      std::string t = to_text(f, row, col);
      if (!t.empty()) {
        text += t;
        text += '\n';
        // Short text only: pinyin of a long Chinese summary would bloat the index for little.
        if (f.type == FieldType::kText) text += text::search_extras(t, f.name == e.title_field);
      }
      if (f.type == FieldType::kPhoneList) {
        // digits only, so "13812345678" finds "138-1234-5678"
        std::string digits;
        for (char c : t) {
          if (c >= '0' && c <= '9')
            digits += c;
          else if (c == ';')
            digits += ' ';
        }
        text += digits + '\n';
        // E.164 too, so "+8613812345678" finds "138-1234-5678"
        // (the terms are a set: the numbers of every phone list under the first one are the
        // same terms as each list's under its own)
        std::vector<std::string> keys;
        if (!e164)
          append_phone_keys(row[col], options_.phone_region, keys);
        else if (first_phones)
          keys = *e164;
        first_phones = false;
        for (const auto& key : keys) text += key + ' ';
        text += '\n';
      }
    }
    col += column_count(f);
  }
  return text;
}

Status RecordService::audit(storage::Tx& tx, const Principal& p, const Entity& e, std::int64_t id,
                            std::string_view action, const std::string& changes_json,
                            const std::string& at) {
  // The distribution key: the record's own id, or its reference to the distribution entity
  // as stored now (the row is written before its audit entry).
  DistributionKey key = distribution_key(e, options_.distribution_entity);
  std::string account = "NULL";
  if (key.self)
    account = "?";
  else if (key.field)
    account = "(SELECT " + quote(field_columns(*key.field)[0]) + " FROM " + quote(e.name) +
              " WHERE id = ?)";
  std::vector<SqlValue> params = {ids_.next(),
                                  e.name,
                                  id,
                                  std::string(action),
                                  p.user_id ? SqlValue(p.user_id) : SqlValue(),
                                  p.display_name.empty() ? p.username : p.display_name,
                                  p.channel,
                                  at,
                                  changes_json};
  if (key.self || key.field) params.emplace_back(id);
  RP_TRY(tx.exec(
      "INSERT INTO audit_log (id, entity, record_id, action, user_id, user_name, channel, at, "
      "changes, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, " +
          account + ")",
      params));
  return {};
}

void RecordService::publish(const Entity& e, Event ev) {
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.after_commit) h.after_commit(ev);
  events_.publish(ev);
}

void RecordService::publish_summary(const Entity& e, std::vector<Event> records,
                                    const Event& summary) {
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.after_commit)
      for (const auto& ev : records) h.after_commit(ev);
  events_.publish(summary);
}

Result<RecordResult> RecordService::get(const Principal& p, const Entity& e, std::int64_t id,
                                        std::string_view fields) {
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);
  const auto [by, shown] = read_plan(e, p, fields);
  RP_ASSIGN(auto tx, store_.read());
  RP_ASSIGN(OneRecord r, read_one(*tx, p, e, *by, id, scope, *shown, false));
  switch (r.state) {
    case OneRecord::State::kMissing:
    case OneRecord::State::kDeleted:
      return not_found(e, id);
    case OneRecord::State::kOutOfScope:
      return make_error(Errc::kForbidden, "this " + e.name + " belongs to another owner or team");
    case OneRecord::State::kFound:
      break;
  }
  return RecordResult{id, r.version, std::move(r.text), 200};
}

Result<RecordService::Inserted> RecordService::insert_one(storage::Tx& tx, const Principal& p,
                                                          const Entity& e, json::Document& input) {
  json::Document values(rapidjson::kObjectType);
  auto& a = values.GetAllocator();
  HookContext ctx{p, e, tx, "create", 0, input, values, a, {}};
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.prepare) RP_TRY(h.prepare(ctx));
  RP_TRY(new_values(p, e, input, values, a));
  RP_TRY(check_references(tx, e, values));
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.before_write) RP_TRY(h.before_write(ctx));

  std::int64_t id = ids_.next();
  std::string now = format_iso8601(clock_.now_ms());
  std::string cols =
      "\"id\", \"version\", \"created_at\", \"updated_at\", \"created_by\", \"updated_by\"";
  std::string marks = "?, 1, ?, ?, ?, ?";
  std::vector<SqlValue> params = {id, now, now, p.user_id ? SqlValue(p.user_id) : SqlValue(),
                                  p.user_id ? SqlValue(p.user_id) : SqlValue()};
  std::string changes = "[";
  for (const auto& f : e.fields) {
    const json::Value* v = json::member(values, f.name);
    if (!v || (f.system && f.name != "owner_id" && f.name != "team_id")) continue;
    for (const auto& c : field_columns(f)) {
      cols += ", " + quote(c);
      marks += ", ?";
    }
    to_sql(f, *v, params);
    if (!v->IsNull()) {
      if (changes.size() > 1) changes += ",";
      changes += "{\"field\":\"" + f.name + "\",\"from\":null,\"to\":" + json::stringify(*v) + "}";
    }
  }
  changes += "]";
  RP_TRY(
      tx.exec("INSERT INTO " + quote(e.name) + " (" + cols + ") VALUES (" + marks + ")", params));
  RP_ASSIGN(auto row, load(tx, e, id));
  RP_TRY(derive(tx, e, id, *row, /*fresh=*/true));
  RP_TRY(audit(tx, p, e, id, "create", changes, now));
  ctx.id = id;
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.after_write) RP_TRY(h.after_write(ctx));
  RowIndex ix(e);
  Inserted ins{id, std::move(*row), Event{e.name, id, "created", {}, 0, 0, p.user_id, now}};
  ins.event.owner_id = as_int(ins.row[ix.owner]);
  ins.event.team_id = as_int(ins.row[ix.team]);
  for (auto it = values.MemberBegin(); it != values.MemberEnd(); ++it)
    ins.event.changed.emplace_back(it->name.GetString());
  return ins;
}

Result<RecordResult> RecordService::create(const Principal& p, const Entity& e,
                                           std::string_view body, std::string_view idempotency_key,
                                           DedupeMode dedupe) {
  // create_async and a wait for its answer (none when it answered before returning).
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<RecordResult>> result;
  };
  auto wait = std::make_shared<Wait>();
  create_async(p, e, body, idempotency_key, dedupe, [wait](Result<RecordResult> r) {
    {
      std::lock_guard lock(wait->mu);
      wait->result.emplace(std::move(r));
    }
    wait->cv.notify_one();
  });
  std::unique_lock lock(wait->mu);
  if (!wait->result) {
    ScopedBlocking waiting;  // for the group COMMIT
    wait->cv.wait(lock, [&] { return wait->result.has_value(); });
  }
  return std::move(*wait->result);
}

void RecordService::create_async(Principal p, const Entity& e, std::string_view body,
                                 std::string_view idempotency_key, DedupeMode dedupe,
                                 std::function<void(Result<RecordResult>)> done) {
  if (!access::can_create(p, e.name))
    return done(make_error(Errc::kForbidden, "you may not create " + e.plural));
  auto parsed = json::parse_body(body);
  if (!parsed.ok()) return done(std::move(parsed).error());
  json::Document input = std::move(parsed).value();
  if (idempotency_key.size() > 255)
    return done(make_error(Errc::kBadRequest, "Idempotency-Key is longer than 255 characters",
                           "Idempotency-Key"));
  // An entity without hooks has everything but the statements done before the write
  // transaction begins, so the writer, which every create waits for, runs only statements:
  // values, the row as stored, derived index rows, dedupe facts. (Invalid values with an
  // Idempotency-Key take the path below, whose replay check comes first, as before.)
  // Its state lives until its answer: the grouped write's work and completion run on the
  // thread that holds the writer connection, after this function may have returned.
  struct Prepared {
    json::Document values{rapidjson::kObjectType};
    NewRow nr;
    Derived derived;
    std::optional<dedupe::Facts> facts;
    std::string out;  // the answer: the record as the caller may read it
    // the statements inserting the row and its audit entry
    std::string insert_row, insert_audit;
  };
  struct State {
    Principal p;
    const Entity& e;
    std::string key;           // Idempotency-Key
    std::string request_hash;  // of the body, with a key
    DedupeMode dedupe;
    const dedupe::Profile* profile;
    std::optional<Prepared> prepared;
    std::optional<RecordResult> prior;  // the earlier answer to this Idempotency-Key
    bool claim_lost = false;
    std::optional<std::vector<DuplicateCandidate>> duplicates;
    std::optional<Deduper::CandidateRows> candidates;  // scored after the commit (warn mode)
    std::function<void(Result<RecordResult>)> done;
  };
  auto st =
      std::make_shared<State>(State{std::move(p), e, std::string(idempotency_key),
                                    idempotency_key.empty() ? std::string() : fnv1a(e.name, body),
                                    dedupe, hooks_.dedupe_for(e.name), std::nullopt, std::nullopt,
                                    false, std::nullopt, std::nullopt, std::move(done)});
  const Principal& pr = st->p;
  if (hooks_.for_entity(e.name).empty()) {
    auto& prepared = st->prepared.emplace();
    Status valid = new_values(pr, e, input, prepared.values, prepared.values.GetAllocator());
    if (!valid.ok() && idempotency_key.empty()) return st->done(valid.error());
    if (valid.ok()) {
      prepared.nr = build_new_row(pr, e, prepared.values, ids_.next(),
                                  format_iso8601(clock_.now_ms()), ids_.next());
      // each phone number parsed once, for the phone index, the search body and the facts
      std::vector<std::string> e164;
      const bool phones = has_phone_list(e);
      if (phones) e164 = phone_keys(e, prepared.nr.row, options_.phone_region);
      const std::vector<std::string>* keys = phones ? &e164 : nullptr;
      if (st->profile)
        prepared.facts = Deduper(*this).facts_of_row(*st->profile, e, prepared.nr.row, keys);
      add_derived(e, prepared.nr, prepared.derived, prepared.facts ? &*prepared.facts : nullptr,
                  keys);
      // The record's index terms too, here rather than on the writer at its batch's COMMIT.
      for (auto& row : prepared.derived.fts) row.terms = storage::fts_terms_of(row.text);
      prepared.out = record_json(e, pr, prepared.nr.row);
      prepared.insert_row =
          insert_sql(quote(e.name), field_column_list(e), field_column_count(e), 1);
      prepared.insert_audit = insert_sql("audit_log", kAuditColumns, 10, 1);
    } else {
      st->prepared.reset();
    }
  }
  // The answer given to an earlier request with this key, if there was one.
  auto replay = [this](State& s, storage::Tx& t) -> Result<std::optional<RecordResult>> {
    SqlValue k[] = {s.p.user_id, s.key};
    RP_ASSIGN(auto rows, t.query("SELECT request_hash, record_id, response FROM idempotency WHERE "
                                 "user_id = ? AND idem_key = ?",
                                 k));
    if (rows.rows.empty()) return std::optional<RecordResult>();
    if (as_text(rows.rows[0][0]) != s.request_hash)
      return make_error(Errc::kConflict, "Idempotency-Key was already used for a different request",
                        "Idempotency-Key");
    RP_ASSIGN(auto row, load(t, s.e, as_int(rows.rows[0][1])));
    if (row)
      return std::optional<RecordResult>(RecordResult{as_int(rows.rows[0][1]),
                                                      as_int((*row)[RowIndex(s.e).version]),
                                                      record_json(s.e, s.p, *row), 201});
    return std::optional<RecordResult>(
        RecordResult{as_int(rows.rows[0][1]), 1, as_text(rows.rows[0][2]), 201});
  };
  // Records the key as answered by the new record `id` with `out`. A concurrent request with
  // the same key that committed first (PostgreSQL runs writers at once, several servers share
  // one database) makes it fail with kDuplicate.
  auto claim = [this](State& s, storage::Tx& t, std::int64_t id, const std::string& out) -> Status {
    SqlValue k[] = {s.p.user_id, s.key, s.request_hash, id, out, clock_.now_ms()};
    RP_TRY(
        t.exec("INSERT INTO idempotency (user_id, idem_key, request_hash, record_id, response, "
               "created_at) VALUES (?, ?, ?, ?, ?, ?)",
               k));
    return {};
  };
  // …and then the answer of the request that claimed the key first.
  auto replay_lost_claim = [this, replay](State& s) -> Result<std::optional<RecordResult>> {
    RP_ASSIGN(auto again, store_.read());
    return replay(s, *again);
  };
  if (st->prepared) {
    // The common create: its statements are run wherever the writer connection is, with the
    // other creates queued meanwhile (Store::write_grouped_async), instead of the connection
    // being handed to this thread and back; and it is answered by the thread that ran its
    // group's COMMIT, no thread of its own waiting for it. With an Idempotency-Key, the replay
    // check and the key's claim are statements of the same grouped write: a retry queued in
    // the same batch as the first request sees its claim (one shared transaction) and answers
    // with its record once that batch has committed.
    auto work = [this, st, replay, claim](storage::Tx& t) -> Status {
      State& s = *st;
      Prepared& prepared = *s.prepared;
      const std::int64_t id = prepared.nr.id;
      // A second run of the work (a later item of its run failed) starts afresh.
      s.prior.reset();
      s.claim_lost = false;
      s.duplicates.reset();
      s.candidates.reset();
      if (!s.key.empty()) {
        RP_ASSIGN(s.prior, replay(s, t));
        if (s.prior) return {};  // nothing written
      }
      RP_TRY(check_references(t, s.e, prepared.values));
      RP_TRY(t.exec(prepared.insert_row,
                    std::span<const SqlValue>(prepared.nr.row.data(), field_column_count(s.e))));
      RP_TRY(write_derived(t, s.e, prepared.derived));
      RP_TRY(t.exec(prepared.insert_audit, prepared.nr.audit));
      // Likely duplicates: read here (the writer's cache holds the pages just written; on a
      // reader after the COMMIT they cost twice as much CPU), scored after the commit; or the
      // create refused in block mode (rolled back).
      if (s.profile && prepared.facts && s.dedupe == DedupeMode::kWarn) {
        RP_ASSIGN(s.candidates,
                  Deduper(*this).on_create_reads(t, s.e, *s.profile, id, *prepared.facts));
      } else if (s.profile && prepared.facts) {
        RP_ASSIGN(s.duplicates,
                  Deduper(*this).on_create(t, s.p, s.e, *s.profile, id, *prepared.facts, s.dedupe));
      }
      if (!s.key.empty()) {
        Status claimed = claim(s, t, id, prepared.out);
        s.claim_lost = !claimed.ok() && claimed.error().code == Errc::kDuplicate;
        RP_TRY(claimed);
      }
      return {};
    };
    // After the COMMIT (or the item's own failure), on the thread that ended its batch.
    auto finish = [this, st, replay_lost_claim](Status written) {
      State& s = *st;
      auto answer = [&]() -> Result<RecordResult> {
        if (s.claim_lost) {
          RP_ASSIGN(auto earlier, replay_lost_claim(s));
          if (earlier) return std::move(*earlier);
        }
        RP_TRY(written);
        if (s.prior) return std::move(*s.prior);
        Prepared& prepared = *s.prepared;
        if (s.candidates)
          s.duplicates = Deduper(*this).on_create_score(s.p, s.e, *s.profile, *prepared.facts,
                                                        std::move(*s.candidates));
        publish(s.e, std::move(prepared.nr.event));
        RecordResult result{prepared.nr.id, 1, std::move(prepared.out), 201};
        if (s.duplicates) {
          result.dedupe_checked = true;
          result.duplicates = std::move(*s.duplicates);
        }
        return result;
      };
      Result<RecordResult> r = [&]() -> Result<RecordResult> {
        try {
          return answer();
        } catch (const std::exception& ex) {
          return make_error(Errc::kInternal, std::string("create failed: ") + ex.what());
        }
      }();
      auto reply = std::move(s.done);
      reply(std::move(r));
    };
    store_.write_grouped_async(std::move(work), std::move(finish));
    return;
  }
  // Entities with hooks (which may keep state of the request's thread), and invalid values
  // with an Idempotency-Key (whose replay check comes before the validation error): the
  // writer connection on this thread.
  auto done_now = std::move(st->done);
  done_now([&]() -> Result<RecordResult> {
    State& s = *st;
    RP_ASSIGN(auto tx, store_.write());
    if (!s.key.empty()) {
      RP_ASSIGN(auto earlier, replay(s, *tx));
      if (earlier) return std::move(*earlier);
    }
    RP_ASSIGN(Inserted ins, insert_one(*tx, s.p, e, input));
    const std::int64_t id = ins.id;
    // Likely duplicates: reported, or the create refused in block mode (rolled back).
    std::optional<std::vector<DuplicateCandidate>> duplicates;
    if (s.profile) {
      RP_ASSIGN(duplicates,
                Deduper(*this).on_create(*tx, s.p, e, *s.profile, id, ins.row, s.dedupe));
    }
    std::string out = record_json(e, s.p, ins.row);
    if (!s.key.empty()) {
      Status claimed = claim(s, *tx, id, out);
      if (!claimed.ok() && claimed.error().code == Errc::kDuplicate) {
        tx.reset();
        RP_ASSIGN(auto earlier, replay_lost_claim(s));
        if (earlier) return std::move(*earlier);
      }
      RP_TRY(claimed);
    }
    RP_TRY(tx->commit());
    publish(e, std::move(ins.event));
    RecordResult result{id, 1, std::move(out), 201};
    if (duplicates) {
      result.dedupe_checked = true;
      result.duplicates = std::move(*duplicates);
    }
    return result;
  }());
}

Result<std::vector<std::int64_t>> RecordService::create_batch(
    const Principal& p, const Entity& e, const std::vector<std::string>& bodies,
    std::span<const RowTimes> times) {
  if (!access::can_create(p, e.name))
    return make_error(Errc::kForbidden, "you may not create " + e.plural);
  if (!times.empty()) {
    if (p.channel != "system")
      return make_error(Errc::kForbidden, "only the system sets created_at", "created_at");
    if (times.size() != bodies.size())
      return make_error(Errc::kBadRequest,
                        std::to_string(times.size()) + " row times for " +
                            std::to_string(bodies.size()) + " rows",
                        "created_at");
    if (!hooks_.for_entity(e.name).empty())
      return make_error(Errc::kBadRequest,
                        e.plural + " have hooks: their rows take the clock's time", "created_at");
    for (size_t i = 0; i < times.size(); ++i)
      if (times[i].updated_at < times[i].created_at)
        return make_error(Errc::kBadRequest,
                          "row " + std::to_string(i + 1) + ": updated_at before created_at",
                          "updated_at");
  }
  std::vector<json::Document> inputs(bodies.size());
  std::vector<char> bad(bodies.size(), 0);
  parallel::for_ranges(bodies.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      auto doc = json::parse(bodies[i]);
      if (!doc.ok() || !doc->IsObject())
        bad[i] = 1;
      else
        inputs[i] = std::move(doc).value();
    }
  });
  for (size_t i = 0; i < bodies.size(); ++i)
    if (bad[i])
      return make_error(Errc::kBadRequest,
                        "row " + std::to_string(i + 1) + " is not a JSON object");
  RP_ASSIGN(auto tx, store_.write());
  std::vector<std::int64_t> ids;
  std::vector<Event> events;
  ids.reserve(bodies.size());
  if (hooks_.for_entity(e.name).empty()) {
    std::vector<const json::Value*> ptrs;
    ptrs.reserve(inputs.size());
    for (const auto& in : inputs) ptrs.push_back(&in);
    RP_ASSIGN(BulkInsert bulk, insert_many(*tx, p, e, ptrs, times));
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (bulk.errors[i]) {
        Error err = std::move(*bulk.errors[i]);
        err.message = "row " + std::to_string(i + 1) + ": " + err.message;
        return err;
      }
    }
    RP_TRY(tx->commit());
    for (auto& ev : bulk.events) publish(e, std::move(ev));
    return std::move(bulk.ids);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto ins = insert_one(*tx, p, e, inputs[i]);
    if (!ins.ok()) {
      Error err = std::move(ins).error();
      err.message = "row " + std::to_string(i + 1) + ": " + err.message;
      return err;
    }
    ids.push_back(ins->id);
    events.push_back(std::move(ins->event));
  }
  RP_TRY(tx->commit());
  for (auto& ev : events) publish(e, std::move(ev));
  return ids;
}

Status RecordService::finish_term_build(const Entity& e, std::int64_t run_id) {
  std::optional<std::int64_t> from;
  {
    RP_ASSIGN(auto tx, store_.read());
    const SqlValue name[] = {e.name};
    RP_ASSIGN(auto rows, tx->query("SELECT from_id FROM term_build WHERE entity = ?", name));
    if (!rows.rows.empty()) from = as_int(rows.rows[0][0]);
  }
  if (!from) return {};
  // Writes beside the build are noted from here on (this process's writes: the store's).
  const bool mine = store_.pending_terms().begin(e.name);
  struct End {
    storage::Store& store;
    const std::string& entity;
    bool mine;
    ~End() {
      if (mine) store.pending_terms().end(entity);
    }
  } end{store_, e.name, mine};
  storage::TermBuildOptions o;
  o.part_rows = std::max<std::size_t>(1, options_.term_build_part_rows);
  // stop_term_builds: the build ends after its part (its term_build row stays)
  o.after_part = [this]() -> Status {
    if (term_builds_stop_) return make_error(Errc::kBusy, "the server is stopping");
    return {};
  };
  RP_ASSIGN(auto stats, storage::build_term_rows(store_, e.name, *from, o));
  {
    RP_ASSIGN(auto tx, store_.write());
    const SqlValue name[] = {e.name, *from};
    // a later load's lower from_id stays (its rows are not built)
    RP_TRY(tx->exec("DELETE FROM term_build WHERE entity = ? AND from_id >= ?", name));
    RP_TRY(tx->commit());
  }
  // bench/import.sh prints this line
  spdlog::info(
      "import {}: term rows of {} records of {} built in {:.1f} s ({} rows, {} parts, longest "
      "write {:.2f} s, {} lists read again)",
      run_id, stats.records, e.name, stats.seconds, stats.rows, stats.parts, stats.longest_part_s,
      stats.refreshed);
  return {};
}

Result<std::vector<std::string>> RecordService::mark_term_builds() {
  std::vector<std::string> entities;
  RP_ASSIGN(auto tx, store_.read());
  RP_ASSIGN(auto rows, tx->query("SELECT entity FROM term_build ORDER BY entity"));
  for (const auto& r : rows.rows) {
    std::string name = as_text(r[0]);
    if (!registry_.get(name)) continue;
    store_.pending_terms().begin(name);  // from here on writes beside the build are noted
    entities.push_back(std::move(name));
  }
  return entities;
}

Status RecordService::finish_term_builds(const std::vector<std::string>& entities) {
  for (const auto& name : entities) {
    auto e = registry_.get(name);
    if (!e) continue;
    if (options_.term_builds_in_background) {
      // the indexes sync_table left to this build (sync_table's statements: IF NOT EXISTS)
      const auto start = std::chrono::steady_clock::now();
      auto indexes = deferrable_indexes(*e, store_.dialect());
      for (const auto& ix : indexes) {
        if (term_builds_stop_) return make_error(Errc::kBusy, "the server is stopping");
        RP_ASSIGN(auto tx, store_.write());
        RP_TRY(tx->exec(ix.create));
        RP_TRY(tx->commit());
      }
      spdlog::info("{} indexes of {} (a load was interrupted) made in the background in {:.1f} s",
                   indexes.size(), name,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    spdlog::info("term rows of {} pending (a load was interrupted): building them{}", name,
                 options_.term_builds_in_background ? " in the background" : "");
    RP_TRY(finish_term_build(*e));
    store_.pending_terms().end(name);  // on failure search stays told (the next start builds)
    if (auto st = mark_import_runs_indexed(name); !st.ok())
      spdlog::warn("could not mark the import runs of {} indexed: {}", name, st.error().message);
  }
  return {};
}

Status RecordService::finish_import_build(const Entity& e, std::int64_t run_id,
                                          std::vector<IndexDdl>& indexes, bool terms) {
  const std::size_t count = indexes.size();
  double index_s = 0;  // the indexes' statements only
  const auto build = [&](std::size_t k) -> Status {
    if (term_builds_stop_) return make_error(Errc::kBusy, "the server is stopping");
    const auto start = std::chrono::steady_clock::now();
    RP_ASSIGN(auto tx, store_.write());
    RP_TRY(tx->exec(indexes[k].create));
    RP_TRY(tx->commit());
    indexes.erase(indexes.begin() + static_cast<std::ptrdiff_t>(k));
    index_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return {};
  };
  // the default sort's index first (a list's first page)
  const std::string first = "ix_" + e.name + "__" + std::string(kDefaultSort.substr(1));
  for (std::size_t k = 0; k < indexes.size(); ++k)
    if (indexes[k].name == first) {
      RP_TRY(build(k));
      break;
    }
  if (terms) {  // then the term rows: search waits for them
    RP_TRY(finish_term_build(e, run_id));
    // on failure search stays told (index_pending) and start-up builds them
    store_.pending_terms().end(e.name);
  }
  while (!indexes.empty()) RP_TRY(build(indexes.size() - 1));
  if (count)  // bench/import.sh prints this line
    spdlog::info("import {}: {} indexes of {} built in {:.1f} s", run_id, count, e.name, index_s);
  if (terms) RP_TRY(mark_import_runs_indexed(e.name));
  return {};
}

void RecordService::build_import_in_background(const Entity& e, std::int64_t run_id,
                                               std::vector<IndexDdl> indexes, bool terms,
                                               std::unique_ptr<storage::Store::BulkWrites> bulk) {
  TermBuildJob job;
  job.bulk = std::move(bulk);
  job.entity = e.name;
  job.run_id = run_id;
  job.indexes = std::move(indexes);
  job.terms = terms;
  queue_term_build(std::move(job));
}

Status RecordService::mark_import_runs_indexed(std::string_view entity) {
  auto runs = registry_.get("import_run");
  if (!runs || !runs->field("index_status") || store_.pending_terms().pending(entity)) return {};
  std::vector<std::int64_t> ids;
  {
    RP_ASSIGN(auto tx, store_.read());
    const SqlValue name[] = {std::string(entity)};
    RP_ASSIGN(auto rows, tx->query("SELECT id FROM import_run WHERE entity = ? AND index_status = "
                                   "'building' AND deleted_at IS NULL",
                                   name));
    for (const auto& r : rows.rows) ids.push_back(as_int(r[0]));
  }
  if (ids.empty()) return {};
  const Principal system = access::system_principal();
  const std::string body =
      R"({"index_status":"complete","index_done_at":")" + format_iso8601(clock_.now_ms()) + "\"}";
  for (auto id : ids) RP_TRY(update(system, *runs, id, body));
  return {};
}

void RecordService::queue_term_build(TermBuildJob job) {
  std::lock_guard lock(term_jobs_mu_);
  if (term_builds_stop_) return;  // stopping: the term_build rows stay for the next start
  term_jobs_.push_back(std::move(job));
  term_builds_running_ = true;
  if (!term_builder_.joinable()) term_builder_ = std::thread([this] { run_term_builder(); });
  term_jobs_cv_.notify_one();
}

void RecordService::run_term_builder() {
  for (;;) {
    TermBuildJob job;
    {
      std::unique_lock lock(term_jobs_mu_);
      term_jobs_cv_.wait(lock, [this] { return term_builds_stop_ || !term_jobs_.empty(); });
      if (term_builds_stop_) return;
      job = std::move(term_jobs_.front());
      term_jobs_.pop_front();
    }
    const auto start = std::chrono::steady_clock::now();
    Status st;
    if (!job.entities.empty()) {
      st = finish_term_builds(job.entities);
      if (!st.ok() && term_builds_stop_)
        spdlog::info("term build stopped: the next start goes on with it");
      else if (!st.ok())
        spdlog::error("term build at start-up failed: {} (the next start tries again)",
                      st.error().message);
      else
        spdlog::info(
            "term builds left by an interrupted load done in {:.1f} s",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    } else if (auto e = registry_.get(job.entity)) {
      st = finish_import_build(*e, job.run_id, job.indexes, job.terms);
      if (!st.ok() && term_builds_stop_)
        spdlog::info("import {}: build of {} stopped: the next start goes on with it", job.run_id,
                     job.entity);
      else if (!st.ok())  // the term_build row stays: the next start builds the rest
        spdlog::error("import {}: could not build the indexes of {}: {}", job.run_id, job.entity,
                      st.error().message);
      else
        spdlog::info(
            "import {}: search and list indexes of {} complete in the background in {:.1f} s",
            job.run_id, job.entity,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    job.bulk.reset();  // the import's deferred upkeep (SQLite: the WAL checkpointed, truncated)
    std::lock_guard lock(term_jobs_mu_);
    if (term_jobs_.empty()) term_builds_running_ = false;
  }
}

void RecordService::start_term_builds() {
  if (term_builds_left_.empty()) return;
  TermBuildJob job;
  job.entities = std::move(term_builds_left_);
  term_builds_left_.clear();
  queue_term_build(std::move(job));
}

void RecordService::stop_term_builds() {
  {
    std::lock_guard lock(term_jobs_mu_);
    term_builds_stop_ = true;
  }
  term_jobs_cv_.notify_all();
  if (term_builder_.joinable()) term_builder_.join();
  std::lock_guard lock(term_jobs_mu_);
  term_jobs_.clear();  // their term_build rows stay for the next start; bulk handles released
  term_builds_running_ = false;
}

Status RecordService::finish_deferred_search_index() {
  for (const auto& e : registry_.all()) {
    if (!e->has_searchable()) continue;
    RP_ASSIGN(auto tx, store_.write());
    RP_TRY(tx->fts_load_finish(e->name));
    RP_TRY(tx->commit());
  }
  return {};
}

std::string RecordService::insert_sql(const std::string& table, const std::string& cols,
                                      size_t ncols, size_t rows) const {
  std::string one = "(";
  for (size_t c = 0; c < ncols; ++c) one += c ? ", ?" : "?";
  one += ")";
  // A failed statement fails the whole bulk insert, whose caller drops the transaction: no
  // statement journal needed (on SQLite about half the cost of a multi-row insert).
  std::string sql = store_.dialect().bulk_insert() + " INTO " + table + " (" + cols + ") VALUES ";
  sql.reserve(sql.size() + rows * (one.size() + 2));
  for (size_t r = 0; r < rows; ++r) {
    if (r) sql += ", ";
    sql += one;
  }
  return sql;
}

namespace {
// insert_rows for both overloads: `Rows` const (values copied into each statement's parameters)
// or not (moved in, and back after the statement: no copy of a value, e.g. an audit entry's
// changes).
template <typename Rows, typename Sql>
Status insert_rows_as(storage::Tx& tx, const Sql& sql, size_t ncols, Rows& rows) {
  constexpr bool kMove = !std::is_const_v<Rows>;
  // Statements of kMaxRows rows, the rest in power-of-two sizes: few distinct statement texts
  // (the backends cache prepared statements by text), parameters well below either backend's
  // limit (SQLite 32766, PostgreSQL 65535).
  const size_t max_rows = std::clamp<size_t>(30000 / std::max<size_t>(ncols, 1), 1, 256);
  std::vector<SqlValue> params;
  size_t at = 0;
  while (at < rows.size()) {
    size_t left = rows.size() - at, k = max_rows;
    while (k > left) k /= 2;
    if (k == 1) {  // one row: its values bound as they are
      RP_TRY(tx.exec(sql(1), std::span<const SqlValue>(rows[at].data(), ncols)));
      ++at;
      continue;
    }
    params.clear();
    params.reserve(k * ncols);
    for (size_t r = 0; r < k; ++r) {
      auto& row = rows[at + r];
      if constexpr (kMove)
        params.insert(params.end(), std::make_move_iterator(row.begin()),
                      std::make_move_iterator(row.begin() + static_cast<long>(ncols)));
      else
        params.insert(params.end(), row.begin(), row.begin() + static_cast<long>(ncols));
    }
    auto st = tx.exec(sql(k), params);  // moved back before its error is returned
    if constexpr (kMove)
      for (size_t r = 0; r < k; ++r)
        std::move(params.begin() + static_cast<long>(r * ncols),
                  params.begin() + static_cast<long>((r + 1) * ncols), rows[at + r].begin());
    RP_TRY(st);
    at += k;
  }
  return {};
}
}  // namespace

Status RecordService::insert_rows(storage::Tx& tx, const std::string& table,
                                  const std::string& cols, size_t ncols,
                                  const std::vector<std::vector<SqlValue>>& rows) {
  return insert_rows_as(
      tx, [&](size_t k) { return insert_sql(table, cols, ncols, k); }, ncols, rows);
}

Status RecordService::insert_rows(storage::Tx& tx, const std::string& table,
                                  const std::string& cols, size_t ncols,
                                  std::vector<std::vector<SqlValue>>& rows) {
  return insert_rows_as(
      tx, [&](size_t k) { return insert_sql(table, cols, ncols, k); }, ncols, rows);
}

RecordService::NewRow RecordService::build_new_row(const Principal& p, const Entity& e,
                                                   const json::Value& values, std::int64_t id,
                                                   const std::string& now, std::int64_t audit_id,
                                                   const std::string* updated) {
  const SqlValue user = p.user_id ? SqlValue(p.user_id) : SqlValue();
  const size_t ncols = field_column_count(e);
  NewRow nr;
  nr.id = id;
  auto& row = nr.row;
  row.reserve(ncols + 2);
  std::string changes = "[";
  for (const auto& f : e.fields) {
    if (f.name == "id") {
      row.emplace_back(id);
    } else if (f.name == "version") {
      row.emplace_back(std::int64_t{1});
    } else if (f.name == "created_at") {
      row.emplace_back(now);
    } else if (f.name == "updated_at") {
      row.emplace_back(updated ? *updated : now);
    } else if (f.name == "created_by" || f.name == "updated_by") {
      row.push_back(user);
    } else {
      const json::Value* v = json::member(values, f.name);
      if (!v || (f.system && f.name != "owner_id" && f.name != "team_id")) {
        row.resize(row.size() + column_count(f));
        continue;
      }
      to_sql(f, *v, row);
      if (!v->IsNull()) {
        if (changes.size() > 1) changes += ",";
        changes +=
            "{\"field\":\"" + f.name + "\",\"from\":null,\"to\":" + json::stringify(*v) + "}";
      }
    }
  }
  changes += "]";
  row.resize(ncols + 2);  // deleted_at, merged_into
  // the distribution key (as audit() and index_phones() store it), from the row as written
  nr.audit = {audit_id,
              e.name,
              id,
              std::string("create"),
              user,
              p.display_name.empty() ? p.username : p.display_name,
              p.channel,
              now,
              std::move(changes),
              distribution_value(e, options_.distribution_entity, id, row)};
  const RowIndex ix(e);
  nr.event = Event{e.name, id, "created", {}, 0, 0, p.user_id, now};
  nr.event.owner_id = as_int(row[ix.owner]);
  nr.event.team_id = as_int(row[ix.team]);
  for (auto it = values.MemberBegin(); it != values.MemberEnd(); ++it)
    nr.event.changed.emplace_back(it->name.GetString());
  return nr;
}

void RecordService::add_derived(const Entity& e, const NewRow& nr, Derived& out,
                                const dedupe::Facts* facts, const std::vector<std::string>* e164) {
  const std::int64_t id = nr.id;
  const SqlValue& account = nr.audit.back();  // the distribution key, as derive() stores it
  if (e.has_searchable()) out.fts.push_back({id, fts_text(e, nr.row, e164), account});
  if (has_phone_list(e)) {
    std::vector<std::string> parsed;
    if (!e164) parsed = phone_keys(e, nr.row, options_.phone_region);
    for (const auto& key : e164 ? *e164 : parsed) out.phones.push_back({key, e.name, id, account});
  }
  std::vector<std::string> keys;
  if (facts) {
    if (const dedupe::Profile* profile = hooks_.dedupe_for(e.name))
      keys = dedupe::index_keys(*profile, *facts);
  } else {
    keys = Deduper(*this).index_keys_of(e, nr.row);
  }
  for (auto& key : keys) out.matches.push_back({std::move(key), e.name, id});
}

Status RecordService::write_derived(storage::Tx& tx, const Entity& e, const Derived& d) {
  if (!d.fts.empty()) RP_TRY(tx.fts_put_many(e.name, d.fts, /*fresh=*/true));  // new ids
  RP_TRY(insert_rows(tx, "phone_index", "e164, entity, record_id, account_id", 4, d.phones));
  RP_TRY(insert_rows(tx, "match_index", "key, entity, record_id", 3, d.matches));
  return {};
}

Status RecordService::check_references(storage::Tx& tx, const Entity& e,
                                       const std::vector<SmallDocument>& values,
                                       std::vector<std::optional<Error>>& errors) const {
  constexpr size_t kChunk = 500;
  for (const auto& f : e.fields) {
    if (f.type != FieldType::kReference) continue;
    auto target = registry_.get(f.reference);
    if (!target) continue;
    std::map<std::int64_t, std::vector<size_t>> wanted;
    for (size_t i = 0; i < values.size(); ++i) {
      if (errors[i]) continue;
      const json::Value* v = json::member(values[i], f.name);
      if (!v || !v->IsString()) continue;
      wanted[std::stoll(v->GetString())].push_back(i);
    }
    std::vector<SqlValue> ids;
    std::set<std::int64_t> found;
    for (auto it = wanted.begin(); it != wanted.end();) {
      ids.clear();
      std::string list = "(";
      for (; it != wanted.end() && ids.size() < kChunk; ++it) {
        list += ids.empty() ? "?" : ", ?";
        ids.emplace_back(it->first);
      }
      RP_ASSIGN(auto rows, tx.query("SELECT \"id\" FROM " + quote(target->name) +
                                        " WHERE deleted_at IS NULL AND \"id\" IN " + list + ")",
                                    ids));
      for (const auto& r : rows.rows) found.insert(as_int(r[0]));
    }
    for (const auto& [id, inputs] : wanted) {
      if (found.count(id)) continue;
      for (size_t i : inputs)
        if (!errors[i])
          errors[i] =
              make_error(Errc::kValidation,
                         f.name + " refers to a " + target->name + " that does not exist", f.name);
    }
  }
  return {};
}

std::vector<RecordService::PreparedInsert> RecordService::prepare_inserts(
    const Principal& p, const Entity& e, const std::vector<const json::Value*>& inputs) {
  const size_t n = inputs.size();
  std::vector<PreparedInsert> out(n);
  const std::string now = format_iso8601(clock_.now_ms());
  std::vector<std::int64_t> ids(n), audit_ids(n);
  for (auto& id : ids) id = ids_.next();
  for (auto& id : audit_ids) id = ids_.next();
  const bool fts = e.has_searchable(), phones = has_phone_list(e);
  const dedupe::Profile* profile = hooks_.dedupe_for(e.name);
  Deduper dedupe(*this);
  parallel::for_ranges(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      PreparedInsert& q = out[i];
      q.ready = true;
      q.values.SetObject();
      if (auto st = new_values(p, e, *inputs[i], q.values, q.values.GetAllocator()); !st.ok()) {
        q.error = std::move(st).error();
        continue;
      }
      q.nr = build_new_row(p, e, q.values, ids[i], now, audit_ids[i]);
      const std::vector<SqlValue>& row = q.nr.row;
      if (phones) q.phone_keys = phone_keys(e, row, options_.phone_region);
      const std::vector<std::string>* e164 = phones ? &q.phone_keys : nullptr;
      if (fts) {
        q.fts = storage::Tx::FtsRow{ids[i], fts_text(e, row, e164), q.nr.audit.back()};
        q.fts->terms = storage::fts_terms_of(q.fts->text);
      }
      if (profile) {
        q.facts = dedupe.facts_of_row(*profile, e, row, e164);
        q.match_keys = dedupe::index_keys(*profile, *q.facts);
      }
    }
  });
  return out;
}

Result<RecordService::BulkInsert> RecordService::insert_many(
    storage::Tx& tx, const Principal& p, const Entity& e,
    const std::vector<const json::Value*>& inputs, std::span<const RowTimes> times,
    bool term_lists_only, std::span<PreparedInsert* const> prepared) {
  const size_t n = inputs.size();
  BulkInsert out;
  out.ids.assign(n, 0);
  out.errors.resize(n);
  std::vector<SmallDocument> values(n);  // thousands at once: small pool chunks
  auto ok = [&](size_t i) { return !out.errors[i].has_value(); };
  // the inputs prepare_inserts worked out (taken: emptied for any later call)
  std::vector<PreparedInsert*> pre(n, nullptr);
  if (times.empty())
    for (size_t i = 0; i < n && i < prepared.size(); ++i)
      if (prepared[i] && prepared[i]->ready) {
        pre[i] = prepared[i];
        pre[i]->ready = false;
      }
  // 1. each input on its own: values, defaults, required fields, owner and team (pure: on the
  // worker threads too)
  parallel::for_ranges(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (PreparedInsert* q = pre[i]) {
        if (q->error) out.errors[i] = std::move(q->error);
        values[i] = std::move(q->values);
        continue;
      }
      values[i].SetObject();
      if (auto st = new_values(p, e, *inputs[i], values[i], values[i].GetAllocator()); !st.ok())
        out.errors[i] = std::move(st).error();
    }
  });
  // 2. references
  RP_TRY(check_references(tx, e, values, out.errors));
  constexpr size_t kChunk = 500;
  auto in_list = [](size_t k) {
    std::string s = "(";
    for (size_t j = 0; j < k; ++j) s += j ? ", ?" : "?";
    return s + ")";
  };
  // 3. unique fields: against live records and among the inputs (the first one wins)
  for (const auto& f : e.fields) {
    if (!f.unique || f.system) continue;
    std::map<std::string, size_t> first;
    std::vector<std::pair<std::string, size_t>> keyed;
    for (size_t i = 0; i < n; ++i) {
      if (!ok(i)) continue;
      const json::Value* v = json::member(values[i], f.name);
      if (!v || v->IsNull()) continue;
      std::vector<SqlValue> sv;
      to_sql(f, *v, sv);
      std::string key = as_text(sv[0]);
      if (!first.emplace(key, i).second) {
        out.errors[i] = make_error(Errc::kDuplicate,
                                   "another row of this import has " + f.name + " " + key, f.name);
        continue;
      }
    }
    std::vector<SqlValue> keys;
    for (auto it = first.begin(); it != first.end();) {
      keys.clear();
      for (; it != first.end() && keys.size() < kChunk; ++it) {
        std::vector<SqlValue> sv;
        to_sql(f, *json::member(values[it->second], f.name), sv);
        keys.push_back(std::move(sv[0]));
      }
      RP_ASSIGN(auto rows, tx.query("SELECT " + quote(field_columns(f)[0]) + " FROM " +
                                        quote(e.name) + " WHERE deleted_at IS NULL AND " +
                                        quote(field_columns(f)[0]) + " IN " + in_list(keys.size()),
                                    keys));
      for (const auto& r : rows.rows) {
        auto hit = first.find(as_text(r[0]));
        if (hit != first.end() && ok(hit->second))
          out.errors[hit->second] =
              make_error(Errc::kDuplicate,
                         "another " + e.name + " already has " + f.name + " " + hit->first, f.name);
      }
    }
  }
  // 4. the rows, as select_list yields them, and their audit entries: ids in input order here,
  // then every row built on the worker threads too
  const std::string now = format_iso8601(clock_.now_ms());
  const size_t ncols = field_column_count(e);
  std::string cols;
  for (const auto& f : e.fields)
    for (const auto& c : field_columns(f)) cols += (cols.empty() ? "" : ", ") + quote(c);
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    if (!ok(i)) continue;
    which.push_back(i);
    out.ids[i] = pre[i] ? pre[i]->nr.id : ids_.next();
  }
  std::vector<std::int64_t> audit_ids(which.size());
  for (size_t r = 0; r < which.size(); ++r)
    if (!pre[which[r]]) audit_ids[r] = ids_.next();
  const size_t m = which.size();
  std::vector<std::vector<SqlValue>> rows(m);
  std::vector<std::vector<SqlValue>> audits(m);
  std::vector<Event> events(m);
  // What derive() does for one record, computed here and written many rows per statement below.
  const bool fts = e.has_searchable(), phones = has_phone_list(e);
  const dedupe::Profile* profile = hooks_.dedupe_for(e.name);
  Deduper dedupe(*this);
  std::vector<storage::Tx::FtsRow> fts_rows(fts ? m : 0);
  std::vector<std::vector<std::string>> phone_keys_of(m), match_keys_of(m);
  if (profile) out.facts.resize(n);
  const size_t created_col = column_index(e, "created_at"),
               updated_col = column_index(e, "updated_at");
  constexpr size_t kAuditAt = 7;  // build_new_row's audit entry: id, entity, record_id, action,
                                  // user_id, user_name, channel, at, ...
  parallel::for_ranges(m, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const size_t i = which[r];
      const std::int64_t id = out.ids[i];
      if (PreparedInsert* q = pre[i]) {
        // as built here, but with the write's time (one per batch, as a row built here has)
        rows[r] = std::move(q->nr.row);
        rows[r][created_col] = now;
        rows[r][updated_col] = now;
        audits[r] = std::move(q->nr.audit);
        audits[r][kAuditAt] = now;
        events[r] = std::move(q->nr.event);
        events[r].at = now;
        if (phones) phone_keys_of[r] = std::move(q->phone_keys);
        if (fts) fts_rows[r] = std::move(*q->fts);
        if (profile) {
          out.facts[i] = std::move(q->facts);
          match_keys_of[r] = std::move(q->match_keys);
        }
        continue;
      }
      NewRow nr;
      if (times.empty()) {
        nr = build_new_row(p, e, values[i], id, now, audit_ids[r]);
      } else {
        const std::string created = format_iso8601(times[i].created_at),
                          updated = format_iso8601(times[i].updated_at);
        nr = build_new_row(p, e, values[i], id, created, audit_ids[r], &updated);
      }
      rows[r] = std::move(nr.row);
      audits[r] = std::move(nr.audit);
      events[r] = std::move(nr.event);
      const std::vector<SqlValue>& row = rows[r];
      const SqlValue& account = audits[r].back();
      // each number parsed once, for the phone index, the full-text body and the facts
      if (phones) phone_keys_of[r] = phone_keys(e, row, options_.phone_region);
      const std::vector<std::string>* e164 = phones ? &phone_keys_of[r] : nullptr;
      if (fts) fts_rows[r] = {id, fts_text(e, row, e164), account};
      if (profile) {
        out.facts[i] = dedupe.facts_of_row(*profile, e, row, e164);
        match_keys_of[r] = dedupe::index_keys(*profile, *out.facts[i]);
      }
    }
  });
  out.events = std::move(events);
  RP_TRY(insert_rows(tx, quote(e.name), cols, ncols, rows));
  std::vector<std::vector<SqlValue>> phone_rows, match_rows;
  for (size_t r = 0; r < m; ++r) {
    const std::int64_t id = out.ids[which[r]];
    for (auto& key : phone_keys_of[r])
      phone_rows.push_back({std::move(key), e.name, id, audits[r].back()});
    for (auto& key : match_keys_of[r]) match_rows.push_back({std::move(key), e.name, id});
  }
  // In key order, as their unique indexes hold them: neighbouring keys share B-tree pages, so
  // the statement walks the index once instead of jumping to a random page for every row.
  const auto by_key = [](const std::vector<SqlValue>& a, const std::vector<SqlValue>& b) {
    return std::tie(std::get<std::string>(a[0]), std::get<std::int64_t>(a[2])) <
           std::tie(std::get<std::string>(b[0]), std::get<std::int64_t>(b[2]));
  };
  std::sort(phone_rows.begin(), phone_rows.end(), by_key);
  std::sort(match_rows.begin(), match_rows.end(), by_key);
  if (fts && term_lists_only && !fts_rows.empty()) {  // ids just generated
    std::int64_t lowest = fts_rows[0].id;
    for (const auto& r : fts_rows) lowest = std::min(lowest, r.id);
    const SqlValue lower[] = {lowest, e.name, lowest};
    RP_TRY(tx.exec("UPDATE term_build SET from_id = ? WHERE entity = ? AND from_id > ?", lower));
    const SqlValue add[] = {e.name, lowest, e.name};
    RP_TRY(
        tx.exec("INSERT INTO term_build (entity, from_id) SELECT ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM term_build WHERE entity = ?)",
                add));
    RP_TRY(tx.fts_put_lists(e.name, fts_rows));
  } else if (fts) {  // ids just generated
    RP_TRY(options_.defer_search_index ? tx.fts_load(e.name, fts_rows)
                                       : tx.fts_put_many(e.name, fts_rows, /*fresh=*/true));
  }
  RP_TRY(insert_rows(tx, "phone_index", "e164, entity, record_id, account_id", 4, phone_rows));
  RP_TRY(insert_rows(tx, "match_index", "key, entity, record_id", 3, match_rows));
  RP_TRY(insert_rows(tx, "audit_log",
                     "id, entity, record_id, action, user_id, user_name, channel, at, changes, "
                     "account_id",
                     10, audits));
  out.rows.resize(n);
  for (size_t r = 0; r < rows.size(); ++r) out.rows[which[r]] = std::move(rows[r]);
  struct Spent {
    std::vector<SmallDocument> values;
    std::vector<std::vector<SqlValue>> audits, phones, matches;
    std::vector<storage::Tx::FtsRow> fts;
  };
  out.spent =
      std::make_shared<Spent>(Spent{std::move(values), std::move(audits), std::move(phone_rows),
                                    std::move(match_rows), std::move(fts_rows)});
  return out;
}

Result<RecordResult> RecordService::update(const Principal& p, const Entity& e, std::int64_t id,
                                           std::string_view body,
                                           std::optional<std::int64_t> if_match) {
  if (access::scope_for(p, e.name, Op::kUpdate) == Scope::kNone)
    return make_error(Errc::kForbidden, "you may not change " + e.plural);
  RP_ASSIGN(json::Document input, json::parse_body(body));
  if (hooks_.for_entity(e.name).empty()) {
    // Run wherever the writer connection is, with the other writes queued meanwhile
    // (Store::write_grouped). (Hooks may keep state of the request's thread: not for them.)
    std::optional<Updated> u;
    RP_TRY(store_.write_grouped([&](storage::Tx& t) -> Status {
      RP_ASSIGN(u, update_one(t, p, e, id, input, if_match));
      return {};
    }));
    if (u->event) publish(e, std::move(*u->event));
    return std::move(u->result);
  }
  RP_ASSIGN(auto tx, store_.write());
  RP_ASSIGN(Updated u, update_one(*tx, p, e, id, input, if_match));
  if (!u.event) return std::move(u.result);  // nothing to change
  RP_TRY(tx->commit());
  publish(e, std::move(*u.event));
  return std::move(u.result);
}

void RecordService::update_async(Principal p, const Entity& e, std::int64_t id,
                                 std::string_view body, std::optional<std::int64_t> if_match,
                                 std::function<void(Result<RecordResult>)> done) {
  if (!hooks_.for_entity(e.name).empty()) return done(update(p, e, id, body, if_match));
  if (access::scope_for(p, e.name, Op::kUpdate) == Scope::kNone)
    return done(make_error(Errc::kForbidden, "you may not change " + e.plural));
  auto parsed = json::parse_body(body);
  if (!parsed.ok()) return done(std::move(parsed).error());
  // Its state lives until its answer: the work runs on the thread holding the writer
  // connection and the completion on the store's completion thread, after this returns.
  struct State {
    Principal p;
    const Entity& e;
    std::int64_t id;
    json::Document input;
    std::optional<std::int64_t> if_match;
    std::optional<Updated> u;
    std::function<void(Result<RecordResult>)> done;
  };
  auto st = std::make_shared<State>(State{std::move(p), e, id, std::move(parsed).value(), if_match,
                                          std::nullopt, std::move(done)});
  auto work = [this, st](storage::Tx& t) -> Status {
    st->u.reset();  // a second run of the work (a later item of its run failed) starts afresh
    RP_ASSIGN(st->u, update_one(t, st->p, st->e, st->id, st->input, st->if_match));
    return {};
  };
  // After the COMMIT (or the item's own failure: not found, a stale version, a bad value).
  auto finish = [this, st](Status written) {
    Result<RecordResult> r = [&]() -> Result<RecordResult> {
      try {
        RP_TRY(written);
        if (st->u->event) publish(st->e, std::move(*st->u->event));
        return std::move(st->u->result);
      } catch (const std::exception& ex) {
        return make_error(Errc::kInternal, std::string("update failed: ") + ex.what());
      }
    }();
    auto reply = std::move(st->done);
    reply(std::move(r));
  };
  store_.write_grouped_async(std::move(work), std::move(finish));
}

Status RecordService::collect_input_values(const Principal& p, const Entity& e,
                                           const json::Value& input, json::Value& values,
                                           json::Allocator& a) {
  return collect_values(p, e, input, values, a);
}

Result<RecordService::Updated> RecordService::update_one(storage::Tx& tx_ref, const Principal& p,
                                                         const Entity& e, std::int64_t id,
                                                         json::Document& input,
                                                         std::optional<std::int64_t> if_match) {
  Scope scope = access::scope_for(p, e.name, Op::kUpdate);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not change " + e.plural);
  storage::Tx* tx = &tx_ref;
  RP_ASSIGN(auto row, load(*tx, e, id));
  RowIndex ix(e);
  if (!row || !storage::is_null((*row)[ix.deleted])) return not_found(e, id);
  if (!access::in_scope(p, scope, as_int((*row)[ix.owner]), as_int((*row)[ix.team])))
    return make_error(Errc::kForbidden, "this " + e.name + " belongs to another owner or team");
  std::int64_t version = as_int((*row)[ix.version]);
  if (if_match && *if_match != version)
    return make_error(Errc::kConflict, "the record was changed by someone else (now version " +
                                           std::to_string(version) +
                                           "); reload it and apply your change again");
  json::Document values(rapidjson::kObjectType);
  auto& a = values.GetAllocator();
  HookContext ctx{p, e, *tx, "update", id, input, values, a, {}};
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.prepare) RP_TRY(h.prepare(ctx));
  RP_TRY(collect_values(p, e, input, values, a));
  for (auto it = values.MemberBegin(); it != values.MemberEnd(); ++it) {
    const Field* f = e.field(it->name.GetString());
    if (f->required && it->value.IsNull())
      return make_error(Errc::kValidation, f->name + " is required", f->name);
  }
  // Conditional requirements on the record as it will be after the PATCH: turning the condition
  // on without the field, or clearing the field while it holds, is refused; so is any PATCH of a
  // record that already breaks one (stored before its rule existed), naming the field to fill.
  RP_TRY(check_required_when(e, &values, *row));
  RP_TRY(check_references(*tx, e, values));
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.before_write) RP_TRY(h.before_write(ctx));

  std::string now = format_iso8601(clock_.now_ms());
  std::string sets;
  std::vector<SqlValue> params;
  std::string changes = "[";
  std::vector<std::string> changed;
  size_t col = 0;
  for (const auto& f : e.fields) {
    size_t n = column_count(f);
    const json::Value* v = json::member(values, f.name);
    if (v) {
      json::Value old;
      to_json(f, *row, col, old, a);
      std::string before = json::stringify(old), after = json::stringify(*v);
      if (before != after) {
        for (const auto& c : field_columns(f)) sets += quote(c) + " = ?, ";
        to_sql(f, *v, params);
        if (changes.size() > 1) changes += ",";
        changes += "{\"field\":\"" + f.name + "\",\"from\":" + before + ",\"to\":" + after + "}";
        changed.push_back(f.name);
      }
    }
    col += n;
  }
  changes += "]";
  if (changed.empty() && ctx.stash.empty()) {
    return Updated{RecordResult{id, version, record_json(e, p, *row), 200}, {}};
  }
  sets += "\"version\" = ?, \"updated_at\" = ?, \"updated_by\" = ?";
  params.emplace_back(version + 1);
  params.emplace_back(now);
  params.push_back(p.user_id ? SqlValue(p.user_id) : SqlValue());
  params.emplace_back(id);
  params.emplace_back(version);
  RP_ASSIGN(auto n, tx->exec("UPDATE " + quote(e.name) + " SET " + sets +
                                 " WHERE \"id\" = ? AND \"version\" = ?",
                             params));
  if (n != 1)
    return make_error(Errc::kConflict, "the record was changed by someone else; reload it");
  std::vector<SqlValue> before = std::move(*row);
  RP_ASSIGN(row, load(*tx, e, id));
  RP_TRY(derive_changed(*tx, e, id, before, *row));
  RP_TRY(audit(*tx, p, e, id, "update", changes, now));
  for (const auto& h : hooks_.for_entity(e.name))
    if (h.after_write) RP_TRY(h.after_write(ctx));
  return Updated{RecordResult{id, version + 1, record_json(e, p, *row), 200},
                 Event{e.name, id, "updated", changed, as_int((*row)[ix.owner]),
                       as_int((*row)[ix.team]), p.user_id, now}};
}

Status RecordService::remove(const Principal& p, const Entity& e, std::int64_t id) {
  Scope scope = access::scope_for(p, e.name, Op::kDelete);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not delete " + e.plural);
  std::optional<Event> deleted;
  // Entities without hooks run wherever the writer connection is, with the other writes queued
  // meanwhile (Store::write_grouped); hooks may keep state of the request's thread.
  auto work = [&](storage::Tx& tx) -> Status {
    RP_ASSIGN(auto row, load(tx, e, id));
    RowIndex ix(e);
    if (!row || !storage::is_null((*row)[ix.deleted])) return not_found(e, id);
    if (!access::in_scope(p, scope, as_int((*row)[ix.owner]), as_int((*row)[ix.team])))
      return make_error(Errc::kForbidden, "this " + e.name + " belongs to another owner or team");
    if (e.name == "user" && id == p.user_id)
      return make_error(Errc::kRuleViolation, "you cannot delete yourself");
    std::string now = format_iso8601(clock_.now_ms());
    SqlValue params[] = {now, now, id};
    RP_TRY(tx.exec("UPDATE " + quote(e.name) +
                       " SET deleted_at = ?, \"version\" = \"version\" + 1, "
                       "\"updated_at\" = ? WHERE \"id\" = ?",
                   params));
    if (e.has_searchable()) RP_TRY(tx.fts_delete(e.name, id));
    if (has_phone_list(e)) RP_TRY(unindex_phones(tx, e, id));
    if (hooks_.dedupe_for(e.name)) RP_TRY(Deduper(*this).unindex(tx, e, id));
    RP_TRY(audit(tx, p, e, id, "delete", "[]", now));
    json::Document input(rapidjson::kObjectType), values(rapidjson::kObjectType);
    HookContext ctx{p, e, tx, "delete", id, input, values, values.GetAllocator(), {}};
    for (const auto& h : hooks_.for_entity(e.name))
      if (h.after_write) RP_TRY(h.after_write(ctx));
    deleted = Event{e.name,    id, "deleted", {}, as_int((*row)[ix.owner]), as_int((*row)[ix.team]),
                    p.user_id, now};
    return {};
  };
  if (hooks_.for_entity(e.name).empty()) {
    RP_TRY(store_.write_grouped(work));
  } else {
    RP_ASSIGN(auto tx, store_.write());
    RP_TRY(work(*tx));
    RP_TRY(tx->commit());
  }
  publish(e, std::move(*deleted));
  return {};
}

Result<RecordResult> RecordService::restore(const Principal& p, const Entity& e, std::int64_t id) {
  Scope scope = access::scope_for(p, e.name, Op::kDelete);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not restore " + e.plural);
  RP_ASSIGN(auto tx, store_.write());
  RP_ASSIGN(auto row, load(*tx, e, id));
  RowIndex ix(e);
  if (!row) return not_found(e, id);
  if (storage::is_null((*row)[ix.deleted]))
    return make_error(Errc::kConflict, "this " + e.name + " is not deleted");
  if (!storage::is_null((*row)[ix.deleted + 1]))
    return make_error(Errc::kConflict, "this " + e.name + " was merged into another record");
  if (!access::in_scope(p, scope, as_int((*row)[ix.owner]), as_int((*row)[ix.team])))
    return make_error(Errc::kForbidden, "this " + e.name + " belongs to another owner or team");
  std::string now = format_iso8601(clock_.now_ms());
  SqlValue params[] = {now, id};
  RP_TRY(tx->exec("UPDATE " + quote(e.name) +
                      " SET deleted_at = NULL, \"version\" = \"version\" + 1, "
                      "\"updated_at\" = ? WHERE \"id\" = ?",
                  params));
  RP_ASSIGN(row, load(*tx, e, id));
  RP_TRY(derive(*tx, e, id, *row, /*fresh=*/true));
  RP_TRY(audit(*tx, p, e, id, "restore", "[]", now));
  RP_TRY(tx->commit());
  publish(e, Event{e.name,
                   id,
                   "restored",
                   {},
                   as_int((*row)[ix.owner]),
                   as_int((*row)[ix.team]),
                   p.user_id,
                   now});
  return RecordResult{id, as_int((*row)[ix.version]), record_json(e, p, *row), 200};
}

namespace {
// The conditions `{"field": f, "op": "="}` on an indexed (or unique) field that every match of
// the filter `expr` must meet: `expr` itself or members of its top-level "and".
std::vector<const json::Value*> required_indexed_equalities(const json::Value& expr,
                                                            const Entity& e) {
  auto fits = [&e](const json::Value& c) {
    const json::Value* f = json::member(c, "field");
    const json::Value* op = json::member(c, "op");
    if (!f || !f->IsString() || !op || !op->IsString() || std::string_view(op->GetString()) != "=")
      return false;
    const Field* field = e.field(f->GetString());
    return field && (field->indexed || field->unique);
  };
  std::vector<const json::Value*> out;
  if (!expr.IsObject()) return out;
  if (fits(expr)) out.push_back(&expr);
  const json::Value* all = json::member(expr, "and");
  if (all && all->IsArray())
    for (const auto& c : all->GetArray())
      if (c.IsObject() && fits(c)) out.push_back(&c);
  return out;
}
}  // namespace

// A planner without statistics (SQLite) lets an equality on an indexed field drive whatever
// the sort: it guesses such a value has a few rows. A common value (tier = 'A', a fifth of the
// table) under another sort than the index's own order (its index ends with created_at) then
// has every matching row read and sorted for each page. So each equality the filter requires
// is counted through its index up to kEqualityFirstMax rows: the fields with that many are
// answered here, to be written unindexed (+"tier"), and the sort's index drives, reading about
// limit × rows / matches entries; a rarer value keeps its index (at most that many rows sorted).
// Not when something else drives (`other_driver`: a scope read first, a search) or the sort's
// first field has no index of its own.
Result<std::optional<std::vector<const Field*>>> RecordService::common_equalities(
    const Principal& p, const Entity& e, const json::Value& filter,
    const std::vector<SortKey>& keys, bool other_driver, storage::Tx* tx,
    const std::optional<std::vector<std::string>>& carried) const {
  using Decision = std::optional<std::vector<const Field*>>;
  if (other_driver || keys.empty() || !store_.dialect().plans_by_written_order()) return Decision();
  const Field* first = keys.front().field;
  if (first->name == "created_at" || !(first->indexed || first->unique || first->name == "id"))
    return Decision();
  // An equality on the first column of a declared index whose second is the sort's field (an
  // account's timeline: account_id = ?, -occurred_at) is not counted: that index serves both,
  // in the list order (table.cc), whatever the value's count.
  const auto leads_with_sort = [&](const Field* f) {
    return std::any_of(e.indexes.begin(), e.indexes.end(), [&](const auto& cols) {
      return cols.size() >= 2 && cols[0] == f->name && cols[1] == first->name;
    });
  };
  std::vector<std::pair<const Field*, const json::Value*>> eqs;
  for (const json::Value* eq : required_indexed_equalities(filter, e)) {
    const Field* f = e.field((*json::member(*eq, "field")).GetString());
    if (f != first && !f->unique) eqs.emplace_back(f, eq);
  }
  if (eqs.empty()) return Decision();
  std::vector<const Field*> common;
  if (carried) {
    // An earlier page's decision: only fields of this filter's equalities (else the cursor
    // belongs to another list).
    for (const auto& name : *carried) {
      auto it = std::find_if(eqs.begin(), eqs.end(),
                             [&name](const auto& eq) { return eq.first->name == name; });
      if (it == eqs.end())
        return make_error(Errc::kBadRequest, "cursor is not valid for this list", "cursor");
      common.push_back(it->first);
    }
    return Decision(std::move(common));
  }
  if (!tx) return Decision();
  for (const auto& [f, eq] : eqs) {
    if (leads_with_sort(f)) continue;
    std::vector<SqlValue> params;
    auto cond = compile_filter(*eq, e, p, store_.dialect(), params);
    if (!cond.ok()) continue;  // the whole filter's compile names the error
    params.emplace_back(static_cast<std::int64_t>(kEqualityFirstMax));
    RP_ASSIGN(auto n, tx->query("SELECT count(*) FROM (SELECT 1 FROM " + quote(e.name) + " WHERE " +
                                    *cond + " LIMIT ?) c",
                                params));
    if (!n.rows.empty() && as_int(n.rows[0][0]) >= kEqualityFirstMax) common.push_back(f);
  }
  return Decision(std::move(common));
}

Result<ListStatement> RecordService::list_statement(const Principal& p, const Entity& e,
                                                    const ListParams& lp, storage::Tx* tx) const {
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);
  if (lp.limit < 1 || lp.limit > kMaxPageSize)
    return make_error(Errc::kBadRequest, "limit must be between 1 and 500", "limit");
  std::vector<SqlValue> params;
  // The filter's document: the caller's (ListParams::parsed_filter) or parsed here once; a parse
  // error is answered where the filter is compiled, after the sort's and the cursor's errors.
  std::optional<Result<json::Document>> parsed;
  const json::Value* filter_doc = lp.parsed_filter;
  if (!filter_doc && !lp.filter.empty()) {
    parsed.emplace(json::parse(lp.filter));
    if (parsed->ok()) filter_doc = &**parsed;
  }
  // A caller of own or team scope, on a planner without statistics: which index drives is
  // chosen by the scope's size, counted up to kScopeFirstMax records through the owner and team
  // indexes (deleted records too: a bound, not the answer). A smaller scope drives: its ids
  // are read first (CROSS JOIN keeps that order), then their rows filtered and sorted, so a
  // page costs at most that many rows however large the table — the filter's index would read
  // every row with the filtered value, nearly all of them outside the scope (unless that value
  // has fewer rows than the scope, see below). A larger scope
  // leaves the filter's or the order's index to drive (as for an administrator), and a team
  // scope's columns are then written unindexed, so that the planner does not collect and sort
  // every record of the team for each page.
  std::string from = quote(e.name);
  bool scope_first = false, unindexed_scope = false;
  if (tx && (scope == Scope::kOwn || scope == Scope::kTeam) &&
      store_.dialect().plans_by_written_order()) {
    std::vector<SqlValue> probe;
    const std::string mine = scope_sql(p, scope, probe);
    probe.emplace_back(static_cast<std::int64_t>(kScopeFirstMax));
    RP_ASSIGN(auto n, tx->query("SELECT count(*) FROM (SELECT 1 FROM " + quote(e.name) + " WHERE " +
                                    mine + " LIMIT ?) c",
                                probe));
    const std::int64_t in_scope = n.rows.empty() ? 0 : as_int(n.rows[0][0]);
    bool narrower_filter = false;
    if (in_scope < kScopeFirstMax && !lp.filter.empty()) {
      // …unless an equality on an indexed field that the filter requires has fewer rows than
      // the scope (an account's contacts): counted through that field's index up to the
      // scope's size, a bounded index read, and then that index drives.
      const json::Value* eq = nullptr;
      if (filter_doc)
        if (auto eqs = required_indexed_equalities(*filter_doc, e); !eqs.empty()) eq = eqs.front();
      std::vector<SqlValue> eq_params;
      auto cond = eq ? compile_filter(*eq, e, p, store_.dialect(), eq_params)
                     : Result<std::string>(std::string());
      if (cond.ok() && !cond->empty()) {
        eq_params.emplace_back(in_scope);
        RP_ASSIGN(auto m, tx->query("SELECT count(*) FROM (SELECT 1 FROM " + quote(e.name) +
                                        " WHERE " + *cond + " LIMIT ?) c",
                                    eq_params));
        narrower_filter = !m.rows.empty() && as_int(m.rows[0][0]) < in_scope;
      }
    }
    if (in_scope < kScopeFirstMax && !narrower_filter) {
      scope_first = true;
      from = "(SELECT \"id\" AS \"scope_id\" FROM " + quote(e.name) + " WHERE " +
             scope_sql(p, scope, params) + ") \"scope\" CROSS JOIN " + quote(e.name);
    } else {
      unindexed_scope = scope == Scope::kTeam;
    }
  }
  RP_ASSIGN(auto keys, parse_sort(lp.sort.empty() ? kDefaultSort : lp.sort, e, p));
  std::vector<SqlValue> cursor_values;
  std::optional<std::vector<std::string>> carried;
  if (!lp.cursor.empty()) {
    RP_ASSIGN(cursor_values, decode_cursor(lp.cursor, keys.size(), &carried));
  }
  std::string where = scope_first ? "\"id\" = \"scope_id\" AND " : "";
  where += scope_sql(p, scope, params, unindexed_scope);
  std::optional<std::vector<std::string>> plan;
  if (!lp.filter.empty()) {
    if (!filter_doc)
      return make_error(Errc::kBadFilter, "filter is not valid JSON: " + parsed->error().message,
                        "filter");
    RP_ASSIGN(auto decided, common_equalities(p, e, *filter_doc, keys, scope_first || !lp.q.empty(),
                                              tx, carried));
    std::vector<const Field*> unindexed;
    if (decided) {
      unindexed = std::move(*decided);
      plan.emplace();
      for (const Field* f : unindexed) plan->push_back(f->name);
    }
    if (lp.compiled_filter && unindexed.empty()) {
      where += " AND " + lp.compiled_filter->sql;
      params.insert(params.end(), lp.compiled_filter->params.begin(),
                    lp.compiled_filter->params.end());
    } else {
      RP_ASSIGN(std::string cond,
                compile_filter(*filter_doc, e, p, store_.dialect(), params, unindexed));
      where += " AND " + cond;
    }
  }
  if (!lp.q.empty()) {
    if (!e.has_searchable())
      return make_error(Errc::kBadRequest, e.plural + " have no searchable fields", "q");
    where += " AND " + store_.dialect().fts_condition(e.name, text::search_query(lp.q), params);
  }
  // Last: deleted_at is the row's last column but one, so SQLite decodes the whole row header
  // to test it; tested after the filter, only the rows that pass the filter pay for that (of
  // a scope read whole, most do not).
  const char* live = lp.deleted ? " AND deleted_at IS NOT NULL" : " AND deleted_at IS NULL";
  const std::string order = " ORDER BY " + order_by(keys) + " LIMIT ?";
  const SqlValue limit = static_cast<std::int64_t>(lp.limit) + 1;
  std::optional<CursorArms> arms;
  if (!lp.cursor.empty()) {
    const auto& values = cursor_values;
    arms = cursor_arms(keys, values);
    if (!arms) {
      where += " AND " + after_cursor(keys, values, params);
    } else if (arms->then.empty()) {
      where += " AND (" + arms->first + ")";
      params.insert(params.end(), arms->first_params.begin(), arms->first_params.end());
    }
  }
  if (arms && !arms->then.empty()) {
    // The rows after the cursor are two runs of the order (past the cursor's value, then the
    // NULLs of a descending first key): one condition `a OR b` would have the index read from
    // its first entry to the cursor, so each run is its own page read from the index at its
    // place, and the two pages (at most 2 × (limit + 1) rows) are merged.
    std::vector<SqlValue> all;
    all.reserve(params.size() * 2 + arms->first_params.size() + arms->then_params.size() + 3);
    auto arm = [&](const std::string& cond, const std::vector<SqlValue>& cond_params) {
      all.insert(all.end(), params.begin(), params.end());
      all.insert(all.end(), cond_params.begin(), cond_params.end());
      all.push_back(limit);
      return "SELECT * FROM " + from + " WHERE " + where + " AND (" + cond + ")" + live + order;
    };
    const std::string first = arm(arms->first, arms->first_params);
    const std::string then = arm(arms->then, arms->then_params);
    all.push_back(limit);
    std::string rest = " FROM (SELECT * FROM (" + first + ") \"a\" UNION ALL SELECT * FROM (" +
                       then + ") \"b\") \"page\"" + order;
    return ListStatement{by_id(e)->select + rest, std::move(rest), std::move(all), std::move(keys),
                         std::move(plan)};
  }
  where += live;
  params.push_back(limit);
  std::string rest = " FROM " + from + " WHERE " + where + order;
  return ListStatement{by_id(e)->select + rest, std::move(rest), std::move(params), std::move(keys),
                       std::move(plan)};
}

// A page from the record text cache (list_cache_): the statement's rows are read first with only
// their id, version and sort keys — the same rows in the same order, but no other column is
// decoded — and the records cached at those versions are copied; the others are read by id in
// one statement (of the same snapshot), written whole, cached, and copied. Only the `shown`
// fields' text is copied (CachedRecordJson). Appends the records to `out`; the next page's
// cursor, if any.
// While most of an entity's listed records have been missing from the cache (pages that do not
// fit it, a cold start), reading each missing record twice would cost more than the cache saves:
// the page is then read whole in one statement as without the cache, records found at their
// version copied, the others written from their columns and cached, so that the cache fills and
// the share of hits is still measured.
Result<std::optional<std::string>> RecordService::cached_page(const Entity& e, const ListParams& lp,
                                                              const ListStatement& st,
                                                              const ById::ShownFields& shown,
                                                              storage::Tx& tx, std::string& out) {
  const auto& keys = st.keys;
  constexpr auto kList = RowJsonCache::Path::kList;
  const CachedRecordJson& writer = shown.json;
  const size_t id_col = column_index(e, "id"), version_col = column_index(e, "version");
  // The entity's writer of whole records and its SELECT list, built once per entity snapshot.
  const auto by = by_id(e);
  const std::uint32_t slot = by->slot;
  // The record of a select_list row: from the cache at its version (when `look`), else written
  // and cached.
  std::size_t hits = 0, misses = 0;
  const auto record_of = [&](std::span<const SqlView> row, bool look) {
    const std::int64_t id = int_of(row[id_col]), version = int_of(row[version_col]);
    std::shared_ptr<const CachedRecord> rec;
    if (look) rec = list_cache_.find(slot, id, version, e.fields.size(), kList);
    ++(rec ? hits : misses);
    if (rec) return rec;
    rec = std::make_shared<const CachedRecord>(by->every.whole(row, version));
    list_cache_.put(slot, id, rec, kList);
    return rec;
  };
  bool first = true;
  const bool whole = list_cache_.mostly_missed(slot, kList);
  list_cache_.count_list_page(whole);
  if (whole) {
    std::optional<std::string> next;
    std::string last_cursor;
    int n = 0;
    RP_TRY(tx.each_row(st.sql, st.params, [&](std::span<const SqlView> row) {
      if (n++ == lp.limit) {
        next = std::move(last_cursor);
        return false;
      }
      if (!first) out.push_back(',');
      first = false;
      writer.append(out, *record_of(row, true));
      if (n == lp.limit) {
        std::vector<SqlValue> values;
        for (const auto& k : keys)
          values.push_back(storage::value_of(row[column_index(e, k.field->name)]));
        last_cursor = st.cursor(values);
      }
      return true;
    }));
    list_cache_.count_page(slot, kList, hits, misses);
    return next;
  }
  std::string sql = "SELECT \"id\", \"version\"";
  for (const auto& k : keys) sql += ", " + quote(k.field->name);
  sql += st.from;
  struct Listed {
    std::int64_t id, version;
    std::shared_ptr<const CachedRecord> record;
  };
  std::vector<Listed> listed;
  listed.reserve(static_cast<size_t>(lp.limit));
  std::optional<std::string> next;
  std::string last_cursor;
  RP_TRY(tx.each_row(sql, st.params, [&](std::span<const SqlView> row) {
    if (static_cast<int>(listed.size()) == lp.limit) {
      next = std::move(last_cursor);
      return false;
    }
    listed.push_back({int_of(row[0]), int_of(row[1]), nullptr});
    if (static_cast<int>(listed.size()) == lp.limit) {
      std::vector<SqlValue> values;
      for (size_t k = 0; k < keys.size(); ++k) values.push_back(storage::value_of(row[2 + k]));
      last_cursor = st.cursor(values);
    }
    return true;
  }));
  std::vector<SqlValue> missing;
  for (auto& r : listed) {
    r.record = list_cache_.find(slot, r.id, r.version, e.fields.size(), kList);
    if (!r.record) missing.emplace_back(r.id);
  }
  list_cache_.count_page(slot, kList, listed.size() - missing.size(), missing.size());
  if (!missing.empty()) {
    // As many placeholders as the next power of two (the last id repeated), so that a few
    // statement texts serve every count.
    size_t placeholders = 1;
    while (placeholders < missing.size()) placeholders *= 2;
    std::string in = "(?";
    for (size_t i = 1; i < placeholders; ++i) in += ",?";
    in += ")";
    missing.resize(placeholders, missing.back());
    std::unordered_map<std::int64_t, std::shared_ptr<const CachedRecord>> read;
    RP_TRY(tx.each_row(by->select + " FROM " + quote(e.name) + " WHERE \"id\" IN " + in, missing,
                       [&](std::span<const SqlView> row) {
                         read.emplace(int_of(row[id_col]), record_of(row, false));
                         return true;
                       }));
    for (auto& r : listed) {
      if (r.record) continue;
      auto it = read.find(r.id);
      // Records are never removed (deletes only mark them) and both statements read one
      // snapshot: a listed record is always there.
      if (it == read.end())
        return make_error(Errc::kInternal, e.name + " " + std::to_string(r.id) +
                                               " was listed but could not be read");
      r.record = it->second;
    }
  }
  for (const auto& r : listed) {
    if (!first) out.push_back(',');
    first = false;
    writer.append(out, *r.record);
  }
  return next;
}

// The key of a list page in page_cache_: the role and the entity snapshot (addresses: both are
// held with the page) and every parameter, each with its length so that no two lists share one.
std::string RecordService::page_key(const Principal& p, const Entity& e, const ListParams& lp) {
  std::string key;
  key.reserve(64 + lp.filter.size() + lp.sort.size() + lp.cursor.size() + lp.fields.size() +
              lp.q.size());
  const auto add = [&key](std::string_view part) {
    key.append(std::to_string(part.size())).append(1, ':').append(part);
  };
  add(std::to_string(reinterpret_cast<std::uintptr_t>(p.role.get())));
  add(std::to_string(reinterpret_cast<std::uintptr_t>(&e)));
  add(lp.filter);
  add(lp.sort);
  add(lp.cursor);
  add(lp.fields);
  add(lp.q);
  add(std::to_string(lp.limit));
  add(lp.deleted ? "deleted" : "live");
  return key;
}

Result<std::string> RecordService::list(const Principal& p, const Entity& e, const ListParams& lp) {
  // `q` over an entity whose term rows are still being built (a large import, or the start-up
  // after a server was killed during one; storage/term_build.h): the page may miss records, says
  // so ("index_pending": true, as search does) and is not kept. Asked before the read
  // transaction starts, so that a build ending in between is one the page sees whole.
  const bool index_pending = !lp.q.empty() && store_.pending_terms().pending(e.name);
  RP_ASSIGN(auto tx, store_.read());
  // The page answer cache (page_cache_): only for a caller who may read every record of the
  // entity, whose page is the same for every holder of the role, and only for the registry's
  // current snapshot of the entity (held with the page, by ById).
  std::optional<std::uint64_t> stamp;
  std::shared_ptr<const ById> snapshot;
  if (page_cache_.enabled() && lp.cached && !index_pending &&
      access::scope_for(p, e.name, Op::kRead) == Scope::kAll) {
    stamp = tx->change_stamp();
    if (stamp) {
      snapshot = by_id(e);
      if (!snapshot->entity) stamp.reset();
    }
  }
  std::string key;
  if (stamp) {
    key = page_key(p, e, lp);
    if (auto kept = page_cache_.find(key, *stamp)) return *kept;
  }
  RP_ASSIGN(std::string page, list_page(p, e, lp, *tx));
  if (index_pending) {
    page.pop_back();  // the closing brace
    page.append(",\"index_pending\":true}");
  }
  if (stamp) page_cache_.put(std::move(key), *stamp, page, p.role, snapshot->entity);
  return page;
}

Result<std::string> RecordService::list_page(const Principal& p, const Entity& e,
                                             const ListParams& lp, storage::Tx& tx_ref) {
  storage::Tx* const tx = &tx_ref;
  RP_ASSIGN(ListStatement st, list_statement(p, e, lp, tx));
  const auto& keys = st.keys;
  auto only = split_fields(lp.fields);
  for (const auto& f : only)
    if (!e.field(f))
      return make_error(Errc::kUnknownField, e.name + " has no field " + f, "fields");
  // The page is copied from the records' cached text (cached_page, list_cache_), or, with the
  // cache off and for `q` rechecked against the visible fields, written straight from the rows'
  // columns as the store hands them over (Tx::each_row: on SQLite its own buffers, nothing
  // copied per row; RecordJson), into one string sized for the page up front (a row of a wide
  // entity is one to two kilobytes of JSON).
  // Kept per role and `fields` with the writer of the cached records' text (ById::shown_fields).
  const auto shown_kept = by_id(e)->shown_fields(e, p, lp.fields);
  const std::vector<char>& shown = shown_kept->flags;
  // Built only for pages not written from list_cache_ (its keys are escaped once per page).
  std::optional<RecordJson> record_json;
  std::string out;
  out.reserve(64 + static_cast<size_t>(lp.limit) * 1536);
  out.append("{\"items\":[");
  bool first = true;
  const auto add = [&](std::span<const SqlView> row) {
    if (!first) out.push_back(',');
    first = false;
    if (!record_json) record_json.emplace(e, shown);
    record_json->append(out, row);
  };
  const auto cursor_of = [&](std::span<const SqlView> row) {
    std::vector<SqlValue> values;
    for (const auto& k : keys)
      values.push_back(storage::value_of(row[column_index(e, k.field->name)]));
    return st.cursor(values);
  };
  const auto cursor_of_row = [&](const std::vector<SqlValue>& row) {
    std::vector<SqlValue> values;
    for (const auto& k : keys) values.push_back(row[column_index(e, k.field->name)]);
    return st.cursor(values);
  };
  std::optional<std::string> next;
  if (!lp.q.empty() && hides_searchable(p, e)) {
    // `q` for a caller who may not see a searchable field: the term index matched every field,
    // so each row is checked again against the fields they may see, and further pages are read
    // (up to kMaxRecheckRows rows in all) to fill the page. A page cut short by that bound
    // still has its next_cursor, after the last row read.
    constexpr std::size_t kMaxRecheckRows = 5000;
    const std::string query = text::search_query(lp.q);
    RP_ASSIGN(auto rows, tx->query(st.sql, st.params));
    bool more = static_cast<int>(rows.rows.size()) > lp.limit;
    if (more) rows.rows.pop_back();
    std::optional<std::string> after_read;
    std::vector<std::vector<SqlValue>> kept;
    std::size_t read = 0;
    for (;;) {
      read += rows.rows.size();
      std::size_t i = 0;
      for (; i < rows.rows.size() && static_cast<int>(kept.size()) < lp.limit; ++i)
        if (visible_text_matches(p, e, rows.rows[i], query)) kept.push_back(rows.rows[i]);
      if (i > 0) after_read = cursor_of_row(rows.rows[i - 1]);
      more = more || i < rows.rows.size();
      if (!more || static_cast<int>(kept.size()) == lp.limit || read >= kMaxRecheckRows) break;
      ListParams following = lp;
      following.cursor = *after_read;
      RP_ASSIGN(st, list_statement(p, e, following, tx));
      RP_ASSIGN(rows, tx->query(st.sql, st.params));
      more = static_cast<int>(rows.rows.size()) > lp.limit;
      if (more) rows.rows.pop_back();
    }
    std::vector<SqlView> view;
    for (const auto& r : kept) {
      view.clear();
      for (const auto& v : r) view.push_back(storage::view_of(v));
      add(view);
    }
    if (more && after_read)
      next = std::move(after_read);
    else if (more && !kept.empty())
      next = cursor_of_row(kept.back());
  } else if (list_cache_.enabled() && lp.cached) {
    RP_ASSIGN(next, cached_page(e, lp, st, *shown_kept, *tx, out));
  } else {
    // The statement reads limit + 1 rows: the last one only tells that there is a next page,
    // whose cursor is the previous row's sort key.
    int n = 0;
    std::string last_cursor;
    RP_TRY(tx->each_row(st.sql, st.params, [&](std::span<const SqlView> row) {
      if (n++ == lp.limit) {
        next = std::move(last_cursor);
        return false;
      }
      add(row);
      if (n == lp.limit) last_cursor = cursor_of(row);
      return true;
    }));
  }
  out.append("],\"next_cursor\":");
  if (next)
    append_json_string(out, *next);
  else
    out.append("null");
  out.push_back('}');
  return out;
}

Result<std::string> RecordService::history(const Principal& p, const Entity& e, std::int64_t id) {
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);
  RP_ASSIGN(auto tx, store_.read());
  RP_ASSIGN(auto row, load(*tx, e, id));
  RowIndex ix(e);
  if (!row) return not_found(e, id);
  if (!access::in_scope(p, scope, as_int((*row)[ix.owner]), as_int((*row)[ix.team])))
    return make_error(Errc::kForbidden, "this " + e.name + " belongs to another owner or team");
  SqlValue params[] = {e.name, id};
  RP_ASSIGN(auto rows,
            tx->query("SELECT at, user_id, user_name, channel, action, changes FROM audit_log "
                      "WHERE entity = ? AND record_id = ? ORDER BY id DESC LIMIT 1000",
                      params));
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("items");
  w.StartArray();
  for (const auto& r : rows.rows) {
    w.StartObject();
    w.Key("at");
    w.String(as_text(r[0]));
    w.Key("user_id");
    if (storage::is_null(r[1]))
      w.Null();
    else
      w.String(std::to_string(as_int(r[1])));
    w.Key("user_name");
    w.String(as_text(r[2]));
    w.Key("channel");
    w.String(as_text(r[3]));
    w.Key("action");
    w.String(as_text(r[4]));
    w.Key("changes");
    w.StartArray();
    auto changes = json::parse(as_text(r[5]));
    if (changes.ok() && changes->IsArray()) {
      for (const auto& c : changes->GetArray()) {
        const json::Value* fname = json::member(c, "field");
        const Field* f = fname && fname->IsString() ? e.field(fname->GetString()) : nullptr;
        if (f && access::field_access(p, e, *f) == FieldAccess::kHidden) continue;
        c.Accept(w);
      }
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::string> RecordService::search(const Principal& p, std::string_view q,
                                          std::string_view entity, int limit) {
  std::string query(q);
  while (!query.empty() && query.back() == ' ') query.pop_back();
  while (!query.empty() && query.front() == ' ') query.erase(0, 1);
  if (query.empty()) return make_error(Errc::kBadRequest, "q must not be empty", "q");
  if (query.size() > 200) return make_error(Errc::kBadRequest, "q is longer than 200 bytes", "q");
  // Folded ("ＡＣＭＥ" → "acme") and without a legal suffix ("Acme Ltd" finds "Acme GmbH").
  query = text::search_query(query);
  if (limit < 1 || limit > 100)
    return make_error(Errc::kBadRequest, "limit must be between 1 and 100", "limit");
  if (!entity.empty() && !registry_.get(entity))
    return make_error(Errc::kBadRequest, "no entity " + std::string(entity), "entity");
  // What each searched entity's items show and which of its records the caller may see: the
  // same for the term index and the "did you mean" fallback.
  struct Target {
    const Entity* e;
    Scope scope;
    // What the item shows as its title: the title field, or when the caller may not see it the
    // first of the searchable fields they may see that has a value (a contact without its name
    // shows its phones or e-mails); null when none has.
    std::vector<const Field*> shown;
    bool title_visible;
    std::string columns;  // ", t.<column>" of each shown field
  };
  std::vector<Target> targets;
  for (const auto& e : registry_.all()) {
    if (!entity.empty() && e->name != entity) continue;
    Scope scope = access::scope_for(p, e->name, Op::kRead);
    if (!e->has_searchable() || scope == Scope::kNone) continue;
    Target tg{e.get(), scope, {}, false, {}};
    const Field* t = e->field(e->title_field);
    tg.title_visible = t && access::field_access(p, *e, *t) != FieldAccess::kHidden;
    if (tg.title_visible) {
      tg.shown.push_back(t);
    } else {
      for (const auto& f : e->fields)
        if (f.searchable && access::field_access(p, *e, f) != FieldAccess::kHidden)
          tg.shown.push_back(&f);
    }
    for (const Field* f : tg.shown)
      for (const auto& c : field_columns(*f)) tg.columns += ", t." + quote(c);
    targets.push_back(std::move(tg));
  }
  // The join condition on the entity table `t` that keeps the live records the caller may read.
  auto visible = [&p](const Target& tg, std::vector<SqlValue>& params) {
    return "t.deleted_at IS NULL AND " + scope_sql(p, tg.scope, params);
  };
  json::Buffer buf;
  json::Writer w(buf);
  // One item: `r` holds the shown fields' columns from position 3 (after two columns of the
  // index read and the record's id).
  auto write_item = [&w](const Target& tg, std::int64_t id, const std::vector<SqlValue>& r) {
    w.StartObject();
    w.Key("entity");
    w.String(tg.e->name);
    w.Key("plural");
    w.String(tg.e->plural);
    w.Key("id");
    w.String(std::to_string(id));
    w.Key("title");
    std::string title;
    for (std::size_t f = 0, col = 3; f < tg.shown.size() && title.empty(); ++f) {
      title = to_text(*tg.shown[f], r, col);
      col += column_count(*tg.shown[f]);
    }
    if (title.empty() && !tg.title_visible)
      w.Null();
    else
      w.String(title);
    w.EndObject();
  };
  // Records of a searched entity loaded with their term rows still to be built (a large import
  // into a nearly empty table, storage/term_build.h): the term index may miss them, and the
  // answer says so (index_pending) and is not kept.
  const bool index_pending = std::any_of(targets.begin(), targets.end(), [&](const Target& tg) {
    return store_.pending_terms().pending(tg.e->name);
  });
  RP_ASSIGN(auto tx, store_.read());
  // The answer cache (search_cache_): only for a caller who may read every record of each
  // searched entity, whose answer is the same for every holder of the role.
  std::optional<std::uint64_t> stamp;
  std::string cache_key;
  if (options_.search_cache_bytes > 0 && !targets.empty() && !index_pending &&
      std::all_of(targets.begin(), targets.end(),
                  [](const Target& tg) { return tg.scope == Scope::kAll; })) {
    stamp = tx->change_stamp();
  }
  if (stamp) {
    cache_key = std::to_string(reinterpret_cast<std::uintptr_t>(p.role.get()));
    cache_key.append(1, '\n').append(entity).append(1, '\n').append(std::to_string(limit));
    cache_key.append(1, '\n').append(query);
    if (auto kept = search_cache_.find(cache_key, *stamp)) return *kept;
  }
  // Every statement of the term-index search reads the index in its order up to a LIMIT, or
  // records by id: the same plan whatever the words, planned once per connection (PostgreSQL
  // planned each execution for its values, which cost more than running it). Until the
  // "did you mean" fallback below or the end of the search.
  tx->plan_once(true);
  struct PlanOnce {
    storage::Tx& tx;
    ~PlanOnce() { tx.plan_once(false); }
  } plan_once{*tx};
  w.StartObject();
  w.Key("items");
  w.StartArray();
  int total = 0;
  const std::vector<int> key_order = storage::fts_driver_order(query);
  const bool exact_keys = key_order.size() >= 2 && storage::fts_keys_exact(query);
  // The keys' entries counted up to `cap` to choose the driver: when every key is an exact term
  // (Chinese bigrams), any key with the fewest entries drives to the same answer, so each is
  // counted only up to the fewest found before it, the last key first (a company name's first
  // bigrams are its city, the commonest: 广州 28,000 entries at 1M accounts); else each up to
  // `cap`.
  const auto key_counts = [&](const std::string& entity, int cap, std::vector<SqlValue>& params) {
    return exact_keys ? store_.dialect().fts_key_counts_falling(entity, query, cap, params)
                      : store_.dialect().fts_key_counts(entity, query, cap, params);
  };
  // The key with the fewest entries in such a row (the lowest column of equal counts when each
  // key was counted up to the cap; read from the last column when they were counted falling).
  const auto fewest_of = [&](const std::vector<SqlValue>& c) {
    std::vector<std::int64_t> n;
    n.reserve(c.size());
    for (const auto& v : c) n.push_back(as_int(v));
    if (exact_keys) return storage::fts_rarest_key(n);
    std::size_t fewest = 0;
    for (std::size_t k = 1; k < n.size(); ++k)
      if (n[k] < n[fewest]) fewest = k;
    return fewest;
  };
  // The statement counting up to kSearchScopedMax records of an own or team scope.
  const auto scope_count_sql = [&p](const Target& tg, std::vector<SqlValue>& params) {
    const std::string mine = scope_sql(p, tg.scope, params);
    params.emplace_back(static_cast<std::int64_t>(kSearchScopedMax));
    return "SELECT count(*) FROM (SELECT 1 FROM " + quote(tg.e->name) + " WHERE " + mine +
           " LIMIT ?) c";
  };
  // One window of `driver`'s entries from `after`: the rows of at most `want` entries with
  // every key whose record is live and in the caller's scope, in index order. Only an entry
  // with every key joins its record (the join key is NULL otherwise), and the statement stops
  // at `want` such records, so that neither the entries without a further key nor hidden
  // records come back as rows. Where the planner keeps the written order (SQLite): a CROSS
  // JOIN (which otherwise materializes the whole window to consider the other join order) and
  // no ORDER BY, since the entries come in index order and the engine stops early (a sort
  // would read the whole window first). Elsewhere (PostgreSQL) the ORDER BY of the index
  // order, which a nested loop over the ordered window gives without a sort, so that the
  // `want` rows are the first ones whatever the plan. Empty when nothing can match.
  const auto window_sql =
      [&](const Target& tg, int driver, const std::optional<storage::FtsPosition>& after, int want,
          std::vector<SqlValue>& params, int page = kSearchWindow) -> std::string {
    const std::string entries = store_.dialect().fts_page(tg.e->name, query, driver,
                                                          after ? &*after : nullptr, page, params);
    if (entries.empty()) return {};
    const std::string cond = visible(tg, params);
    params.emplace_back(static_cast<std::int64_t>(want));
    const bool written_order = store_.dialect().plans_by_written_order();
    return "SELECT f.fts_term, f.fts_id, t.\"id\"" + tg.columns + " FROM " + entries + " f " +
           (written_order ? "CROSS JOIN " : "JOIN ") + quote(tg.e->name) +
           " t ON t.\"id\" = CASE WHEN f.fts_match = 1 THEN f.fts_id END AND " + cond +
           (written_order ? "" : " ORDER BY f.fts_term, f.fts_id DESC") + " LIMIT ?";
  };
  const int first_want = std::max(kSearchFirstWant, 2 * limit);
  // The rows the first window of an entity stops at: `limit` (each a record read, a random page
  // of the entity's table: at 1M accounts half the pages a one-word search read with twice the
  // limit), unless matches_visible may drop some of them (a caller who may not see a searchable
  // field). A round short of `limit` items (an entry of the same record under another word of
  // a prefix) is followed by the next, as before.
  const auto first_round_want = [&](const Entity& e) {
    return hides_searchable(p, e) ? first_want : limit;
  };
  // The first statement of every entity's search below (its scope's count, its keys' counts or
  // its first window) does not depend on another's answer: they are sent together
  // (Tx::query_many: one round trip on PostgreSQL), and each entity's search takes its answer
  // when it runs the same statement.
  struct Ahead {
    std::string sql;
    std::vector<SqlValue> params;
    std::optional<storage::Rows> rows;
  };
  std::vector<Ahead> ahead(targets.size());
  {
    std::vector<storage::Tx::Query> batch;
    for (std::size_t k = 0; k < targets.size(); ++k) {
      const Target& tg = targets[k];
      Ahead& a = ahead[k];
      if (tg.scope == Scope::kOwn || tg.scope == Scope::kTeam) {
        a.sql = scope_count_sql(tg, a.params);
      } else if (key_order.size() >= 2) {
        a.sql = key_counts(tg.e->name, kSearchKeyCountCap, a.params);
      }
      if (a.sql.empty()) {
        a.params.clear();
        a.sql = window_sql(tg, -1, std::nullopt, first_round_want(*tg.e), a.params);
      }
      if (!a.sql.empty()) batch.push_back({a.sql, a.params});
    }
    if (batch.size() > 1) {
      RP_ASSIGN(auto answers, tx->query_many(batch));
      for (std::size_t k = 0, b = 0; k < targets.size(); ++k)
        if (!ahead[k].sql.empty()) ahead[k].rows = std::move(answers[b++]);
    }
  }
  for (std::size_t target = 0; target < targets.size(); ++target) {
    const Target& tg = targets[target];
    // A statement of this entity's search: its answer from the pipeline above when it is the
    // one sent there, else run now.
    const auto run = [&](const std::string& sql,
                         const std::vector<SqlValue>& params) -> Result<storage::Rows> {
      Ahead& a = ahead[target];
      if (a.rows && a.sql == sql && a.params == params) {
        storage::Rows rows = std::move(*a.rows);
        a.rows.reset();
        return rows;
      }
      return tx->query(sql, params);
    };
    const Entity* e = tg.e;
    const Scope scope = tg.scope;
    // A caller who may not see a searchable field must not find a record by it: the index
    // holds every searchable field, so each record it finds is checked again against the
    // search text of the fields the caller may see.
    const bool hidden_searchable = hides_searchable(p, *e);
    const auto matches_visible = [&](std::int64_t id) -> Result<bool> {
      RP_ASSIGN(auto row, load(*tx, *e, id));
      return row && visible_text_matches(p, *e, std::move(*row), query);
    };
    std::unordered_set<std::int64_t> listed;
    int found = 0;
    // Writes the items of a page of entries (fts_term, fts_id, then t."id" and the shown
    // columns of the live record in the caller's scope, else NULL) until `limit`.
    const auto emit = [&](const storage::Rows& rows) -> Status {
      for (const auto& r : rows.rows) {
        if (storage::is_null(r[2]) || !listed.insert(as_int(r[1])).second) continue;
        if (hidden_searchable) {
          RP_ASSIGN(bool visible_match, matches_visible(as_int(r[1])));
          if (!visible_match) continue;
        }
        write_item(tg, as_int(r[1]), r);
        ++total;
        if (++found == limit) break;
      }
      return Status{};
    };
    const auto page_sql = [&](const std::string& entries, std::vector<SqlValue>& params) {
      const std::string cond = visible(tg, params);
      // The record is read only for an entry that has every key: its id is the join key only
      // then (NULL finds nothing without a read), since a LEFT JOIN's condition on the entry
      // alone does not spare the lookup.
      return "SELECT f.fts_term, f.fts_id, t.\"id\"" + tg.columns + " FROM " + entries +
             " f LEFT JOIN " + quote(e->name) +
             " t ON t.\"id\" = CASE WHEN f.fts_match = 1 THEN f.fts_id END AND " + cond +
             " ORDER BY f.fts_term, f.fts_id DESC";
    };
    // A caller who sees few records of the entity (own or team scope): their records' term
    // lists instead of the index, whose matches may be nearly all hidden from them.
    if (scope == Scope::kOwn || scope == Scope::kTeam) {
      std::vector<SqlValue> params;
      const std::string count = scope_count_sql(tg, params);
      RP_ASSIGN(auto n, run(count, params));
      const std::int64_t seen = n.rows.empty() ? 0 : as_int(n.rows[0][0]);
      if (seen == 0) continue;
      if (seen < kSearchScopedMax) {
        std::vector<SqlValue> ids_params;
        const std::string ids = "SELECT s.\"id\" FROM " + quote(e->name) +
                                " s WHERE s.deleted_at IS NULL AND " +
                                scope_sql(p, scope, ids_params);
        params.clear();
        const std::string entries =
            store_.dialect().fts_scoped(e->name, query, ids, ids_params, params);
        if (!entries.empty()) {
          const std::string sql = page_sql(entries, params);
          RP_ASSIGN(auto rows, tx->query(sql, params));
          RP_TRY(emit(rows));
          continue;
        }
      }
    }
    // One window (window_sql), its rows put in index order all the same.
    const auto read_window = [&](int driver, const std::optional<storage::FtsPosition>& after,
                                 int want, int page = kSearchWindow) -> Result<storage::Rows> {
      std::vector<SqlValue> params;
      const std::string sql = window_sql(tg, driver, after, want, params, page);
      if (sql.empty()) return storage::Rows{};
      RP_ASSIGN(auto rows, run(sql, params));
      search_window_rows_.fetch_add(rows.rows.size(), std::memory_order_relaxed);
      std::stable_sort(rows.rows.begin(), rows.rows.end(), [](const auto& x, const auto& y) {
        const int c = as_text(x[0]).compare(as_text(y[0]));
        return c != 0 ? c < 0 : as_int(x[1]) > as_int(y[1]);
      });
      return rows;
    };
    // The index in its order (the best matching word first: exact before longer, then newest),
    // a window at a time (see kSearchWindow), until `limit` live records in the caller's scope
    // or the end of the window: the first entries of a common prefix already hold them, and a
    // narrow scope reads on instead of missing the matches it may see.
    // With several keys the one with the fewest entries drives, and a key without any means
    // no match: counted up to kSearchKeyCountCap each, a bounded index read. When every key
    // has at least that many (two common words), the two keys' windows are read in turn (below).
    std::vector<int> drivers{-1};
    if (key_order.size() >= 2) {
      std::vector<SqlValue> params;
      const std::string counts = key_counts(e->name, kSearchKeyCountCap, params);
      if (!counts.empty()) {
        RP_ASSIGN(auto n, run(counts, params));
        search_count_statements_.fetch_add(1, std::memory_order_relaxed);
        if (n.rows.empty()) continue;
        const auto& c = n.rows[0];
        const std::size_t fewest = fewest_of(c);
        if (as_int(c[fewest]) == 0) continue;
        if (as_int(c[fewest]) < kSearchKeyCountCap) {
          drivers = {static_cast<int>(fewest)};
        } else {
          drivers = key_order;
          drivers.resize(std::min<std::size_t>(drivers.size(), 2));
          // Every key common, all of them exact terms (Chinese bigrams: "广州方科" → 广州 28,000
          // entries at 1M accounts, 州方 3,100, 方科 1,600): counted again up to
          // kSearchExactCountCap, and a key below it drives alone and is read whole in one
          // window (its entries are one term, newest first, as every exact key's: the same
          // records in the same order as the pair of windows below would give when one of them
          // reaches its end), instead of windows of the first two keys in query order, which
          // read 8,192 entries of the commonest (28 ms of CPU for that query).
          if (exact_keys) {
            // First a guess (kSearchGuessWindow): with exact keys every key's entries are one
            // term, newest first, so any key's first `limit` matches are the newest `limit`
            // records with every key, the answer whichever key drives. The last key's first
            // kSearchKeyCountCap entries usually hold them ("郭志强": 郭志 and 志强 over 4,096
            // entries at 1M, ten matches among the first hundred of 志强; of the first, middle and
            // last key the last read the fewest entries over the bench's queries), and then the
            // keys are not counted on (up to 4,096 entries each). A caller who may not see a
            // searchable field has their matches checked again, so a full window proves nothing for
            // them.
            if (!hidden_searchable) {
              RP_ASSIGN(auto guess, read_window(static_cast<int>(key_order.size()) - 1,
                                                std::nullopt, limit, kSearchGuessWindow));
              if (guess.rows.size() >= static_cast<std::size_t>(limit)) {
                RP_TRY(emit(guess));
                continue;
              }
            }
            std::vector<SqlValue> more_params;
            const std::string more = key_counts(e->name, kSearchExactCountCap, more_params);
            if (more.empty()) continue;
            RP_ASSIGN(auto m, tx->query(more, more_params));
            search_count_statements_.fetch_add(1, std::memory_order_relaxed);
            if (!m.rows.empty()) {
              const auto& mc = m.rows[0];
              const std::size_t rarest = fewest_of(mc);
              if (as_int(mc[rarest]) < kSearchExactCountCap) drivers = {static_cast<int>(rarest)};
            }
          }
        }
      }
    }
    bool window_ended = false;
    int last_driver = -1;
    if (drivers.size() == 1) {
      const int driver = drivers[0];
      std::optional<storage::FtsPosition> after;
      last_driver = driver;
      for (int round = 0, want = first_round_want(*e); found < limit && round < kSearchRounds;
           ++round, want = first_want << (2 * round)) {
        RP_ASSIGN(auto rows, read_window(driver, after, want));
        RP_TRY(emit(rows));
        if (rows.rows.size() < static_cast<std::size_t>(want)) {  // the window or the key ended
          window_ended = true;
          break;
        }
        after = storage::FtsPosition{as_text(rows.rows.back()[0]), as_int(rows.rows.back()[1])};
      }
    } else {
      // Two keys with many entries each ("li n"): every record with both is among the entries
      // of either, so reading one of them to its end finds every match. A first window of each
      // is read; when neither gave `limit` matches nor ended, their entries are counted up to
      // two windows' worth, and only the rarer key is read on, from where its window stopped,
      // when it has at most that many (else the search stops there): the work is bounded by the
      // rarer key, at most kSearchPairWindows windows per entity whatever the data. The answer
      // is that key's matches in its index order (a key read to its end has all of them); when
      // no key was read to its end, the matches of the key with more, then the other's.
      struct Stream {
        int driver;
        int want;
        std::optional<storage::FtsPosition> after;
        std::vector<std::vector<SqlValue>> rows;
        std::unordered_set<std::int64_t> ids;
        bool ended = false;
      };
      std::array<Stream, 2> streams{Stream{drivers[0], first_want, {}, {}, {}},
                                    Stream{drivers[1], first_want, {}, {}, {}}};
      int done = -1;
      std::optional<std::size_t> rarer;  // the stream read on after the first two windows
      for (int w = 0; w < kSearchPairWindows && done < 0; ++w) {
        if (w == 2 && !rarer) {
          // The two keys' entries compared (fts_pair_counts): the second key counted only up to
          // one more than the first has ("li n": n's entries up to li's, not up to the cap),
          // the same choice as counting both up to the cap (the first on a tie), fewer entries
          // read. Else (a dialect without that statement) every key counted up to the cap.
          std::vector<SqlValue> params;
          const int cap = 2 * kSearchWindow + 1;
          std::string counts = store_.dialect().fts_pair_counts(e->name, query, streams[0].driver,
                                                                streams[1].driver, cap, params);
          const bool pair = !counts.empty();
          if (!pair) counts = store_.dialect().fts_key_counts(e->name, query, cap, params);
          if (counts.empty()) break;
          RP_ASSIGN(auto n, tx->query(counts, params));
          search_count_statements_.fetch_add(1, std::memory_order_relaxed);
          if (n.rows.empty()) break;
          const auto entries = [&](std::size_t k) {
            const auto col = pair ? k : static_cast<std::size_t>(streams[k].driver);
            return col < n.rows[0].size() ? as_int(n.rows[0][col]) : std::int64_t{-1};
          };
          const std::int64_t c0 = entries(0), c1 = entries(1);
          rarer = c1 >= 0 && (c0 < 0 || c1 < c0) ? 1U : 0U;
          const std::int64_t fewest = rarer == 1U ? c1 : c0;
          if (fewest < 0 || fewest > 2 * kSearchWindow) break;  // both too common: the cap
        }
        Stream& s = streams[rarer ? *rarer : static_cast<std::size_t>(w % 2)];
        RP_ASSIGN(auto rows, read_window(s.driver, s.after, s.want));
        const bool cut = rows.rows.size() >= static_cast<std::size_t>(s.want);
        if (cut)
          s.after = storage::FtsPosition{as_text(rows.rows.back()[0]), as_int(rows.rows.back()[1])};
        for (auto& r : rows.rows) {
          if (storage::is_null(r[2]) || !s.ids.insert(as_int(r[1])).second) continue;
          if (hidden_searchable) {
            RP_ASSIGN(bool visible_match, matches_visible(as_int(r[1])));
            if (!visible_match) continue;
          }
          s.rows.push_back(std::move(r));
          if (static_cast<int>(s.rows.size()) == limit) break;
        }
        if (static_cast<int>(s.rows.size()) == limit) {
          done = w % 2;
        } else if (cut) {
          s.want = std::min(s.want * 4, kSearchWindow);
        } else {
          // The window was read whole: the next one of this key starts where it ended, if
          // the key goes on.
          std::vector<SqlValue> params;
          const std::string end = store_.dialect().fts_window_end(
              e->name, query, s.driver, s.after ? &*s.after : nullptr, kSearchWindow, params);
          if (end.empty()) break;
          RP_ASSIGN(auto last, tx->query(end, params));
          if (last.rows.empty()) {
            s.ended = true;
            done = w % 2;
          } else {
            s.after = storage::FtsPosition{as_text(last.rows[0][0]), as_int(last.rows[0][1])};
          }
        }
      }
      const std::size_t first = done >= 0
                                    ? static_cast<std::size_t>(done)
                                    : (streams[1].rows.size() > streams[0].rows.size() ? 1U : 0U);
      window_ended = done < 0;
      last_driver = streams[first].driver;
      for (const Stream* s : {&streams[first], &streams[1 - first]}) {
        for (const auto& r : s->rows) {
          if (found == limit) break;
          if (!listed.insert(as_int(r[1])).second) continue;
          write_item(tg, as_int(r[1]), r);
          ++total;
          ++found;
        }
        if (done >= 0) break;  // that key's matches are the answer
      }
    }
    // A narrow scope (own, team) of many records whose matches the window held hidden ones
    // only: when the driving key has more entries than the window read, the newest
    // kSearchScopeWalk records of the caller's scope are searched through their term lists
    // too, so that a team still gets its matches however many newer hidden ones come first
    // in the index (at a cost bounded by that many term-list reads).
    if (found < limit && window_ended && (scope == Scope::kOwn || scope == Scope::kTeam)) {
      std::vector<SqlValue> params;
      const std::string counts =
          store_.dialect().fts_key_counts(e->name, query, kSearchWindow + 1, params);
      if (counts.empty()) continue;
      RP_ASSIGN(auto n, tx->query(counts, params));
      search_count_statements_.fetch_add(1, std::memory_order_relaxed);
      const auto col = static_cast<std::size_t>(last_driver >= 0 ? last_driver : key_order.at(0));
      if (n.rows.empty() || col >= n.rows[0].size() || as_int(n.rows[0][col]) <= kSearchWindow)
        continue;  // the window read every entry of the key
      std::vector<SqlValue> ids_params;
      const std::string ids = "SELECT s.\"id\" FROM " + quote(e->name) +
                              " s WHERE s.deleted_at IS NULL AND " +
                              scope_sql(p, scope, ids_params) + " ORDER BY s.\"id\" DESC LIMIT ?";
      ids_params.emplace_back(static_cast<std::int64_t>(kSearchScopeWalk));
      params.clear();
      const std::string entries =
          store_.dialect().fts_scoped(e->name, query, ids, ids_params, params);
      if (entries.empty()) continue;
      const std::string sql = page_sql(entries, params);
      RP_ASSIGN(auto rows, tx->query(sql, params));
      RP_TRY(emit(rows));
    }
  }
  // "Did you mean": when the term index found nothing, records whose title is similar to the
  // query (a misspelt name), most similar first, up to `limit` per entity, on backends that
  // support it (PostgreSQL's pg_trgm). Only titles the caller may see are compared, and only
  // records they may read are listed. `fuzzy`: the items are such similar records (never on
  // SQLite; false when nothing is similar either).
  bool fuzzy = false;
  if (total == 0 && query.size() >= kFuzzyMinQuery) {
    // A similarity search's plan may depend on the query (pg_trgm's estimates): planned per
    // execution, as before plan_once.
    tx->plan_once(false);
    for (const Target& tg : targets) {
      const Field* t = fuzzy_title(*tg.e);
      if (!t || !tg.title_visible) continue;
      std::vector<SqlValue> params;
      auto similar = store_.dialect().fuzzy_titles(tg.e->name, t->name, query, params);
      if (!similar) break;  // not supported by this backend
      const std::string cond = visible(tg, params);
      params.emplace_back(static_cast<std::int64_t>(limit));
      RP_ASSIGN(auto rows, tx->query("SELECT f.fuzzy_score, f.fuzzy_id, t.\"id\"" + tg.columns +
                                         " FROM " + *similar + " f JOIN " + quote(tg.e->name) +
                                         " t ON t.\"id\" = f.fuzzy_id AND " + cond +
                                         " ORDER BY f.fuzzy_score DESC, f.fuzzy_id DESC LIMIT ?",
                                     params));
      for (const auto& r : rows.rows) write_item(tg, as_int(r[1]), r);
      if (!rows.rows.empty()) fuzzy = true;
    }
  }
  w.EndArray();
  w.Key("fuzzy");
  w.Bool(fuzzy);
  if (index_pending) {
    w.Key("index_pending");
    w.Bool(true);
  }
  w.EndObject();
  std::string answer(buf.GetString(), buf.GetSize());
  if (stamp) {
    search_cache_.put(std::move(cache_key), *stamp, answer, p.role);
  }
  return answer;
}

Result<PhoneLookup> RecordService::lookup_phone(const Principal& p, std::string_view number,
                                                std::string_view fields) {
  return find_phone(p, number, fields, false);
}

Result<PhoneLookup> RecordService::lookup_phone_values(const Principal& p, std::string_view number,
                                                       std::string_view fields) {
  return find_phone(p, number, fields, true);
}

Result<PhoneLookup> RecordService::find_phone(const Principal& p, std::string_view number,
                                              std::string_view fields, bool values) {
  number = trim_view(number);
  // A query parameter, so bad input is 400 bad_request like search's q and limit.
  if (number.empty()) return make_error(Errc::kBadRequest, "number is required", "number");
  auto e164 = phone::to_e164(number, options_.phone_region);
  if (!e164.ok()) return make_error(Errc::kBadRequest, e164.error().message, "number");
  PhoneLookup out{std::move(e164).value(), {}};
  RP_ASSIGN(auto tx, store_.read());
  SqlValue key[] = {out.e164};
  // The index's entries, as (entity, id) pairs, read without materialising a result set.
  std::vector<std::pair<std::shared_ptr<const Entity>, std::int64_t>> hits;
  RP_TRY(
      tx->each_row("SELECT entity, record_id FROM phone_index WHERE e164 = ? "
                   "ORDER BY entity, record_id LIMIT 1000",
                   key, [&](std::span<const SqlView> row) {
                     const auto* name = std::get_if<std::string_view>(&row[0]);
                     if (auto e = name ? registry_.get(*name) : nullptr)
                       hits.emplace_back(std::move(e), int_of(row[1]));
                     return true;
                   }));
  for (const auto& [e, id] : hits) {
    Scope scope = access::scope_for(p, e->name, Op::kRead);
    if (scope == Scope::kNone) continue;
    const Field* tf = e->field(e->title_field);
    const bool title_shown = tf && access::field_access(p, *e, *tf) != FieldAccess::kHidden;
    // The shown fields and their writer as kept per role and fields (not built per match).
    const auto [by, shown] = read_plan(*e, p, fields);
    RP_ASSIGN(OneRecord r, read_one(*tx, p, *e, *by, id, scope, *shown, title_shown, values));
    if (r.state != OneRecord::State::kFound) continue;
    PhoneMatch& m = out.matches.emplace_back(
        PhoneMatch{e, id, std::move(r.title), std::move(r.text), {}, std::move(r.whole)});
    if (values && m.whole) {
      m.values.resize(shown->asked.size());
      for (std::size_t k = 0; k < m.values.size(); ++k) m.values[k] = shown->value_of(*m.whole, k);
    }
    if (static_cast<int>(out.matches.size()) >= kMaxPhoneMatches) break;
  }
  return out;
}

Result<std::int64_t> RecordService::count(const Principal& p, const Entity& e,
                                          std::string_view filter) {
  RP_ASSIGN(auto n, counts(p, e, filter, {}));
  return n[0];
}

Result<std::map<std::string, std::vector<std::int64_t>>> RecordService::ids_by_title(
    const Principal& p, const Entity& e, std::span<const std::string> names) {
  const Scope scope = access::scope_for(p, e.name, Op::kRead);
  const Field* title = e.field(e.title_field);
  if (scope == Scope::kNone || !title || title->type != FieldType::kText ||
      access::field_access(p, e, *title) == FieldAccess::kHidden)
    return make_error(Errc::kForbidden, "you may not read the " + e.plural + "' " + e.title_field);
  // folded name → the names given with that form
  std::map<std::string, std::vector<std::string>> wanted;
  for (const auto& n : names)
    if (std::string key = text::fold_spaced(n); !key.empty()) wanted[key].push_back(n);
  std::map<std::string, std::vector<std::int64_t>> out;
  if (wanted.empty()) return out;
  RP_ASSIGN(auto tx, store_.read());
  std::set<std::int64_t> candidates;
  if (e.has_searchable() && title->searchable)
    for (const auto& [key, given] : wanted) {
      RP_ASSIGN(auto ids, tx->fts_search_words(e.name, key, kTitleCandidates));
      candidates.insert(ids.begin(), ids.end());
    }
  std::set<std::string> as_given(names.begin(), names.end());
  // The candidates' titles in the caller's scope, live: by id, then by the title as given.
  const bool unindexed = store_.dialect().plans_by_written_order();
  std::map<std::int64_t, std::string> titles;
  auto read = [&](const std::string& column, const std::vector<SqlValue>& values) -> Status {
    for (std::size_t at = 0; at < values.size(); at += kMaxInValues) {
      const std::size_t n = std::min<std::size_t>(kMaxInValues, values.size() - at);
      std::vector<SqlValue> params(values.begin() + static_cast<std::ptrdiff_t>(at),
                                   values.begin() + static_cast<std::ptrdiff_t>(at + n));
      std::string in;
      for (std::size_t i = 0; i < n; ++i) in += i ? ",?" : "?";
      std::string sql = "SELECT \"id\", " + quote(title->name) + " FROM " + quote(e.name) +
                        " WHERE " + column + " IN (" + in + ") AND deleted_at IS NULL AND ";
      sql += scope_sql(p, scope, params, unindexed);
      RP_ASSIGN(auto rows, tx->query(sql, params));
      for (const auto& r : rows.rows)
        if (!std::holds_alternative<std::monostate>(r[1])) titles[as_int(r[0])] = as_text(r[1]);
    }
    return {};
  };
  std::vector<SqlValue> values(candidates.begin(), candidates.end());
  RP_TRY(read("\"id\"", values));
  values.assign(as_given.begin(), as_given.end());
  RP_TRY(read(quote(title->name), values));
  for (const auto& [id, t] : titles) {
    auto it = wanted.find(text::fold_spaced(t));
    if (it == wanted.end()) continue;
    for (const auto& n : it->second) out[n].push_back(id);
  }
  return out;
}

Result<std::string> RecordService::compile_text(const Principal& p, const Entity& e,
                                                std::string_view text,
                                                std::vector<SqlValue>& params) {
  auto doc = json::parse(text);
  if (!doc.ok())
    return make_error(Errc::kBadFilter, "filter is not valid JSON: " + doc.error().message,
                      "filter");
  return compile_filter(*doc, e, p, store_.dialect(), params);
}

Result<std::string> RecordService::compile_kept(const Principal& p, const Entity& e,
                                                std::string_view text,
                                                std::vector<SqlValue>& params) {
  // Compilation depends on the principal only through its role's field rules.
  constexpr std::size_t kMaxKept = 1024;
  std::string key = std::to_string(reinterpret_cast<std::uintptr_t>(p.role.get()));
  key.append(1, '\n').append(e.name).append(1, '\n').append(text);
  {
    std::lock_guard lock(compiled_mu_);
    if (auto it = compiled_.find(key); it != compiled_.end()) {
      params.insert(params.end(), it->second.params.begin(), it->second.params.end());
      return it->second.sql;
    }
  }
  std::vector<SqlValue> own;
  RP_ASSIGN(std::string sql, compile_text(p, e, text, own));
  {
    std::lock_guard lock(compiled_mu_);
    if (compiled_.size() >= kMaxKept) compiled_.clear();
    ++filters_compiled_;
    compiled_.insert_or_assign(std::move(key), CompiledFilter{p.role, sql, own});
  }
  params.insert(params.end(), own.begin(), own.end());
  return sql;
}

Result<CompiledCondition> RecordService::compile_equality(const Principal& p, const Entity& e,
                                                          std::string_view field,
                                                          std::int64_t value) {
  const Field* f = e.field(field);
  if (!f || f->type != schema::FieldType::kReference)
    return make_error(Errc::kInternal, "compile_equality takes a reference field", "filter");
  // The text of any id compiles to the same SQL with the id its one parameter: id 0's text is
  // the one compile_kept keeps it by.
  const std::string text = equals_filter(field, "0");
  CompiledCondition c;
  RP_ASSIGN(c.sql, compile_kept(p, e, text, c.params));
  if (c.params.size() != 1 || !std::holds_alternative<std::int64_t>(c.params[0]))
    return make_error(Errc::kInternal, "an equality compiled to other parameters", "filter");
  c.params[0] = value;
  return c;
}

std::size_t RecordService::filters_compiled() const {
  std::lock_guard lock(compiled_mu_);
  return filters_compiled_;
}

Result<std::vector<std::int64_t>> RecordService::counts(const Principal& p, const Entity& e,
                                                        std::string_view filter,
                                                        std::span<const std::string> narrower) {
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);
  RP_ASSIGN(CountsStatement st,
            counts_statement(p, e, scope, narrower,
                             [&](std::vector<SqlValue>& params) -> Result<std::string> {
                               if (filter.empty()) return std::string();
                               return compile_text(p, e, filter, params);
                             }));
  return run_counts(st.sql, st.params, narrower.size());
}

Result<std::vector<std::int64_t>> RecordService::counts_of(const Principal& p, const Entity& e,
                                                           std::string_view field, std::int64_t id,
                                                           std::span<const std::string> narrower) {
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);
  // The whole statement is kept per role, entity, field, scope and narrower filters: a hit
  // builds no SQL text and compiles nothing; only the caller's scope parameters (user, team)
  // and the id are bound anew.
  // The key is built in a buffer of the thread's (no allocation per call once it has grown);
  // the role's address as its bytes.
  thread_local std::string key;
  key.clear();
  const auto role = reinterpret_cast<std::uintptr_t>(p.role.get());
  key.append(reinterpret_cast<const char*>(&role), sizeof role);
  key.append(e.name).append(1, '\n').append(field).append(1, '\n');
  key.append(1, static_cast<char>('0' + static_cast<int>(scope)));
  for (const auto& n : narrower) key.append(1, '\n').append(n);
  std::shared_ptr<const KeptCounts> kept;
  {
    std::lock_guard lock(compiled_mu_);
    if (auto it = counts_kept_.find(key); it != counts_kept_.end()) kept = it->second;
  }
  if (kept) {
    // The kept parameters with this caller's scope and the id, in buffers of the thread's too
    // (run_counts runs no other counts_of meanwhile).
    thread_local std::vector<SqlValue> params, mine;
    params.assign(kept->params.begin(), kept->params.end());
    mine.clear();
    scope_sql(p, scope, mine);
    std::copy(mine.begin(), mine.end(), params.begin() + kept->scope_at);
    params[kept->id_at] = id;
    return run_counts(kept->sql, params, narrower.size());
  }
  // The filter with id 1 stands for every id: compiled (the field checked, readable by the
  // role) and kept once; its one parameter, the id as stored, is then this id.
  std::optional<std::size_t> id_at;
  RP_ASSIGN(CountsStatement st,
            counts_statement(
                p, e, scope, narrower, [&](std::vector<SqlValue>& params) -> Result<std::string> {
                  const std::size_t before = params.size();
                  RP_ASSIGN(std::string sql, compile_kept(p, e, equals_filter(field, "1"), params));
                  if (params.size() == before + 1 &&
                      std::holds_alternative<std::int64_t>(params.back())) {
                    params.back() = id;
                    id_at = before;
                    return sql;
                  }
                  // Not a reference (another kind stores its operand otherwise): compiled as
                  // it is, and not kept.
                  params.resize(before);
                  return compile_text(p, e, equals_filter(field, std::to_string(id)), params);
                }));
  if (id_at) {
    auto entry = std::make_shared<const KeptCounts>(
        KeptCounts{p.role, st.sql, st.params, st.scope_at, *id_at});
    std::lock_guard lock(compiled_mu_);
    if (counts_kept_.size() >= kMaxKeptCounts) counts_kept_.clear();
    counts_kept_.insert_or_assign(key, std::move(entry));
  }
  return run_counts(st.sql, st.params, narrower.size());
}

Result<std::pair<std::string, std::vector<SqlValue>>> RecordService::counts_of_statement(
    const Principal& p, const Entity& e, std::string_view field,
    std::span<const std::string> narrower) {
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);
  RP_ASSIGN(CountsStatement st,
            counts_statement(p, e, scope, narrower,
                             [&](std::vector<SqlValue>& params) -> Result<std::string> {
                               return compile_kept(p, e, equals_filter(field, "1"), params);
                             }));
  return std::pair{std::move(st.sql), std::move(st.params)};
}

Result<RecordService::CountsStatement> RecordService::counts_statement(
    const Principal& p, const Entity& e, Scope scope, std::span<const std::string> narrower,
    const std::function<Result<std::string>(std::vector<SqlValue>&)>& filter) {
  // Parameters in text order: the narrower conditions (columns) first, then the WHERE clause.
  CountsStatement st;
  std::string columns = "COUNT(*)";
  for (const auto& f : narrower) {
    RP_ASSIGN(std::string cond, compile_kept(p, e, f, st.params));
    columns += ", COUNT(CASE WHEN " + cond + " THEN 1 END)";
  }
  st.scope_at = st.params.size();
  std::string where = "deleted_at IS NULL AND " + scope_sql(p, scope, st.params);
  RP_ASSIGN(std::string cond, filter(st.params));
  if (!cond.empty()) where += " AND " + cond;
  st.sql = "SELECT " + columns + " FROM " + quote(e.name) + " WHERE " + where;
  return st;
}

Result<std::vector<std::int64_t>> RecordService::run_counts(std::string_view sql,
                                                            std::span<const SqlValue> params,
                                                            std::size_t narrower) {
  RP_ASSIGN(auto tx, store_.read());
  std::vector<std::int64_t> out(narrower + 1, 0);
  RP_TRY(tx->each_row(sql, params, [&](std::span<const storage::SqlView> row) {
    for (std::size_t i = 0; i < out.size() && i < row.size(); ++i)
      out[i] = as_int(storage::value_of(row[i]));
    return false;
  }));
  return out;
}

Result<std::vector<const Field*>> RecordService::export_columns(const Principal& p, const Entity& e,
                                                                std::string_view fields) const {
  std::vector<const Field*> cols;
  auto only = split_fields(fields);
  for (const auto& name : only)
    if (!e.field(name))
      return make_error(Errc::kUnknownField, e.name + " has no field " + name, "fields");
  for (const auto& f : e.fields) {
    if (access::field_access(p, e, f) == FieldAccess::kHidden || f.type == FieldType::kJson)
      continue;
    if (only.empty()
            ? (f.system && f.name != "id" && f.name != "created_at" && f.name != "updated_at")
            : !only.count(f.name))
      continue;
    cols.push_back(&f);
  }
  return cols;
}

Status RecordService::each_listed(const Principal& p, const Entity& e, ListParams lp,
                                  std::string page,
                                  const std::function<Status(const json::Value&)>& each) {
  for (;;) {
    // Pages through the same list query as the UI so filters, sort and scope agree.
    RP_ASSIGN(json::Document doc, json::parse(page));
    for (const auto& item : (*json::member(doc, "items")).GetArray()) RP_TRY(each(item));
    const json::Value* next = json::member(doc, "next_cursor");
    if (!next || !next->IsString()) return {};
    lp.cursor = next->GetString();
    RP_ASSIGN(page, list(p, e, lp));
  }
}

Status RecordService::export_each(const Principal& p, const Entity& e, ListParams lp,
                                  const std::function<Status(const json::Value&)>& each) {
  lp.limit = kMaxPageSize;
  lp.fields.clear();
  lp.cached = false;
  RP_ASSIGN(std::string page, list(p, e, lp));
  return each_listed(p, e, std::move(lp), std::move(page), each);
}

Result<RecordService::ExportBody> RecordService::export_text_body(
    const Principal& p, const Entity& e, ListParams lp, std::string head,
    std::function<void(std::string&, const json::Value&)> row) {
  // Pieces of about this size go to the writer: large enough that writing costs little per row.
  constexpr std::size_t kPiece = 64 * 1024;
  lp.limit = kMaxPageSize;
  lp.fields.clear();
  lp.cached = false;
  RP_ASSIGN(std::string first, list(p, e, lp));
  auto page = std::make_shared<std::string>(std::move(first));
  return ExportBody([this, p, &e, lp = std::move(lp), head = std::move(head), row = std::move(row),
                     page](const ExportWriter& write) -> Status {
    std::string out = head;
    out.reserve(kPiece + 4096);
    auto flush = [&]() -> Status {
      if (!write(out))
        return make_error(Errc::kBadRequest, "the export's receiver went away; export stopped");
      out.clear();
      return {};
    };
    RP_TRY(each_listed(p, e, lp, std::move(*page), [&](const json::Value& item) -> Status {
      row(out, item);
      if (out.size() >= kPiece) RP_TRY(flush());
      return {};
    }));
    return out.empty() ? Status{} : flush();
  });
}

std::string export_text(const Field& f, const json::Value* v) {
  // Convert the JSON value to text through the stored representation.
  std::vector<SqlValue> row;
  json::Document tmp;
  to_sql(f, v ? *v : tmp, row);
  if (f.type == FieldType::kReference && v && v->IsString()) row[0] = std::string(v->GetString());
  return to_text(f, row, 0);
}

Result<RecordService::ExportBody> RecordService::export_csv(const Principal& p, const Entity& e,
                                                            ListParams lp) {
  RP_ASSIGN(auto cols, export_columns(p, e, lp.fields));
  std::string head = "\xEF\xBB\xBF";
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i) head += ',';
    csv_cell(head, cols[i]->name);
  }
  head += "\r\n";
  return export_text_body(
      p, e, std::move(lp), std::move(head), [cols](std::string& out, const json::Value& item) {
        for (size_t i = 0; i < cols.size(); ++i) {
          if (i) out += ',';
          csv_cell(out, export_text(*cols[i], json::member(item, cols[i]->name)));
        }
        out += "\r\n";
      });
}

std::string RecordService::metadata_json(const Principal& p) const {
  json::Buffer buf;
  json::Writer w(buf);
  auto label = [&](const schema::Label& l) {
    w.StartObject();
    w.Key("en");
    w.String(l.en);
    w.Key("zh-CN");
    w.String(l.zh);
    w.EndObject();
  };
  w.StartObject();
  w.Key("entities");
  w.StartArray();
  for (const auto& e : registry_.all()) {
    w.StartObject();
    w.Key("name");
    w.String(e->name);
    w.Key("plural");
    w.String(e->plural);
    w.Key("module");
    w.String(e->module);
    w.Key("label");
    label(e->label);
    w.Key("label_plural");
    label(e->label_plural);
    w.Key("title_field");
    w.String(e->title_field);
    w.Key("searchable");
    w.Bool(e->has_searchable());
    w.Key("permissions");
    w.StartObject();
    w.Key("create");
    w.Bool(access::can_create(p, e->name));
    w.Key("read");
    w.String(access::scope_name(access::scope_for(p, e->name, Op::kRead)));
    w.Key("update");
    w.String(access::scope_name(access::scope_for(p, e->name, Op::kUpdate)));
    w.Key("delete");
    w.String(access::scope_name(access::scope_for(p, e->name, Op::kDelete)));
    w.EndObject();
    w.Key("fields");
    w.StartArray();
    for (const auto& f : e->fields) {
      FieldAccess fa = access::field_access(p, *e, f);
      if (fa == FieldAccess::kHidden) continue;
      // write_field gives the declaration; permission is this caller's access to it.
      json::Buffer fb;
      json::Writer fw(fb);
      schema::write_field(fw, f);
      std::string s(fb.GetString(), fb.GetSize());
      s.pop_back();
      s += fa == FieldAccess::kWrite && !f.readonly ? ",\"permission\":\"write\"}"
                                                    : ",\"permission\":\"read\"}";
      w.RawValue(s.data(), s.size(), rapidjson::kObjectType);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::string> RecordService::add_custom_field(const Principal& p, std::string_view entity,
                                                    std::string_view body) {
  if (!p.is_admin()) return make_error(Errc::kForbidden, "only administrators add custom fields");
  auto e = registry_.get(entity);
  if (!e) return make_error(Errc::kNotFound, "no entity " + std::string(entity));
  RP_ASSIGN(json::Document doc, json::parse_body(body));
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    static const std::set<std::string> kKeys = {"name",    "type",       "label",     "required",
                                                "unique",  "searchable", "indexed",   "sensitive",
                                                "section", "max_length", "min",       "max",
                                                "pattern", "options",    "reference", "default"};
    if (!kKeys.count(it->name.GetString()))
      return make_error(Errc::kUnknownField,
                        std::string("unknown field property ") + it->name.GetString(),
                        it->name.GetString());
  }
  RP_ASSIGN(Field f, schema::parse_field(doc, entity));
  if (e->field(f.name) || f.name == "deleted_at" || f.name == "merged_into" ||
      f.name.find("__") != std::string::npos)
    return make_error(Errc::kConflict, e->name + " already has a field named " + f.name, "name");
  if (f.type == FieldType::kReference && !registry_.get(f.reference))
    return make_error(Errc::kValidation, "reference names no entity " + f.reference, "reference");
  if (f.unique && f.required)
    return make_error(Errc::kValidation, "a new field cannot be both required and unique",
                      "required");
  f.custom = true;
  if (f.section == "main") f.section = "custom";
  RP_ASSIGN(auto tx, store_.write());
  for (const auto& ddl : add_field_ddl(store_.dialect(), *e, f)) RP_TRY(tx->exec(ddl));
  if (f.searchable && !e->has_searchable())
    for (const auto& ddl : store_.dialect().fts_create(e->name)) RP_TRY(tx->exec(ddl));
  json::Buffer fb;
  json::Writer fw(fb);
  schema::write_field(fw, f);
  std::string def(fb.GetString(), fb.GetSize());
  SqlValue params[] = {e->name, f.name, def, format_iso8601(clock_.now_ms())};
  RP_TRY(tx->exec(
      "INSERT INTO custom_field (entity, name, definition, created_at) VALUES (?, ?, ?, ?)",
      params));
  RP_TRY(tx->commit());
  const std::string name = f.name;
  auto added = registry_.add_custom_field(e->name, std::move(f));
  // A reload triggered by another server's notice may have added it already.
  if (!added.ok() && added.error().code != Errc::kConflict) return std::move(added).error();
  if (auto st = store_.notify(kSchemaChannel, e->name + "." + name); !st.ok())
    spdlog::warn("custom field {}.{} not announced to other servers: {}", e->name, name,
                 st.error().message);
  return def;
}

}  // namespace rapport::record
