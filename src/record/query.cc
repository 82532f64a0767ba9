// Filter compilation, sort parsing and keyset cursors.
#include "record/query.h"

#include <cstdio>

#include "base/clock.h"
#include "record/table.h"

namespace rapport::record {

using schema::Field;
using schema::FieldType;
using storage::SqlValue;

namespace {

Error bad(std::string msg, std::string field = {}) {
  return make_error(Errc::kBadFilter, std::move(msg), std::move(field));
}

std::string like_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

bool list_like(const Field& f) {
  return f.type == FieldType::kMultiEnum || f.type == FieldType::kPhoneList ||
         f.type == FieldType::kEmailList || f.type == FieldType::kAddress ||
         f.type == FieldType::kJson || f.type == FieldType::kLongText;
}

// One filter operand converted to the column's stored representation.
Result<SqlValue> operand(const Field& f, const json::Value& v) {
  const std::string& n = f.name;
  switch (f.type) {
    case FieldType::kInteger:
    case FieldType::kMoney:
      if (!v.IsInt64()) return bad("filter value for " + n + " must be an integer", n);
      return SqlValue(v.GetInt64());
    case FieldType::kDecimal:
      if (!v.IsNumber()) return bad("filter value for " + n + " must be a number", n);
      return SqlValue(v.GetDouble());
    case FieldType::kBoolean:
      if (!v.IsBool()) return bad("filter value for " + n + " must be true or false", n);
      return SqlValue(std::int64_t{v.GetBool() ? 1 : 0});
    case FieldType::kReference: {
      std::string s = v.IsString()  ? std::string(v.GetString(), v.GetStringLength())
                      : v.IsInt64() ? std::to_string(v.GetInt64())
                                    : "";
      if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos ||
          (s.size() == 19 && s > "9223372036854775807"))  // beyond int64
        return bad("filter value for " + n + " must be a record id", n);
      return SqlValue(std::stoll(s));
    }
    case FieldType::kDatetime: {
      if (!v.IsString()) return bad("filter value for " + n + " must be a date-time string", n);
      Millis ms;
      std::string s = v.GetString();
      if (parse_iso8601(s, ms, false)) return SqlValue(format_iso8601(ms));
      if (parse_iso8601(s, ms, true)) return SqlValue(format_iso8601(ms));
      return bad("filter value for " + n + " must be an ISO 8601 date or date-time", n);
    }
    case FieldType::kDate: {
      Millis ms;
      if (!v.IsString() || !parse_iso8601(v.GetString(), ms, true))
        return bad("filter value for " + n + " must be a date YYYY-MM-DD", n);
      return SqlValue(std::string(v.GetString()));
    }
    default:
      if (!v.IsString()) return bad("filter value for " + n + " must be a string", n);
      // PostgreSQL text cannot hold a NUL: refuse it on both backends alike.
      if (std::string_view(v.GetString(), v.GetStringLength()).find('\0') != std::string_view::npos)
        return bad("filter value for " + n + " must not contain NUL characters", n);
      return SqlValue(std::string(v.GetString(), v.GetStringLength()));
  }
}

struct Compiler {
  const schema::Entity& e;
  const access::Principal& p;
  const storage::Dialect& d;
  std::vector<SqlValue>& params;
  std::span<const Field* const> unindexed;
  int conditions = 0;

  Result<std::string> expr(const json::Value& v, int depth) {
    if (depth > kMaxFilterDepth) return bad("filter is nested too deeply");
    if (!v.IsObject()) return bad("filter expressions must be objects");
    if (const json::Value* list = json::member(v, "and")) return combine(*list, " AND ", depth);
    if (const json::Value* list = json::member(v, "or")) return combine(*list, " OR ", depth);
    if (const json::Value* inner = json::member(v, "not")) {
      if (v.MemberCount() != 1) return bad("\"not\" takes exactly one expression");
      RP_ASSIGN(std::string s, expr(*inner, depth + 1));
      return "NOT (" + s + ")";
    }
    return condition(v);
  }

