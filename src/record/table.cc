// Entity ↔ table mapping: DDL, column lists and value conversions.
#include "record/table.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <set>

namespace rapport::record {

namespace {
std::string fmt_double(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  return buf;
}
}  // namespace

using schema::Field;
using schema::FieldType;
using storage::ColumnType;
using storage::SqlValue;

std::string quote(std::string_view ident) { return "\"" + std::string(ident) + "\""; }

std::vector<std::string> field_columns(const Field& f) {
  if (f.type == FieldType::kMoney) return {f.name, f.name + "__cur"};
  return {f.name};
}

namespace {
// The quoted columns of every field, comma-separated, appended in place (without the
// per-field vectors of field_columns: built on every read and every create).
void append_field_columns(std::string& s, const schema::Entity& e) {
  s.reserve(s.size() + e.fields.size() * 16 + 32);
  for (const auto& f : e.fields) {
    if (!s.empty()) s += ", ";
    s += '"';
    s += f.name;
    s += '"';
    if (f.type == FieldType::kMoney) {
      s += ", \"";
      s += f.name;
      s += "__cur\"";
    }
  }
}
}  // namespace

std::string field_column_list(const schema::Entity& e) {
  std::string s;
  append_field_columns(s, e);
  return s;
}

std::string select_list(const schema::Entity& e) {
  std::string s;
  append_field_columns(s, e);
  s += ", \"deleted_at\", \"merged_into\"";
  return s;
}

size_t column_index(const schema::Entity& e, std::string_view field) {
  size_t col = 0;
  for (const auto& f : e.fields) {
    if (f.name == field) return col;
    col += column_count(f);
  }
  return col;
}

Status check_required_when(const schema::Entity& e, const json::Value* changed,
                           const std::vector<storage::SqlValue>& row) {
  if (std::none_of(e.fields.begin(), e.fields.end(),
                   [](const schema::Field& f) { return f.required_when.has_value(); }))
    return {};
  json::Document scratch;
  std::deque<json::Value> stored;  // stable addresses for the values read from `row`
  return schema::check_required_when(e, [&](const schema::Field& f) -> const json::Value* {
    if (changed)
      if (const json::Value* v = json::member(*changed, f.name)) return v;
    to_json(f, row, column_index(e, f.name), stored.emplace_back(), scratch.GetAllocator());
    return &stored.back();
  });
}

DistributionKey distribution_key(const schema::Entity& e, std::string_view key_entity) {
  DistributionKey key;
  if (e.name == key_entity) {
    key.self = true;
    return key;
  }
  for (const auto& f : e.fields) {
    if (f.type == schema::FieldType::kReference && f.reference == key_entity) {
      key.field = &f;
      break;
    }
  }
  return key;
}

storage::SqlValue distribution_value(const schema::Entity& e, std::string_view key_entity,
                                     std::int64_t id, const std::vector<storage::SqlValue>& row) {
  DistributionKey key = distribution_key(e, key_entity);
  if (key.self) return id;
  if (key.field == nullptr) return {};
  size_t col = column_index(e, key.field->name);
  return col < row.size() ? row[col] : storage::SqlValue{};
}

size_t field_column_count(const schema::Entity& e) {
  size_t n = 0;
  for (const auto& f : e.fields) n += column_count(f);
  return n;
}

namespace {
ColumnType column_type(const Field& f) {
  switch (f.type) {
    case FieldType::kInteger:
    case FieldType::kBoolean:
    case FieldType::kReference:
    case FieldType::kMoney:
      return ColumnType::kInteger;
    case FieldType::kDecimal:
      return ColumnType::kReal;
    default:
      return ColumnType::kText;
  }
}

std::vector<std::pair<std::string, ColumnType>> columns_with_types(const Field& f) {
  if (f.type == FieldType::kMoney)
    return {{f.name, ColumnType::kInteger}, {f.name + "__cur", ColumnType::kText}};
  return {{f.name, column_type(f)}};
}

std::string index_name(const schema::Entity& e, const std::vector<std::string>& cols) {
  std::string name = "ix_" + e.name;
  for (const auto& c : cols) name += "__" + c;
  return name;
}

// `key_column` spells each quoted column of the key (the dialect's list order for the derived
// list indexes; the column itself for unique and declared indexes).
std::string index_ddl(const schema::Entity& e, const std::vector<std::string>& cols, bool unique,
                      const std::function<std::string(const std::string&)>& key_column = {}) {
  std::string list;
  for (const auto& c : cols) {
    if (!list.empty()) list += ", ";
    list += key_column ? key_column(quote(c)) : quote(c);
  }
  // Uniqueness applies to live records: a deleted record's code can be reused.
  return std::string(unique ? "CREATE UNIQUE INDEX IF NOT EXISTS "
                            : "CREATE INDEX IF NOT EXISTS ") +
         quote(index_name(e, cols)) + " ON " + quote(e.name) + " (" + list + ")" +
         (unique ? " WHERE deleted_at IS NULL" : "");
}

// The index of a non-unique indexed field carries created_at after the field: it serves an
// equality or range filter on the field as the one-column index did, and under an equality
// filter it also yields the default list order (-created_at, then id) without sorting the
// matching rows. SQLite's index entries end with the rowid (the id); on PostgreSQL "id" is the
// last column and every column is NULLS FIRST, so that the list order (DESC NULLS LAST, or ASC
// NULLS FIRST) is the index read backwards or forwards (Dialect::index_key_column).
std::vector<std::string> indexed_columns(const Field& f, const storage::Dialect& d) {
  std::vector<std::string> cols{f.name};
  if (f.name != "created_at") cols.push_back("created_at");
  if (!d.index_key_ends_with_id()) cols.push_back("id");
  return cols;
}

// Statements in order: create the list index, then drop the indexes of earlier versions on a
// leading part of its columns (the one-column index; on PostgreSQL also the one without "id").
std::vector<std::string> field_index_ddl(const schema::Entity& e, const Field& f,
                                         const storage::Dialect& d) {
  std::vector<std::string> out;
  if (f.name == "id") return out;
  if (f.unique) {
    out.push_back(index_ddl(e, {f.name}, true));
  } else if (f.indexed) {
    auto cols = indexed_columns(f, d);
    out.push_back(
        index_ddl(e, cols, false, [&d](const std::string& c) { return d.index_key_column(c); }));
    for (std::size_t n = 1; n < cols.size(); ++n) {
      std::vector<std::string> earlier(cols.begin(), cols.begin() + static_cast<long>(n));
      // …unless the entity declares an index on just those columns.
      if (std::find(e.indexes.begin(), e.indexes.end(), earlier) != e.indexes.end()) continue;
      out.push_back("DROP INDEX IF EXISTS " + quote(index_name(e, earlier)));
    }
  }
  return out;
}

// A declared index carries created_at after its columns too (and id on PostgreSQL, each column
// NULLS FIRST), as a field's index does: under equalities on its leading columns and a sort by
// its last one (an account's timeline: account_id = ?, sorted by -occurred_at), the whole list
// order — that field, then created_at, then id — is the index read in order, and the matching
// rows are not sorted (on SQLite a sort under LIMIT builds a temporary B-tree per statement).
// Statements in order: create it, then drop the index of the declared columns alone (an earlier
// version's).
std::vector<std::string> declared_key(const std::vector<std::string>& cols,
                                      const storage::Dialect& d) {
  std::vector<std::string> key = cols;
  if (key.empty() || key.back() != "created_at") key.push_back("created_at");
  if (!d.index_key_ends_with_id()) key.push_back("id");
  return key;
}

std::vector<std::string> declared_index_ddl(const schema::Entity& e,
                                            const std::vector<std::string>& cols,
                                            const storage::Dialect& d) {
  const std::vector<std::string> key = declared_key(cols, d);
  std::vector<std::string> out{
      index_ddl(e, key, false, [&d](const std::string& c) { return d.index_key_column(c); })};
  if (key.size() > cols.size()) out.push_back("DROP INDEX IF EXISTS " + quote(index_name(e, cols)));
  return out;
}

// A count index (Entity::count_indexes): the declared columns, then deleted_at, of the live
// records only. The counts statement's `deleted_at IS NULL` selects the partial index, and
// deleted_at in the key makes it covering (SQLite 3.40 does not count a column of the partial
// index's WHERE as held by the index): a count by the reference reads index entries alone.
std::string count_index_ddl(const schema::Entity& e, const std::vector<std::string>& cols) {
  std::string list;
  for (const auto& c : cols) list += quote(c) + ", ";
  std::vector<std::string> named = cols;
  named.emplace_back("live");
  return "CREATE INDEX IF NOT EXISTS " + quote(index_name(e, named)) + " ON " + quote(e.name) +
         " (" + list + "\"deleted_at\") WHERE deleted_at IS NULL";
}
}  // namespace

const Field* fuzzy_title(const schema::Entity& e) {
  const Field* t = e.has_searchable() ? e.field(e.title_field) : nullptr;
  return t && t->type == FieldType::kText ? t : nullptr;
}

Status sync_table(storage::Tx& tx, const storage::Dialect& d, const schema::Entity& e,
                  bool defer_indexes) {
  std::set<std::string> deferred;
  if (defer_indexes)
    for (auto& ix : deferrable_indexes(e, d)) deferred.insert(std::move(ix.create));
  const auto index = [&](const std::string& ddl) -> Status {
    if (deferred.count(ddl)) return {};
    RP_TRY(tx.exec(ddl));
    return {};
  };
  std::string t = quote(e.name);
  RP_ASSIGN(auto existing, tx.table_columns(e.name));
  if (!existing) {
    // The deletion mark and merge target right after the system fields (id, version, …,
    // owner_id, team_id), before the entity's own: a read by id's head statement (version,
    // owner, team, deletion mark, title) and a list page's live-row check read a row's header
    // only up to the columns they need, and at the end of a 46-column account row the mark
    // cost the walk over every column's header. Tables made before keep their order (columns
    // are only ever read and written by name).
    std::string ddl = "CREATE TABLE " + t + " (";
    const std::string marks = "\"deleted_at\" " + d.column_type(ColumnType::kText) +
                              ", \"merged_into\" " + d.column_type(ColumnType::kInteger);
    bool marked = false;
    for (const auto& f : e.fields) {
      if (!f.system && !marked) {
        ddl += marks + ", ";
        marked = true;
      }
      for (const auto& [col, type] : columns_with_types(f)) {
        ddl += quote(col) + " " + d.column_type(type);
        if (col == "id") ddl += " PRIMARY KEY";
        if (col == "version") ddl += " NOT NULL";
        ddl += ", ";
      }
    }
    if (!marked) ddl += marks + ", ";
    ddl.resize(ddl.size() - 2);  // the last ", "
    ddl += ")";
    RP_TRY(tx.exec(ddl));
  } else {
    std::set<std::string> have(existing->begin(), existing->end());
    for (const auto& f : e.fields)
      for (const auto& [col, type] : columns_with_types(f))
        if (!have.count(col))
          RP_TRY(tx.exec("ALTER TABLE " + t + " ADD COLUMN " + quote(col) + " " +
                         d.column_type(type)));
  }
  for (const auto& f : e.fields)
    for (const auto& s : field_index_ddl(e, f, d)) RP_TRY(index(s));
  for (const auto& cols : e.indexes)
    for (const auto& s : declared_index_ddl(e, cols, d)) RP_TRY(index(s));
  for (const auto& cols : e.count_indexes) RP_TRY(index(count_index_ddl(e, cols)));
  if (e.has_searchable())
    for (const auto& s : d.fts_create(e.name)) RP_TRY(tx.exec(s));
  // The "did you mean" index of a searchable entity's text title (PostgreSQL's pg_trgm; none
  // on SQLite): RecordService::search falls back to it when the term index finds nothing.
  if (const Field* t = fuzzy_title(e))
    for (const auto& s : d.fuzzy_index_create(e.name, t->name)) RP_TRY(tx.exec(s));
  return {};
}

std::vector<IndexDdl> deferrable_indexes(const schema::Entity& e, const storage::Dialect& d) {
  std::vector<IndexDdl> out;
  const auto key_column = [&d](const std::string& c) { return d.index_key_column(c); };
  for (const auto& f : e.fields) {
    if (f.name == "id" || f.unique || !f.indexed) continue;
    const auto cols = indexed_columns(f, d);
    out.push_back({index_name(e, cols), index_ddl(e, cols, false, key_column)});
  }
  for (const auto& cols : e.indexes) {
    const auto key = declared_key(cols, d);
    out.push_back({index_name(e, key), index_ddl(e, key, false, key_column)});
  }
  for (const auto& cols : e.count_indexes) {
    std::vector<std::string> named = cols;
    named.emplace_back("live");
    out.push_back({index_name(e, named), count_index_ddl(e, cols)});
  }
  return out;
}

std::vector<std::string> add_field_ddl(const storage::Dialect& d, const schema::Entity& e,
                                       const Field& f) {
  std::vector<std::string> out;
  for (const auto& [col, type] : columns_with_types(f))
    out.push_back("ALTER TABLE " + quote(e.name) + " ADD COLUMN " + quote(col) + " " +
                  d.column_type(type));
  for (auto& s : field_index_ddl(e, f, d)) out.push_back(std::move(s));
  return out;
}

void to_sql(const Field& f, const json::Value& v, std::vector<SqlValue>& out) {
  if (v.IsNull()) {
    out.emplace_back();
    if (f.type == FieldType::kMoney) out.emplace_back();
    return;
  }
  switch (f.type) {
    case FieldType::kInteger:
      out.emplace_back(v.GetInt64());
      break;
    case FieldType::kDecimal:
      out.emplace_back(v.GetDouble());
      break;
    case FieldType::kBoolean:
      out.emplace_back(std::int64_t{v.GetBool() ? 1 : 0});
      break;
    case FieldType::kReference:
      out.emplace_back(std::stoll(v.GetString()));
      break;
    case FieldType::kMoney:
      out.emplace_back(json::member(v, "amount")->GetInt64());
      out.emplace_back(std::string(json::member(v, "currency")->GetString()));
      break;
    case FieldType::kMultiEnum:
    case FieldType::kPhoneList:
    case FieldType::kEmailList:
    case FieldType::kAddress:
    case FieldType::kJson:
      out.emplace_back(json::stringify(v));
      break;
    default:
      out.emplace_back(std::string(v.GetString(), v.GetStringLength()));
      break;
  }
}

std::int64_t as_int(const SqlValue& v) {
  if (std::holds_alternative<std::int64_t>(v)) return std::get<std::int64_t>(v);
  if (std::holds_alternative<double>(v)) return static_cast<std::int64_t>(std::get<double>(v));
  return 0;
}
std::string as_text(const SqlValue& v) {
  if (std::holds_alternative<std::string>(v)) return std::get<std::string>(v);
  if (std::holds_alternative<std::int64_t>(v)) return std::to_string(std::get<std::int64_t>(v));
  return {};
}

size_t write_json(json::Writer& w, const Field& f, const std::vector<SqlValue>& row, size_t col) {
  const SqlValue& v = row[col];
  if (f.type == FieldType::kMoney) {
    if (storage::is_null(v)) {
      w.Null();
    } else {
      w.StartObject();
      w.Key("amount");
      w.Int64(as_int(v));
      w.Key("currency");
      w.String(as_text(row[col + 1]));
      w.EndObject();
    }
    return 2;
  }
  if (storage::is_null(v)) {
    w.Null();
    return 1;
  }
  switch (f.type) {
    case FieldType::kInteger:
      w.Int64(as_int(v));
      break;
    case FieldType::kDecimal:
      w.Double(std::holds_alternative<double>(v) ? std::get<double>(v)
                                                 : static_cast<double>(as_int(v)));
      break;
    case FieldType::kBoolean:
      w.Bool(as_int(v) != 0);
      break;
    case FieldType::kReference: {
      // Ids are strings in JSON; formatted on the stack (every row of a list has several).
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, as_int(v));
      w.String(buf, static_cast<rapidjson::SizeType>(ec == std::errc() ? end - buf : 0));
      break;
    }
    case FieldType::kMultiEnum:
    case FieldType::kPhoneList:
    case FieldType::kEmailList:
    case FieldType::kAddress:
    case FieldType::kJson:
      if (const auto* text = std::get_if<std::string>(&v)) {
        w.RawValue(text->data(), text->size(), rapidjson::kObjectType);
      } else {
        std::string s = as_text(v);
        w.RawValue(s.data(), s.size(), rapidjson::kObjectType);
      }
      break;
    default:
      if (const auto* text = std::get_if<std::string>(&v)) {  // no copy of the column's text
        w.String(text->data(), static_cast<rapidjson::SizeType>(text->size()));
      } else {
        std::string s = as_text(v);
        w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      }
  }
  return 1;
}

