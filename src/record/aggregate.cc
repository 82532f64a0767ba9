// GET /{plural}/aggregate: record counts grouped by fields, for charts. Same scope, field
// permissions and filter language as lists; values grouped in SQL, one query.
#include <algorithm>
#include <map>

#include "core/text.h"
#include "record/query.h"
#include "record/service.h"
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

namespace {

constexpr std::size_t kMaxGroups = 1000;
constexpr std::size_t kMaxGroupFields = 2;

bool groupable(FieldType t) {
  switch (t) {
    case FieldType::kText:
    case FieldType::kEnum:
    case FieldType::kBoolean:
    case FieldType::kInteger:
    case FieldType::kReference:
    case FieldType::kDate:
    case FieldType::kDatetime:
      return true;
    default:
      return false;
  }
}

bool is_time(FieldType t) { return t == FieldType::kDate || t == FieldType::kDatetime; }

void write_value(json::Writer& w, const Field& f, const SqlValue& v) {
  if (storage::is_null(v)) {
    w.Null();
    return;
  }
  switch (f.type) {
    case FieldType::kBoolean:
      w.Bool(as_int(v) != 0);
      return;
    case FieldType::kInteger:
      w.Int64(as_int(v));
      return;
    case FieldType::kReference:
      w.String(std::to_string(as_int(v)));
      return;
    default: {
      std::string s = as_text(v);
      w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
    }
  }
}

// Orders group values: null first, then numbers, then text.
bool value_less(const SqlValue& a, const SqlValue& b) {
  if (a.index() != b.index()) return a.index() < b.index();
  return a < b;
}

}  // namespace