  Result<std::string> combine(const json::Value& list, const char* op, int depth) {
    if (!list.IsArray() || list.Empty()) return bad("\"and\"/\"or\" take a non-empty array");
    std::string out = "(";
    bool first = true;
    for (const auto& item : list.GetArray()) {
      RP_ASSIGN(std::string s, expr(item, depth + 1));
      if (!first) out += op;
      out += s;
      first = false;
    }
    return out + ")";
  }

  Result<std::string> condition(const json::Value& v) {
    if (++conditions > kMaxFilterConditions) return bad("filter has too many conditions");
    const json::Value* fv = json::member(v, "field");
    const json::Value* ov = json::member(v, "op");
    if (!fv || !fv->IsString() || !ov || !ov->IsString())
      return bad("a condition needs \"field\" and \"op\" strings");
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      std::string_view k = it->name.GetString();
      if (k != "field" && k != "op" && k != "value")
        return bad("unknown key in condition: " + std::string(k));
    }
    std::string name = fv->GetString();
    const Field* f = e.field(name);
    if (!f || access::field_access(p, e, *f) == access::FieldAccess::kHidden)
      return bad("unknown field " + name, name);
    std::string op = ov->GetString();
    const json::Value* val = json::member(v, "value");
    std::string col = quote(f->name);
    if (std::find(unindexed.begin(), unindexed.end(), f) != unindexed.end()) col = "+" + col;

    if (op == "is_null") {
      if (!val || !val->IsBool()) return bad("is_null takes true or false", name);
      return col + (val->GetBool() ? " IS NULL" : " IS NOT NULL");
    }
    if (!val) return bad("operator " + op + " needs a value", name);
    if (op == "contains" || op == "starts_with") {
      if (!val->IsString() || val->GetStringLength() == 0)
        return bad(op + " takes a non-empty string", name);
      // A NUL would end the LIKE pattern early in SQLite (so "\u0000x" matched every row) and
      // PostgreSQL text cannot hold one: refuse it.
      std::string_view text(val->GetString(), val->GetStringLength());
      if (text.find('\0') != std::string_view::npos)
        return bad(op + " takes a string without NUL characters", name);
      std::string pat = like_escape(text);
      params.emplace_back(op == "contains" ? "%" + pat + "%" : pat + "%");
      return col + " " + d.ilike() + " ? ESCAPE '\\'";
    }
    if (list_like(*f) && f->type != FieldType::kLongText)
      return bad("field " + name + " supports only contains and is_null", name);
    static const char* kCmp[][2] = {{"=", "="},   {"!=", "<>"}, {"<", "<"},
                                    {"<=", "<="}, {">", ">"},   {">=", ">="}};
    for (const auto& c : kCmp) {
      if (op != c[0]) continue;
      RP_ASSIGN(SqlValue sv, operand(*f, *val));
      params.push_back(std::move(sv));
      // "not equal" keeps empty values, as a person filtering "city != Beijing" expects.
      if (op == "!=") return "(" + col + " <> ? OR " + col + " IS NULL)";
      return col + " " + c[1] + " ?";
    }
    if (op == "in" || op == "not_in") {
      if (!val->IsArray() || val->Empty()) return bad(op + " takes a non-empty array", name);
      if (val->Size() > kMaxInValues) return bad(op + " takes at most 1000 values", name);
      std::string list;
      for (const auto& item : val->GetArray()) {
        RP_ASSIGN(SqlValue sv, operand(*f, item));
        params.push_back(std::move(sv));
        list += list.empty() ? "?" : ", ?";
      }
      if (op == "in") return col + " IN (" + list + ")";
      return "(" + col + " NOT IN (" + list + ") OR " + col + " IS NULL)";
    }
    if (op == "between") {
      if (!val->IsArray() || val->Size() != 2) return bad("between takes [low, high]", name);
      RP_ASSIGN(SqlValue lo, operand(*f, (*val)[0]));
      RP_ASSIGN(SqlValue hi, operand(*f, (*val)[1]));
      params.push_back(std::move(lo));
      params.push_back(std::move(hi));
      return col + " BETWEEN ? AND ?";
    }
    return bad("unknown operator " + op, name);
  }
};

}  // namespace

