// Match index, candidate search, the create-time check and the review-queue scan (see
// duplicates.h). Merge and undo are in merge.cc.
#include "record/duplicates.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include "core/parallel.h"
#include "record/duplicates_internal.h"
#include "record/phone_index.h"
#include "record/table.h"

namespace rapport::record {

using access::Op;
using access::Principal;
using access::Scope;
using schema::Entity;
using schema::Field;
using schema::FieldType;
using storage::SqlValue;

namespace detail {

size_t column_of(const Entity& e, std::string_view name) { return column_index(e, name); }

Columns::Columns(const Entity& e)
    : id(column_of(e, "id")),
      version(column_of(e, "version")),
      owner(column_of(e, "owner_id")),
      team(column_of(e, "team_id")),
      deleted(field_column_count(e)),
      merged(field_column_count(e) + 1) {}

std::vector<std::string> all_columns(const Entity& e) {
  std::vector<std::string> cols;
  for (const auto& f : e.fields)
    for (auto& c : field_columns(f)) cols.push_back(std::move(c));
  cols.emplace_back("deleted_at");
  cols.emplace_back("merged_into");
  return cols;
}

std::string title_of(const Entity& e, const std::vector<SqlValue>& row) {
  const Field* f = e.field(e.title_field);
  return f ? to_text(*f, row, column_of(e, f->name)) : std::string();
}

Result<std::int64_t> parse_id(std::string_view s, std::string_view field) {
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || id <= 0)
    return make_error(Errc::kBadRequest, std::string(field) + " must be a record id string",
                      std::string(field));
  return id;
}

std::string score_text(double score) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.3f", score);
  return buf;
}

}  // namespace detail

using namespace detail;

