// Entity and field metadata: the one declaration from which tables, validation, the generic
// REST endpoints, search, export, OpenAPI and the web app's views are derived.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "core/json.h"

namespace rapport::schema {

enum class FieldType {
  kText,
  kLongText,
  kInteger,
  kDecimal,
  kMoney,
  kBoolean,
  kDate,
  kDatetime,
  kEnum,
  kMultiEnum,
  kPhoneList,
  kEmailList,
  kAddress,
  kReference,
  kJson
};
const char* type_name(FieldType t);
std::optional<FieldType> parse_type(std::string_view name);

struct Label {
  std::string en;
  std::string zh;  // zh-CN
};

struct EnumOption {
  std::string value;
  Label label;
};

struct Field {
  std::string name;
  FieldType type = FieldType::kText;
  Label label;
  bool required = false;
  bool unique = false;
  bool searchable = false;
  bool indexed = false;
  bool readonly = false;   // set by the server only (system fields)
  bool system = false;     // id, version, created_at, … present on every entity
  bool custom = false;     // added at run time by an administrator
  bool sensitive = false;  // hidden unless a role grants read/write on it explicitly
  int max_length = 0;      // text: code points; 0 = default limit
  std::string pattern;     // ECMAScript regex the whole value must match
  std::shared_ptr<const std::regex> pattern_re;
  std::optional<double> min, max;
  std::vector<EnumOption> options;
  std::string reference;      // target entity name for kReference
  std::string section;        // form section key
  std::string default_value;  // JSON text of the default, empty when none

  bool is_list_type() const {
    return type == FieldType::kMultiEnum || type == FieldType::kPhoneList ||
           type == FieldType::kEmailList;
  }
  // Whether the field can be used in sort/cursor (scalar column).
  bool sortable() const;
};

struct Entity {
  std::string name;    // singular, snake_case: table name
  std::string plural;  // collection name in URLs
  std::string module;
  Label label;
  Label label_plural;
  std::string title_field;                        // field shown as the record's title
  std::vector<Field> fields;                      // system fields first, then declared, then custom
  std::vector<std::vector<std::string>> indexes;  // composite indexes besides per-field ones
  // Indexes of the live records that answer a count alone: a reference and the columns the
  // count narrows by ("count_indexes": [["account_id", "outcome"]]). COUNT(*) of live records
  // with `account_id = ?`, and of those with a condition on outcome, then reads this index and
  // not the table (table.cc: the key ends with deleted_at, so that it covers the condition).
  std::vector<std::vector<std::string>> count_indexes;

  const Field* field(std::string_view name) const;
  bool has_searchable() const;
};

constexpr int kDefaultTextLimit = 255;
constexpr int kDefaultLongTextLimit = 100000;

// Parses one entity declaration (JSON text of src/modules/<module>/entities/<name>.json) and adds
// the system fields. Errors name the entity and field.
Result<Entity> parse_entity(std::string_view json_text, std::string_view module);
// Parses a field definition (as declared, or as posted for a custom field).
Result<Field> parse_field(const json::Value& v, std::string_view entity);
// Field definition back to JSON (metadata endpoint, custom field storage).
void write_field(json::Writer& w, const Field& f);

// Checks a JSON value against a field's type and rules; on success `out` holds the normalised
// value (trimmed text, canonical date/datetime, list entries as {"value","label"} objects …).
Status validate_value(const Field& f, const json::Value& in, json::Value& out, json::Allocator& a);

// Thread-safe registry of entities. Readers get immutable snapshots; adding a custom field
// replaces the entity's snapshot (copy-on-write), so in-flight requests keep a consistent view.
class Registry {
 public:
  void add(Entity e);
  std::shared_ptr<const Entity> get(std::string_view name) const;
  std::shared_ptr<const Entity> by_plural(std::string_view plural) const;
  std::vector<std::shared_ptr<const Entity>> all() const;  // in declaration order
  Status add_custom_field(std::string_view entity, Field f);

 private:
  mutable std::shared_mutex mu_;
  std::vector<std::shared_ptr<const Entity>> entities_;
};

}  // namespace rapport::schema