Result<std::string> compile_filter(const json::Value& expr, const schema::Entity& e,
                                   const access::Principal& p, const storage::Dialect& d,
                                   std::vector<SqlValue>& params,
                                   std::span<const Field* const> unindexed) {
  std::vector<SqlValue> local;
  Compiler c{e, p, d, local, unindexed};
  RP_ASSIGN(std::string sql, c.expr(expr, 0));
  for (auto& v : local) params.push_back(std::move(v));
  return sql;
}

std::string equals_filter(std::string_view field, std::string_view value) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("field");
  w.String(field.data(), static_cast<rapidjson::SizeType>(field.size()));
  w.Key("op");
  w.String("=");
  w.Key("value");
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::vector<SortKey>> parse_sort(std::string_view sort, const schema::Entity& e,
                                        const access::Principal& p) {
  std::vector<SortKey> keys;
  bool id_desc = true, explicit_id = false;
  while (!sort.empty()) {
    size_t comma = sort.find(',');
    std::string_view part = sort.substr(0, comma);
    sort = comma == std::string_view::npos ? std::string_view{} : sort.substr(comma + 1);
    bool desc = !part.empty() && part[0] == '-';
    if (desc || (!part.empty() && part[0] == '+')) part.remove_prefix(1);
    std::string name(part);
    const Field* f = e.field(name);
    if (!f || access::field_access(p, e, *f) == access::FieldAccess::kHidden)
      return make_error(Errc::kBadRequest, "cannot sort by unknown field " + name, "sort");
    if (!f->sortable() || !f->indexed)
      return make_error(Errc::kBadRequest, "cannot sort by " + name + ": only indexed fields sort",
                        "sort");
    if (keys.empty()) id_desc = desc;
    if (f->name == "id") {
      id_desc = desc;
      explicit_id = true;
      break;
    }
    keys.push_back({f, desc});
    if (static_cast<int>(keys.size()) > kMaxSortKeys)
      return make_error(Errc::kBadRequest, "sort takes at most 3 fields", "sort");
  }
  // An indexed field's index is (field, created_at[, id]) (table.cc, indexed_columns): ties in
  // that order are read from it, where ties by id alone would be every row of the group sorted.
  // Unindexed fields break ties the same way, so that the rule does not depend on the index.
  if (keys.size() == 1 && !explicit_id && !keys[0].field->unique &&
      keys[0].field->name != "created_at")
    if (const Field* created = e.field("created_at")) keys.push_back({created, keys[0].desc});
  keys.push_back({e.field("id"), id_desc});
  return keys;
}

std::string order_by(const std::vector<SortKey>& keys) {
  std::string s;
  for (const auto& k : keys) {
    if (!s.empty()) s += ", ";
    s += quote(k.field->name) + (k.desc ? " DESC NULLS LAST" : " ASC NULLS FIRST");
  }
  return s;
}