namespace {

// Bumped when what goes into match_index changes; the index is then rebuilt at start-up.
constexpr int kMatchIndexVersion = 3;  // 3: street_key (abbreviations, "No.", city prefix)

struct Scored {
  DuplicateCandidate c;
  bool visible = false;
};

// Candidates best first, at most kMaxCandidates. Block mode must see every duplicate, so the
// first invisible one ≥ 0.90 is kept (with its id cleared) for on_create to refuse on; otherwise
// unreadable records are left out.
std::vector<DuplicateCandidate> ranked(std::vector<Scored> found) {
  std::sort(found.begin(), found.end(), [](const Scored& a, const Scored& b) {
    return a.c.score != b.c.score ? a.c.score > b.c.score : a.c.id < b.c.id;
  });
  std::vector<DuplicateCandidate> out;
  for (auto& s : found) {
    if (!s.visible) {
      if (s.c.score < dedupe::kDuplicateScore || !out.empty()) continue;
      s.c.id = 0;
    }
    out.push_back(std::move(s.c));
    if (static_cast<int>(out.size()) >= kMaxCandidates) break;
  }
  return out;
}

void write_candidates(json::Writer& w, const std::vector<DuplicateCandidate>& cs) {
  w.StartArray();
  for (const auto& c : cs) {
    w.StartObject();
    w.Key("id");
    w.String(std::to_string(c.id));
    w.Key("title");
    w.String(c.title);
    w.Key("score");
    w.Double(c.score);
    w.Key("reason");
    w.String(c.reason);
    w.Key("field");
    w.String(c.field);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::vector<std::string> Deduper::migration_statements() {
  return {
      "CREATE TABLE match_index (key TEXT NOT NULL, entity TEXT NOT NULL, record_id INTEGER NOT "
      "NULL, PRIMARY KEY (key, entity, record_id))",
      "CREATE INDEX match_index_record ON match_index (entity, record_id)",
      // One row per merge: the pre-merge snapshot of every touched row and their versions
      // after the merge (undo refuses when one changed since).
      "CREATE TABLE merge_log (id INTEGER PRIMARY KEY, entity TEXT NOT NULL, survivor_id INTEGER "
      "NOT NULL, others TEXT NOT NULL, snapshot TEXT NOT NULL, user_id INTEGER, at TEXT NOT NULL, "
      "undone_at TEXT, undone_by INTEGER)",
      "CREATE INDEX merge_log_survivor ON merge_log (entity, survivor_id)"};
}

dedupe::Facts Deduper::facts_of_row(const dedupe::Profile& profile, const Entity& e,
                                    const std::vector<SqlValue>& row,
                                    const std::vector<std::string>* e164) const {
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  size_t col = 0;
  for (const auto& f : e.fields) {
    const bool wanted = (f.type == FieldType::kPhoneList && !e164) ||
                        f.type == FieldType::kEmailList || f.name == profile.name_field ||
                        f.name == profile.company_field || f.name == profile.tax_id_field ||
                        f.name == profile.website_field || f.name == profile.city_field ||
                        f.name == profile.address_field;
    if (wanted && col < row.size()) {
      json::Value v;
      to_json(f, row, col, v, a);
      doc.AddMember(json::str(f.name, a), v, a);
    }
    col += column_count(f);
  }
  dedupe::Facts facts = dedupe::facts_of(profile, e, doc, rs_.options_.phone_region, e164);
  facts.id = as_int(row[column_of(e, "id")]);
  return facts;
}

Status Deduper::unindex(storage::Tx& tx, const Entity& e, std::int64_t id) {
  SqlValue p[] = {e.name, id};
  RP_TRY(tx.exec("DELETE FROM match_index WHERE entity = ? AND record_id = ?", p));
  return {};
}

Status Deduper::index(storage::Tx& tx, const Entity& e, std::int64_t id,
                      const std::vector<SqlValue>& row, bool fresh) {
  const dedupe::Profile* profile = rs_.hooks_.dedupe_for(e.name);
  if (!profile) return {};
  if (!fresh) RP_TRY(unindex(tx, e, id));
  for (auto& key : index_keys_of(e, row)) {
    SqlValue p[] = {std::move(key), e.name, id};
    RP_TRY(tx.exec("INSERT INTO match_index (key, entity, record_id) VALUES (?, ?, ?)", p));
  }
  return {};
}

std::vector<std::string> Deduper::index_keys_of(const Entity& e,
                                                const std::vector<SqlValue>& row) const {
  const dedupe::Profile* profile = rs_.hooks_.dedupe_for(e.name);
  if (!profile) return {};
  return dedupe::index_keys(*profile, facts_of_row(*profile, e, row));
}

Status Deduper::rebuild_index() {
  storage::Store& store = rs_.store_;
  const std::string version = std::to_string(kMatchIndexVersion);
  {
    RP_ASSIGN(auto tx, store.read());
    RP_ASSIGN(auto stored,
              tx->query("SELECT version FROM derived_index WHERE name = 'match_index'"));
    if (!stored.rows.empty() && as_text(stored.rows[0][0]) == version) return {};
  }
  {
    RP_ASSIGN(auto tx, store.write());
    RP_TRY(tx->exec("DELETE FROM match_index"));
    RP_TRY(tx->commit());
  }
  for (const auto& e : rs_.registry_.all()) {
    if (!rs_.hooks_.dedupe_for(e->name)) continue;
    RP_TRY(for_each_live_row_batched(store, *e, rs_.options_.rebuild_batch,
                                     [&](storage::Tx& tx, std::int64_t id, const auto& row) {
                                       return index(tx, *e, id, row, /*fresh=*/true);
                                     }));
  }
  RP_ASSIGN(auto tx, store.write());
  RP_TRY(record_derived_version(*tx, "match_index", version));
  return tx->commit();
}

Result<std::vector<DuplicateCandidate>> Deduper::find(storage::Tx& tx, const Principal* viewer,
                                                      const Entity& e,
                                                      const dedupe::Profile& profile,
                                                      const dedupe::Facts& f, std::int64_t self,
                                                      FactsCache* cache) {
  RP_ASSIGN(auto read, read_candidates(tx, e, profile, f, self, cache));
  return score_candidates(viewer, e, profile, f, std::move(read), cache);
}

Result<Deduper::CandidateRows> Deduper::read_candidates(storage::Tx& tx, const Entity& e,
                                                        const dedupe::Profile& profile,
                                                        const dedupe::Facts& f, std::int64_t self,
                                                        const FactsCache* cache) {
  // Every record sharing an anchor: a phone, an index key, the company. Indexed reads only.
  std::set<std::int64_t> ids;
  // A key that very many records share (a hotline, a hosting provider's domain) says nothing
  // about identity: its hits are left out rather than cut off at an arbitrary few. Every phone
  // and key in one statement (a create runs it inside the shared write transaction), each arm
  // its key's first kMaxAnchorHits index entries tagged with the arm's number; an arm that
  // yields that many is a ubiquitous key and is dropped here. One scan per key, the rows seen
  // in place (each_row: nothing built): the arms counted their key's entries in a subquery
  // before, then scanned them again for rows the count then dropped — twice the index entries
  // of a ubiquitous key (every bench create shares one address) on the writer.
  std::string sql;
  std::vector<SqlValue> params;
  const SqlValue limit = std::int64_t{kMaxAnchorHits};
  std::size_t arms = 0;
  auto arm = [&](const char* table, const char* column, const std::string& value) {
    if (!sql.empty()) sql += " UNION ALL ";
    const std::string n = std::to_string(arms++);
    sql += "SELECT " + n + " AS arm, record_id FROM (SELECT record_id FROM " + table + " WHERE " +
           column + " = ? AND entity = ? LIMIT ?) AS a" + n;
    params.insert(params.end(), {value, e.name, limit});
  };
  for (const auto& phone : f.phones) arm("phone_index", "e164", phone);
  for (const auto& key : dedupe::index_keys(profile, f)) arm("match_index", "key", key);
  if (!sql.empty()) {
    std::vector<std::vector<std::int64_t>> hits(arms);
    const auto as_int64 = [](const storage::SqlView& v) -> std::int64_t {
      if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
      if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
      return -1;
    };
    RP_TRY(tx.each_row(sql, params, [&](std::span<const storage::SqlView> row) {
      const std::int64_t a = as_int64(row[0]);
      if (a >= 0 && static_cast<std::size_t>(a) < arms) hits[a].push_back(as_int64(row[1]));
      return true;
    }));
    for (const auto& h : hits)
      if (h.size() < static_cast<std::size_t>(kMaxAnchorHits)) ids.insert(h.begin(), h.end());
  }
  auto collect = [&](const std::string& q, std::vector<SqlValue> p) -> Status {
    RP_ASSIGN(auto rows, tx.query(q, p));
    for (const auto& r : rows.rows) ids.insert(as_int(r[0]));
    return {};
  };
  if (!profile.company_field.empty() && !f.company.empty()) {
    auto company = parse_id(f.company, profile.company_field);
    if (company.ok())
      RP_TRY(collect("SELECT \"id\" FROM " + quote(e.name) + " WHERE " +
                         quote(profile.company_field) +
                         " = ? AND deleted_at IS NULL ORDER BY \"id\" LIMIT ?",
                     {*company, std::int64_t{kMaxCompanyHits}}));
  }
  ids.erase(self);

  // The rows of the candidates not in the cache: one statement per kLoadChunk of them.
  constexpr std::size_t kLoadChunk = 256;
  std::vector<SqlValue> wanted;
  for (std::int64_t id : ids)
    if (!cache || !cache->count(id)) wanted.emplace_back(id);
  std::map<std::int64_t, std::vector<SqlValue>> loaded;
  const Columns cols(e);
  for (std::size_t at = 0; at < wanted.size();) {
    // few distinct statement texts for the prepared-statement cache
    const std::size_t k = storage::rows_in_next_statement(wanted.size() - at, kLoadChunk);
    std::string marks;
    for (std::size_t j = 0; j < k; ++j) marks += j ? ", ?" : "?";
    std::span<const SqlValue> chunk(wanted.data() + at, k);
    RP_ASSIGN(auto rows, tx.query("SELECT " + select_list(e) + " FROM " + quote(e.name) +
                                      " WHERE \"id\" IN (" + marks + ")",
                                  chunk));
    for (auto& row : rows.rows) {
      if (!storage::is_null(row[cols.deleted])) continue;
      std::int64_t id = as_int(row[cols.id]);
      loaded.emplace(id, std::move(row));
    }
    at += k;
  }
  CandidateRows out;
  for (std::int64_t id : ids) {
    if (cache && cache->count(id)) {
      out.push_back({id, std::nullopt});
      continue;
    }
    auto row = loaded.find(id);
    if (row == loaded.end()) continue;  // gone or deleted
    out.push_back({id, std::move(row->second)});
  }
  return out;
}

std::vector<DuplicateCandidate> Deduper::score_candidates(const Principal* viewer, const Entity& e,
                                                          const dedupe::Profile& profile,
                                                          const dedupe::Facts& f,
                                                          CandidateRows read, FactsCache* cache) {
  std::vector<Scored> found;
  const Columns cols(e);
  const Scope scope = viewer ? access::scope_for(*viewer, e.name, Op::kRead) : Scope::kAll;
  for (auto& [id, row] : read) {
    const dedupe::Facts* other = nullptr;
    std::int64_t owner = 0, team = 0;
    dedupe::Facts loaded;
    auto hit = cache && !row ? cache->find(id) : FactsCache::iterator();
    if (cache && !row && hit != cache->end()) {
      other = &hit->second.facts;
      owner = hit->second.owner;
      team = hit->second.team;
    } else if (row) {
      loaded = facts_of_row(profile, e, *row);
      owner = as_int((*row)[cols.owner]);
      team = as_int((*row)[cols.team]);
      if (cache)
        other =
            &cache->emplace(id, CachedFacts{std::move(loaded), owner, team}).first->second.facts;
      else
        other = &loaded;
    } else {
      continue;
    }
    auto m = dedupe::match(profile, f, *other);
    if (!m) continue;
    Scored s{DuplicateCandidate{id, other->title, m->score, m->reason, m->field}, true};
    if (viewer) s.visible = access::in_scope(*viewer, scope, owner, team);
    found.push_back(std::move(s));
  }
  return ranked(std::move(found));
}

Result<std::vector<DuplicateCandidate>> Deduper::on_create(
    storage::Tx& tx, const Principal& p, const Entity& e, const dedupe::Profile& profile,
    std::int64_t id, const std::vector<SqlValue>& row, DedupeMode mode) {
  return on_create(tx, p, e, profile, id, facts_of_row(profile, e, row), mode);
}

Result<std::vector<DuplicateCandidate>> Deduper::on_create(
    storage::Tx& tx, const Principal& p, const Entity& e, const dedupe::Profile& profile,
    std::int64_t id, const dedupe::Facts& facts, DedupeMode mode) {
  RP_ASSIGN(auto found, find(tx, &p, e, profile, facts, id));
  if (mode == DedupeMode::kBlock && !found.empty() &&
      found.front().score >= dedupe::kDuplicateScore) {
    const auto& best = found.front();
    std::string detail = best.id ? " (" + e.name + " " + std::to_string(best.id) + ": " +
                                       best.reason + ", score " + score_text(best.score) + ")"
                                 : " matching on " + best.field;
    return make_error(Errc::kDuplicate, "a likely duplicate " + e.name + " exists" + detail,
                      best.field);
  }
  std::erase_if(found, [](const DuplicateCandidate& c) { return c.id == 0; });
  return found;
}

Result<Deduper::CandidateRows> Deduper::on_create_reads(storage::Tx& tx, const Entity& e,
                                                        const dedupe::Profile& profile,
                                                        std::int64_t id,
                                                        const dedupe::Facts& facts) {
  return read_candidates(tx, e, profile, facts, id, nullptr);
}

std::vector<DuplicateCandidate> Deduper::on_create_score(const Principal& p, const Entity& e,
                                                         const dedupe::Profile& profile,
                                                         const dedupe::Facts& facts,
                                                         CandidateRows rows) {
  auto found = score_candidates(&p, e, profile, facts, std::move(rows), nullptr);
  std::erase_if(found, [](const DuplicateCandidate& c) { return c.id == 0; });
  return found;
}

Result<std::vector<std::vector<DuplicateCandidate>>> Deduper::on_import(
    storage::Tx& tx, const Principal& p, const Entity& e, const std::vector<std::int64_t>& ids,
    const std::vector<const std::vector<SqlValue>*>& rows,
    std::vector<std::optional<dedupe::Facts>> facts, FactsCache& cache) {
  const size_t n = ids.size();
  std::vector<std::vector<DuplicateCandidate>> out(n);
  const dedupe::Profile* profile = rs_.hooks_.dedupe_for(e.name);
  if (!profile || ids.empty()) return out;
  // What find() does for one record, for the whole batch: the anchors of every record read with
  // one query per kind and up to kChunk keys (a key hit by kMaxAnchorHits records or more is
  // ubiquitous and left out, as in find), the candidates missing from the cache read many per
  // query, then the scoring on the worker threads.
  const Columns cols(e);
  facts.resize(n);
  parallel::for_ranges(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i)
      if (!facts[i]) facts[i] = facts_of_row(*profile, e, *rows[i]);
  });
  // the batch's ids, sorted: a candidate among them is reported on the later record
  std::vector<std::int64_t> batch(ids.begin(), ids.end());
  std::sort(batch.begin(), batch.end());
  for (size_t i = 0; i < n; ++i)
    cache.insert_or_assign(ids[i], CachedFacts{std::move(*facts[i]), as_int((*rows[i])[cols.owner]),
                                               as_int((*rows[i])[cols.team])});
  std::vector<const dedupe::Facts*> of(n);
  std::vector<std::vector<std::string>> keys_of(n);
  for (size_t i = 0; i < n; ++i) of[i] = &cache.at(ids[i]).facts;
  parallel::for_ranges(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) keys_of[i] = dedupe::index_keys(*profile, *of[i]);
  });
  constexpr size_t kChunk = 500;
  // The batch's distinct phones and index keys (views of its facts and keys_of, which outlive
  // this), sorted, each with the records it finds (empty when ubiquitous). The rows are seen in
  // place (each_row) and their keys looked up by view: a batch's keys mostly find only the
  // batch's own records, tens of thousands of rows a batch, whose copies and ordered maps of
  // strings were most of this function's time outside SQLite.
  struct Anchors {
    std::vector<std::string_view> keys;
    std::unordered_map<std::string_view, std::uint32_t> index;  // key → its place in keys
    std::vector<std::vector<std::int64_t>> hits;                // per key
    const std::vector<std::int64_t>* find(std::string_view key) const {
      auto it = index.find(key);
      return it == index.end() ? nullptr : &hits[it->second];
    }
  };
  auto anchors = [&](const std::string& table, const std::string& key_col, Anchors& a) -> Status {
    std::sort(a.keys.begin(), a.keys.end());
    a.keys.erase(std::unique(a.keys.begin(), a.keys.end()), a.keys.end());
    a.index.reserve(a.keys.size());
    for (size_t k = 0; k < a.keys.size(); ++k) a.index.emplace(a.keys[k], k);
    a.hits.assign(a.keys.size(), {});
    std::vector<SqlValue> params;
    for (size_t at = 0; at < a.keys.size();) {
      params.assign({e.name});
      std::string marks;
      for (; at < a.keys.size() && params.size() <= kChunk; ++at) {
        marks += marks.empty() ? "?" : ", ?";
        params.emplace_back(std::string(a.keys[at]));
      }
      // Every entry of each key; a key's first kMaxAnchorHits are kept, and a key that many
      // entries hold is ubiquitous (cleared below), as a window of the first kMaxAnchorHits
      // by record_id per key found (SQLite read every entry of the key for that too, then
      // numbered and sorted them in a temporary table: most of this function's instructions).
      auto seen = [&](std::span<const storage::SqlView> r) {
        const auto* key = std::get_if<std::string_view>(&r[0]);
        if (!key) return true;
        auto it = a.index.find(*key);
        if (it == a.index.end()) return true;
        auto& found = a.hits[it->second];
        if (found.size() >= static_cast<size_t>(kMaxAnchorHits)) return true;
        if (const auto* i = std::get_if<std::int64_t>(&r[1]))
          found.push_back(*i);
        else if (const auto* d = std::get_if<double>(&r[1]))
          found.push_back(static_cast<std::int64_t>(*d));
        return true;
      };
      RP_TRY(tx.each_row("SELECT " + key_col + ", record_id FROM " + table +
                             " WHERE entity = ? AND " + key_col + " IN (" + marks + ")",
                         params, seen));
    }
    for (auto& found : a.hits)
      if (found.size() >= static_cast<size_t>(kMaxAnchorHits)) found.clear();
    return {};
  };
  Anchors by_phone, by_key;
  for (size_t i = 0; i < n; ++i) {
    by_phone.keys.insert(by_phone.keys.end(), of[i]->phones.begin(), of[i]->phones.end());
    by_key.keys.insert(by_key.keys.end(), keys_of[i].begin(), keys_of[i].end());
  }
  RP_TRY(anchors("phone_index", "e164", by_phone));
  RP_TRY(anchors("match_index", "key", by_key));
  std::map<std::int64_t, std::vector<std::int64_t>> by_company;
  std::vector<std::int64_t> company_of(n, 0);
  if (!profile->company_field.empty()) {
    for (size_t i = 0; i < n; ++i) {
      if (of[i]->company.empty()) continue;
      auto company = parse_id(of[i]->company, profile->company_field);
      if (!company.ok()) continue;
      company_of[i] = *company;
      if (by_company.count(*company)) continue;
      auto& found = by_company[*company];
      SqlValue params[] = {*company, std::int64_t{kMaxCompanyHits}};
      RP_ASSIGN(auto rows_found, tx.query("SELECT \"id\" FROM " + quote(e.name) + " WHERE " +
                                              quote(profile->company_field) +
                                              " = ? AND deleted_at IS NULL ORDER BY \"id\" LIMIT ?",
                                          params));
      for (const auto& r : rows_found.rows) found.push_back(as_int(r[0]));
    }
  }
  // every record's anchored candidates (ascending, unique), then those not cached read many
  // per query
  std::vector<std::vector<std::int64_t>> candidates(n);
  std::vector<std::int64_t> missing;
  for (size_t i = 0; i < n; ++i) {
    auto& c = candidates[i];
    for (const auto& phone : of[i]->phones)
      if (const auto* found = by_phone.find(phone)) c.insert(c.end(), found->begin(), found->end());
    for (const auto& key : keys_of[i])
      if (const auto* found = by_key.find(key)) c.insert(c.end(), found->begin(), found->end());
    if (company_of[i]) {
      const auto& found = by_company[company_of[i]];
      c.insert(c.end(), found.begin(), found.end());
    }
    std::sort(c.begin(), c.end());
    c.erase(std::unique(c.begin(), c.end()), c.end());
    std::erase(c, ids[i]);
    for (std::int64_t id : c)
      if (!cache.count(id)) missing.push_back(id);
  }
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  std::vector<std::vector<SqlValue>> loaded;
  for (auto it = missing.begin(); it != missing.end();) {
    std::vector<SqlValue> params;
    std::string marks;
    for (; it != missing.end() && params.size() < kChunk; ++it) {
      marks += marks.empty() ? "?" : ", ?";
      params.emplace_back(*it);
    }
    RP_ASSIGN(auto found, tx.query("SELECT " + select_list(e) + " FROM " + quote(e.name) +
                                       " WHERE \"id\" IN (" + marks + ") AND deleted_at IS NULL",
                                   params));
    for (auto& r : found.rows) loaded.push_back(std::move(r));
  }
  // Their numbers as the phone index holds them (normalised when written): parsing every
  // candidate's numbers again was the largest cost of a big import's duplicate check.
  std::map<std::int64_t, std::vector<std::string>> e164_of;
  const bool phones = has_phone_list(e);
  if (phones) {
    for (auto it = missing.begin(); it != missing.end();) {
      std::vector<SqlValue> params{e.name};
      std::string marks;
      for (; it != missing.end() && params.size() <= kChunk; ++it) {
        marks += marks.empty() ? "?" : ", ?";
        params.emplace_back(*it);
      }
      RP_ASSIGN(auto found, tx.query("SELECT record_id, e164 FROM phone_index WHERE entity = ? "
                                     "AND record_id IN (" +
                                         marks + ")",
                                     params));
      for (auto& r : found.rows) e164_of[as_int(r[0])].push_back(as_text(r[1]));
    }
  }
  static const std::vector<std::string> kNone;
  std::vector<dedupe::Facts> loaded_facts(loaded.size());
  parallel::for_ranges(loaded.size(), [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const std::vector<std::string>* e164 = nullptr;
      if (phones) {
        auto hit = e164_of.find(as_int(loaded[k][cols.id]));
        e164 = hit == e164_of.end() ? &kNone : &hit->second;
      }
      loaded_facts[k] = facts_of_row(*profile, e, loaded[k], e164);
    }
  });
  for (size_t k = 0; k < loaded.size(); ++k)
    cache.emplace(as_int(loaded[k][cols.id]),
                  CachedFacts{std::move(loaded_facts[k]), as_int(loaded[k][cols.owner]),
                              as_int(loaded[k][cols.team])});
  // scoring: the cache is only read from here on
  const Scope scope = access::scope_for(p, e.name, Op::kRead);
  parallel::for_ranges(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      std::vector<Scored> found;
      for (std::int64_t id : candidates[i]) {
        auto hit = cache.find(id);
        if (hit == cache.end()) continue;  // deleted meanwhile
        auto m = dedupe::match(*profile, *of[i], hit->second.facts);
        if (!m) continue;
        Scored s{DuplicateCandidate{id, hit->second.facts.title, m->score, m->reason, m->field},
                 access::in_scope(p, scope, hit->second.owner, hit->second.team)};
        found.push_back(std::move(s));
      }
      for (auto& c : ranked(std::move(found))) {
        if (c.id == 0 || c.score < dedupe::kReviewScore) continue;
        if (c.id > ids[i] && std::binary_search(batch.begin(), batch.end(), c.id))
          continue;  // reported on the later record
        out[i].push_back(std::move(c));
      }
    }
  });
  return out;
}