Result<std::string> RecordService::aggregate(const Principal& p, const Entity& e,
                                             const AggregateParams& ap) {
  const std::string_view group_by = ap.group_by, bucket = ap.bucket, filter = ap.filter;
  Scope scope = access::scope_for(p, e.name, Op::kRead);
  if (scope == Scope::kNone) return make_error(Errc::kForbidden, "you may not read " + e.plural);

  std::size_t keep = 0;  // characters of an ISO date/date-time kept (0: the whole value)
  if (bucket == "day")
    keep = 10;
  else if (bucket == "month")
    keep = 7;
  else if (bucket == "year")
    keep = 4;
  else if (!bucket.empty())
    return make_error(Errc::kBadRequest, "bucket must be day, month or year", "bucket");

  std::vector<const Field*> fields;
  std::string_view rest = group_by;
  while (!rest.empty() || fields.empty()) {
    size_t c = rest.find(',');
    std::string name(rest.substr(0, c));
    rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
    if (name.empty())
      return make_error(Errc::kBadRequest, "group_by names one or two fields, comma-separated",
                        "group_by");
    const Field* f = e.field(name);
    if (!f || access::field_access(p, e, *f) == FieldAccess::kHidden)
      return make_error(Errc::kUnknownField, e.name + " has no field " + name, "group_by");
    if (!groupable(f->type))
      return make_error(Errc::kBadRequest,
                        "cannot group by " + name + ": " + std::string(schema::type_name(f->type)) +
                            " fields are not grouped (text, enum, boolean, integer, reference, "
                            "date and datetime are)",
                        "group_by");
    if (std::find(fields.begin(), fields.end(), f) != fields.end())
      return make_error(Errc::kBadRequest, "group_by names " + name + " twice", "group_by");
    fields.push_back(f);
    if (fields.size() > kMaxGroupFields)
      return make_error(Errc::kBadRequest, "group_by names at most two fields", "group_by");
  }
  if (keep &&
      std::none_of(fields.begin(), fields.end(), [](const Field* f) { return is_time(f->type); }))
    return make_error(Errc::kBadRequest, "bucket needs a date or datetime field in group_by",
                      "bucket");

  std::vector<SqlValue> params;
  std::string where = "deleted_at IS NULL AND " + scope_sql(p, scope, params);
  if (!filter.empty()) {
    auto doc = json::parse(filter);
    if (!doc.ok())
      return make_error(Errc::kBadFilter, "filter is not valid JSON: " + doc.error().message,
                        "filter");
    RP_ASSIGN(std::string cond, compile_filter(*doc, e, p, store_.dialect(), params));
    where += " AND " + cond;
  }
  if (!ap.q.empty()) {
    if (!e.has_searchable())
      return make_error(Errc::kBadRequest, e.plural + " have no searchable fields", "q");
    where += " AND " + store_.dialect().fts_condition(e.name, text::search_query(ap.q), params);
  }
  std::string select, positions;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const Field& f = *fields[i];
    // Dates and date-times are stored as ISO 8601 text (date-times in UTC): a bucket is a prefix.
    std::size_t n = is_time(f.type) ? (keep ? keep : (f.type == FieldType::kDatetime ? 10 : 0)) : 0;
    if (i) {
      select += ", ";
      positions += ", ";
    }
    if (n) {
      select += "substr(";
      select += quote(f.name);
      select += ", 1, ";
      select += std::to_string(n);
      select += ")";
    } else {
      select += quote(f.name);
    }
    positions += std::to_string(i + 1);
  }
  const std::size_t nf = fields.size();
  // Largest groups first; equal counts in the order of their values, so answers are stable.
  const auto larger = [nf](const auto& a, const auto& b) {
    if (as_int(a[nf]) != as_int(b[nf])) return as_int(a[nf]) > as_int(b[nf]);
    for (std::size_t i = 0; i < nf; ++i) {
      if (value_less(a[i], b[i])) return true;
      if (value_less(b[i], a[i])) return false;
    }
    return false;
  };
  RP_ASSIGN(auto tx, store_.read());
  storage::Rows rows;
  if (!ap.q.empty() && hides_searchable(p, e)) {
    // A caller who may not see a searchable field must not count records by it (nor learn how
    // many hold a hidden value): the term index matched every field, so each matching record
    // is checked against the search text of the fields they may see (as lists and /search
    // do), and the groups are counted here. Its cost grows with the records the index matches.
    const std::string query = text::search_query(ap.q);
    RP_ASSIGN(auto found,
              tx->query("SELECT " + select_list(e) + " FROM " + quote(e.name) + " WHERE " + where,
                        params));
    std::vector<std::size_t> at;
    std::vector<std::size_t> cut;
    for (const Field* f : fields) {
      at.push_back(column_index(e, f->name));
      cut.push_back(is_time(f->type) ? (keep ? keep : (f->type == FieldType::kDatetime ? 10 : 0))
                                     : 0);
    }
    const auto key_less = [](const std::vector<SqlValue>& a, const std::vector<SqlValue>& b) {
      return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), value_less);
    };
    std::map<std::vector<SqlValue>, std::int64_t, decltype(key_less)> groups(key_less);
    for (auto& r : found.rows) {
      std::vector<SqlValue> key;
      for (std::size_t i = 0; i < nf; ++i) {
        SqlValue v = r[at[i]];
        if (cut[i] && !storage::is_null(v)) v = as_text(v).substr(0, cut[i]);
        key.push_back(std::move(v));
      }
      if (!visible_text_matches(p, e, std::move(r), query)) continue;
      ++groups[std::move(key)];
    }
    for (auto& [key, n] : groups) {
      rows.rows.push_back(key);
      rows.rows.back().emplace_back(n);
    }
    std::sort(rows.rows.begin(), rows.rows.end(), larger);
    if (rows.rows.size() > kMaxGroups + 1) rows.rows.resize(kMaxGroups + 1);
  } else {
    params.emplace_back(static_cast<std::int64_t>(kMaxGroups + 1));
    RP_ASSIGN(rows, tx->query("SELECT " + select + ", COUNT(*) FROM " + quote(e.name) + " WHERE " +
                                  where + " GROUP BY " + positions + " ORDER BY " +
                                  std::to_string(fields.size() + 1) + " DESC LIMIT ?",
                              params));
  }
  bool truncated = rows.rows.size() > kMaxGroups;
  if (truncated) rows.rows.resize(kMaxGroups);
  std::sort(rows.rows.begin(), rows.rows.end(), larger);

  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("entity");
  w.String(e.name.c_str(), static_cast<rapidjson::SizeType>(e.name.size()));
  w.Key("group_by");
  w.StartArray();
  for (const Field* f : fields)
    w.String(f->name.c_str(), static_cast<rapidjson::SizeType>(f->name.size()));
  w.EndArray();
  w.Key("bucket");
  if (keep)
    w.String(bucket.data(), static_cast<rapidjson::SizeType>(bucket.size()));
  else
    w.Null();
  std::int64_t total = 0;
  w.Key("groups");
  w.StartArray();
  for (const auto& r : rows.rows) {
    w.StartObject();
    w.Key("values");
    w.StartArray();
    for (std::size_t i = 0; i < nf; ++i) write_value(w, *fields[i], r[i]);
    w.EndArray();
    w.Key("count");
    w.Int64(as_int(r[nf]));
    total += as_int(r[nf]);
    w.EndObject();
  }
  w.EndArray();
  w.Key("total");
  w.Int64(total);
  w.Key("truncated");
  w.Bool(truncated);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rapport::record
