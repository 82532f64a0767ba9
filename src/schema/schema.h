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

// A declarative conditional requirement ("required_when": {"field": "key_account", "equals":
// true}): the field it is declared on must have a value whenever `field` holds `equals`.
// Declared in entity files only (custom fields cannot carry one); checked by the record pipeline
// on the record as it will be stored, on every path that writes values (create, PATCH, bulk
// insert and upsert of imports, merge).
struct RequiredWhen {
  std::string field;  // the condition's field, of the same entity
  // `equals` normalised by the condition field's validate_value; shared so Field stays copyable
  std::shared_ptr<const json::Document> equals;
  std::string equals_text;  // the same as JSON text, for messages and metadata

  // Whether a record whose condition field holds `v` (nullptr: absent) meets the condition.
  bool holds(const json::Value* v) const { return v && !v->IsNull() && *v == *equals; }
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
  std::optional<RequiredWhen> required_when;

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

// The error of a record that leaves `f` empty although it is required (unconditionally, or by
// its required_when): kValidation naming the field, e.g. "account_manager_id is required when
// key_account is true".
Error required_error(const Field& f);
// The first conditional requirement (Field::required_when) of `e` that a record breaks, as
// required_error; `value_of(field)` gives the record's normalised value of a field as it will be
// stored (nullptr or null: none).
template <typename ValueOf>
Status check_required_when(const Entity& e, ValueOf&& value_of);

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

template <typename ValueOf>
Status check_required_when(const Entity& e, ValueOf&& value_of) {
  for (const auto& f : e.fields) {
    if (!f.required_when) continue;
    const Field* cond = e.field(f.required_when->field);
    if (!cond || !f.required_when->holds(value_of(*cond))) continue;
    const json::Value* v = value_of(f);
    if (!v || v->IsNull()) return required_error(f);
  }
  return {};
}

}  // namespace rapport::schema
