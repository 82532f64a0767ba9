// Merge of duplicate records and its undo (see duplicates.h for the rules). Every row a merge
// changes — the survivor, the merged records, each record whose reference moved, queue entries
// — is copied into merge_log first, with its version after the merge; undo writes the copies
// back when none of those versions moved on.
#include <algorithm>
#include <map>
#include <set>

#include "core/phone.h"
#include "record/duplicates.h"
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
using namespace detail;

namespace {

void write_sql_value(json::Writer& w, const SqlValue& v) {
  if (storage::is_null(v))
    w.Null();
  else if (std::holds_alternative<std::int64_t>(v))
    w.Int64(std::get<std::int64_t>(v));
  else if (std::holds_alternative<double>(v))
    w.Double(std::get<double>(v));
  else
    w.String(std::get<std::string>(v));
}

SqlValue sql_value(const json::Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsNumber()) return v.GetDouble();
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return {};
}

bool empty_value(const json::Value& v) {
  return v.IsNull() || (v.IsString() && v.GetStringLength() == 0) || (v.IsArray() && v.Empty()) ||
         (v.IsObject() && v.MemberCount() == 0);
}

// Identity of a list entry for the union: E.164 for phones, the canonical address for emails.
std::string entry_key(const Field& f, const json::Value& entry, std::string_view region) {
  const json::Value* v = entry.IsString() ? &entry : json::member(entry, "value");
  if (!v || !v->IsString()) return json::stringify(entry);
  std::string_view s(v->GetString(), v->GetStringLength());
  if (f.type == FieldType::kPhoneList) {
    auto e164 = phone::to_e164(s, region);
    if (e164.ok()) return std::move(e164).value();
  } else if (f.type == FieldType::kEmailList) {
    if (std::string c = dedupe::canonical_email(s); !c.empty()) return c;
  }
  return std::string(s);
}

// One row a merge changed: its content before, and its version after.
struct Touched {
  std::shared_ptr<const Entity> e;
  std::int64_t id = 0;
  std::vector<SqlValue> before;
  std::int64_t version_after = 0;
};

class TouchedRows {
 public:
  void add(std::shared_ptr<const Entity> e, std::int64_t id, std::vector<SqlValue> before,
           std::int64_t version_after) {
    auto key = std::make_pair(e->name, id);
    if (auto it = index_.find(key); it != index_.end()) {
      rows_[it->second].version_after = version_after;  // keep the earliest content
      return;
    }
    index_[key] = rows_.size();
    rows_.push_back({std::move(e), id, std::move(before), version_after});
  }
  std::string json() const {
    json::Buffer buf;
    json::Writer w(buf);
    w.StartArray();
    for (const auto& t : rows_) {
      w.StartObject();
      w.Key("entity");
      w.String(t.e->name);
      w.Key("id");
      w.String(std::to_string(t.id));
      w.Key("version_after");
      w.Int64(t.version_after);
      w.Key("row");
      w.StartObject();
      auto cols = all_columns(*t.e);
      for (size_t i = 0; i < cols.size() && i < t.before.size(); ++i) {
        json::key(w, cols[i]);
        write_sql_value(w, t.before[i]);
      }
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    return std::string(buf.GetString(), buf.GetSize());
  }

 private:
  std::vector<Touched> rows_;
  std::map<std::pair<std::string, std::int64_t>, size_t> index_;
};

std::string change_json(std::string_view field, const std::string& from, const std::string& to) {
  return "{\"field\":\"" + std::string(field) + "\",\"from\":" + from + ",\"to\":" + to + "}";
}

std::string id_string(std::int64_t id) { return "\"" + std::to_string(id) + "\""; }

// Field-by-field differences of two rows of one entity as audit changes (without the system
// fields a write always touches).
std::string row_changes(const Entity& e, const std::vector<SqlValue>& from,
                        const std::vector<SqlValue>& to, std::vector<std::string>& changed) {
  std::string out = "[";
  json::Document scratch;
  auto& a = scratch.GetAllocator();
  size_t col = 0;
  for (const auto& f : e.fields) {
    const size_t n = column_count(f);
    if (f.name != "version" && f.name != "updated_at" && f.name != "updated_by") {
      json::Value x, y;
      to_json(f, from, col, x, a);
      to_json(f, to, col, y, a);
      std::string xs = json::stringify(x), ys = json::stringify(y);
      if (xs != ys) {
        if (out.size() > 1) out += ",";
        out += change_json(f.name, xs, ys);
        changed.push_back(f.name);
      }
    }
    col += n;
  }
  const size_t m = field_column_count(e) + 1;  // merged_into
  if (m < from.size() && m < to.size() && as_int(from[m]) != as_int(to[m])) {
    if (out.size() > 1) out += ",";
    out +=
        change_json("merged_into", storage::is_null(from[m]) ? "null" : id_string(as_int(from[m])),
                    storage::is_null(to[m]) ? "null" : id_string(as_int(to[m])));
  }
  return out + "]";
}

Result<std::vector<std::int64_t>> id_list(const json::Value* v, const char* name, size_t min,
                                          size_t max) {
  if (!v || !v->IsArray() || v->Size() < min || v->Size() > max)
    return make_error(Errc::kBadRequest,
                      std::string(name) + " must be an array of " + std::to_string(min) + " to " +
                          std::to_string(max) + " id strings",
                      name);
  std::vector<std::int64_t> ids;
  for (const auto& x : v->GetArray()) {
    if (!x.IsString())
      return make_error(Errc::kBadRequest, std::string(name) + " holds ids as strings", name);
    RP_ASSIGN(std::int64_t id, parse_id(x.GetString(), name));
    if (std::find(ids.begin(), ids.end(), id) != ids.end())
      return make_error(Errc::kBadRequest, std::string(name) + " lists " + x.GetString() + " twice",
                        name);
    ids.push_back(id);
  }
  return ids;
}

std::string in_list(size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += i ? ", ?" : "?";
  return s + ")";
}

}  // namespace