size_t to_json(const Field& f, const std::vector<SqlValue>& row, size_t col, json::Value& out,
               json::Allocator& a) {
  json::Buffer buf;
  json::Writer w(buf);
  size_t n = write_json(w, f, row, col);
  json::Document d(&a);
  d.Parse(buf.GetString(), buf.GetSize());
  out.CopyFrom(d, a);
  return n;
}

std::string to_text(const Field& f, const std::vector<SqlValue>& row, size_t col) {
  const SqlValue& v = row[col];
  if (storage::is_null(v)) return {};
  switch (f.type) {
    case FieldType::kMoney: {
      std::int64_t amount = as_int(v);
      char buf[48];
      std::snprintf(buf, sizeof buf, "%s%lld.%02lld", amount < 0 ? "-" : "",
                    static_cast<long long>(std::llabs(amount) / 100),
                    static_cast<long long>(std::llabs(amount) % 100));
      return std::string(buf) + " " + as_text(row[col + 1]);
    }
    case FieldType::kBoolean:
      return as_int(v) ? "true" : "false";
    case FieldType::kDecimal:
      return std::holds_alternative<double>(v) ? fmt_double(std::get<double>(v)) : as_text(v);
    case FieldType::kMultiEnum:
    case FieldType::kPhoneList:
    case FieldType::kEmailList:
    case FieldType::kAddress: {
      auto doc = json::parse(as_text(v));
      if (!doc.ok()) return as_text(v);
      std::string out;
      auto add = [&](const std::string& s) {
        if (s.empty()) return;
        if (!out.empty()) out += f.type == FieldType::kAddress ? ", " : "; ";
        out += s;
      };
      if (doc->IsArray()) {
        for (const auto& e : doc->GetArray()) {
          if (e.IsString())
            add(e.GetString());
          else if (const json::Value* val = json::member(e, "value"); val && val->IsString())
            add(val->GetString());
        }
      } else if (doc->IsObject()) {
        for (const char* k : {"street", "city", "region", "postal_code", "country"})
          if (const json::Value* p = json::member(*doc, k); p && p->IsString()) add(p->GetString());
      }
      return out;
    }
    default:
      return as_text(v);
  }
}

}  // namespace rapport::record
