// Import upsert: the bulk update of the records an import batch matches on its upsert key
// (RecordService::update_many, see service.h). Kept apart from import.cc's insert path.
#include <algorithm>
#include <map>
#include <set>

#include "core/parallel.h"
#include "record/duplicates.h"
#include "record/phone_index.h"
#include "record/service.h"
#include "record/small_document.h"
#include "record/table.h"

namespace rapport::record {

using access::Op;
using access::Principal;
using access::Scope;
using schema::Entity;
using schema::Field;
using schema::FieldType;
using storage::SqlValue;

namespace {

constexpr size_t kChunk = 500;  // ids or keys per IN (…) list

std::string in_list(size_t k) {
  std::string s = "(";
  for (size_t j = 0; j < k; ++j) s += j ? ", ?" : "?";
  return s + ")";
}

}  // namespace

Result<RecordService::BulkUpdate> RecordService::update_many(
    storage::Tx& tx, const Principal& p, const Entity& e, const std::vector<std::int64_t>& ids,
    const std::vector<const json::Value*>& inputs) {
  const size_t n = ids.size();
  BulkUpdate out;
  out.errors.resize(n);
  out.events.resize(n);
  const Scope scope = access::scope_for(p, e.name, Op::kUpdate);
  if (scope == Scope::kNone) {
    for (auto& err : out.errors)
      err = make_error(Errc::kForbidden, "you may not change " + e.plural);
    return out;
  }
  auto ok = [&](size_t i) { return !out.errors[i].has_value(); };

  // 1. the stored rows: one sorted pass over the ids, kChunk per statement
  std::vector<std::optional<std::vector<SqlValue>>> old(n);
  {
    std::map<std::int64_t, std::vector<size_t>> wanted;
    for (size_t i = 0; i < n; ++i) wanted[ids[i]].push_back(i);
    std::vector<SqlValue> chunk;
    const size_t id_col = column_index(e, "id");
    for (auto it = wanted.begin(); it != wanted.end();) {
      chunk.clear();
      for (; it != wanted.end() && chunk.size() < kChunk; ++it) chunk.emplace_back(it->first);
      RP_ASSIGN(auto rows,
                tx.query("SELECT " + select_list(e) + " FROM " + quote(e.name) +
                             " WHERE \"id\" IN " + in_list(chunk.size()) + " ORDER BY \"id\"",
                         chunk));
      for (auto& r : rows.rows) {
        auto w = wanted.find(as_int(r[id_col]));
        if (w == wanted.end()) continue;
        for (size_t k = 0; k + 1 < w->second.size(); ++k) old[w->second[k]] = r;
        old[w->second.back()] = std::move(r);
      }
    }
  }

  // 2. each input on its own (worker threads): access, values, the changed columns, the new row,
  // the audit's changes, which derived index entries change
  const size_t ncols = field_column_count(e);
  const size_t c_version = column_index(e, "version"), c_owner = column_index(e, "owner_id"),
               c_team = column_index(e, "team_id"), c_updated_at = column_index(e, "updated_at"),
               c_updated_by = column_index(e, "updated_by");
  const bool fts = e.has_searchable(), phones = has_phone_list(e);
  const dedupe::Profile* profile = hooks_.dedupe_for(e.name);
  const std::string now = format_iso8601(clock_.now_ms());
  const SqlValue user = p.user_id ? SqlValue(p.user_id) : SqlValue();
  struct Change {
    std::vector<SqlValue> row;        // as stored after the update
    std::vector<size_t> fields;       // indexes into e.fields of the changed fields
    std::string changes;              // the audit entry's changes
    std::optional<std::string> text;  // new search text, when it changes
    std::optional<std::vector<std::string>> phone_keys, match_keys;  // when they change
    SqlValue account;  // the distribution key after the update
    bool account_changed = false;
  };
  std::vector<std::optional<Change>> changes(n);
  std::vector<SmallDocument> values(n);  // small pool chunks (small_document.h)
  Deduper dedupe(*this);
  parallel::for_ranges(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (!old[i] || !storage::is_null((*old[i])[ncols])) {
        out.errors[i] =
            make_error(Errc::kNotFound, "no " + e.name + " with id " + std::to_string(ids[i]));
        continue;
      }
      const auto& row = *old[i];
      if (!access::in_scope(p, scope, as_int(row[c_owner]), as_int(row[c_team]))) {
        out.errors[i] =
            make_error(Errc::kForbidden, "this " + e.name + " belongs to another owner or team");
        continue;
      }
      auto& v = values[i];
      auto& a = v.GetAllocator();
      if (auto st = collect_input_values(p, e, *inputs[i], v, a); !st.ok()) {
        out.errors[i] = std::move(st).error();
        continue;
      }
      bool bad = false;
      for (auto it = v.MemberBegin(); it != v.MemberEnd() && !bad; ++it) {
        const Field* f = e.field(it->name.GetString());
        if (f->required && it->value.IsNull()) {
          out.errors[i] = make_error(Errc::kValidation, f->name + " is required", f->name);
          bad = true;
        }
      }
      if (bad) continue;
      Change c;
      c.row = row;
      c.changes = "[";
      bool search_changed = false, phones_changed = false;
      size_t col = 0;
      for (size_t fi = 0; fi < e.fields.size(); ++fi) {
        const Field& f = e.fields[fi];
        const size_t k = column_count(f);
        if (const json::Value* nv = json::member(v, f.name)) {
          json::Value before_v;
          to_json(f, row, col, before_v, a);
          std::string before = json::stringify(before_v), after = json::stringify(*nv);
          if (before != after) {
            std::vector<SqlValue> sv;
            to_sql(f, *nv, sv);
            for (size_t j = 0; j < k && j < sv.size(); ++j) c.row[col + j] = std::move(sv[j]);
            if (c.changes.size() > 1) c.changes += ",";
            c.changes +=
                "{\"field\":\"" + f.name + "\",\"from\":" + before + ",\"to\":" + after + "}";
            c.fields.push_back(fi);
            search_changed = search_changed || f.searchable;
            phones_changed = phones_changed || f.type == FieldType::kPhoneList;
          }
        }
        col += k;
      }
      c.changes += "]";
      // conditional requirements on the row as it will be (as update_one)
      if (auto st = check_required_when(e, nullptr, c.row); !st.ok()) {
        out.errors[i] = std::move(st).error();
        continue;
      }
      if (c.fields.empty()) {  // nothing to change: no write, no event (as update_one)
        continue;
      }
      const std::int64_t version = as_int(row[c_version]);
      c.row[c_version] = version + 1;
      c.row[c_updated_at] = now;
      c.row[c_updated_by] = user;
      const SqlValue old_account = distribution_value(e, options_.distribution_entity, ids[i], row);
      c.account = distribution_value(e, options_.distribution_entity, ids[i], c.row);
      c.account_changed = old_account != c.account;
      // derived entries: rewritten only when what they are made of changed
      std::vector<std::string> new_phones;
      if (phones) new_phones = phone_keys(e, c.row, options_.phone_region);
      if (phones && (phones_changed || c.account_changed)) {
        if (c.account_changed || phone_keys(e, row, options_.phone_region) != new_phones)
          c.phone_keys = new_phones;
      }
      if (fts && (search_changed || c.account_changed))
        c.text = fts_text(e, c.row, phones ? &new_phones : nullptr);
      if (profile) {
        auto keys = dedupe::index_keys(
            *profile, dedupe.facts_of_row(*profile, e, c.row, phones ? &new_phones : nullptr));
        auto before = dedupe.index_keys_of(e, row);
        std::sort(keys.begin(), keys.end());
        std::sort(before.begin(), before.end());
        if (keys != before) c.match_keys = std::move(keys);
      }
      changes[i] = std::move(c);
    }
  });

  // 3. references
  RP_TRY(check_references(tx, e, values, out.errors));

  // 4. the updates, in id order: one statement text per set of changed columns, prepared once
  // by the store's statement cache and run for every row of that shape
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i)
    if (ok(i) && changes[i]) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return ids[x] < ids[y]; });
  std::map<std::vector<size_t>, std::string> statements;
  std::vector<size_t> first_col(e.fields.size());
  for (size_t fi = 0, col = 0; fi < e.fields.size(); ++fi) {
    first_col[fi] = col;
    col += column_count(e.fields[fi]);
  }
  std::vector<SqlValue> params;
  for (size_t i : order) {
    const Change& c = *changes[i];
    auto& sql = statements[c.fields];
    if (sql.empty()) {
      sql = "UPDATE " + quote(e.name) + " SET ";
      for (size_t fi : c.fields)
        for (const auto& col : field_columns(e.fields[fi])) sql += quote(col) + " = ?, ";
      sql +=
          "\"version\" = ?, \"updated_at\" = ?, \"updated_by\" = ? WHERE \"id\" = ? AND "
          "\"version\" = ?";
    }
    params.clear();
    for (size_t fi : c.fields)
      for (size_t j = 0; j < column_count(e.fields[fi]); ++j)
        params.push_back(c.row[first_col[fi] + j]);
    params.push_back(c.row[c_version]);
    params.emplace_back(now);
    params.push_back(user);
    params.emplace_back(ids[i]);
    params.emplace_back(as_int(c.row[c_version]) - 1);
    auto changed = tx.exec(sql, params);
    if (!changed.ok() || *changed != 1) {
      out.errors[i] = changed.ok() ? make_error(Errc::kConflict,
                                                "the record was changed by someone else; reload it")
                                   : std::move(changed).error();
      out.aborted = i;
      return out;
    }
  }

  // 5. derived index entries of the records whose indexed values changed, and the audit
  std::vector<storage::Tx::FtsRow> fts_rows;
  std::vector<SqlValue> phone_ids, match_ids;
  std::vector<std::vector<SqlValue>> phone_rows, match_rows, audits;
  for (size_t i : order) {
    Change& c = *changes[i];
    const std::int64_t id = ids[i];
    if (c.text) fts_rows.push_back({id, std::move(*c.text), c.account});
    if (c.phone_keys) {
      phone_ids.emplace_back(id);
      for (auto& key : *c.phone_keys) phone_rows.push_back({std::move(key), e.name, id, c.account});
    }
    if (c.match_keys) {
      match_ids.emplace_back(id);
      for (auto& key : *c.match_keys) match_rows.push_back({std::move(key), e.name, id});
    }
    audits.push_back({ids_.next(), e.name, id, std::string("update"), user,
                      p.display_name.empty() ? p.username : p.display_name, p.channel, now,
                      std::move(c.changes), c.account});
  }
  if (!fts_rows.empty()) RP_TRY(tx.fts_put_many(e.name, fts_rows, /*fresh=*/false));
  auto remove = [&](const char* table, const std::vector<SqlValue>& which) -> Status {
    std::vector<SqlValue> chunk;
    for (size_t at = 0; at < which.size(); at += kChunk) {
      const size_t k = std::min(kChunk, which.size() - at);
      chunk.assign({SqlValue(e.name)});
      chunk.insert(chunk.end(), which.begin() + static_cast<long>(at),
                   which.begin() + static_cast<long>(at + k));
      RP_TRY(tx.exec(
          std::string("DELETE FROM ") + table + " WHERE entity = ? AND record_id IN " + in_list(k),
          chunk));
    }
    return {};
  };
  RP_TRY(remove("phone_index", phone_ids));
  RP_TRY(insert_rows(tx, "phone_index", "e164, entity, record_id, account_id", 4, phone_rows));
  RP_TRY(remove("match_index", match_ids));
  RP_TRY(insert_rows(tx, "match_index", "key, entity, record_id", 3, match_rows));
  RP_TRY(insert_rows(tx, "audit_log",
                     "id, entity, record_id, action, user_id, user_name, channel, at, changes, "
                     "account_id",
                     10, audits));

  // 6. the events, in input order
  for (size_t i = 0; i < n; ++i) {
    if (!ok(i) || !changes[i]) continue;
    const Change& c = *changes[i];
    Event ev{e.name,    ids[i], "updated", {}, as_int(c.row[c_owner]), as_int(c.row[c_team]),
             p.user_id, now};
    for (size_t fi : c.fields) ev.changed.push_back(e.fields[fi].name);
    out.events[i] = std::move(ev);
  }
  return out;
}

}  // namespace rapport::record