Result<std::string> Deduper::merge(const Principal& p, const Entity& e,
                                   std::optional<std::int64_t> survivor_arg,
                                   std::string_view body) {
  const dedupe::Profile* profile = rs_.hooks_.dedupe_for(e.name);
  if (!profile) return make_error(Errc::kNotFound, e.plural + " cannot be merged");
  const Scope update = access::scope_for(p, e.name, Op::kUpdate);
  const Scope del = access::scope_for(p, e.name, Op::kDelete);
  if (update == Scope::kNone || del == Scope::kNone)
    return make_error(Errc::kForbidden, "you may not merge " + e.plural);
  RP_ASSIGN(json::Document input, json::parse_body(body));
  const char* list_name = survivor_arg ? "others" : "records";
  for (auto it = input.MemberBegin(); it != input.MemberEnd(); ++it)
    if (std::string_view(it->name.GetString()) != list_name)
      return make_error(Errc::kUnknownField, std::string("unknown member ") + it->name.GetString(),
                        it->name.GetString());
  RP_ASSIGN(std::vector<std::int64_t> ids,
            id_list(json::member(input, list_name), list_name, survivor_arg ? 1 : 2,
                    kMaxMergeOthers + (survivor_arg ? 0 : 1)));
  if (survivor_arg) {
    if (std::find(ids.begin(), ids.end(), *survivor_arg) != ids.end())
      return make_error(Errc::kBadRequest, "a record cannot be merged into itself", "others");
    ids.insert(ids.begin(), *survivor_arg);
  }

  RP_ASSIGN(auto tx, rs_.store_.write());
  const Columns cols(e);
  const size_t created_col = column_of(e, "created_at");
  std::map<std::int64_t, std::vector<SqlValue>> rows;
  for (std::int64_t id : ids) {
    RP_ASSIGN(auto row, rs_.load(*tx, e, id));
    if (row && !storage::is_null((*row)[cols.deleted]) && !storage::is_null((*row)[cols.merged]))
      return make_error(Errc::kConflict, "the " + e.name + " " + std::to_string(id) +
                                             " was already merged into " +
                                             std::to_string(as_int((*row)[cols.merged])));
    if (!row || !storage::is_null((*row)[cols.deleted]))
      return make_error(Errc::kNotFound, "no " + e.name + " with id " + std::to_string(id));
    if (!access::in_scope(p, update, as_int((*row)[cols.owner]), as_int((*row)[cols.team])))
      return make_error(Errc::kForbidden, "the " + e.name + " " + std::to_string(id) +
                                              " belongs to another owner or team");
    rows[id] = std::move(*row);
  }
  // Oldest first (created_at, then the time-ordered id): the default survivor, and the order in
  // which the others fill the survivor's empty fields.
  auto older = [&](std::int64_t a, std::int64_t b) {
    std::string ca = as_text(rows[a][created_col]), cb = as_text(rows[b][created_col]);
    return ca != cb ? ca < cb : a < b;
  };
  std::int64_t survivor =
      survivor_arg ? *survivor_arg : *std::min_element(ids.begin(), ids.end(), older);
  std::vector<std::int64_t> others;
  for (std::int64_t id : ids)
    if (id != survivor) others.push_back(id);
  std::sort(others.begin(), others.end(), older);
  for (std::int64_t o : others)
    if (!access::in_scope(p, del, as_int(rows[o][cols.owner]), as_int(rows[o][cols.team])))
      return make_error(Errc::kForbidden, "you may not delete the " + e.name + " " +
                                              std::to_string(o) + ", so it cannot be merged away");

  const std::string now = format_iso8601(rs_.clock_.now_ms());
  const SqlValue user = p.user_id ? SqlValue(p.user_id) : SqlValue();
  auto self = rs_.registry_.get(e.name);
  TouchedRows touched;
  std::vector<std::pair<std::shared_ptr<const Entity>, Event>> events;

  // 1. The others leave first, so unique values (customer code, …) can pass to the survivor.
  for (std::int64_t o : others) {
    const auto& row = rows[o];
    const std::int64_t version = as_int(row[cols.version]);
    touched.add(self, o, row, version + 1);
    SqlValue params[] = {now, survivor, now, user, o};
    RP_TRY(tx->exec("UPDATE " + quote(e.name) +
                        " SET deleted_at = ?, merged_into = ?, \"version\" = \"version\" + 1, "
                        "\"updated_at\" = ?, \"updated_by\" = ? WHERE \"id\" = ?",
                    params));
    if (e.has_searchable()) RP_TRY(tx->fts_delete(e.name, o));
    if (has_phone_list(e)) RP_TRY(unindex_phones(*tx, e, o));
    RP_TRY(unindex(*tx, e, o));
    RP_TRY(rs_.audit(*tx, p, e, o, "merge",
                     "[" + change_json("merged_into", "null", id_string(survivor)) + "]", now));
    events.push_back({self, Event{e.name,
                                  o,
                                  "deleted",
                                  {"merged_into"},
                                  as_int(row[cols.owner]),
                                  as_int(row[cols.team]),
                                  p.user_id,
                                  now}});
  }

  // 2. The survivor: its non-empty values win; lists united; ranked fields take the winner.
  const auto& srow = rows[survivor];
  json::Document scratch;
  auto& a = scratch.GetAllocator();
  std::string sets, changes = "[";
  std::vector<SqlValue> params;
  std::vector<std::string> changed;
  size_t col = 0;
  for (const auto& f : e.fields) {
    const size_t n = column_count(f);
    if (!f.system && !f.readonly) {
      json::Value mine;
      to_json(f, srow, col, mine, a);
      json::Value merged;
      merged.CopyFrom(mine, a);
      std::vector<json::Value> theirs;
      for (std::int64_t o : others) {
        json::Value v;
        to_json(f, rows[o], col, v, a);
        theirs.push_back(std::move(v));
      }
      auto rank = profile->merge_rank.find(f.name);
      if (f.is_list_type()) {
        if (!merged.IsArray()) merged.SetArray();
        std::set<std::string> seen;
        for (const auto& entry : merged.GetArray())
          seen.insert(entry_key(f, entry, rs_.options_.phone_region));
        for (auto& v : theirs)
          if (v.IsArray())
            for (auto& entry : v.GetArray())
              if (seen.insert(entry_key(f, entry, rs_.options_.phone_region)).second) {
                json::Value copy;
                copy.CopyFrom(entry, a);
                merged.PushBack(copy, a);
              }
        if (merged.Empty() && mine.IsNull()) merged.SetNull();
      } else if (rank != profile->merge_rank.end()) {
        const auto& order = rank->second;
        auto position = [&](const json::Value& v) -> int {
          if (!v.IsString()) return -1;
          auto it = std::find(order.begin(), order.end(), v.GetString());
          return it == order.end() ? -1 : static_cast<int>(it - order.begin());
        };
        for (auto& v : theirs)
          if (position(v) > position(merged)) merged.CopyFrom(v, a);
      } else if (empty_value(mine)) {
        for (auto& v : theirs)
          if (!empty_value(v)) {
            merged.CopyFrom(v, a);
            break;
          }
      }
      std::string before = json::stringify(mine), after = json::stringify(merged);
      if (before != after) {
        for (const auto& c : field_columns(f)) sets += quote(c) + " = ?, ";
        to_sql(f, merged, params);
        if (changes.size() > 1) changes += ",";
        changes += change_json(f.name, before, after);
        changed.push_back(f.name);
      }
    }
    col += n;
  }
  std::string merged_ids = "[";
  for (std::int64_t o : others) merged_ids += (merged_ids.size() > 1 ? "," : "") + id_string(o);
  merged_ids += "]";
  if (changes.size() > 1) changes += ",";
  changes += change_json("merged_from", "null", merged_ids) + "]";
  sets += "\"version\" = \"version\" + 1, \"updated_at\" = ?, \"updated_by\" = ?";
  params.emplace_back(now);
  params.push_back(user);
  params.emplace_back(survivor);
  RP_TRY(tx->exec("UPDATE " + quote(e.name) + " SET " + sets + " WHERE \"id\" = ?", params));
  RP_ASSIGN(auto after, rs_.load(*tx, e, survivor));
  // The survivor as merged keeps the entity's conditional requirements (required_when): merging
  // valid records cannot break one (an empty field is filled from the others), so this refuses
  // only a merge of records of which one already broke it, naming the field to fill first.
  RP_TRY(check_required_when(e, nullptr, *after));
  touched.add(self, survivor, srow, as_int((*after)[cols.version]));
  RP_TRY(rs_.derive(*tx, e, survivor, *after, /*fresh=*/false));
  RP_TRY(rs_.audit(*tx, p, e, survivor, "merge", changes, now));
  events.push_back({self, Event{e.name, survivor, "updated", changed, as_int((*after)[cols.owner]),
                                as_int((*after)[cols.team]), p.user_id, now}});

  // 3. Every reference to the others, in any entity the metadata declares (contacts, communication
  // records, profile entries, and whatever later modules add), now points at the survivor.
  std::map<std::string, int> moved;
  std::vector<SqlValue> other_ids(others.begin(), others.end());
  for (const auto& target : rs_.registry_.all()) {
    const Columns tcols(*target);
    for (const auto& f : target->fields) {
      if (f.type != FieldType::kReference || f.reference != e.name || f.system) continue;
      RP_ASSIGN(auto refs,
                tx->query("SELECT " + select_list(*target) + " FROM " + quote(target->name) +
                              " WHERE " + quote(f.name) + " IN " + in_list(others.size()),
                          other_ids));
      for (const auto& r : refs.rows) {
        const std::int64_t rid = as_int(r[tcols.id]);
        if (target->name == e.name && rows.count(rid)) continue;
        const std::int64_t from = as_int(r[column_of(*target, f.name)]);
        SqlValue up[] = {survivor, now, user, rid};
        RP_TRY(tx->exec("UPDATE " + quote(target->name) + " SET " + quote(f.name) +
                            " = ?, \"version\" = \"version\" + 1, \"updated_at\" = ?, "
                            "\"updated_by\" = ? WHERE \"id\" = ?",
                        up));
        RP_ASSIGN(auto now_row, rs_.load(*tx, *target, rid));
        touched.add(target, rid, r, as_int((*now_row)[tcols.version]));
        const bool live = storage::is_null(r[tcols.deleted]);
        if (live) RP_TRY(rs_.derive(*tx, *target, rid, *now_row, /*fresh=*/false));
        RP_TRY(rs_.audit(*tx, p, *target, rid, "merge",
                         "[" + change_json(f.name, id_string(from), id_string(survivor)) + "]",
                         now));
        ++moved[target->name + "." + f.name];
        if (live)
          events.push_back({target, Event{target->name,
                                          rid,
                                          "updated",
                                          {f.name},
                                          as_int(r[tcols.owner]),
                                          as_int(r[tcols.team]),
                                          p.user_id,
                                          now}});
      }
    }
  }

  // 4. Open review-queue pairs among the merged records are settled.
  if (auto queue = rs_.registry_.get(kCandidateEntity)) {
    std::vector<SqlValue> qp = {e.name};
    for (std::int64_t id : ids) qp.emplace_back(std::to_string(id));
    for (std::int64_t id : ids) qp.emplace_back(std::to_string(id));
    RP_ASSIGN(auto pairs,
              tx->query("SELECT " + select_list(*queue) + " FROM " + quote(queue->name) +
                            " WHERE entity = ? AND status = 'open' AND deleted_at IS NULL AND "
                            "record_a IN " +
                            in_list(ids.size()) + " AND record_b IN " + in_list(ids.size()),
                        qp));
    const Columns qcols(*queue);
    for (const auto& r : pairs.rows) {
      const std::int64_t qid = as_int(r[qcols.id]);
      SqlValue up[] = {now, user, qid};
      RP_TRY(tx->exec("UPDATE " + quote(queue->name) +
                          " SET status = 'merged', \"version\" = \"version\" + 1, \"updated_at\" "
                          "= ?, \"updated_by\" = ? WHERE \"id\" = ?",
                      up));
      touched.add(queue, qid, r, as_int(r[qcols.version]) + 1);
      events.push_back({queue, Event{queue->name,
                                     qid,
                                     "updated",
                                     {"status"},
                                     as_int(r[qcols.owner]),
                                     as_int(r[qcols.team]),
                                     p.user_id,
                                     now}});
    }
  }

  // 5. The log with the snapshot for undo.
  const std::int64_t merge_id = rs_.ids_.next();
  SqlValue log[] = {merge_id, e.name, survivor, merged_ids, touched.json(), user, now};
  RP_TRY(tx->exec(
      "INSERT INTO merge_log (id, entity, survivor_id, others, snapshot, user_id, at) VALUES (?, "
      "?, ?, ?, ?, ?, ?)",
      log));
  RP_TRY(tx->commit());
  for (auto& [target, ev] : events) rs_.publish(*target, std::move(ev));

  RP_ASSIGN(RecordResult record, rs_.get(p, e, survivor));
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("merge_id");
  w.String(std::to_string(merge_id));
  w.Key("survivor_id");
  w.String(std::to_string(survivor));
  w.Key("merged");
  w.RawValue(merged_ids.data(), merged_ids.size(), rapidjson::kArrayType);
  w.Key("moved");
  w.StartObject();
  for (const auto& [k, n] : moved) {
    json::key(w, k);
    w.Int(n);
  }
  w.EndObject();
  w.Key("record");
  w.RawValue(record.body.data(), record.body.size(), rapidjson::kObjectType);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::string> Deduper::undo(const Principal& p, std::int64_t merge_id) {
  RP_ASSIGN(auto tx, rs_.store_.write());
  SqlValue key[] = {merge_id};
  RP_ASSIGN(auto logs,
            tx->query("SELECT entity, survivor_id, others, snapshot, undone_at FROM merge_log "
                      "WHERE id = ?",
                      key));
  if (logs.rows.empty())
    return make_error(Errc::kNotFound, "no merge with id " + std::to_string(merge_id));
  const auto& log = logs.rows[0];
  if (!storage::is_null(log[4]))
    return make_error(Errc::kConflict, "this merge was undone already");
  auto e = rs_.registry_.get(as_text(log[0]));
  if (!e) return make_error(Errc::kInternal, "merge of an unknown entity " + as_text(log[0]));
  const std::int64_t survivor = as_int(log[1]);
  const Scope update = access::scope_for(p, e->name, Op::kUpdate);
  const Scope del = access::scope_for(p, e->name, Op::kDelete);
  if (update == Scope::kNone || del == Scope::kNone)
    return make_error(Errc::kForbidden, "you may not merge " + e->plural);
  RP_ASSIGN(json::Document snapshot, json::parse(as_text(log[3])));
  if (!snapshot.IsArray()) return make_error(Errc::kStorage, "merge snapshot is not an array");

  struct Entry {
    std::shared_ptr<const Entity> e;
    std::int64_t id;
    const json::Value* row;
  };
  std::vector<Entry> entries;
  for (const auto& t : snapshot.GetArray()) {
    auto te = rs_.registry_.get((*json::member(t, "entity")).GetString());
    if (!te) continue;  // an entity removed since: nothing to restore
    const std::int64_t id = std::stoll((*json::member(t, "id")).GetString());
    const json::Value& row = *json::member(t, "row");
    if (te->name == e->name && json::member(row, "owner_id")) {
      const bool is_other = id != survivor;
      const json::Value* owner = json::member(row, "owner_id");
      const json::Value* team = json::member(row, "team_id");
      std::int64_t o = owner && owner->IsInt64() ? owner->GetInt64() : 0;
      std::int64_t tm = team && team->IsInt64() ? team->GetInt64() : 0;
      if (!access::in_scope(p, update, o, tm) || (is_other && !access::in_scope(p, del, o, tm)))
        return make_error(Errc::kForbidden, "the " + e->name + " " + std::to_string(id) +
                                                " belongs to another owner or team");
    }
    // Undo must not lose a later change: every touched row is still as the merge left it.
    SqlValue k[] = {id};
    RP_ASSIGN(auto now_rows,
              tx->query("SELECT \"version\" FROM " + quote(te->name) + " WHERE \"id\" = ?", k));
    const std::int64_t expected = (*json::member(t, "version_after")).GetInt64();
    if (now_rows.rows.empty() || as_int(now_rows.rows[0][0]) != expected)
      return make_error(Errc::kConflict, "the " + te->name + " " + std::to_string(id) +
                                             " changed since the merge; undoing it would lose "
                                             "that change");
    entries.push_back({te, id, &row});
  }

  const std::string now = format_iso8601(rs_.clock_.now_ms());
  std::vector<std::pair<std::shared_ptr<const Entity>, Event>> events;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const Entity& te = *it->e;
    RP_ASSIGN(auto current, rs_.load(*tx, te, it->id));
    const Columns tcols(te);
    // The values come back as they were, but the undo is a write like any other: the version
    // moves on (a record's version is never used twice — ETags, If-Match and the record text
    // cache, keyed by id and version, rely on that) and updated_at/updated_by say who undid it.
    std::string sets = "\"version\" = ?, \"updated_at\" = ?, \"updated_by\" = ?";
    std::vector<SqlValue> params = {as_int((*current)[tcols.version]) + 1, now,
                                    p.user_id ? SqlValue(p.user_id) : SqlValue()};
    for (const auto& c : all_columns(te)) {
      if (c == "id" || c == "version" || c == "updated_at" || c == "updated_by") continue;
      const json::Value* v = json::member(*it->row, c);
      if (!v) continue;  // a column added since the merge keeps its value
      sets += ", " + quote(c) + " = ?";
      params.push_back(sql_value(*v));
    }
    params.emplace_back(it->id);
    RP_TRY(tx->exec("UPDATE " + quote(te.name) + " SET " + sets + " WHERE \"id\" = ?", params));
    RP_ASSIGN(auto restored, rs_.load(*tx, te, it->id));
    const bool live = storage::is_null((*restored)[tcols.deleted]);
    if (live) {
      RP_TRY(rs_.derive(*tx, te, it->id, *restored, /*fresh=*/false));
    } else {
      if (te.has_searchable()) RP_TRY(tx->fts_delete(te.name, it->id));
      if (has_phone_list(te)) RP_TRY(unindex_phones(*tx, te, it->id));
      if (rs_.hooks_.dedupe_for(te.name)) RP_TRY(unindex(*tx, te, it->id));
    }
    std::vector<std::string> changed;
    RP_TRY(rs_.audit(*tx, p, te, it->id, "unmerge", row_changes(te, *current, *restored, changed),
                     now));
    const bool was_deleted = !storage::is_null((*current)[tcols.deleted]);
    if (live)
      events.push_back({it->e, Event{te.name, it->id, was_deleted ? "restored" : "updated", changed,
                                     as_int((*restored)[tcols.owner]),
                                     as_int((*restored)[tcols.team]), p.user_id, now}});
  }
  SqlValue done[] = {now, p.user_id ? SqlValue(p.user_id) : SqlValue(), merge_id};
  RP_TRY(tx->exec("UPDATE merge_log SET undone_at = ?, undone_by = ? WHERE id = ?", done));
  RP_TRY(tx->commit());
  for (auto& [te, ev] : events) rs_.publish(*te, std::move(ev));

  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("merge_id");
  w.String(std::to_string(merge_id));
  w.Key("survivor_id");
  w.String(std::to_string(survivor));
  w.Key("restored");
  w.Int(static_cast<int>(entries.size()));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rapport::record