Result<std::string> Deduper::check(const Principal& p, const Entity& e, std::string_view body) {
  const dedupe::Profile* profile = rs_.hooks_.dedupe_for(e.name);
  if (!profile) return make_error(Errc::kNotFound, e.plural + " have no duplicate detection");
  if (!access::can_create(p, e.name) && access::scope_for(p, e.name, Op::kRead) == Scope::kNone)
    return make_error(Errc::kForbidden, "you may not create or read " + e.plural);
  RP_ASSIGN(json::Document input, json::parse_body(body));
  json::Document values(rapidjson::kObjectType);
  auto& a = values.GetAllocator();
  std::int64_t self = 0;
  for (auto it = input.MemberBegin(); it != input.MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    const Field* f = e.field(name);
    if (!f || access::field_access(p, e, *f) == access::FieldAccess::kHidden)
      return make_error(Errc::kUnknownField, e.name + " has no field " + name, name);
    // The UI may check a record being edited: its own id is not a duplicate of itself.
    if (name == "id" && it->value.IsString()) {
      RP_ASSIGN(self, parse_id(it->value.GetString(), "id"));
      continue;
    }
    if (f->system) continue;
    json::Value out;
    RP_TRY(schema::validate_value(*f, it->value, out, a));
    values.AddMember(json::str(name, a), out, a);
  }
  dedupe::Facts facts = dedupe::facts_of(*profile, e, values, rs_.options_.phone_region);
  RP_ASSIGN(auto tx, rs_.store_.read());
  RP_ASSIGN(auto found, find(*tx, &p, e, *profile, facts, self));
  std::erase_if(found, [](const DuplicateCandidate& c) { return c.id == 0; });
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("candidates");
  write_candidates(w, found);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<Deduper::ScanBatch> Deduper::scan_batch(const Principal& p, const Entity& e,
                                               std::int64_t after, int limit,
                                               const std::string& since) {
  const dedupe::Profile* profile_ptr = rs_.hooks_.dedupe_for(e.name);
  if (!profile_ptr) return make_error(Errc::kInternal, e.name + " has no duplicate detection");
  const dedupe::Profile& profile = *profile_ptr;
  auto queue = rs_.registry_.get(kCandidateEntity);
  if (!queue) return make_error(Errc::kInternal, "the review queue entity is not registered");
  struct Pair {
    std::int64_t a, b;
    std::string title_a, title_b;
    double score;
    std::string reason;
  };
  std::map<std::pair<std::int64_t, std::int64_t>, Pair> pairs;
  ScanBatch out;
  std::int64_t last = 0;
  FactsCache cache;  // every record's facts computed once per call
  {
    RP_ASSIGN(auto tx, rs_.store_.read());
    std::vector<SqlValue> params{after};
    std::string where = " WHERE \"id\" > ? AND deleted_at IS NULL";
    if (!since.empty()) {
      where += " AND updated_at >= ?";
      params.emplace_back(since);
    }
    params.emplace_back(std::int64_t{limit});
    RP_ASSIGN(auto rows, tx->query("SELECT " + select_list(e) + " FROM " + quote(e.name) + where +
                                       " ORDER BY \"id\" LIMIT ?",
                                   params));
    for (const auto& row : rows.rows) {
      dedupe::Facts facts = facts_of_row(profile, e, row);
      last = facts.id;
      ++out.scanned;
      RP_ASSIGN(auto found, find(*tx, nullptr, e, profile, facts, facts.id, &cache));
      for (auto& c : found) {
        auto key = std::minmax(facts.id, c.id);
        if (pairs.count(key)) continue;  // found from the other side already
        const bool self_first = facts.id < c.id;
        pairs.emplace(key, Pair{key.first, key.second, self_first ? facts.title : c.title,
                                self_first ? c.title : facts.title, c.score, c.reason});
      }
    }
    if (static_cast<int>(rows.rows.size()) < limit) last = 0;  // reached the end
  }
  out.next_after = last;
  out.pairs = static_cast<int>(pairs.size());
  if (!pairs.empty()) {
    RP_ASSIGN(auto tx, rs_.store_.write());
    std::string now = format_iso8601(rs_.clock_.now_ms());
    for (const auto& [key, pr] : pairs) {
      std::string pair_key = e.name + ":" + std::to_string(pr.a) + ":" + std::to_string(pr.b);
      SqlValue k[] = {pair_key};
      RP_ASSIGN(auto existing, tx->query("SELECT 1 FROM " + quote(kCandidateEntity) +
                                             " WHERE pair_key = ? AND deleted_at IS NULL",
                                         k));
      if (!existing.rows.empty()) continue;  // queued before (maybe dismissed): left as is
      SqlValue user = p.user_id ? SqlValue(p.user_id) : SqlValue();
      SqlValue team = p.team_id ? SqlValue(p.team_id) : SqlValue();
      SqlValue row[] = {rs_.ids_.next(),
                        now,
                        now,
                        user,
                        user,
                        user,
                        team,
                        e.name,
                        std::to_string(pr.a),
                        std::to_string(pr.b),
                        pr.title_a,
                        pr.title_b,
                        pr.score,
                        pr.reason,
                        std::string("open"),
                        pair_key};
      RP_TRY(tx->exec("INSERT INTO " + quote(kCandidateEntity) +
                          " (\"id\", \"version\", \"created_at\", \"updated_at\", "
                          "\"created_by\", \"updated_by\", \"owner_id\", \"team_id\", "
                          "\"entity\", \"record_a\", \"record_b\", \"title_a\", \"title_b\", "
                          "\"score\", \"reason\", \"status\", \"pair_key\") VALUES (?, 1, ?, "
                          "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      row));
      ++out.added;
    }
    RP_TRY(tx->commit());
  }
  return out;
}

Result<std::string> Deduper::scan(const Principal& p, std::string_view body) {
  if (!p.is_admin()) return make_error(Errc::kForbidden, "only administrators run a scan");
  auto started = std::chrono::steady_clock::now();
  json::Document input(rapidjson::kObjectType);
  if (body.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    RP_ASSIGN(input, json::parse_body(body));
  }
  std::vector<std::shared_ptr<const Entity>> entities;
  std::int64_t after = 0;
  int limit = kScanBatch;
  for (auto it = input.MemberBegin(); it != input.MemberEnd(); ++it) {
    std::string_view k(it->name.GetString(), it->name.GetStringLength());
    const json::Value& v = it->value;
    if (k == "entity") {
      auto e = v.IsString() ? rs_.registry_.get(v.GetString()) : nullptr;
      if (!e || !rs_.hooks_.dedupe_for(e->name))
        return make_error(Errc::kBadRequest, "entity must name an entity with duplicate detection",
                          "entity");
      entities.push_back(e);
    } else if (k == "after") {
      if (!v.IsString())
        return make_error(Errc::kBadRequest, "after must be an id string", "after");
      RP_ASSIGN(after, parse_id(v.GetString(), "after"));
    } else if (k == "limit") {
      if (!v.IsInt() || v.GetInt() < 1 || v.GetInt() > kMaxScanBatch)
        return make_error(Errc::kBadRequest,
                          "limit must be an integer from 1 to " + std::to_string(kMaxScanBatch),
                          "limit");
      limit = v.GetInt();
    } else {
      return make_error(Errc::kUnknownField, "unknown member " + std::string(k), std::string(k));
    }
  }
  if (after && entities.empty())
    return make_error(Errc::kBadRequest, "after needs an entity", "after");
  if (entities.empty())
    for (const auto& e : rs_.registry_.all())
      if (rs_.hooks_.dedupe_for(e->name)) entities.push_back(e);
  auto queue = rs_.registry_.get(kCandidateEntity);
  if (!queue) return make_error(Errc::kInternal, "the review queue entity is not registered");

  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("results");
  w.StartArray();
  for (const auto& e : entities) {
    RP_ASSIGN(ScanBatch batch, scan_batch(p, *e, after, limit));
    const int scanned = batch.scanned, added = batch.added;
    const std::size_t pair_count = batch.pairs;
    const std::int64_t last = batch.next_after;
    w.StartObject();
    w.Key("entity");
    w.String(e->name);
    w.Key("scanned");
    w.Int(scanned);
    w.Key("pairs");
    w.Int(static_cast<int>(pair_count));
    w.Key("added");
    w.Int(added);
    w.Key("next_after");
    if (last)
      w.String(std::to_string(last));
    else
      w.Null();
    w.EndObject();
  }
  w.EndArray();
  w.Key("elapsed_ms");
  w.Int64(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                started)
              .count());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status Deduper::record_scan_progress(const ScanRun& run) {
  RP_ASSIGN(auto tx, rs_.store_.write());
  SqlValue k[] = {std::string(kScanProgressName)};
  RP_TRY(tx->exec("DELETE FROM job_run WHERE name = ?", k));
  SqlValue row[] = {std::string(kScanProgressName),
                    run.started,
                    rs_.clock_.now_ms(),
                    run.scanned,
                    run.pairs,
                    run.added,
                    run.since ? SqlValue(*run.since) : SqlValue(),
                    SqlValue(),
                    run.ok_started};
  RP_TRY(
      tx->exec("INSERT INTO job_run (name, started_ms, finished_ms, scanned, pairs, added, "
               "since_ms, error, ok_started_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               row));
  return tx->commit();
}

// The job_run row `name` (a finished run, or the progress of a running one), nullopt when none.
Result<std::optional<Deduper::ScanRun>> Deduper::read_scan_run(std::string_view name) {
  RP_ASSIGN(auto tx, rs_.store_.read());
  SqlValue k[] = {std::string(name)};
  RP_ASSIGN(auto rows, tx->query("SELECT started_ms, finished_ms, scanned, pairs, added, since_ms, "
                                 "error, ok_started_ms FROM job_run WHERE name = ?",
                                 k));
  if (rows.rows.empty()) return std::optional<ScanRun>();
  const auto& r = rows.rows[0];
  ScanRun run;
  run.started = as_int(r[0]);
  run.finished = as_int(r[1]);
  run.scanned = as_int(r[2]);
  run.pairs = as_int(r[3]);
  run.added = as_int(r[4]);
  if (!storage::is_null(r[5])) run.since = as_int(r[5]);
  if (!storage::is_null(r[6])) run.error = as_text(r[6]);
  if (!storage::is_null(r[7])) run.ok_started = as_int(r[7]);
  return std::optional<ScanRun>(run);
}

Result<std::optional<Deduper::ScanRun>> Deduper::running_scheduled_scan() {
  RP_ASSIGN(auto run, read_scan_run(kScanProgressName));
  // progress not updated for that long: the server running it died
  if (run && rs_.clock_.now_ms() - run->finished > kScanProgressStaleMs)
    return std::optional<ScanRun>();
  return run;
}

Result<std::optional<Deduper::ScanRun>> Deduper::last_scheduled_scan() {
  return read_scan_run(kScanJobName);
}

Result<std::optional<Deduper::ScanRun>> Deduper::scheduled_scan(const Principal& p, int batch,
                                                                const std::atomic<bool>* cancel,
                                                                Millis every_ms) {
  RP_ASSIGN(auto lock, rs_.store_.try_job_lock(kScanJobLock));
  if (!lock) return std::optional<ScanRun>();  // another server runs it
  RP_ASSIGN(auto previous, last_scheduled_scan());
  // Looked at again under the lock: another server may have run it since the caller looked.
  if (every_ms > 0 && previous && previous->started + every_ms > rs_.clock_.now_ms())
    return std::optional<ScanRun>();
  ScanRun run;
  run.started = rs_.clock_.now_ms();
  if (previous && previous->ok_started > 0) {
    run.since = previous->ok_started - kScanOverlapMs;
    run.ok_started = previous->ok_started;
  }
  const std::string since = run.since ? format_iso8601(*run.since) : std::string();
  // Progress for GET /duplicates/scan; a failure to record it does not stop the scan.
  auto progress = [&] {
    if (auto st = record_scan_progress(run); !st.ok())
      spdlog::warn("duplicate scan: cannot record progress: {}", st.error().message);
  };
  progress();
  auto scanned = [&]() -> Status {
    for (const auto& e : entities()) {
      std::int64_t after = 0;
      do {
        if (cancel && cancel->load())
          return make_error(Errc::kInternal, "interrupted (the server stopped)");
        auto current = entity(e->name);  // custom fields may have replaced the snapshot
        RP_ASSIGN(ScanBatch b, scan_batch(p, *current, after, batch, since));
        run.scanned += b.scanned;
        run.pairs += b.pairs;
        run.added += b.added;
        after = b.next_after;
        progress();
      } while (after);
    }
    return {};
  }();
  run.finished = rs_.clock_.now_ms();
  if (scanned.ok())
    run.ok_started = run.started;
  else
    run.error = scanned.error().message;
  RP_ASSIGN(auto tx, rs_.store_.write());
  SqlValue k[] = {std::string(kScanJobName), std::string(kScanProgressName)};
  RP_TRY(tx->exec("DELETE FROM job_run WHERE name IN (?, ?)", k));
  SqlValue row[] = {std::string(kScanJobName),
                    run.started,
                    run.finished,
                    run.scanned,
                    run.pairs,
                    run.added,
                    run.since ? SqlValue(*run.since) : SqlValue(),
                    run.error.empty() ? SqlValue() : SqlValue(run.error),
                    run.ok_started};
  RP_TRY(
      tx->exec("INSERT INTO job_run (name, started_ms, finished_ms, scanned, pairs, added, "
               "since_ms, error, ok_started_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               row));
  RP_TRY(tx->commit());
  return std::optional<ScanRun>(run);
}

Result<std::string> Deduper::scan_status(const Principal& p) {
  if (!p.is_admin())
    return make_error(Errc::kForbidden, "only administrators see the scheduled scan");
  RP_ASSIGN(auto last, last_scheduled_scan());
  RP_ASSIGN(auto running, running_scheduled_scan());
  json::Buffer buf;
  json::Writer w(buf);
  // A finished run has its end and error; a running one the time of its last progress.
  auto write_run = [&w](const std::optional<ScanRun>& run, bool finished) {
    if (!run) {
      w.Null();
      return;
    }
    w.StartObject();
    w.Key("started_at");
    w.String(format_iso8601(run->started));
    w.Key(finished ? "finished_at" : "updated_at");
    w.String(format_iso8601(run->finished));
    w.Key("scanned");
    w.Int64(run->scanned);
    w.Key("pairs");
    w.Int64(run->pairs);
    w.Key("added");
    w.Int64(run->added);
    w.Key("changed_since");
    if (run->since)
      w.String(format_iso8601(*run->since));
    else
      w.Null();
    if (finished) {
      w.Key("error");
      if (run->error.empty())
        w.Null();
      else
        w.String(run->error);
    }
    w.EndObject();
  };
  w.StartObject();
  w.Key("last_run");
  write_run(last, true);
  w.Key("running");
  write_run(running, false);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::optional<std::int64_t>> Deduper::merged_into(const Principal& p, const Entity& e,
                                                         std::int64_t id) {
  if (access::scope_for(p, e.name, Op::kRead) == Scope::kNone) return std::optional<std::int64_t>();
  RP_ASSIGN(auto tx, rs_.store_.read());
  // Merges of merges: follow the chain (bounded) to the live record.
  for (int hop = 0; hop < 16; ++hop) {
    SqlValue k[] = {id};
    RP_ASSIGN(
        auto rows,
        tx->query("SELECT deleted_at, merged_into FROM " + quote(e.name) + " WHERE \"id\" = ?", k));
    if (rows.rows.empty()) return std::optional<std::int64_t>();
    const auto& r = rows.rows[0];
    if (storage::is_null(r[0])) return hop ? std::optional<std::int64_t>(id) : std::nullopt;
    if (storage::is_null(r[1])) return std::optional<std::int64_t>();
    id = as_int(r[1]);
  }
  return std::optional<std::int64_t>();
}

std::shared_ptr<const Entity> Deduper::entity(std::string_view name) const {
  return rs_.registry_.get(name);
}

std::vector<std::shared_ptr<const Entity>> Deduper::entities() const {
  std::vector<std::shared_ptr<const Entity>> out;
  for (const auto& e : rs_.registry_.all())
    if (rs_.hooks_.dedupe_for(e->name)) out.push_back(e);
  return out;
}

namespace {

constexpr const char* kCandidatesSchema =
    R"({"type":"object","required":["candidates"],"properties":{"candidates":{"type":"array",)"
    R"("items":{"type":"object","properties":{"id":{"type":"string"},"title":{"type":"string"},)"
    R"("score":{"type":"number"},"reason":{"type":"string"},"field":{"type":"string"}}}}}})";

std::string id_list_schema(const std::string& member, int min, int max) {
  return R"({"type":"object","required":[")" + member + R"("],"properties":{")" + member +
         R"(":{"type":"array","items":{"type":"string"},"minItems":)" + std::to_string(min) +
         R"(,"maxItems":)" + std::to_string(max) + "}}}";
}

std::string merge_schema(const std::string& record_ref) {
  return R"({"type":"object","properties":{"merge_id":{"type":"string"},)"
         R"("survivor_id":{"type":"string"},"merged":{"type":"array","items":{"type":"string"}},)"
         R"("moved":{"type":"object","additionalProperties":{"type":"integer"}},"record":)" +
         record_ref + "}}";
}

}  // namespace

void register_duplicate_actions(ActionRegistry& actions, RecordService& records) {
  for (const auto& e : Deduper(records).entities()) {
    std::string name = e->name;
    // The entity is looked up per request: custom fields replace its snapshot.
    auto entity = [&records, name]() { return Deduper(records).entity(name); };
    const std::string record_ref = R"({"$ref":"#/components/schemas/)" + name + R"("})";
    Action check{"POST", "/" + e->plural + "/duplicates/check",
                 "Likely duplicates of a " + name + " about to be created (score, reason)",
                 [&records, entity](const ActionRequest& r) -> Result<std::string> {
                   return Deduper(records).check(r.principal, *entity(), r.body);
                 }};
    check.request_schema = R"({"$ref":"#/components/schemas/)" + name + R"(_input"})";
    check.response_schema = kCandidatesSchema;
    actions.add(std::move(check));
    Action merge_into{"POST", "/" + e->plural + "/{id}/merge",
                      "Merge other " + e->plural + " into this one (undo: /merges/{merge_id}/undo)",
                      [&records, entity](const ActionRequest& r) -> Result<std::string> {
                        auto id = parse_id(r.param("id"), "id");
                        if (!id.ok())
                          return make_error(Errc::kNotFound,
                                            "no record " + std::string(r.param("id")));
                        return Deduper(records).merge(r.principal, *entity(), *id, r.body);
                      }};
    merge_into.entity = name;
    merge_into.request_schema = id_list_schema("others", 1, kMaxMergeOthers);
    merge_into.response_schema = merge_schema(record_ref);
    actions.add(std::move(merge_into));
    Action merge_listed{"POST", "/" + e->plural + "/merge",
                        "Merge the listed " + e->plural + " into the oldest of them",
                        [&records, entity](const ActionRequest& r) -> Result<std::string> {
                          return Deduper(records).merge(r.principal, *entity(), std::nullopt,
                                                        r.body);
                        }};
    merge_listed.request_schema = id_list_schema("records", 2, kMaxMergeOthers + 1);
    merge_listed.response_schema = merge_schema(record_ref);
    actions.add(std::move(merge_listed));
  }
  Action scan{"POST", "/duplicates/scan",
              "Administrators: fill the duplicate review queue (bounded batch per call)",
              [&records](const ActionRequest& r) -> Result<std::string> {
                return Deduper(records).scan(r.principal, r.body);
              }};
  scan.request_schema =
      R"({"type":"object","properties":{"entity":{"type":"string"},"after":{"type":"string"},)"
      R"("limit":{"type":"integer","minimum":1,"maximum":50000}},"additionalProperties":false})";
  scan.response_schema =
      R"({"type":"object","properties":{"results":{"type":"array","items":{"type":"object",)"
      R"("properties":{"entity":{"type":"string"},"scanned":{"type":"integer"},)"
      R"("pairs":{"type":"integer"},"added":{"type":"integer"},)"
      R"("next_after":{"type":["string","null"]}}}},"elapsed_ms":{"type":"integer"}}})";
  actions.add(std::move(scan));
  Action scan_run{"POST", "/duplicates/scan/run",
                  "Administrators: start the scheduled duplicate scan now (progress and totals: "
                  "GET /duplicates/scan)",
                  [&records](const ActionRequest& r) -> Result<std::string> {
                    if (!r.principal.is_admin())
                      return make_error(Errc::kForbidden, "only administrators run a scan");
                    if (!records.trigger_scan())
                      return make_error(Errc::kConflict,
                                        "no scheduled duplicate scan runs in this process");
                    return std::string(R"({"started":true})");
                  }};
  scan_run.status = 202;
  scan_run.response_schema =
      R"({"type":"object","required":["started"],"properties":{"started":{"type":"boolean"}}})";
  actions.add(std::move(scan_run));
  Action scan_status{"GET", "/duplicates/scan",
                     "Administrators: the last scheduled duplicate scan (rapport serve "
                     "--scan-every, or POST /duplicates/scan/run) and the one under way",
                     [&records](const ActionRequest& r) -> Result<std::string> {
                       return Deduper(records).scan_status(r.principal);
                     }};
  scan_status.response_schema =
      R"({"type":"object","required":["last_run","running"],"properties":{"last_run":{"type":["object",)"
      R"("null"],"properties":{"started_at":{"type":"string"},"finished_at":{"type":"string"},)"
      R"("scanned":{"type":"integer"},"pairs":{"type":"integer"},"added":{"type":"integer"},)"
      R"("changed_since":{"type":["string","null"]},"error":{"type":["string","null"]}}},)"
      R"("running":{"type":["object","null"],"properties":{"started_at":{"type":"string"},)"
      R"("updated_at":{"type":"string"},"scanned":{"type":"integer"},"pairs":{"type":"integer"},)"
      R"("added":{"type":"integer"},"changed_since":{"type":["string","null"]}}}}})";
  actions.add(std::move(scan_status));
  Action undo{"POST", "/merges/{merge_id}/undo",
              "Undo a merge from its snapshot (409 when a touched record changed since)",
              [&records](const ActionRequest& r) -> Result<std::string> {
                auto id = parse_id(r.param("merge_id"), "merge_id");
                if (!id.ok())
                  return make_error(Errc::kNotFound,
                                    "no merge " + std::string(r.param("merge_id")));
                return Deduper(records).undo(r.principal, *id);
              }};
  undo.response_schema = R"({"type":"object"})";
  actions.add(std::move(undo));
}

}  // namespace rapport::record