std::string encode_cursor(const std::vector<SqlValue>& values,
                          const std::vector<std::string>* plan) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartArray();
  for (const auto& v : values) {
    if (storage::is_null(v))
      w.Null();
    else if (auto* i = std::get_if<std::int64_t>(&v))
      w.Int64(*i);
    else if (auto* d = std::get_if<double>(&v))
      w.Double(*d);
    else
      w.String(std::get<std::string>(v));
  }
  if (plan) {
    w.StartObject();
    w.Key("unindexed");
    w.StartArray();
    for (const auto& name : *plan)
      w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < buf.GetSize(); ++i) {
    unsigned char c = static_cast<unsigned char>(buf.GetString()[i]);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

Result<std::vector<SqlValue>> decode_cursor(std::string_view cursor, size_t arity,
                                            std::optional<std::vector<std::string>>* plan) {
  auto fail = [] {
    return make_error(Errc::kBadRequest, "cursor is not valid for this list", "cursor");
  };
  if (cursor.size() % 2 || cursor.size() > 8192) return fail();
  std::string text;
  for (size_t i = 0; i < cursor.size(); i += 2) {
    auto hex = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    int hi = hex(cursor[i]), lo = hex(cursor[i + 1]);
    if (hi < 0 || lo < 0) return fail();
    text += static_cast<char>(hi * 16 + lo);
  }
  auto doc = json::parse(text);
  if (!doc.ok() || !doc->IsArray() || arity == 0) return fail();
  if (doc->Size() == arity + 1 && plan) {  // the plan's decision last
    const json::Value& decided = (*doc)[static_cast<rapidjson::SizeType>(arity)];
    const json::Value* names = json::member(decided, "unindexed");
    if (!decided.IsObject() || decided.MemberCount() != 1 || !names || !names->IsArray())
      return fail();
    plan->emplace();
    for (const auto& n : names->GetArray()) {
      if (!n.IsString()) return fail();
      (*plan)->emplace_back(n.GetString(), n.GetStringLength());
    }
    doc->PopBack();
  }
  if (doc->Size() != arity) return fail();
  std::vector<SqlValue> out;
  for (const auto& v : doc->GetArray()) {
    if (v.IsNull())
      out.emplace_back();
    else if (v.IsInt64())
      out.emplace_back(v.GetInt64());
    else if (v.IsNumber())
      out.emplace_back(v.GetDouble());
    else if (v.IsString())
      out.emplace_back(std::string(v.GetString(), v.GetStringLength()));
    else
      return fail();
  }
  if (storage::is_null(out.back())) return fail();  // the id is never null
  return out;
}

namespace {
// System columns every row has a value in: a cursor condition on them needs no NULL arm, so the
// database can seek its index to the cursor instead of scanning it from the first row (an
// `OR col IS NULL` arm made every page of a newest-first list scan all the rows before it).
bool never_null(const Field& f) {
  return f.system && (f.name == "id" || f.name == "created_at" || f.name == "updated_at" ||
                      f.name == "version");
}
}  // namespace

std::optional<CursorArms> cursor_arms(const std::vector<SortKey>& keys,
                                      const std::vector<SqlValue>& values) {
  if (keys.size() < 2 || values.size() != keys.size()) return std::nullopt;
  const bool desc = keys[0].desc;
  for (size_t i = 1; i < keys.size(); ++i)
    if (keys[i].desc != desc || !never_null(*keys[i].field) || storage::is_null(values[i]))
      return std::nullopt;
  // (k1, …, kn) compared with the cursor's values: a NULL k1 compares as neither (not a match).
  auto row_value = [&](size_t from, std::vector<SqlValue>& params) {
    std::string cols, marks;
    for (size_t i = from; i < keys.size(); ++i) {
      cols += (i > from ? ", " : "") + quote(keys[i].field->name);
      marks += i > from ? ", ?" : "?";
      params.push_back(values[i]);
    }
    return "(" + cols + ") " + (desc ? "<" : ">") + " (" + marks + ")";
  };
  const std::string k1 = quote(keys[0].field->name);
  CursorArms arms;
  if (!storage::is_null(values[0])) {
    arms.first = row_value(0, arms.first_params);
    // NULLs come first ascending (before the cursor), last descending (after it)
    if (desc && !never_null(*keys[0].field)) arms.then = k1 + " IS NULL";
  } else {
    arms.first = k1 + " IS NULL AND " + row_value(1, arms.first_params);
    if (!desc) arms.then = k1 + " IS NOT NULL";
  }
  return arms;
}

std::string after_cursor(const std::vector<SortKey>& keys, const std::vector<SqlValue>& values,
                         std::vector<SqlValue>& params) {
  if (auto arms = cursor_arms(keys, values)) {
    params.insert(params.end(), arms->first_params.begin(), arms->first_params.end());
    if (arms->then.empty()) return "(" + arms->first + ")";
    params.insert(params.end(), arms->then_params.begin(), arms->then_params.end());
    return "(" + arms->first + " OR " + arms->then + ")";
  }
  // Rows after (v1..vn) in order: OR over i of (k1 = v1 AND … AND k(i-1) = v(i-1) AND ki after vi),
  // with NULLs first in ascending and last in descending order.
  // First a range on k1 that every such row is in, when there is one (k1 ≥ v1 ascending; k1 ≤ v1
  // descending when k1 is never NULL): with parameters the database cannot derive it from the
  // OR, and without it a later page scans the index from its first row instead of seeking.
  // Keys that are all never NULL and all in one direction (the default newest first: created_at,
  // id) compare as one row value, which the database seeks to even among rows that share the
  // first key's value (a batch imported in one transaction shares its created_at).
  bool row_value = !keys.empty();
  for (size_t i = 0; i < keys.size(); ++i)
    row_value = row_value && never_null(*keys[i].field) && keys[i].desc == keys[0].desc &&
                !storage::is_null(values[i]);
  if (row_value) {
    std::string cols, marks;
    for (size_t i = 0; i < keys.size(); ++i) {
      cols += (i ? ", " : "") + quote(keys[i].field->name);
      marks += i ? ", ?" : "?";
      params.push_back(values[i]);
    }
    return "((" + cols + ") " + (keys[0].desc ? "<" : ">") + " (" + marks + "))";
  }
  std::string range;
  if (!keys.empty() && !storage::is_null(values[0]) &&
      (!keys[0].desc || never_null(*keys[0].field))) {
    range = quote(keys[0].field->name) + (keys[0].desc ? " <= ? AND " : " >= ? AND ");
    params.push_back(values[0]);
  }
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string term;
    for (size_t j = 0; j < i; ++j) {
      std::string col = quote(keys[j].field->name);
      if (storage::is_null(values[j])) {
        term += col + " IS NULL AND ";
      } else {
        term += col + " = ? AND ";
        params.push_back(values[j]);
      }
    }
    std::string col = quote(keys[i].field->name);
    bool null = storage::is_null(values[i]);
    if (!keys[i].desc) {
      if (null)
        term += col + " IS NOT NULL";
      else {
        term += col + " > ?";
        params.push_back(values[i]);
      }
    } else {
      if (null)
        term += "1 = 0";
      else if (never_null(*keys[i].field)) {
        term += col + " < ?";
        params.push_back(values[i]);
      } else {
        term += "(" + col + " < ? OR " + col + " IS NULL)";
        params.push_back(values[i]);
      }
    }
    if (!out.empty()) out += " OR ";
    out += "(" + term + ")";
  }
  return "(" + range + "(" + out + "))";
}

std::string scope_sql(const access::Principal& p, access::Scope s, std::vector<SqlValue>& params,
                      bool unindexed) {
  const char* owner = unindexed ? "+\"owner_id\"" : "\"owner_id\"";
  const char* team = unindexed ? "+\"team_id\"" : "\"team_id\"";
  switch (s) {
    case access::Scope::kAll:
      return "1 = 1";
    case access::Scope::kTeam:
      params.emplace_back(p.user_id);
      params.emplace_back(p.team_id);
      return std::string("(") + owner + " = ? OR (" + team + " = ? AND " + team + " <> 0))";
    case access::Scope::kOwn:
      params.emplace_back(p.user_id);
      return std::string(owner) + " = ?";
    case access::Scope::kNone:
      return "1 = 0";
  }
  return "1 = 0";
}

}  // namespace rapport::record
