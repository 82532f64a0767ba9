// Entity declarations: parsing, system fields, value validation and the run-time registry.
#include "schema/schema.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "base/clock.h"

namespace rapport::schema {

namespace {

struct TypeName {
  FieldType type;
  const char* name;
};
constexpr TypeName kTypes[] = {
    {FieldType::kText, "text"},
    {FieldType::kLongText, "long_text"},
    {FieldType::kInteger, "integer"},
    {FieldType::kDecimal, "decimal"},
    {FieldType::kMoney, "money"},
    {FieldType::kBoolean, "boolean"},
    {FieldType::kDate, "date"},
    {FieldType::kDatetime, "datetime"},
    {FieldType::kEnum, "enum"},
    {FieldType::kMultiEnum, "multi_enum"},
    {FieldType::kPhoneList, "phone_list"},
    {FieldType::kEmailList, "email_list"},
    {FieldType::kAddress, "address"},
    {FieldType::kReference, "reference"},
    {FieldType::kJson, "json"},
};

bool valid_identifier(std::string_view s) {
  if (s.empty() || s.size() > 63 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string get_string(const json::Value& v, const char* name) {
  const json::Value* m = json::member(v, name);
  return m && m->IsString() ? std::string(m->GetString(), m->GetStringLength()) : std::string();
}
bool get_bool(const json::Value& v, const char* name) {
  const json::Value* m = json::member(v, name);
  return m && m->IsBool() && m->GetBool();
}
Label get_label(const json::Value& v, const char* name, const std::string& fallback) {
  Label l;
  if (const json::Value* m = json::member(v, name); m && m->IsObject()) {
    l.en = get_string(*m, "en");
    l.zh = get_string(*m, "zh-CN");
  } else if (m && m->IsString()) {
    l.en = m->GetString();
  }
  if (l.en.empty()) l.en = fallback;
  if (l.zh.empty()) l.zh = l.en;
  return l;
}

Field system_field(const char* name, FieldType type, const char* en, const char* zh,
                   bool indexed = true) {
  Field f;
  f.name = name;
  f.type = type;
  f.label = {en, zh};
  f.system = true;
  f.readonly = true;
  f.indexed = indexed;
  f.section = "system";
  return f;
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r'))
    --e;
  return std::string(s.substr(b, e - b));
}

Error invalid(const Field& f, std::string msg) {
  return make_error(Errc::kValidation, f.name + " " + msg, f.name);
}

bool valid_email(const std::string& s) {
  static const std::regex re(R"(^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$)");
  return s.size() <= 254 && std::regex_match(s, re);
}
bool valid_phone(const std::string& s) {
  int digits = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (!(c == '+' || c == '-' || c == ' ' || c == '(' || c == ')' || c == '.' || c == 'x' ||
                 c == '#' || c == '/')) {
      return false;
    }
  }
  return digits >= 3 && digits <= 20;
}

// Normalises an entry of a phone/email list: a string or {"value","label"}.
Status list_entry(const Field& f, const json::Value& e, json::Value& out, json::Allocator& a,
                  bool email) {
  std::string value, label;
  if (e.IsString()) {
    value = trim(e.GetString());
  } else if (e.IsObject()) {
    for (auto it = e.MemberBegin(); it != e.MemberEnd(); ++it) {
      std::string_view key(it->name.GetString(), it->name.GetStringLength());
      if (key != "value" && key != "label")
        return invalid(
            f, "entries take only \"value\" and \"label\", not \"" + std::string(key) + "\"");
      if (!it->value.IsString())
        return invalid(f, "entry " + std::string(key) + " must be a string");
    }
    value = trim(get_string(e, "value"));
    label = trim(get_string(e, "label"));
  } else {
    return invalid(f, "entries must be strings or {\"value\", \"label\"} objects");
  }
  if (value.empty()) return invalid(f, "has an empty entry");
  if (email) {
    if (!valid_email(value)) return invalid(f, "has an invalid email address: " + value);
  } else if (!valid_phone(value)) {
    return invalid(f, "has an invalid phone number: " + value);
  }
  if (label.size() > 40) return invalid(f, "entry label is longer than 40 characters");
  out.SetObject();
  out.AddMember("value", json::str(value, a), a);
  if (!label.empty()) out.AddMember("label", json::str(label, a), a);
  return {};
}

}  // namespace

const char* type_name(FieldType t) {
  for (const auto& tn : kTypes)
    if (tn.type == t) return tn.name;
  return "text";
}

std::optional<FieldType> parse_type(std::string_view name) {
  for (const auto& tn : kTypes)
    if (name == tn.name) return tn.type;
  return std::nullopt;
}

bool Field::sortable() const {
  switch (type) {
    case FieldType::kText:
    case FieldType::kInteger:
    case FieldType::kDecimal:
    case FieldType::kMoney:
    case FieldType::kBoolean:
    case FieldType::kDate:
    case FieldType::kDatetime:
    case FieldType::kEnum:
    case FieldType::kReference:
      return true;
    default:
      return false;
  }
}

const Field* Entity::field(std::string_view n) const {
  for (const auto& f : fields)
    if (f.name == n) return &f;
  return nullptr;
}

bool Entity::has_searchable() const {
  return std::any_of(fields.begin(), fields.end(), [](const Field& f) { return f.searchable; });
}

Result<Field> parse_field(const json::Value& v, std::string_view entity) {
  if (!v.IsObject()) return make_error(Errc::kValidation, "a field definition must be an object");
  Field f;
  f.name = get_string(v, "name");
  if (!valid_identifier(f.name))
    return make_error(Errc::kValidation,
                      "field name must start with a letter and use only a-z, 0-9 and _ (max 63)",
                      "name");
  std::string type = get_string(v, "type");
  auto t = parse_type(type);
  if (!t) return make_error(Errc::kValidation, "unknown field type \"" + type + "\"", "type");
  f.type = *t;
  f.label = get_label(v, "label", f.name);
  f.required = get_bool(v, "required");
  f.unique = get_bool(v, "unique");
  f.searchable = get_bool(v, "searchable");
  f.indexed = get_bool(v, "indexed") || f.unique || f.type == FieldType::kReference;
  f.sensitive = get_bool(v, "sensitive");
  // Declared read-only: written by the server only (e.g. the duplicate review queue's pairs).
  f.readonly = get_bool(v, "readonly");
  f.section = get_string(v, "section");
  if (f.section.empty()) f.section = "main";
  if (const json::Value* m = json::member(v, "max_length")) {
    if (!m->IsInt() || m->GetInt() < 1)
      return make_error(Errc::kValidation, "max_length must be a positive integer", "max_length");
    f.max_length = m->GetInt();
  }
  if (const json::Value* m = json::member(v, "min"); m && m->IsNumber()) f.min = m->GetDouble();
  if (const json::Value* m = json::member(v, "max"); m && m->IsNumber()) f.max = m->GetDouble();
  f.pattern = get_string(v, "pattern");
  if (!f.pattern.empty()) {
    try {
      f.pattern_re = std::make_shared<const std::regex>(f.pattern);
    } catch (const std::regex_error&) {
      return make_error(Errc::kValidation, "pattern is not a valid regular expression", "pattern");
    }
  }
  if (const json::Value* d = json::member(v, "default")) f.default_value = json::stringify(*d);
  if (f.type == FieldType::kEnum || f.type == FieldType::kMultiEnum) {
    const json::Value* opts = json::member(v, "options");
    if (!opts || !opts->IsArray() || opts->Empty())
      return make_error(Errc::kValidation,
                        "enum field " + f.name + " needs a non-empty options list", "options");
    std::set<std::string> seen;
    for (const auto& o : opts->GetArray()) {
      EnumOption opt;
      if (o.IsString()) {
        opt.value = o.GetString();
        opt.label = {opt.value, opt.value};
      } else if (o.IsObject()) {
        opt.value = get_string(o, "value");
        opt.label = get_label(o, "label", opt.value);
      }
      if (opt.value.empty() || !seen.insert(opt.value).second)
        return make_error(Errc::kValidation, "enum options must be distinct non-empty values",
                          "options");
      f.options.push_back(std::move(opt));
    }
  }
  if (f.type == FieldType::kReference) {
    f.reference = get_string(v, "reference");
    if (!valid_identifier(f.reference))
      return make_error(Errc::kValidation,
                        "reference field " + f.name + " must name its target entity", "reference");
  }
  if (const json::Value* rw = json::member(v, "required_when")) {
    // The shape here; the condition's field and value are checked against the entity's other
    // fields by resolve_required_when once every field is parsed.
    const json::Value* cond = rw->IsObject() ? json::member(*rw, "field") : nullptr;
    const json::Value* equals = rw->IsObject() ? json::member(*rw, "equals") : nullptr;
    if (!cond || !cond->IsString() || !equals || equals->IsNull() || rw->MemberCount() != 2)
      return make_error(Errc::kValidation,
                        "field " + f.name +
                            ": required_when must be {\"field\": \"<field name>\", \"equals\": "
                            "<a value that is not null>}",
                        "required_when");
    if (f.required)
      return make_error(Errc::kValidation,
                        "field " + f.name + " is required already; drop required or required_when",
                        "required_when");
    RequiredWhen r;
    r.field = cond->GetString();
    auto doc = std::make_shared<json::Document>();
    doc->CopyFrom(*equals, doc->GetAllocator());
    r.equals = std::move(doc);
    r.equals_text = json::stringify(*equals);
    f.required_when = std::move(r);
  }
  (void)entity;
  return f;
}

namespace {
// The condition of a field's required_when against the entity: a known field other than itself,
// of a type whose values compare exactly, and a value that field accepts (kept normalised).
Status resolve_required_when(const Entity& e, Field& f) {
  RequiredWhen& r = *f.required_when;
  const std::string where = "entity " + e.name + ": field " + f.name + " is required when " +
                            r.field + " equals " + r.equals_text;
  if (r.field == f.name)
    return make_error(Errc::kValidation, where + ", its own value", "required_when");
  const Field* cond = e.field(r.field);
  if (!cond)
    return make_error(Errc::kValidation, where + ", but there is no field " + r.field,
                      "required_when");
  switch (cond->type) {
    case FieldType::kText:
    case FieldType::kInteger:
    case FieldType::kBoolean:
    case FieldType::kDate:
    case FieldType::kEnum:
    case FieldType::kReference:
      break;
    default:
      return make_error(Errc::kValidation,
                        where + ", but " + r.field + " is a " + type_name(cond->type) +
                            " field; a condition tests a text, integer, boolean, date, enum or "
                            "reference field",
                        "required_when");
  }
  auto doc = std::make_shared<json::Document>();
  json::Value out;
  if (auto st = validate_value(*cond, *r.equals, out, doc->GetAllocator()); !st.ok())
    return make_error(Errc::kValidation,
                      where + ", which " + r.field + " cannot hold: " + st.error().message,
                      "required_when");
  if (out.IsNull())
    return make_error(Errc::kValidation, where + ", which is empty once normalised",
                      "required_when");
  static_cast<json::Value&>(*doc) = std::move(out);
  r.equals_text = json::stringify(*doc);
  r.equals = std::move(doc);
  return {};
}
}  // namespace

Error required_error(const Field& f) {
  if (f.required_when)
    return make_error(Errc::kValidation,
                      f.name + " is required when " + f.required_when->field + " is " +
                          f.required_when->equals_text,
                      f.name);
  return make_error(Errc::kValidation, f.name + " is required", f.name);
}

void write_field(json::Writer& w, const Field& f) {
  auto label = [&](const Label& l) {
    w.StartObject();
    w.Key("en");
    w.String(l.en);
    w.Key("zh-CN");
    w.String(l.zh);
    w.EndObject();
  };
  w.StartObject();
  w.Key("name");
  w.String(f.name);
  w.Key("type");
  w.String(type_name(f.type));
  w.Key("label");
  label(f.label);
  w.Key("required");
  w.Bool(f.required);
  w.Key("unique");
  w.Bool(f.unique);
  w.Key("searchable");
  w.Bool(f.searchable);
  w.Key("indexed");
  w.Bool(f.indexed);
  w.Key("readonly");
  w.Bool(f.readonly);
  w.Key("system");
  w.Bool(f.system);
  w.Key("custom");
  w.Bool(f.custom);
  w.Key("sensitive");
  w.Bool(f.sensitive);
  w.Key("section");
  w.String(f.section);
  if (f.max_length) {
    w.Key("max_length");
    w.Int(f.max_length);
  }
  if (!f.pattern.empty()) {
    w.Key("pattern");
    w.String(f.pattern);
  }
  if (f.min) {
    w.Key("min");
    w.Double(*f.min);
  }
  if (f.max) {
    w.Key("max");
    w.Double(*f.max);
  }
  if (!f.reference.empty()) {
    w.Key("reference");
    w.String(f.reference);
  }
  if (!f.options.empty()) {
    w.Key("options");
    w.StartArray();
    for (const auto& o : f.options) {
      w.StartObject();
      w.Key("value");
      w.String(o.value);
      w.Key("label");
      label(o.label);
      w.EndObject();
    }
    w.EndArray();
  }
  if (f.required_when) {
    // {"field": "key_account", "equals": true}: the field is required while that one holds it
    w.Key("required_when");
    w.StartObject();
    w.Key("field");
    w.String(f.required_when->field);
    w.Key("equals");
    f.required_when->equals->Accept(w);
    w.EndObject();
  }
  if (!f.default_value.empty()) {
    w.Key("default");
    w.RawValue(f.default_value.data(), f.default_value.size(), rapidjson::kObjectType);
  }
  w.EndObject();
}

Result<Entity> parse_entity(std::string_view text, std::string_view module) {
  RP_ASSIGN(json::Document doc, json::parse(text));
  Entity e;
  e.module = module;
  e.name = get_string(doc, "name");
  if (!valid_identifier(e.name))
    return make_error(Errc::kValidation,
                      "entity in module " + std::string(module) + " has an invalid name");
  e.plural = get_string(doc, "plural");
  if (e.plural.empty()) e.plural = e.name + "s";
  e.label = get_label(doc, "label", e.name);
  e.label_plural = get_label(doc, "label_plural", e.label.en);
  e.title_field = get_string(doc, "title_field");

  e.fields.push_back(system_field("id", FieldType::kReference, "ID", "编号"));
  e.fields.back().reference = e.name;
  e.fields.push_back(system_field("version", FieldType::kInteger, "Version", "版本", false));
  e.fields.push_back(system_field("created_at", FieldType::kDatetime, "Created", "创建时间"));
  e.fields.push_back(system_field("updated_at", FieldType::kDatetime, "Updated", "更新时间"));
  e.fields.push_back(
      system_field("created_by", FieldType::kReference, "Created by", "创建人", false));
  e.fields.back().reference = "user";
  e.fields.push_back(
      system_field("updated_by", FieldType::kReference, "Updated by", "更新人", false));
  e.fields.back().reference = "user";
  // owner and team are assignable by users allowed to update the record
  e.fields.push_back(system_field("owner_id", FieldType::kReference, "Owner", "负责人"));
  e.fields.back().reference = "user";
  e.fields.back().readonly = false;
  e.fields.push_back(system_field("team_id", FieldType::kReference, "Team", "团队"));
  e.fields.back().reference = "team";
  e.fields.back().readonly = false;

  const json::Value* fields = json::member(doc, "fields");
  if (!fields || !fields->IsArray())
    return make_error(Errc::kValidation, "entity " + e.name + " must declare a fields array");
  for (const auto& fv : fields->GetArray()) {
    auto f = parse_field(fv, e.name);
    if (!f.ok()) {
      Error err = std::move(f).error();
      err.message = "entity " + e.name + ": " + err.message;
      return err;
    }
    if (e.field(f->name))
      return make_error(Errc::kValidation, "entity " + e.name + " declares " + f->name + " twice");
    e.fields.push_back(std::move(f).value());
  }
  for (auto& f : e.fields)
    if (f.required_when) RP_TRY(resolve_required_when(e, f));
  if (e.title_field.empty() || !e.field(e.title_field))
    return make_error(Errc::kValidation,
                      "entity " + e.name + " needs a title_field naming one of its fields");
  for (auto [key, into] :
       {std::pair{"indexes", &e.indexes}, std::pair{"count_indexes", &e.count_indexes}}) {
    const json::Value* idx = json::member(doc, key);
    if (!idx || !idx->IsArray()) continue;
    for (const auto& one : idx->GetArray()) {
      std::vector<std::string> cols;
      if (one.IsArray())
        for (const auto& c : one.GetArray()) {
          if (!c.IsString() || !e.field(c.GetString()))
            return make_error(Errc::kValidation,
                              "entity " + e.name + " has an index on an unknown field");
          cols.emplace_back(c.GetString());
        }
      if (cols.empty())
        return make_error(Errc::kValidation,
                          "entity " + e.name + " has an index of no fields in " + key);
      into->push_back(std::move(cols));
    }
  }
  return e;
}

Status validate_value(const Field& f, const json::Value& in, json::Value& out, json::Allocator& a) {
  if (in.IsNull()) {
    out.SetNull();
    return {};
  }
  switch (f.type) {
    case FieldType::kText:
    case FieldType::kLongText: {
      if (!in.IsString()) return invalid(f, "must be a string");
      std::string_view raw(in.GetString(), in.GetStringLength());
      // A NUL would silently cut the value short in C APIs downstream; refuse it by name.
      if (raw.find('\0') != std::string_view::npos)
        return invalid(f, "must not contain NUL characters");
      std::string s = f.type == FieldType::kText ? trim(raw) : std::string(raw);
      if (s.empty()) {
        out.SetNull();
        return {};
      }
      size_t limit = f.max_length
                         ? f.max_length
                         : (f.type == FieldType::kText ? kDefaultTextLimit : kDefaultLongTextLimit);
      if (code_points(s) > limit)
        return invalid(f, "is longer than " + std::to_string(limit) + " characters");
      if (f.type == FieldType::kText && s.find_first_of("\r\n") != std::string::npos)
        return invalid(f, "must be a single line");
      if (f.pattern_re && !std::regex_match(s, *f.pattern_re))
        return invalid(f, "does not match the required format");
      out = json::str(s, a);
      return {};
    }
    case FieldType::kInteger: {
      if (!in.IsInt64()) return invalid(f, "must be an integer");
      if ((f.min && in.GetInt64() < *f.min) || (f.max && in.GetInt64() > *f.max))
        return invalid(f, "is out of range");
      out.SetInt64(in.GetInt64());
      return {};
    }
    case FieldType::kDecimal: {
      if (!in.IsNumber()) return invalid(f, "must be a number");
      double d = in.GetDouble();
      if ((f.min && d < *f.min) || (f.max && d > *f.max)) return invalid(f, "is out of range");
      out.SetDouble(d);
      return {};
    }
    case FieldType::kMoney: {
      const json::Value* amount = json::member(in, "amount");
      const json::Value* currency = json::member(in, "currency");
      if (!in.IsObject() || !amount || !currency || in.MemberCount() != 2)
        return invalid(f, "must be {\"amount\": minor units, \"currency\": \"CNY\"}");
      if (!amount->IsInt64())
        return invalid(f, "amount must be an integer in minor units (fen, cents)");
      std::string cur = currency->IsString() ? currency->GetString() : "";
      if (cur.size() != 3 ||
          !std::all_of(cur.begin(), cur.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        return invalid(f, "currency must be an ISO 4217 code such as CNY");
      out.SetObject();
      out.AddMember("amount", amount->GetInt64(), a);
      out.AddMember("currency", json::str(cur, a), a);
      return {};
    }
    case FieldType::kBoolean:
      if (!in.IsBool()) return invalid(f, "must be true or false");
      out.SetBool(in.GetBool());
      return {};
    case FieldType::kDate:
    case FieldType::kDatetime: {
      if (!in.IsString()) return invalid(f, "must be a string");
      Millis ms;
      bool date_only = f.type == FieldType::kDate;
      if (!parse_iso8601(in.GetString(), ms, date_only))
        return invalid(
            f, date_only
                   ? "must be a date YYYY-MM-DD"
                   : "must be an ISO 8601 date-time with offset, e.g. 2026-11-22T10:00:00+08:00");
      out = date_only ? json::str(in.GetString(), a) : json::str(format_iso8601(ms), a);
      return {};
    }
    case FieldType::kEnum: {
      if (!in.IsString()) return invalid(f, "must be one of the listed options");
      for (const auto& o : f.options)
        if (o.value == in.GetString()) {
          out = json::str(o.value, a);
          return {};
        }
      return invalid(f, "has no option \"" + std::string(in.GetString()) + "\"");
    }
    case FieldType::kMultiEnum: {
      if (!in.IsArray()) return invalid(f, "must be an array of options");
      out.SetArray();
      std::set<std::string> seen;
      for (const auto& v : in.GetArray()) {
        bool ok = v.IsString() &&
                  std::any_of(f.options.begin(), f.options.end(),
                              [&](const EnumOption& o) { return o.value == v.GetString(); });
        if (!ok) return invalid(f, "has a value that is not one of its options");
        if (seen.insert(v.GetString()).second) out.PushBack(json::str(v.GetString(), a), a);
      }
      return {};
    }
    case FieldType::kPhoneList:
    case FieldType::kEmailList: {
      if (!in.IsArray()) return invalid(f, "must be an array");
      if (in.Size() > 50) return invalid(f, "has more than 50 entries");
      out.SetArray();
      for (const auto& v : in.GetArray()) {
        json::Value entry;
        RP_TRY(list_entry(f, v, entry, a, f.type == FieldType::kEmailList));
        out.PushBack(entry, a);
      }
      return {};
    }
    case FieldType::kAddress: {
      if (!in.IsObject())
        return invalid(f, "must be an object with street, city, region, postal_code, country");
      static const std::set<std::string> kKeys = {"street", "city", "region", "postal_code",
                                                  "country"};
      out.SetObject();
      for (auto it = in.MemberBegin(); it != in.MemberEnd(); ++it) {
        std::string key(it->name.GetString(), it->name.GetStringLength());
        if (!kKeys.count(key)) return invalid(f, "has unknown part \"" + key + "\"");
        if (!it->value.IsString() && !it->value.IsNull())
          return invalid(f, key + " must be a string");
        if (it->value.IsString()) {
          std::string s = trim(it->value.GetString());
          if (code_points(s) > 255) return invalid(f, key + " is too long");
          if (!s.empty()) out.AddMember(json::str(key, a), json::str(s, a), a);
        }
      }
      return {};
    }
    case FieldType::kReference: {
      std::string s;
      if (in.IsString())
        s = in.GetString();
      else if (in.IsInt64())
        s = std::to_string(in.GetInt64());
      if (s.empty() || s.size() > 19 ||
          !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          (s.size() == 19 && s > "9223372036854775807"))  // beyond int64
        return invalid(f, "must be a record id");
      out = json::str(s, a);
      return {};
    }
    case FieldType::kJson:
      out.CopyFrom(in, a);
      return {};
  }
  return invalid(f, "has an unsupported type");
}

void Registry::add(Entity e) {
  std::unique_lock lock(mu_);
  auto sp = std::make_shared<const Entity>(std::move(e));
  for (auto& existing : entities_)
    if (existing->name == sp->name) {
      existing = sp;
      return;
    }
  entities_.push_back(std::move(sp));
}

std::shared_ptr<const Entity> Registry::get(std::string_view name) const {
  std::shared_lock lock(mu_);
  for (const auto& e : entities_)
    if (e->name == name) return e;
  return nullptr;
}

std::shared_ptr<const Entity> Registry::by_plural(std::string_view plural) const {
  std::shared_lock lock(mu_);
  for (const auto& e : entities_)
    if (e->plural == plural) return e;
  return nullptr;
}

std::vector<std::shared_ptr<const Entity>> Registry::all() const {
  std::shared_lock lock(mu_);
  return entities_;
}

Status Registry::add_custom_field(std::string_view entity, Field f) {
  std::unique_lock lock(mu_);
  for (auto& e : entities_) {
    if (e->name != entity) continue;
    if (e->field(f.name))
      return make_error(Errc::kConflict,
                        "entity " + std::string(entity) + " already has a field " + f.name, "name");
    auto copy = std::make_shared<Entity>(*e);
    f.custom = true;
    copy->fields.push_back(std::move(f));
    e = std::move(copy);
    return {};
  }
  return make_error(Errc::kNotFound, "no entity " + std::string(entity));
}

}  // namespace rapport::schema
